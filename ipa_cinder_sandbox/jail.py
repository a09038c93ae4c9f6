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
"""Confinement for an ironic-python-agent that runs on a machine that is
not a bare-metal node.

IPA runs as root and believes the machine it runs on is a node it may
power off, disconnect from the network and erase. The sandbox and the
functional tests run a real IPA on the developer's (or CI's) machine, so
it runs in a jail that makes those actions impossible, not merely
unlikely. Each layer alone would stop the dangerous actions; together
they leave no path:

1. Devices cgroup (v1 ``devices`` controller, when the kernel has it): the
   agent may open only the character devices every process needs and the
   block devices granted to it. The host's disks are denied by the kernel
   whatever path reaches them.
2. Mount namespace: a private ``/dev`` holding only the granted devices;
   every other mount of the host read-only except the directories the
   agent must write (its state and log directories); ``poweroff``,
   ``reboot``, ``shutdown``, ``halt`` and ``systemctl`` replaced by a
   command that refuses; ``/proc/sys`` read-only.
3. PID, IPC and UTS namespaces: the agent sees and signals only its own
   processes, and cannot rename the host. When the agent ends, the kernel
   kills whatever it left behind.
4. Capabilities: the bounding set loses CAP_SYS_BOOT (power off),
   CAP_NET_ADMIN (links, routes), CAP_MKNOD, CAP_SYS_MODULE, CAP_SYS_RAWIO,
   CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH and more. CAP_SYS_ADMIN stays, for
   the block device ioctls the agent needs (read-only flag, flush,
   partition scans) on the devices it was granted.
5. seccomp: mount, umount, setns, unshare, pivot_root, mknod, reboot,
   kexec, module loading, bpf, swapon, ptrace and a few more fail with
   EPERM, so CAP_SYS_ADMIN cannot be used to undo layers 1-2.

Usage (as root)::

    jail = Jail('agent-1', workdir, devices=['/dev/loop5'],
                writable=[state_dir])
    proc = jail.start(['ironic-python-agent', '--config-file', conf])
    jail.grant_device('/dev/loop6')     # a device created later
    jail.stop()

``python -m ipa_cinder_sandbox.jail`` is the launcher the Jail runs; it is
not meant to be called by hand.
"""

import argparse
import ctypes
import ctypes.util
import json
import os
import signal
import stat
import subprocess
import sys
import time

from oslo_log import log

LOG = log.getLogger(__name__)

DEVICES_CGROUP = '/sys/fs/cgroup/devices'
CGROUP_PARENT = 'ipa-cinder-jail'

# Character devices every process may use: null, zero, full, random,
# urandom, tty.
_STD_DEVICES = {
    'null': (1, 3), 'zero': (1, 5), 'full': (1, 7), 'random': (1, 8),
    'urandom': (1, 9), 'tty': (5, 0),
}

_REFUSED_TOOLS = ('poweroff', 'reboot', 'halt', 'shutdown', 'systemctl',
                  'telinit')
_TOOL_DIRS = ('/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/sbin',
              '/usr/local/bin')

# Capabilities removed from the bounding set (linux/capability.h).
_DROPPED_CAPS = {
    'CAP_DAC_READ_SEARCH': 2, 'CAP_LINUX_IMMUTABLE': 9,
    'CAP_NET_ADMIN': 12, 'CAP_NET_RAW': 13, 'CAP_SYS_MODULE': 16,
    'CAP_SYS_RAWIO': 17, 'CAP_SYS_CHROOT': 18, 'CAP_SYS_PTRACE': 19,
    'CAP_SYS_PACCT': 20, 'CAP_SYS_BOOT': 22, 'CAP_SYS_TIME': 25,
    'CAP_SYS_TTY_CONFIG': 26, 'CAP_MKNOD': 27, 'CAP_AUDIT_CONTROL': 30,
    'CAP_SETFCAP': 31, 'CAP_MAC_OVERRIDE': 32, 'CAP_MAC_ADMIN': 33,
    'CAP_SYSLOG': 34, 'CAP_WAKE_ALARM': 35, 'CAP_BLOCK_SUSPEND': 36,
    'CAP_PERFMON': 38, 'CAP_BPF': 39, 'CAP_CHECKPOINT_RESTORE': 40,
}

