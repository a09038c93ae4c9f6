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

"""A Cinder volume driver that keeps each volume in a sparse file.

Shipped for the sandbox and for tests: it runs inside the real
cinder-volume service. Two exports, chosen per backend with
``sandbox_export``:

``local``
    the volume file is attached to a loop device; the connection is
    ``driver_volume_type: local`` with ``data.device_path`` (os-brick's
    LOCAL connector). The loop devices are found again with ``losetup`` and
    detached when the last attachment goes, on remove_export and on delete.
``iscsi``
    Cinder's own target helper (``target_helper = tgtadm``, CHAP with
    ``use_chap_auth``) exports the file through tgtd. Each target admits
    only the initiators it was attached for: the connector's ``initiator``
    is bound to the target (tgt's default, any initiator, is unbound) when
    a connection is initialized, and unbound when it is terminated; the
    target and its bindings go with the export. Real targets do the same
    (LIO's and most arrays' ACLs): CHAP alone would let any initiator that
    learnt the credentials in.
"""

import os
import re

from cinder import exception
from cinder.volume import configuration
from cinder.volume import driver
from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils import importutils
from oslo_utils import units

from ipa_cinder_sandbox import commands
from ipa_cinder_sandbox import loopdev

LOG = logging.getLogger(__name__)

_TARGET_LINE = re.compile(r'^Target (\d+): (\S+)$', re.MULTILINE)

file_opts = [
    cfg.StrOpt('sandbox_volumes_dir',
               help='Directory holding one sparse file per volume.'),
    cfg.StrOpt('sandbox_export', default='local',
               choices=['local', 'iscsi'],
               help='How volumes are exported: a loop device on this host '
                    '(local) or the configured iSCSI target helper.'),
    cfg.IntOpt('sandbox_capacity_gb', default=0, min=0,
               help='Capacity reported for the backend, in GiB; 0 reports '
                    'the size of the filesystem holding the volumes.'),
]

CONF = cfg.CONF
CONF.register_opts(file_opts, group=configuration.SHARED_CONF_GROUP)

_SYS_BLOCK = '/sys/block'


def _loop_devices_of(path):
    """Loop devices backed by ``path``, read from sysfs.

    No process: ``losetup --list`` costs one per call, and an attachment
    asks twice. Falls back to losetup where sysfs cannot be read.
    """
    path = os.path.abspath(path)
    try:
        names = [n for n in os.listdir(_SYS_BLOCK) if n.startswith('loop')]
    except OSError:
        return loopdev.devices_of(path)
    devices = []
    for name in names:
        try:
            with open(os.path.join(_SYS_BLOCK, name, 'loop',
                                   'backing_file')) as backing:
                backing_file = backing.read().strip()
        except OSError:
            # Not attached (no backing file), or detached meanwhile.
            continue
        if backing_file.replace(' (deleted)', '') == path:
            devices.append('/dev/' + name)
    return sorted(devices)


