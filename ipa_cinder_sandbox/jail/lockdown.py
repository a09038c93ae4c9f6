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

"""Layers 4 and 5 of the jail: capabilities and seccomp.

Run by the jail's init, inside, after its filesystem is built and before
the confined command starts: the bounding set loses the capabilities that
reach the host (power, network, raw I/O, modules...), and a seccomp filter
makes the system calls that could undo the mount namespace fail with EPERM.

The init gives those capabilities up in its own sets too, not only in the
bounding set (which binds only what it executes). Besides holding nothing
it does not need, it then holds no capability the agent lacks, and the
kernel lets the agent's tools read its ``/proc/1/fd`` as they read any
other process of the jail: ``fuser``, which IPA runs after erasing a
device's metadata, fails on any ``/proc/<pid>/fd`` it cannot read (an
owner holding more capabilities than the reader is one it cannot).
"""

import ctypes
import ctypes.util
import os

from ipa_cinder_sandbox import errors

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
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_SCMP_ACT_ALLOW = 0x7fff0000
_SCMP_ACT_ERRNO_EPERM = 0x00050000 | 1


def drop_capabilities():
    """Remove the dangerous capabilities, from the bounding set and ours."""
    libc = ctypes.CDLL(None, use_errno=True)
    for name, number in _DROPPED_CAPS.items():
        if libc.prctl(_PR_CAPBSET_DROP, number, 0, 0, 0) != 0:
            err = ctypes.get_errno()
            # EINVAL: the kernel does not know this capability.
            if err != 22:
                raise errors.JailError('cannot drop %s: %s'
                                       % (name, os.strerror(err)))
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    _drop_own_capabilities(libc)


class _CapHeader(ctypes.Structure):
    _fields_ = [('version', ctypes.c_uint32), ('pid', ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [('effective', ctypes.c_uint32),
                ('permitted', ctypes.c_uint32),
                ('inheritable', ctypes.c_uint32)]


def _drop_own_capabilities(libc):
    """Clear the dropped capabilities from this process's own sets."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise errors.JailError('capget failed: %s'
                               % os.strerror(ctypes.get_errno()))
    for number in _DROPPED_CAPS.values():
        keep = ~(1 << (number % 32)) & 0xffffffff
        word = data[number // 32]
        word.effective &= keep
        word.permitted &= keep
        word.inheritable &= keep
    if libc.capset(ctypes.byref(header), data) != 0:
        raise errors.JailError('capset failed: %s'
                               % os.strerror(ctypes.get_errno()))


def load_seccomp():
    """Make the denied system calls fail with EPERM from now on."""
    name = ctypes.util.find_library('seccomp') or 'libseccomp.so.2'
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as e:
        raise errors.JailError('libseccomp is needed for the jail: %s' % e)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32,
                                     ctypes.c_int, ctypes.c_uint]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    ctx = lib.seccomp_init(_SCMP_ACT_ALLOW)
    if not ctx:
        raise errors.JailError('seccomp_init failed')
    try:
        for syscall in _DENIED_SYSCALLS:
            number = lib.seccomp_syscall_resolve_name(syscall.encode())
            if number < 0:
                continue  # not a syscall on this architecture
            rc = lib.seccomp_rule_add(ctx, _SCMP_ACT_ERRNO_EPERM, number, 0)
            if rc < 0:
                raise errors.JailError('seccomp rule for %s failed: %s'
                                       % (syscall, os.strerror(-rc)))
        rc = lib.seccomp_load(ctx)
        if rc < 0:
            raise errors.JailError('seccomp_load failed: %s'
                                   % os.strerror(-rc))
    finally:
        lib.seccomp_release(ctx)
