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

"""Kernel block devices: identity, read-only flag, flush (ioctls).

What ipa-cinder asks of a connected volume's device node, without os-brick:
whether it still holds the volume it was connected as, the kernel's
read-only flag of an ``ro`` attachment, and a flush before disconnecting.

A device path comes from a request (``data.device_path``) or from
os-brick, so it may name anything. Nothing here opens a path that is not a
block device (a FIFO would block an open for ever, a character device can
act when opened, a regular file is no volume): :func:`check_block_device`
looks with stat, which opens nothing, then opens with O_NONBLOCK and checks
the opened file again (the path may have been swapped in between). Each
operation on a device runs in a worker thread and is waited for a bounded
time: a device whose storage is gone can block a process in the kernel,
where no signal reaches it; the caller gets DeviceTimeout and stays free.
"""

import errno
import fcntl
import os
import stat
import threading

from oslo_log import log

from ipa_cinder.common import connection
from ipa_cinder import exception

LOG = log.getLogger(__name__)

# Linux block ioctls (linux/fs.h).
BLKROSET = 0x125D
BLKROGET = 0x125E
BLKFLSBUF = 0x1261
BLKGETSIZE64 = 0x80081272

#: Seconds an open or a query of a device may take.
QUERY_TIMEOUT = 15.0
#: Seconds a flush may take (writing out what is cached of a device).
FLUSH_TIMEOUT = 300.0

_KINDS = ((stat.S_ISREG, 'a regular file'), (stat.S_ISDIR, 'a directory'),
          (stat.S_ISFIFO, 'a FIFO'), (stat.S_ISCHR, 'a character device'),
          (stat.S_ISSOCK, 'a socket'))


def _kind(mode):
    for test, name in _KINDS:
        if test(mode):
            return name
    return 'not a block device'


def _stat(path):
    """os.stat of a path from a request, or UnusableDevice."""
    try:
        return os.stat(path)
    except (OSError, ValueError) as e:
        reason = getattr(e, 'strerror', None) or str(e)
        raise exception.UnusableDevice(path, reason)


def check_block_device(path):
    """Refuse, with the reason, what is not a block device we can open.

    :returns: the device's os.stat result.
    :raises: UnusableDevice (missing, not a block device, under /proc or
        /sys, cannot be opened); DeviceTimeout (the open did not return).
    """
    if not isinstance(path, str) or not path.startswith('/'):
        raise exception.UnusableDevice(path, 'not an absolute path')
    if (connection.is_pseudo_path(path)
            or connection.is_pseudo_path(os.path.realpath(path))):
        raise exception.UnusableDevice(path, 'under /proc or /sys')
    info = _stat(path)
    if not stat.S_ISBLK(info.st_mode):
        raise exception.UnusableDevice(path, 'is %s, not a block device'
                                       % _kind(info.st_mode))
    _with_device(path, lambda fd: None, QUERY_TIMEOUT)
    return info


def _open(path, flags):
    """An fd of block device ``path``: never opens anything else."""
    if not stat.S_ISBLK(_stat(path).st_mode):
        raise exception.UnusableDevice(path, 'not a block device')
    try:
        fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        reason = e.strerror or errno.errorcode.get(e.errno, 'error')
        raise exception.UnusableDevice(path, 'cannot be opened: %s' % reason)
    if not stat.S_ISBLK(os.fstat(fd).st_mode):
        os.close(fd)
        raise exception.UnusableDevice(path, 'not a block device')
    return fd


def _with_device(path, operation, timeout, flags=os.O_RDONLY):
    """``operation(fd)`` on block device ``path``, waited for ``timeout``.

    The worker thread opens, operates and closes: when the wait times
    out it still closes what it opened, whenever the kernel lets it.
    """
    outcome = {}

    def run():
        try:
            fd = _open(path, flags)
            try:
                outcome['value'] = operation(fd)
            finally:
                os.close(fd)
        except BaseException as e:
            outcome['error'] = e

    worker = threading.Thread(target=run, daemon=True,
                              name='ipa-cinder-device')
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        LOG.error('Block device %s did not answer within %ss; leaving it',
                  path, timeout)
        raise exception.DeviceTimeout(path, timeout)
    if 'error' in outcome:
        raise outcome['error']
    return outcome.get('value')


def is_block_device(path):
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def device_identity(path):
    """What the kernel device at ``path`` holds right now.

    A device node outlives what it exposed: a loop device detached by the
    target (or reused for another volume), a SCSI disk replaced by another
    LUN. The identity (device numbers, size, and for a loop device its
    backing file) tells whether the node still holds the connected volume.
    Returns None when ``path`` is not a block device.
    """
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISBLK(st.st_mode):
        return None
    identity = {'rdev': [os.major(st.st_rdev), os.minor(st.st_rdev)]}
    try:
        identity['size'] = _with_device(
            path, lambda fd: int.from_bytes(
                fcntl.ioctl(fd, BLKGETSIZE64, bytes(8)), 'little'),
            QUERY_TIMEOUT)
    except (OSError, exception.UnusableDevice):
        identity['size'] = 0
    backing = '/sys/dev/block/%d:%d/loop/backing_file' % tuple(
        identity['rdev'])
    try:
        with open(backing) as f:
            identity['backing_file'] = f.read().strip()
    except OSError:
        pass
    return identity


def same_device(recorded, current):
    """Whether ``current`` identity is still the ``recorded`` one."""
    if not recorded or not current or not current.get('size'):
        return False
    return all(recorded.get(k) == current.get(k)
               for k in ('rdev', 'size', 'backing_file'))


def set_read_only(path, read_only):
    """Set or clear the kernel's read-only flag of a block device."""
    flag = int(bool(read_only)).to_bytes(4, 'little')
    _with_device(path, lambda fd: fcntl.ioctl(fd, BLKROSET, flag),
                 QUERY_TIMEOUT)


def is_read_only(path):
    buf = _with_device(path, lambda fd: fcntl.ioctl(fd, BLKROGET, bytes(4)),
                       QUERY_TIMEOUT)
    return bool(int.from_bytes(buf, 'little'))


def _flush_fd(path, fd):
    os.fsync(fd)
    try:
        fcntl.ioctl(fd, BLKFLSBUF, 0)
    except OSError as e:
        LOG.warning('Cannot drop the buffers of %s: %s', path, e)


def flush(path):
    """Write out everything cached for a block device.

    fsync writes the dirty pages; BLKFLSBUF then drops the device's
    buffers so a later reader (after a re-attach elsewhere) does not see
    stale data from this host's cache.
    """
    _with_device(path, lambda fd: _flush_fd(path, fd), FLUSH_TIMEOUT)
