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

"""The jail as the sandbox drives it, from outside: start, grant, stop."""

import json
import os
import re
import signal
import stat
import subprocess
import sys

from oslo_log import log

from ipa_cinder_sandbox import errors
from ipa_cinder_sandbox.jail import devices as devices_mod
from ipa_cinder_sandbox.jail import filesystem
from ipa_cinder_sandbox import process

LOG = log.getLogger(__name__)

# One DNS label: what sethostname and every tool reading it accept.
_HOSTNAME = re.compile(r'^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$')


class Jail(object):
    """A confined process tree; see :mod:`ipa_cinder_sandbox.jail`.

    :param hostname: the host name inside the jail (its own UTS
        namespace); None keeps this machine's.
    """

    def __init__(self, name, workdir, devices=(), writable=(),
                 tmpfs=('/run',), hostname=None):
        if hostname is not None and not _HOSTNAME.match(hostname):
            raise errors.JailError('%r is not a valid host name' % hostname)
        self.name = name
        self.hostname = hostname
        self.workdir = os.path.abspath(workdir)
        self.devices = list(devices)
        self.writable = [os.path.abspath(d) for d in writable]
        self.tmpfs = list(tmpfs)
        self.proc = None
        self.cgroup = None

    def start(self, argv, env=None, stdout=None, stderr=None):
        """Start ``argv`` confined; returns the launcher's Popen."""
        if os.geteuid() != 0:
            raise errors.JailError('the jail needs root (namespaces, '
                                   'cgroups)')
        for device in self.devices:
            if not device.startswith('/dev/'):
                raise errors.JailError('granted devices live under /dev: %s'
                                       % device)
            devices_mod.device_numbers(device)
        os.makedirs(self.workdir, exist_ok=True)
        self.cgroup = devices_mod.create_cgroup(self.name, self.devices)
        refuse = os.path.join(self.workdir, 'refused-tool')
        with open(refuse, 'w') as f:
            f.write(filesystem.REFUSE_SCRIPT)
        os.chmod(refuse, 0o755)
        spec = {'devices': self.devices, 'writable': self.writable,
                'tmpfs': self.tmpfs, 'cgroup': self.cgroup,
                'refuse_script': refuse, 'hostname': self.hostname}
        spec_path = os.path.join(self.workdir, 'jail.json')
        with open(spec_path, 'w') as f:
            json.dump(spec, f)
        cmd = [sys.executable, '-m', 'ipa_cinder_sandbox.jail',
               '--spec', spec_path, '--'] + list(argv)
        self.proc = subprocess.Popen(cmd, env=env, stdout=stdout,
                                     stderr=stderr, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        return self.proc

    def inner_pid(self):
        """Host PID of the jail's init (PID 1 inside), or None."""
        if self.proc is None:
            return None
        children = process.children(self.proc.pid)
        return children[0] if children else None

    def grant_device(self, path):
        """Let the running agent use one more block device."""
        major, minor = devices_mod.device_numbers(path)
        if self.cgroup:
            devices_mod.allow(self.cgroup, major, minor)
        pid = self.inner_pid()
        if pid is None:
            raise errors.JailError('the jail is not running')
        node = '/proc/%d/root%s' % (pid, path)
        if os.path.exists(node):
            os.unlink(node)
        os.makedirs(os.path.dirname(node), exist_ok=True)
        os.mknod(node, 0o660 | stat.S_IFBLK, os.makedev(major, minor))
        if path not in self.devices:
            self.devices.append(path)

    def revoke_device(self, path):
        """Take a device back (before the host detaches it)."""
        pid = self.inner_pid()
        if pid is not None:
            try:
                os.unlink('/proc/%d/root%s' % (pid, path))
            except FileNotFoundError:
                pass
        if self.cgroup:
            try:
                devices_mod.deny(self.cgroup,
                                 *devices_mod.device_numbers(path))
            except (OSError, errors.JailError):
                pass
        if path in self.devices:
            self.devices.remove(path)

    def stop(self, timeout=15):
        """Stop the confined tree: SIGTERM, then SIGKILL. Idempotent."""
        if self.proc is not None and self.proc.poll() is None:
            inner = self.inner_pid()
            if inner:
                try:
                    os.kill(inner, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                LOG.warning('Jail %s did not stop in %ss, killing it',
                            self.name, timeout)
                self.proc.kill()
                self.proc.wait(timeout)
        if self.cgroup:
            devices_mod.remove_cgroup(self.cgroup)
            self.cgroup = None
