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

"""Connecting and disconnecting Cinder volumes on this host.

The one place that drives os-brick for a volume: used by the IPA
extension on a node and by the ``ipa-cinder`` command on any host. Every
connection is recorded (see :mod:`ipa_cinder.host.registry`) so that the
operations are idempotent and survive a restart of the process.
"""

import os

from oslo_log import log
from oslo_utils import timeutils
import tenacity

from ipa_cinder.common import connection
from ipa_cinder.common import secrets
from ipa_cinder import conf as ipa_conf
from ipa_cinder import exception
from ipa_cinder.host import blockdev
from ipa_cinder.host import brick
from ipa_cinder.host import iscsi
from ipa_cinder.host import iscsi_sessions
from ipa_cinder.host import registry as registry_mod

LOG = log.getLogger(__name__)
CONF = ipa_conf.CONF


def _describe(volume_id, attachment_id):
    return 'volume %s (attachment %s)' % (volume_id, attachment_id)


def _target(data):
    """``portal P, target T`` of iSCSI data, each value masked and short."""
    shown = {}
    for single, several in (('target_portal', 'target_portals'),
                            ('target_iqn', 'target_iqns')):
        if isinstance(data.get(single), str):
            shown[single] = secrets.brief(data[single]).strip('\'"')
        elif isinstance(data.get(several), list):
            shown[several] = [secrets.brief(v).strip('\'"')
                              for v in data[several][:4]]
    return iscsi.describe_target(shown)


