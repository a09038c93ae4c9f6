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

"""Find and remove what a sandbox (possibly a crashed one) left behind.

Only things that carry the state directory are touched: processes whose
command line names a file under it, mounts below it, loop devices backed
by files under it.
"""

import os
import subprocess

from oslo_log import log as logging

from ipa_cinder_sandbox import loopdev
from ipa_cinder_sandbox import process

LOG = logging.getLogger(__name__)


def _unescape(field):
    """Decode the octal escapes of /proc/self/mountinfo."""
    return field.encode().decode('unicode_escape')


def mounts_under(directory):
    """Mount points below ``directory``, deepest first."""
    prefix = os.path.abspath(directory).rstrip('/') + '/'
    found = []
    with open('/proc/self/mountinfo') as f:
        for line in f:
            point = _unescape(line.split()[4])
            if point.startswith(prefix):
                found.append(point)
    return sorted(set(found), key=len, reverse=True)


def unmount_all_under(directory):
    """Unmount everything below ``directory`` (lazily if busy)."""
    points = mounts_under(directory)
    for point in points:
        result = subprocess.run(['umount', point], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, check=False)
        if result.returncode:
            LOG.warning('umount %s failed (%s); detaching it lazily', point,
                        result.stdout.decode(errors='replace').strip())
            subprocess.run(['umount', '-l', point], check=False)
    return points


def _ancestors():
    pids = set()
    pid = os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            with open('/proc/%d/stat' % pid) as f:
                pid = int(f.read().rsplit(')', 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def leftover_pids(state_dir):
    """Processes naming the state directory, except this one's lineage."""
    mine = _ancestors()
    return [pid for pid in process.pids_referring_to(state_dir)
            if pid not in mine]


def stop_leftovers(state_dir):
    """Stop every process still naming the state directory."""
    stopped = []
    for pid in leftover_pids(state_dir):
        try:
            with open('/proc/%d/cmdline' % pid, 'rb') as f:
                cmd = f.read().replace(b'\0', b' ').decode(errors='replace')
        except OSError:
            continue
        LOG.info('Stopping leftover process %d: %s', pid, cmd[:200])
        if process.stop_pid(pid, None, 'leftover %d' % pid, timeout=10):
            stopped.append(pid)
    return stopped


def clean(state_dir):
    """Unmount, detach loop devices, stop leftovers; report what went."""
    return {
        'mounts': unmount_all_under(state_dir),
        'processes': stop_leftovers(state_dir),
        'loop_devices': loopdev.detach_all_under(state_dir),
    }
