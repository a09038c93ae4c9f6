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

"""The mount table and mounting, for volumes and the sandbox alike.

One reader of ``/proc/self/mountinfo`` (see proc(5)): each line gives the
mount point (field 5) and, after the ``-`` separator, the filesystem type
and the mount source. Paths are octal-escaped (``\\040`` for a space).
"""

import collections
import errno
import os
import re

from oslo_concurrency import processutils

MOUNTINFO = '/proc/self/mountinfo'

Mount = collections.namedtuple('Mount', ['source', 'point', 'fstype'])

_OCTAL_ESCAPE = re.compile(r'\\([0-7]{3})')


def unescape(field):
    """Decode the octal escapes of a mount table field."""
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def mount_table(path=MOUNTINFO):
    """Every mount of this mount namespace, in the kernel's order."""
    mounts = []
    with open(path) as f:
        for line in f:
            fields = line.split()
            try:
                sep = fields.index('-', 6)
                mounts.append(Mount(unescape(fields[sep + 2]),
                                    unescape(fields[4]), fields[sep + 1]))
            except (ValueError, IndexError):
                continue  # not a mountinfo line: nothing to say about it
    return mounts


def mounts_of(device):
    """Mount points of ``device`` (compared by real path)."""
    real = os.path.realpath(device)
    return [m.point for m in mount_table()
            if m.source.startswith('/')
            and os.path.realpath(m.source) == real]


def mounts_under(directory):
    """Mount points below ``directory``, deepest first."""
    prefix = os.path.abspath(directory).rstrip('/') + '/'
    points = {m.point for m in mount_table() if m.point.startswith(prefix)}
    return sorted(points, key=len, reverse=True)


def device_busy(device):
    """Whether the kernel holds ``device``.

    True when it is mounted in any mount namespace (a process that
    unshared its mounts while the volume was mounted keeps the filesystem
    alive after our unmount), used by device-mapper, md or LVM, or opened
    exclusively: an exclusive open then fails with EBUSY.
    """
    try:
        fd = os.open(device, os.O_RDONLY | os.O_EXCL)
    except OSError as e:
        return e.errno == errno.EBUSY
    os.close(fd)
    return False


def mount(device, mountpoint, read_only=False):
    """Mount ``device`` at ``mountpoint`` (created if missing)."""
    os.makedirs(mountpoint, exist_ok=True)
    options = ['-o', 'ro'] if read_only else []
    processutils.execute('mount', *options, device, mountpoint)


def unmount(mountpoint, lazy=False):
    """Unmount ``mountpoint``; ``lazy`` detaches it even if busy."""
    processutils.execute('umount', *(['-l'] if lazy else []), mountpoint)