class VolumeConnections(object):
    """Volumes connected on this host, backed by a registry on disk."""

    def __init__(self, registry=None):
        self.registry = registry or registry_mod.ConnectionRegistry()

    # Queries

    def list(self):
        """Every recorded connection.

        Each record gains ``present``: whether its device still exists.
        """
        records = self.registry.list()
        for record in records:
            record['present'] = self.is_present(record)
        return records

    @staticmethod
    def is_present(record):
        """Whether the record's device still holds the volume."""
        path = record.get('device_path')
        if not path:
            return False
        recorded = record.get('device_identity')
        if recorded is None:
            # Recorded by an older version: all we can know is that the
            # node exists.
            return os.path.exists(path)
        return blockdev.same_device(recorded, blockdev.device_identity(path))

    def boot_connection(self):
        """The record of the boot volume's connection, or None."""
        for record in self.registry.list():
            if record.get('boot'):
                return record
        return None

    def connected_devices(self):
        """Real paths of every device of a recorded connection."""
        devices = set()
        for record in self.registry.list():
            path = record.get('device_path')
            if path:
                devices.add(os.path.realpath(path))
        return devices

    def is_connected_device(self, path):
        """Whether ``path`` is (a partition of) a connected volume."""
        real = os.path.realpath(path)
        for device in self.connected_devices():
            if real == device:
                return True
            # Partitions: "<disk>2" of a disk whose name ends in a letter;
            # a name ending in a digit takes a "p": /dev/loop3p1 of
            # /dev/loop3 (never /dev/loop31).
            if not real.startswith(device) or real == device:
                continue
            rest = real[len(device):]
            if device[-1].isdigit():
                if rest[0] == 'p' and rest[1:].isdigit():
                    return True
            elif rest.isdigit():
                return True
        return False

    # Changes

    def connect(self, volume_id, attachment_id, connection_info, mode='rw',
                boot=False, multipath=False, node=None):
        """Connect a volume through os-brick and record it.

        Calling it again for a recorded attachment whose device is still
        there returns the existing connection (``reused: True``).

        :param volume_id: the Cinder volume.
        :param attachment_id: its Cinder attachment for this host.
        :param connection_info: the attachment's connection info.
        :param mode: ``rw`` or ``ro``; ``ro`` sets the kernel's read-only
            flag on the device.
        :param boot: whether this is the boot volume (the install device).
        :param multipath: whether os-brick should use multipath.
        :param node: the Ironic node (for messages), if any.
        :returns: the connection record (secrets masked).
        :raises: InvalidConnectionInfo, InvalidIdentifier on bad input,
            VolumeConnectionError when the connection fails.
        """
        connection.check_uuid(volume_id, 'volume_id')
        connection.check_uuid(attachment_id, 'attachment_id')
        connection.validate_mode(mode, volume_id)
        info = connection.validate_connection_info(connection_info,
                                                   volume_id)
        secrets.remember(connection_info)
        protocol = info['driver_volume_type']
        what = _describe(volume_id, attachment_id)
        if node:
            what = 'node %s: %s' % (node, what)

        with self.registry.locked():
            existing = self._reusable(volume_id, attachment_id, boot, what)
            if existing is not None:
                return existing
            self._preflight(protocol, info['data'], what)
            LOG.info('Connecting %s (%s, mode %s%s)', what, protocol, mode,
                     ', boot volume' if boot else '')
            started = timeutils.utcnow()
            device_info = self._connect_device(info, mode, multipath, what)
            path = device_info['path']
            record = {
                'device_identity': blockdev.device_identity(path),
                'volume_id': volume_id,
                'attachment_id': attachment_id,
                'driver_volume_type': protocol,
                'connection_info': info,
                'device_path': path,
                'device_info': device_info,
                'mode': mode,
                'boot': bool(boot),
                'multipath': bool(multipath),
                'node': node,
                'connected_at': timeutils.utcnow().isoformat(),
            }
            self.registry.save(record)
            LOG.info('Connected %s as %s in %.2fs', what, path,
                     timeutils.delta_seconds(started, timeutils.utcnow()))
            record = secrets.mask(record)
            record['reused'] = False
            return record

    def _reusable(self, volume_id, attachment_id, boot, what):
        """The record of this attachment if its device is still there.

        A record whose device is gone is forgotten. Refuses a second
        connection of the volume, and a second boot volume.
        """
        existing = self.registry.get(attachment_id)
        if existing is not None:
            if existing.get('volume_id') != volume_id:
                raise exception.VolumeConnectionError(
                    '%s: this attachment is recorded for volume %s'
                    % (what, existing.get('volume_id')))
            if self.is_present(existing):
                LOG.info('%s is already connected as %s, reusing it',
                         what, existing['device_path'])
                existing['reused'] = True
                return existing
            LOG.warning('%s was recorded as %s but that device is gone; '
                        'connecting it again', what,
                        existing.get('device_path'))
            self.registry.remove(attachment_id)
        for other in self.registry.list():
            if other.get('volume_id') == volume_id:
                raise exception.VolumeConnectionError(
                    '%s: the volume is already connected here through '
                    'attachment %s; disconnect it first'
                    % (what, other.get('attachment_id')))
            if boot and other.get('boot'):
                raise exception.VolumeConnectionError(
                    '%s: volume %s is already connected as the boot '
                    'volume; a node has one boot volume'
                    % (what, other.get('volume_id')))
        return None

    def _connect_device(self, info, mode, multipath, what):
        """os-brick connect, checked; undone if the device is unusable."""
        protocol = info['driver_volume_type']
        connector = brick.make_connector(protocol, multipath=multipath)
        try:
            device_info = connector.connect_volume(info['data'])
        except Exception as e:
            if protocol in ('iscsi', 'iser'):
                raise exception.VolumeConnectionError(
                    '%s: iSCSI login to %s failed: %s'
                    % (what, _target(info['data']),
                       iscsi.login_failure(e)))
            raise exception.VolumeConnectionError(
                '%s: os-brick could not connect the %s volume: %s'
                % (what, protocol, secrets.safe_text(e)))
        path = device_info.get('path')
        try:
            # Whatever the protocol: os-brick returns what the connection
            # data says for some (a "gpfs" path is taken as it is).
            try:
                blockdev.check_block_device(path)
            except (exception.UnusableDevice,
                    exception.DeviceTimeout) as e:
                raise exception.VolumeConnectionError(
                    '%s: os-brick returned a device path that is not a '
                    'usable block device: %s' % (what, e))
            if mode == 'ro':
                blockdev.set_read_only(path, True)
                if not blockdev.is_read_only(path):
                    raise exception.VolumeConnectionError(
                        '%s: the kernel did not make %s read-only'
                        % (what, path))
        except Exception as e:
            # Nothing leaks: undo the os-brick connection before reporting
            # the failure.
            self._disconnect_device(connector, info['data'], device_info,
                                    what)
            if isinstance(e, exception.VolumeConnectionError):
                raise
            raise exception.VolumeConnectionError(
                '%s: cannot set %s read-only: %s'
                % (what, path, secrets.safe_text(e)))
        return device_info

    def disconnect(self, volume_id=None, attachment_id=None, force=False):
        """Flush and disconnect recorded connections, then forget them.

        Disconnecting something that is not recorded is a success.

        :param volume_id: disconnect the connections of this volume.
        :param attachment_id: disconnect this attachment's connection.
        :param force: passed to os-brick (ignore flush errors).
        :returns: the records that were disconnected.
        """
        if volume_id is None and attachment_id is None:
            raise exception.InvalidIdentifier(
                'give volume_id or attachment_id')
        if volume_id is not None:
            connection.check_uuid(volume_id, 'volume_id')
        if attachment_id is not None:
            connection.check_uuid(attachment_id, 'attachment_id')
        with self.registry.locked():
            records = self.registry.find(volume_id=volume_id,
                                         attachment_id=attachment_id)
            if not records:
                LOG.info('Nothing connected for volume %s attachment %s: '
                         'nothing to disconnect', volume_id, attachment_id)
            for record in records:
                self._disconnect_record(record, force=force)
            return records

    def disconnect_all(self, force=False, all_iscsi_sessions=False):
        """Disconnect every recorded connection (cleaning, tear down).

        :returns: (records, what iscsi_sessions.logout_all logged out).
        """
        with self.registry.locked():
            records = self.registry.list()
            errors = []
            for record in records:
                try:
                    self._disconnect_record(record, force=force)
                except exception.VolumeConnectionError as e:
                    errors.append(str(e))
            sessions = (iscsi_sessions.logout_all(force, errors)
                        if all_iscsi_sessions else [])
            if errors:
                raise exception.VolumeConnectionError('; '.join(errors))
            return records, sessions

    # Internals

    def _preflight(self, protocol, data, what):
        """Refuse early, with a clear reason, what cannot work here."""
        if protocol in connection.PATH_PROTOCOLS:
            self._wait_for_device(data['device_path'], what)
        elif protocol in ('iscsi', 'iser'):
            reason = iscsi.unusable_reason()
            if reason:
                raise exception.VolumeConnectionError(
                    '%s: cannot log in to %s: %s'
                    % (what, _target(data), reason))

    @staticmethod
    def _wait_for_device(path, what):
        """Wait for a path protocol's device node, then check it.

        Only a path that does not exist yet is waited for (udev may lag
        behind the export); anything else is judged at once.
        """
        timeout = CONF.ipa_cinder.device_wait_timeout
        waited = ''
        try:
            tenacity.Retrying(
                retry=tenacity.retry_if_result(lambda found: not found),
                stop=tenacity.stop_after_delay(timeout),
                wait=tenacity.wait_fixed(0.1),
                reraise=True)(os.path.lexists, path)
        except tenacity.RetryError:
            waited = ' (waited %ss for it)' % timeout
        try:
            blockdev.check_block_device(path)
        except (exception.UnusableDevice, exception.DeviceTimeout) as e:
            raise exception.VolumeConnectionError(
                '%s: data.device_path is not a block device this host can '
                'open%s: %s' % (what, waited, e))

    def _disconnect_device(self, connector, data, device_info, what,
                           force=False):
        try:
            connector.disconnect_volume(data, device_info, force=force)
        except Exception as e:
            LOG.error('%s: os-brick could not disconnect: %s', what,
                      secrets.safe_text(e))
            raise exception.VolumeConnectionError(
                '%s: os-brick could not disconnect: %s'
                % (what, secrets.safe_text(e)))

    def _disconnect_record(self, record, force=False):
        volume_id = record.get('volume_id')
        attachment_id = record.get('attachment_id')
        what = _describe(volume_id, attachment_id)
        path = record.get('device_path')
        present = self.is_present(record)
        if path and not present:
            # The device is gone or holds something else now (a loop
            # device reused for another volume): flushing it or clearing
            # its read-only flag would act on what is not ours.
            LOG.warning('%s: %s no longer holds this volume; forgetting it '
                        'without touching the device', what, path)
        if present:
            try:
                blockdev.flush(path)
            except (OSError, exception.UnusableDevice,
                    exception.DeviceTimeout) as e:
                if not force:
                    raise exception.VolumeConnectionError(
                        '%s: cannot flush %s before disconnecting: %s'
                        % (what, path, e))
                LOG.warning('%s: flush of %s failed, forced: %s', what,
                            path, e)
            if record.get('mode') == 'ro':
                # The flag stays on the kernel device otherwise, and the
                # next volume exported through it would be read-only.
                try:
                    blockdev.set_read_only(path, False)
                except (OSError, exception.UnusableDevice,
                        exception.DeviceTimeout) as e:
                    LOG.warning('%s: cannot clear the read-only flag of %s: '
                                '%s', what, path, e)
        info = record.get('connection_info') or {}
        connector = brick.make_connector(
            record.get('driver_volume_type') or
            info.get('driver_volume_type'),
            multipath=record.get('multipath', False))
        self._disconnect_device(connector, info.get('data') or {},
                                record.get('device_info') or {}, what,
                                force=force)
        self.registry.remove(attachment_id)
        LOG.info('Disconnected %s (%s)', what, path)