_DENIED_SYSCALLS = (
    'mount', 'umount', 'umount2', 'pivot_root', 'chroot', 'setns',
    'unshare', 'move_mount', 'open_tree', 'fsopen', 'fsconfig', 'fsmount',
    'fspick', 'mount_setattr', 'mknod', 'mknodat', 'reboot', 'kexec_load',
    'kexec_file_load', 'init_module', 'finit_module', 'delete_module',
    'bpf', 'swapon', 'swapoff', 'open_by_handle_at', 'ptrace',
    'process_vm_writev', 'process_vm_readv', 'acct', 'settimeofday',
    'clock_settime', 'clock_adjtime', 'adjtimex', 'sethostname',
    'setdomainname', 'iopl', 'ioperm', 'perf_event_open', 'userfaultfd',
    'io_uring_setup', 'syslog', 'vhangup', 'quotactl',
)

_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_SCMP_ACT_ALLOW = 0x7fff0000
_SCMP_ACT_ERRNO_EPERM = 0x00050000 | 1

_REFUSE_SCRIPT = """#!/bin/sh
echo "refused by the ipa-cinder sandbox: $(basename "$0") would act on the \
host, which is not a bare-metal node" >&2
exit 1
"""


class JailError(RuntimeError):
    """The jail cannot be built; nothing is started without it."""


def _device_numbers(path):
    st = os.stat(path)
    if not stat.S_ISBLK(st.st_mode):
        raise JailError('%s is not a block device' % path)
    return os.major(st.st_rdev), os.minor(st.st_rdev)


class Jail(object):
    """A confined process tree; see the module documentation."""

    def __init__(self, name, workdir, devices=(), writable=(),
                 tmpfs=('/run',)):
        self.name = name
        self.workdir = os.path.abspath(workdir)
        self.devices = list(devices)
        self.writable = [os.path.abspath(d) for d in writable]
        self.tmpfs = list(tmpfs)
        self.proc = None
        self.cgroup = None

    # cgroup

    def _setup_cgroup(self):
        if not os.path.isdir(DEVICES_CGROUP):
            LOG.warning('No devices cgroup on this kernel: the jail relies '
                        'on its private /dev, capabilities and seccomp')
            return None
        path = os.path.join(DEVICES_CGROUP, CGROUP_PARENT, self.name)
        if os.path.isdir(path):
            self._remove_cgroup(path)
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, 'devices.deny'), 'w') as f:
            f.write('a')
        rules = ['c %d:%d rwm' % nums for nums in _STD_DEVICES.values()]
        rules += ['b %d:%d rwm' % _device_numbers(d) for d in self.devices]
        for rule in rules:
            with open(os.path.join(path, 'devices.allow'), 'w') as f:
                f.write(rule)
        return path

    @staticmethod
    def _remove_cgroup(path):
        for _attempt in range(50):
            try:
                os.rmdir(path)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.1)
        LOG.warning('Cannot remove cgroup %s: processes remain in it', path)

    # life cycle

    def start(self, argv, env=None, stdout=None, stderr=None):
        """Start ``argv`` confined; returns the launcher's Popen."""
        if os.geteuid() != 0:
            raise JailError('the jail needs root (namespaces, cgroups)')
        for device in self.devices:
            if not device.startswith('/dev/'):
                raise JailError('granted devices live under /dev: %s'
                                % device)
            _device_numbers(device)
        os.makedirs(self.workdir, exist_ok=True)
        self.cgroup = self._setup_cgroup()
        refuse = os.path.join(self.workdir, 'refused-tool')
        with open(refuse, 'w') as f:
            f.write(_REFUSE_SCRIPT)
        os.chmod(refuse, 0o755)
        spec = {'devices': self.devices, 'writable': self.writable,
                'tmpfs': self.tmpfs, 'cgroup': self.cgroup,
                'refuse_script': refuse}
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
        try:
            with open('/proc/%d/task/%d/children'
                      % (self.proc.pid, self.proc.pid)) as f:
                children = f.read().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def grant_device(self, path):
        """Let the running agent use one more block device."""
        major, minor = _device_numbers(path)
        if self.cgroup:
            with open(os.path.join(self.cgroup, 'devices.allow'), 'w') as f:
                f.write('b %d:%d rwm' % (major, minor))
        pid = self.inner_pid()
        if pid is None:
            raise JailError('the jail is not running')
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
                major, minor = _device_numbers(path)
                with open(os.path.join(self.cgroup, 'devices.deny'),
                          'w') as f:
                    f.write('b %d:%d rwm' % (major, minor))
            except (OSError, JailError):
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
            self._remove_cgroup(self.cgroup)
            self.cgroup = None


