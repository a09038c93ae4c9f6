# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Layer 1 of the jail: the devices cgroup, and the device nodes it allows.

With the cgroup v1 ``devices`` controller, the kernel lets the jail's
processes open only the character devices every process needs and the
block devices granted to the jail, whatever path reaches them.
"""

import os
import stat

from oslo_log import log

from ipa_cinder_sandbox import errors
from ipa_cinder_sandbox import polling

LOG = log.getLogger(__name__)

DEVICES_CGROUP = '/sys/fs/cgroup/devices'
CGROUP_PARENT = 'ipa-cinder-jail'

# Character devices every process may use: null, zero, full, random,
# urandom, tty.
STD_DEVICES = {
    'null': (1, 3), 'zero': (1, 5), 'full': (1, 7), 'random': (1, 8),
    'urandom': (1, 9), 'tty': (5, 0),
}


def device_numbers(path):
    """(major, minor) of the block device ``path``; JailError otherwise."""
    st = os.stat(path)
    if not stat.S_ISBLK(st.st_mode):
        raise errors.JailError('%s is not a block device' % path)
    return os.major(st.st_rdev), os.minor(st.st_rdev)


def cgroup_path(name):
    """Where the devices cgroup of the jail ``name`` lives."""
    return os.path.join(DEVICES_CGROUP, CGROUP_PARENT, name)


def _write(cgroup, control, rule):
    with open(os.path.join(cgroup, control), 'w') as f:
        f.write(rule)


def create_cgroup(name, devices):
    """A devices cgroup denying all but the standard and ``devices``.

    :returns: its path, or None on a kernel without the controller.
    """
    if not os.path.isdir(DEVICES_CGROUP):
        LOG.warning('No devices cgroup on this kernel: the jail relies '
                    'on its private /dev, capabilities and seccomp')
        return None
    path = cgroup_path(name)
    if os.path.isdir(path):
        remove_cgroup(path)
    os.makedirs(path, exist_ok=True)
    _write(path, 'devices.deny', 'a')
    rules = ['c %d:%d rwm' % nums for nums in STD_DEVICES.values()]
    rules += ['b %d:%d rwm' % device_numbers(d) for d in devices]
    for rule in rules:
        _write(path, 'devices.allow', rule)
    return path


def allow(cgroup, major, minor):
    """Let the cgroup's processes use block device ``major:minor``."""
    _write(cgroup, 'devices.allow', 'b %d:%d rwm' % (major, minor))


def deny(cgroup, major, minor):
    """Take block device ``major:minor`` back from the cgroup."""
    _write(cgroup, 'devices.deny', 'b %d:%d rwm' % (major, minor))


def join_cgroup(path):
    """Move this process (and so what it starts) into the cgroup."""
    _write(path, 'tasks', str(os.getpid()))


def remove_cgroup(path):
    """Remove an empty cgroup, waiting a little for its last processes."""
    def removed():
        try:
            os.rmdir(path)
        except FileNotFoundError:
            pass
        return True
    try:
        polling.wait_until(removed, 5, 'removal of cgroup %s' % path,
                           interval=0.1, retry_on=(OSError,))
    except errors.SandboxError:
        LOG.warning('Cannot remove cgroup %s: processes remain in it', path)
