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
"""

import fcntl
import os
import stat

from oslo_log import log

LOG = log.getLogger(__name__)

# Linux block ioctls (linux/fs.h).
BLKROSET = 0x125D
BLKROGET = 0x125E
BLKFLSBUF = 0x1261
BLKGETSIZE64 = 0x80081272


def is_block_device(path):
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
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
    except OSError:
        return None
    if not stat.S_ISBLK(st.st_mode):
        return None
    identity = {'rdev': [os.major(st.st_rdev), os.minor(st.st_rdev)]}
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            identity['size'] = int.from_bytes(
                fcntl.ioctl(fd, BLKGETSIZE64, bytes(8)), 'little')
        finally:
            os.close(fd)
    except OSError:
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
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, BLKROSET, int(bool(read_only)).to_bytes(4, 'little'))
    finally:
        os.close(fd)


def is_read_only(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        buf = fcntl.ioctl(fd, BLKROGET, bytes(4))
    finally:
        os.close(fd)
    return bool(int.from_bytes(buf, 'little'))


def flush(path):
    """Write out everything cached for a block device.

    fsync writes the dirty pages; BLKFLSBUF then drops the device's
    buffers so a later reader (after a re-attach elsewhere) does not see
    stale data from this host's cache.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        try:
            fcntl.ioctl(fd, BLKFLSBUF, 0)
        except OSError as e:
            LOG.warning('Cannot drop the buffers of %s: %s', path, e)
    finally:
        os.close(fd)