# The launcher (outside the namespaces) and init (inside them).

def _join_cgroup(path):
    with open(os.path.join(path, 'tasks'), 'w') as f:
        f.write(str(os.getpid()))


def _launch(spec_path, argv):
    with open(spec_path) as f:
        spec = json.load(f)
    if spec.get('cgroup'):
        _join_cgroup(spec['cgroup'])
    # --kill-child: if this launcher dies, the kernel kills the jail's init
    # and with it every process of the PID namespace.
    os.execvp('unshare', [
        'unshare', '--mount', '--pid', '--ipc', '--uts', '--fork',
        '--kill-child', '--propagation', 'private', '--',
        sys.executable, '-m', 'ipa_cinder_sandbox.jail', '--inside',
        '--spec', spec_path, '--'] + argv)


def _run(*cmd):
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL)


def _mounts():
    with open('/proc/self/mountinfo') as f:
        return [line.split()[4].encode().decode('unicode_escape')
                for line in f]


def _under(path, parents):
    return any(path == p or path.startswith(p.rstrip('/') + '/')
               for p in parents)


def _build_filesystem(spec):
    devices = {d: _device_numbers(d) for d in spec['devices']}
    writable = spec['writable']
    _run('mount', '-t', 'proc', '-o', 'nosuid,noexec', 'proc', '/proc')
    _run('mount', '--bind', '/proc/sys', '/proc/sys')
    _run('mount', '-o', 'remount,bind,ro', '/proc/sys')
    if os.path.exists('/proc/sysrq-trigger'):
        _run('mount', '--bind', '-o', 'ro', '/dev/null',
             '/proc/sysrq-trigger')

    _run('mount', '-t', 'tmpfs', '-o', 'mode=755,nosuid', 'jail-dev', '/dev')
    for name, (major, minor) in _STD_DEVICES.items():
        os.mknod('/dev/' + name, 0o666 | stat.S_IFCHR,
                 os.makedev(major, minor))
    for path, (major, minor) in devices.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.mknod(path, 0o660 | stat.S_IFBLK, os.makedev(major, minor))
    os.mkdir('/dev/shm', 0o1777)
    _run('mount', '-t', 'tmpfs', '-o', 'mode=1777,nosuid,nodev', 'jail-shm',
         '/dev/shm')
    for fd, name in enumerate(('stdin', 'stdout', 'stderr')):
        os.symlink('/proc/self/fd/%d' % fd, '/dev/' + name)
    os.symlink('/proc/self/fd', '/dev/fd')

    refused = set()
    for directory in _TOOL_DIRS:
        for tool in _REFUSED_TOOLS:
            target = os.path.realpath(os.path.join(directory, tool))
            if os.path.isfile(target) and target not in refused:
                _run('mount', '--bind', '-o', 'ro', spec['refuse_script'],
                     target)
                refused.add(target)

    # Scratch space of the agent's own (IPA keeps its TLS certificate in
    # /run): empty, private, gone with the jail.
    for path in spec.get('tmpfs', ()):
        _run('mount', '-t', 'tmpfs', '-o', 'mode=755,nosuid,nodev',
             'jail-tmp', path)
    for path in writable:
        os.makedirs(path, exist_ok=True)
        _run('mount', '--bind', path, path)

    own = {'/proc', '/proc/sys', '/proc/sysrq-trigger', '/dev', '/dev/shm'}
    own |= refused | set(spec.get('tmpfs', ()))
    for mountpoint in reversed(_mounts()):
        if mountpoint in own or _under(mountpoint, writable):
            continue
        if _under(mountpoint, spec.get('tmpfs', ())):
            continue
        if _under(mountpoint, ['/proc', '/dev']) and mountpoint not in own:
            # Mounts of the host's /proc and /dev are hidden under ours.
            continue
        try:
            _run('mount', '-o', 'remount,bind,ro', mountpoint)
        except subprocess.CalledProcessError:
            raise JailError('cannot make %s read-only' % mountpoint)