class FileVolumeDriver(driver.VolumeDriver):
    """Volumes as sparse files, exported locally or over iSCSI."""

    VERSION = '1.0.0'
    # Not a vendor driver: no third-party CI.
    CI_WIKI_NAME = None
    SUPPORTS_ACTIVE_ACTIVE = False

    def __init__(self, *args, **kwargs):
        super(FileVolumeDriver, self).__init__(*args, **kwargs)
        self.configuration.append_config_values(file_opts)
        self.backend_name = (
            self.configuration.safe_get('volume_backend_name') or 'file')
        self.export = self.configuration.sandbox_export
        self.volumes_dir = self.configuration.sandbox_volumes_dir
        self.target_driver = None
        if self.export == 'iscsi':
            helper = self.configuration.safe_get('target_helper')
            self.target_driver = importutils.import_object(
                self.target_mapping[helper],
                configuration=self.configuration, executor=self._execute)
            self.protocol = (self.target_driver.storage_protocol
                             or self.target_driver.protocol)
        else:
            self.protocol = 'local'

    @classmethod
    def get_driver_options(cls):
        return file_opts + cls._get_oslo_driver_opts(
            'target_ip_address', 'target_helper', 'target_protocol',
            'target_prefix', 'volumes_dir', 'target_port', 'use_chap_auth',
            'reserved_percentage', 'max_over_subscription_ratio')

    # Setup

    def do_setup(self, context):
        if not self.volumes_dir:
            raise exception.InvalidConfigurationValue(
                option='sandbox_volumes_dir', value=self.volumes_dir)
        os.makedirs(self._snapshots_dir, exist_ok=True)

    def check_for_setup_error(self):
        if not os.path.isdir(self.volumes_dir):
            raise exception.VolumeBackendAPIException(
                data='volumes directory %s is missing' % self.volumes_dir)

    @property
    def _snapshots_dir(self):
        return os.path.join(self.volumes_dir, 'snapshots')

    def _path(self, volume):
        return os.path.join(self.volumes_dir, volume.name)

    def _snapshot_path(self, snapshot):
        return os.path.join(self._snapshots_dir, snapshot.name)

    # Data: create, delete, extend, clone, snapshots

    @staticmethod
    def _allocate(path, size_gb):
        """Create or grow ``path`` as a sparse file of ``size_gb`` GiB."""
        with open(path, 'ab') as f:
            f.truncate(int(size_gb) * units.Gi)

    @staticmethod
    def _copy(src, dst, size_gb):
        commands.run('cp', '--sparse=always', src, dst)
        if os.path.getsize(dst) < int(size_gb) * units.Gi:
            FileVolumeDriver._allocate(dst, size_gb)

    def create_volume(self, volume):
        path = self._path(volume)
        if os.path.exists(path):
            raise exception.VolumeBackendAPIException(
                data='volume file %s already exists' % path)
        self._allocate(path, volume.size)
        LOG.info('Created volume %(id)s: %(path)s (%(size)s GiB)',
                 {'id': volume.id, 'path': path, 'size': volume.size})

    def delete_volume(self, volume):
        path = self._path(volume)
        self._detach_loops(path)
        try:
            os.unlink(path)
        except FileNotFoundError:
            LOG.warning('Volume file %s was already gone', path)

    def extend_volume(self, volume, new_size):
        path = self._path(volume)
        self._allocate(path, new_size)
        if self.export == 'local':
            for device in _loop_devices_of(path):
                loopdev.refresh_capacity(device)
        elif hasattr(self.target_driver, 'extend_target'):
            self.target_driver.extend_target(volume)

    def create_cloned_volume(self, volume, src_vref):
        self._copy(self._path(src_vref), self._path(volume), volume.size)

    def create_snapshot(self, snapshot):
        self._copy(self._path(snapshot.volume), self._snapshot_path(snapshot),
                   snapshot.volume_size)

    def delete_snapshot(self, snapshot):
        try:
            os.unlink(self._snapshot_path(snapshot))
        except FileNotFoundError:
            pass

    def create_volume_from_snapshot(self, volume, snapshot):
        self._copy(self._snapshot_path(snapshot), self._path(volume),
                   volume.size)

    # Exports

    def _detach_loops(self, path):
        for device in _loop_devices_of(path):
            LOG.info('Detaching %s from %s', device, path)
            loopdev.detach(device)

    def _loop_device(self, volume):
        """The volume's loop device, attached on first use.

        Every attachment asks for it twice (create_export, then
        initialize_connection), concurrently for several volumes: finding
        it reads sysfs, and attaching it is ONE losetup, whose
        ``--nooverlap`` returns the device already backed by the file if
        another request attached it meanwhile.
        """
        path = os.path.abspath(self._path(volume))
        devices = _loop_devices_of(path)
        if devices:
            return devices[0]
        device = commands.run(loopdev.LOSETUP, '--find', '--show',
                              '--nooverlap', path).stdout.strip()
        LOG.debug('Attached %s to %s', path, device)
        return device

    def create_export(self, context, volume, connector):
        if self.export == 'local':
            self._loop_device(volume)
            return {}
        info = self.target_driver.create_export(context, volume,
                                                self._path(volume))
        return {'provider_location': info['location'],
                'provider_auth': info['auth']}

    def ensure_export(self, context, volume):
        if self.export == 'iscsi':
            return self.target_driver.ensure_export(context, volume,
                                                    self._path(volume))

    def remove_export(self, context, volume):
        if self.export == 'local':
            self._detach_loops(self._path(volume))
        else:
            self.target_driver.remove_export(context, volume)

    def validate_connector(self, connector):
        if self.export == 'iscsi':
            return self.target_driver.validate_connector(connector)
        return True

    def initialize_connection(self, volume, connector):
        if self.export == 'local':
            return {'driver_volume_type': 'local',
                    'data': {'device_path': self._loop_device(volume)}}
        info = self.target_driver.initialize_connection(volume, connector)
        # Cinder re-creates the export (tgt-admin --update) for every
        # attachment, which resets the target's ACL: bind every initiator
        # the volume is attached to, not only the new one.
        initiators = {connector['initiator']} | {
            (a.connector or {}).get('initiator')
            for a in volume.volume_attachment} - {None}
        self._bind_initiators(info['data']['target_iqn'], sorted(initiators))
        return info

    def terminate_connection(self, volume, connector, **kwargs):
        """Returns True while other attachments still need the export."""
        attachments = volume.volume_attachment
        others = len(attachments) > 1
        if self.export == 'iscsi':
            self.target_driver.terminate_connection(volume, connector,
                                                    **kwargs)
            # The attachment going away is still listed: another one of
            # the same initiator keeps the binding. Without others, the
            # export (target and bindings) goes next.
            initiator = (connector or {}).get('initiator')
            sharing = [a for a in attachments
                       if (a.connector or {}).get('initiator') == initiator]
            if others and initiator and len(sharing) <= 1:
                self._unbind_initiator(volume, initiator)
        elif not others:
            self._detach_loops(self._path(volume))
        return others

    # iSCSI access control

    @staticmethod
    def _tgtadm(*args, check=True):
        return commands.run('tgtadm', '--lld', 'iscsi', *args, check=check,
                            timeout=30)

    def _tid(self, iqn):
        shown = self._tgtadm('--op', 'show', '--mode', 'target').stdout
        for tid, name in _TARGET_LINE.findall(shown):
            if name == iqn:
                return tid
        raise exception.VolumeBackendAPIException(
            data='tgt has no target %s' % iqn)

    def _bind_initiators(self, iqn, initiators):
        """Admit ``initiators`` (and, from now on, no unknown one)."""
        tid = self._tid(iqn)
        for initiator in initiators:
            self._tgtadm('--op', 'bind', '--mode', 'target', '--tid', tid,
                         '--initiator-name', initiator, check=False)
        # Unbinding ALL when it is not bound is an error tgt may report:
        # what matters is the state afterwards.
        self._tgtadm('--op', 'unbind', '--mode', 'target', '--tid', tid,
                     '--initiator-address', 'ALL', check=False)
        LOG.info('Target %(iqn)s admits initiators %(init)s',
                 {'iqn': iqn, 'init': ', '.join(initiators)})

    def _unbind_initiator(self, volume, initiator):
        iqn = '%s%s' % (self.configuration.target_prefix, volume.name)
        try:
            tid = self._tid(iqn)
        except exception.VolumeBackendAPIException:
            return
        self._tgtadm('--op', 'unbind', '--mode', 'target', '--tid', tid,
                     '--initiator-name', initiator, check=False)
        LOG.info('Target %(iqn)s no longer admits initiator %(init)s',
                 {'iqn': iqn, 'init': initiator})

    # Stats

    def _update_volume_stats(self):
        fs = os.statvfs(self.volumes_dir)
        total = fs.f_blocks * fs.f_frsize / units.Gi
        free = fs.f_bavail * fs.f_frsize / units.Gi
        cap = self.configuration.sandbox_capacity_gb
        provisioned = 0
        used = 0
        count = 0
        for entry in os.scandir(self.volumes_dir):
            if entry.is_file() and entry.name.startswith('volume-'):
                st = entry.stat()
                provisioned += st.st_size
                used += st.st_blocks * 512
                count += 1
        if cap:
            total = float(cap)
            free = max(0.0, min(free, cap - used / units.Gi))
        pool = {
            'pool_name': self.backend_name,
            'total_capacity_gb': round(total, 2),
            'free_capacity_gb': round(free, 2),
            'provisioned_capacity_gb': round(provisioned / units.Gi, 2),
            'reserved_percentage': self.configuration.reserved_percentage,
            'max_over_subscription_ratio': (
                self.configuration.max_over_subscription_ratio),
            'thin_provisioning_support': True,
            'thick_provisioning_support': False,
            'total_volumes': count,
            'multiattach': True,
            'QoS_support': False,
            'backend_state': 'up',
        }
        self._stats = {
            'volume_backend_name': self.backend_name,
            'vendor_name': 'Open Source',
            'driver_version': self.VERSION,
            'storage_protocol': self.protocol,
            'sparse_copy_volume': True,
            'pools': [pool],
        }

    def get_volume_stats(self, refresh=False):
        if refresh or not self._stats:
            self._update_volume_stats()
        return self._stats

    def get_pool(self, volume):
        return self.backend_name
