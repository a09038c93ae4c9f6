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
"""Settings written into the operating system on the boot volume.

The OS on a boot volume logs in to its iSCSI target again once it runs,
with the initiator name Cinder granted access to: the one in the node's
connector. ``set_initiator_name`` writes it to
``/etc/iscsi/initiatorname.iscsi`` of that OS.

Nothing is mounted and nothing from the image is executed: the ext2/3/4
root filesystem is found by reading the partition table (sfdisk) and the
superblock magic, and edited with debugfs at the partition's offset. This
also works where the kernel does not expose partitions of the device.
"""

import json
import os
import tempfile

from oslo_concurrency import processutils
from oslo_log import log

LOG = log.getLogger(__name__)

INITIATOR_FILE = '/etc/iscsi/initiatorname.iscsi'

_EXT_MAGIC_OFFSET = 1080
_EXT_MAGIC = b'\x53\xef'
# MBR and GPT type codes of partitions that cannot hold a Linux root.
_SKIPPED_TYPES = ('ef', 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b', '82',
                  '0657fd6d-a4ab-43c4-84e5-0933c84b4f4f')


def _candidate_offsets(device):
    """Byte offsets of the partitions (or 0 for a bare filesystem)."""
    try:
        out, _err = processutils.execute('sfdisk', '--json', device)
        table = json.loads(out)['partitiontable']
    except (processutils.ProcessExecutionError, ValueError, KeyError):
        return [0]
    sector = int(table.get('sectorsize', 512))
    offsets = []
    for part in table.get('partitions', []):
        if str(part.get('type', '')).lower() in _SKIPPED_TYPES:
            continue
        offsets.append(int(part['start']) * sector)
    return offsets or [0]


def _is_ext(device, offset):
    with open(device, 'rb') as f:
        f.seek(offset + _EXT_MAGIC_OFFSET)
        return f.read(2) == _EXT_MAGIC


def _debugfs(device, offset, request, write=False):
    args = ['debugfs']
    if write:
        args.append('-w')
    args += ['-R', request, '%s?offset=%d' % (device, offset)]
    out, err = processutils.execute(*args)
    return out, err


def _exists(device, offset, path):
    _out, err = _debugfs(device, offset, 'stat %s' % path)
    return 'File not found' not in err and 'not found' not in err.lower()


def find_os_root(device):
    """Offset of the ext filesystem holding ``/etc/iscsi``, or None."""
    for offset in _candidate_offsets(device):
        try:
            if not _is_ext(device, offset):
                continue
            if _exists(device, offset, '/etc/iscsi'):
                return offset
        except (OSError, processutils.ProcessExecutionError) as e:
            LOG.debug('Skipping offset %d of %s: %s', offset, device, e)
    return None


def set_initiator_name(device, initiator):
    """Write ``InitiatorName=<initiator>`` into the OS on ``device``.

    :returns: a dict: ``configured`` (bool), ``reason`` and, when
        configured, ``offset`` of the filesystem.
    """
    offset = find_os_root(device)
    if offset is None:
        reason = ('no ext2/3/4 filesystem with /etc/iscsi on %s: the '
                  'operating system does not use open-iscsi, or its layout '
                  'is not one this step knows; its initiator name is left '
                  'as it is' % device)
        LOG.info('Not setting the initiator name: %s', reason)
        return {'configured': False, 'reason': reason}
    with tempfile.NamedTemporaryFile('w', delete=False) as f:
        f.write('InitiatorName=%s\n' % initiator)
        source = f.name
    os.chmod(source, 0o644)
    try:
        if _exists(device, offset, INITIATOR_FILE):
            _debugfs(device, offset, 'rm %s' % INITIATOR_FILE, write=True)
        _debugfs(device, offset, 'write %s %s' % (source, INITIATOR_FILE),
                 write=True)
    finally:
        os.unlink(source)
    out, _err = _debugfs(device, offset, 'cat %s' % INITIATOR_FILE)
    if initiator not in out:
        raise RuntimeError('writing %s on %s did not take effect'
                           % (INITIATOR_FILE, device))
    LOG.info('Initiator name of the operating system on %(dev)s set to '
             '%(iqn)s (filesystem at offset %(off)d)',
             {'dev': device, 'iqn': initiator, 'off': offset})
    return {'configured': True, 'offset': offset,
            'reason': 'initiator name set to %s' % initiator}