def _drop_capabilities():
    libc = ctypes.CDLL(None, use_errno=True)
    for name, number in _DROPPED_CAPS.items():
        if libc.prctl(_PR_CAPBSET_DROP, number, 0, 0, 0) != 0:
            err = ctypes.get_errno()
            # EINVAL: the kernel does not know this capability.
            if err != 22:
                raise JailError('cannot drop %s: %s'
                                % (name, os.strerror(err)))
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)


def _load_seccomp():
    name = ctypes.util.find_library('seccomp') or 'libseccomp.so.2'
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as e:
        raise JailError('libseccomp is needed for the jail: %s' % e)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32,
                                     ctypes.c_int, ctypes.c_uint]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    ctx = lib.seccomp_init(_SCMP_ACT_ALLOW)
    if not ctx:
        raise JailError('seccomp_init failed')
    try:
        for syscall in _DENIED_SYSCALLS:
            number = lib.seccomp_syscall_resolve_name(syscall.encode())
            if number < 0:
                continue  # not a syscall on this architecture
            rc = lib.seccomp_rule_add(ctx, _SCMP_ACT_ERRNO_EPERM, number, 0)
            if rc < 0:
                raise JailError('seccomp rule for %s failed: %s'
                                % (syscall, os.strerror(-rc)))
        rc = lib.seccomp_load(ctx)
        if rc < 0:
            raise JailError('seccomp_load failed: %s' % os.strerror(-rc))
    finally:
        lib.seccomp_release(ctx)


def _init(spec_path, argv):
    """PID 1 of the jail: build it, confine, run the command, reap."""
    with open(spec_path) as f:
        spec = json.load(f)
    try:
        _build_filesystem(spec)
        _drop_capabilities()
        _load_seccomp()
    except Exception as e:
        sys.stderr.write('jail: refusing to start the agent: %s\n' % e)
        return 70
    child = os.fork()
    if child == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)

    def forward(signum, _frame):
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    status = 0
    while True:
        try:
            pid, wstatus = os.wait()
        except ChildProcessError:
            return status
        except InterruptedError:
            continue
        if pid == child:
            status = os.waitstatus_to_exitcode(wstatus)
            # Returning ends PID 1, and the kernel kills what is left.
            return status if status >= 0 else 128 - status


def main():
    parser = argparse.ArgumentParser(prog='ipa_cinder_sandbox.jail')
    parser.add_argument('--spec', required=True)
    parser.add_argument('--inside', action='store_true')
    parser.add_argument('argv', nargs=argparse.REMAINDER)
    args = parser.parse_args()
    argv = args.argv[1:] if args.argv[:1] == ['--'] else args.argv
    if not argv:
        parser.error('no command to run')
    if args.inside:
        sys.exit(_init(args.spec, argv))
    _launch(args.spec, argv)


if __name__ == '__main__':
    main()
