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

"""Layer 2 of the jail: its own view of the filesystem.

Runs inside the jail's fresh mount namespace, as its init, before anything
else: a private ``/proc`` with ``/proc/sys`` read-only, a private
``/dev`` holding only the granted devices, the power tools replaced by
a command that refuses, scratch tmpfs, the writable directories, and every
other mount of the host made read-only.
"""

import os
import stat

from ipa_cinder.host import mounts
from ipa_cinder_sandbox import commands
from ipa_cinder_sandbox import errors
from ipa_cinder_sandbox.jail import devices as devices_mod

REFUSED_TOOLS = ('poweroff', 'reboot', 'halt', 'shutdown', 'systemctl',
                 'telinit')
# With iSCSI sessions of its own, the host's iscsiadm could log them out
# (the cleaning step logs out every session it sees): then no iSCSI tool.
ISCSI_TOOLS = ('iscsiadm', 'iscsistart')
ISCSI_SESSIONS = '/sys/class/iscsi_session'
TOOL_DIRS = ('/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/sbin',
             '/usr/local/bin')

REFUSE_SCRIPT = """#!/bin/sh
echo "refused by the ipa-cinder sandbox: $(basename "$0") would act on the \
host, which is not a bare-metal node" >&2
exit 1
"""

_OWN_MOUNTS = {'/proc', '/proc/sys', '/proc/sysrq-trigger', '/dev',
               '/dev/shm'}


def _mount(*args):
    commands.run('mount', *args)


def _under(path, parents):
    return any(path == p or path.startswith(p.rstrip('/') + '/')
               for p in parents)


def _private_proc():
    _mount('-t', 'proc', '-o', 'nosuid,noexec', 'proc', '/proc')
    _mount('--bind', '/proc/sys', '/proc/sys')
    _mount('-o', 'remount,bind,ro', '/proc/sys')
    if os.path.exists('/proc/sysrq-trigger'):
        _mount('--bind', '-o', 'ro', '/dev/null', '/proc/sysrq-trigger')


def _private_dev(granted):
    """A tmpfs /dev with the standard devices and the ``granted`` ones.

    :param granted: {path: (major, minor)}, read before /dev is replaced.
    """
    _mount('-t', 'tmpfs', '-o', 'mode=755,nosuid', 'jail-dev', '/dev')
    for name, (major, minor) in devices_mod.STD_DEVICES.items():
        os.mknod('/dev/' + name, 0o666 | stat.S_IFCHR,
                 os.makedev(major, minor))
    for path, (major, minor) in granted.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.mknod(path, 0o660 | stat.S_IFBLK, os.makedev(major, minor))
    os.mkdir('/dev/shm', 0o1777)
    _mount('-t', 'tmpfs', '-o', 'mode=1777,nosuid,nodev', 'jail-shm',
           '/dev/shm')
    for fd, name in enumerate(('stdin', 'stdout', 'stderr')):
        os.symlink('/proc/self/fd/%d' % fd, '/dev/' + name)
    os.symlink('/proc/self/fd', '/dev/fd')


def refused_tools():
    """The tools the agent may not run on this host."""
    try:
        sessions = os.listdir(ISCSI_SESSIONS)
    except OSError:
        sessions = []
    return REFUSED_TOOLS + (ISCSI_TOOLS if sessions else ())


def _refuse_power_tools(refuse_script):
    """Bind the refusing script over each power tool; returns the targets."""
    refused = set()
    for directory in TOOL_DIRS:
        for tool in refused_tools():
            target = os.path.realpath(os.path.join(directory, tool))
            if os.path.isfile(target) and target not in refused:
                _mount('--bind', '-o', 'ro', refuse_script, target)
                refused.add(target)
    return refused


def _make_the_rest_read_only(own, writable, tmpfs):
    for mountpoint in reversed([m.point for m in mounts.mount_table()]):
        if mountpoint in own or _under(mountpoint, writable):
            continue
        if _under(mountpoint, tmpfs):
            continue
        if _under(mountpoint, ['/proc', '/dev']) and mountpoint not in own:
            # Mounts of the host's /proc and /dev are hidden under ours.
            continue
        try:
            _mount('-o', 'remount,bind,ro', mountpoint)
        except errors.ExecutionError:
            raise errors.JailError('cannot make %s read-only' % mountpoint)


def build(spec):
    """Build the jail's filesystem as the launcher's ``spec`` says."""
    granted = {d: devices_mod.device_numbers(d) for d in spec['devices']}
    writable = spec['writable']
    tmpfs = spec.get('tmpfs', ())
    _private_proc()
    _private_dev(granted)
    refused = _refuse_power_tools(spec['refuse_script'])
    # Scratch space of the agent's own (IPA keeps its TLS certificate in
    # /run): empty, private, gone with the jail.
    for path in tmpfs:
        _mount('-t', 'tmpfs', '-o', 'mode=755,nosuid,nodev', 'jail-tmp',
               path)
    for path in writable:
        os.makedirs(path, exist_ok=True)
        _mount('--bind', path, path)
    own = _OWN_MOUNTS | refused | set(tmpfs)
    _make_the_rest_read_only(own, writable, tmpfs)
