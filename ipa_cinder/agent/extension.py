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
"""The ``cinder`` extension of ironic-python-agent.

Commands (``POST /v1/commands/`` with ``{"name": "cinder.<command>"}``):

``cinder.get_connector(multipath=False, enforce_multipath=False,
initiator=None)``
    This node's connector (os-brick), ``host`` set to the node's UUID; the
    node's iSCSI initiator name is made open-iscsi's first.
``cinder.connect_volume(volume_id, attachment_id, connection_info,
mode="rw", boot=False, multipath=False)``
    Connect a volume; returns its device path. Idempotent per attachment.
``cinder.disconnect_volume(volume_id=None, attachment_id=None)``
    Flush and disconnect; unknown volumes are a success.
``cinder.list_connections()``
    What this node has connected (recorded on disk, survives a restart).
``cinder.configure_boot(initiator=None)``
    The node side of the ``cinder_configure_boot`` deploy step: write the
    initiator name into the OS on the boot volume (default: this node's
    connector's).
``cinder.disconnect_all(all_iscsi_sessions=False)``
    The node side of the ``cinder_disconnect_volumes`` deploy step: flush
    and disconnect every connected volume; the attachments stay. With
    ``all_iscsi_sessions`` (the ``cinder_detach_volumes`` clean step), also
    flush and log out every other iSCSI session, such as the firmware's
    (iBFT) that IPA logged in to at start-up.

The conductor runs every command synchronously from its own deploy steps,
so none of them costs a heartbeat, and the hardware manager reports no
deploy step: deploys of other interfaces never run any of this.

Bad parameters are refused before anything runs, with HTTP 400 and a
message naming the field; failures while connecting come back as a failed
command whose error names the node and the volume. No secret of a
connection_info reaches the agent's log or an error.
"""

import ipaddress
import os
import socket

from ironic_python_agent import errors
from ironic_python_agent.extensions import base
from ironic_python_agent import hardware
from ironic_python_agent.metrics_lib import metrics_utils
from oslo_log import log
from oslo_utils import strutils

from ipa_cinder.agent import os_config
from ipa_cinder.common import connection
from ipa_cinder.common import log_filter
from ipa_cinder.common import secrets
from ipa_cinder import conf as ipa_conf
from ipa_cinder import exception
from ipa_cinder.host import blockdev
from ipa_cinder.host import brick
from ipa_cinder.host import connections
from ipa_cinder.host import initiator as initiator_file

LOG = log.getLogger(__name__)
CONF = ipa_conf.CONF
METRICS = metrics_utils.get_metrics_logger(__name__)


#: Unknown parameter names an error lists, at most.
_SHOWN_NAMES = 5


def _bool(name, value):
    if isinstance(value, bool):
        return value
    # Strings and integers only (JSON gives nothing else that reads as a
    # boolean): bool_from_string prints anything else first, and a value
    # nested past the recursion limit cannot be printed.
    if isinstance(value, (str, int)):
        try:
            return strutils.bool_from_string(value, strict=True)
        except ValueError:
            pass
    raise errors.InvalidCommandParamsError(
        '%s must be a boolean, got %s' % (name, secrets.brief(value)))


def _unknown(command, extra):
    if extra:
        names = sorted(extra)
        shown = ', '.join(secrets.brief(n, 32) for n in names[:_SHOWN_NAMES])
        if len(names) > _SHOWN_NAMES:
            shown += ' and %d more' % (len(names) - _SHOWN_NAMES)
        raise errors.InvalidCommandParamsError(
            '%s: unknown parameter(s) %s' % (command, shown))


def _no_parameters(command):
    def validate(self, **extra):
        _unknown(command, extra)
    return validate


def _check_device(info, volume_id):
    """A path protocol's device, if it exists already, must be usable.

    A path that does not exist (yet: udev may lag behind the export) is
    waited for by the command itself; anything else that is not a block
    device this host can open (a FIFO, a regular file, a directory, a
    character device, a node the agent may not open) is refused here,
    before the command starts, so nothing is recorded or connected.
    """
    if info['driver_volume_type'] not in connection.PATH_PROTOCOLS:
        return
    path = info['data']['device_path']
    if not os.path.lexists(path):
        return
    try:
        blockdev.check_block_device(path)
    except (exception.UnusableDevice, exception.DeviceTimeout) as e:
        raise errors.InvalidCommandParamsError(
            '%svolume %s: invalid connection info field '
            '"data.device_path": not a usable block device on this host: '
            '%s' % (_node_prefix(), volume_id, e))


def _validate_connect(self, volume_id=None, attachment_id=None,
                      connection_info=None, mode='rw', boot=False,
                      multipath=False, **extra):
    _unknown('cinder.connect_volume', extra)
    try:
        connection.check_uuid(volume_id, 'volume_id')
        connection.check_uuid(attachment_id, 'attachment_id')
        connection.validate_mode(mode, volume_id)
        info = connection.validate_connection_info(connection_info,
                                                   volume_id)
    except ValueError as e:
        raise errors.InvalidCommandParamsError(
            '%s%s' % (_node_prefix(), e))
    _bool('boot', boot)
    _bool('multipath', multipath)
    _check_device(info, volume_id)


def _validate_disconnect(self, volume_id=None, attachment_id=None,
                         force=False, **extra):
    _unknown('cinder.disconnect_volume', extra)
    if volume_id is None and attachment_id is None:
        raise errors.InvalidCommandParamsError(
            'cinder.disconnect_volume needs volume_id or attachment_id')
    try:
        if volume_id is not None:
            connection.check_uuid(volume_id, 'volume_id')
        if attachment_id is not None:
            connection.check_uuid(attachment_id, 'attachment_id')
    except ValueError as e:
        raise errors.InvalidCommandParamsError(str(e))
    _bool('force', force)


def _initiator(initiator):
    if initiator is None:
        return
    try:
        connection.validate_initiator(initiator)
    except ValueError as e:
        raise errors.InvalidCommandParamsError('%s%s' % (_node_prefix(), e))


def _validate_get_connector(self, multipath=False, enforce_multipath=False,
                            initiator=None, **extra):
    _unknown('cinder.get_connector', extra)
    _bool('multipath', multipath)
    _bool('enforce_multipath', enforce_multipath)
    _initiator(initiator)


def _validate_disconnect_all(self, all_iscsi_sessions=False, **extra):
    _unknown('cinder.disconnect_all', extra)
    _bool('all_iscsi_sessions', all_iscsi_sessions)


def _validate_configure_boot(self, initiator=None, **extra):
    _unknown('cinder.configure_boot', extra)
    _initiator(initiator)


def _node_uuid():
    node = hardware.get_cached_node()
    return node.get('uuid') if node else None


def _node_prefix():
    node = _node_uuid()
    return 'node %s: ' % node if node else ''


class CinderExtension(base.BaseAgentExtension):
    """Volume connections of the node, driven by the conductor."""

    def __init__(self, agent=None):
        super().__init__(agent=agent)
        log_filter.install()
        self.connections = connections.VolumeConnections()

    def _advertised_ip(self):
        address = getattr(self.agent, 'advertise_address', None)
        host = getattr(address, 'hostname', None)
        try:
            return str(ipaddress.ip_address(host)) if host else None
        except ValueError:
            return None

    @base.sync_command('get_connector', _validate_get_connector)
    @METRICS.timer('CinderExtension.get_connector')
    def get_connector(self, multipath=False, enforce_multipath=False,
                      initiator=None):
        """Return this node's connector for Cinder attachments.

        The node's iSCSI initiator name (``initiator``, as the conductor
        chose it, else derived from the node) is written to open-iscsi's
        file first, so the connector, iscsid and the deployed OS agree.
        """
        multipath = _bool('multipath', multipath)
        enforce_multipath = _bool('enforce_multipath', enforce_multipath)
        node = hardware.get_cached_node() or {}
        host = node.get('uuid') or socket.gethostname()
        try:
            if initiator is None and node.get('uuid'):
                initiator = connection.node_initiator(
                    node['uuid'], node.get('properties'),
                    CONF.ipa_cinder.initiator_iqn_prefix)
            if initiator:
                initiator_file.ensure(initiator)
            return brick.get_connector(host, ip=self._advertised_ip(),
                                       multipath=multipath,
                                       enforce_multipath=enforce_multipath,
                                       initiator=initiator)
        except exception.NoStorageIdentity as e:
            raise errors.CommandExecutionError(str(e))
        except Exception as e:
            raise errors.CommandExecutionError(
                '%scannot read the storage connector: %s'
                % (_node_prefix(), secrets.safe_text(e)))

    @base.async_command('connect_volume', _validate_connect)
    @METRICS.timer('CinderExtension.connect_volume')
    def connect_volume(self, volume_id, attachment_id, connection_info,
                       mode='rw', boot=False, multipath=False):
        """Connect a Cinder volume; returns the device path and info."""
        try:
            record = self.connections.connect(
                volume_id, attachment_id, connection_info, mode=mode,
                boot=_bool('boot', boot),
                multipath=_bool('multipath', multipath),
                node=_node_uuid())
        except (exception.VolumeConnectionError, ValueError) as e:
            raise errors.CommandExecutionError(secrets.safe_text(e))
        return _public(record)

    @base.async_command('disconnect_volume', _validate_disconnect)
    @METRICS.timer('CinderExtension.disconnect_volume')
    def disconnect_volume(self, volume_id=None, attachment_id=None,
                          force=False):
        """Flush and disconnect a volume; unknown volumes succeed."""
        try:
            records = self.connections.disconnect(
                volume_id=volume_id, attachment_id=attachment_id,
                force=_bool('force', force))
        except (exception.VolumeConnectionError, ValueError) as e:
            raise errors.CommandExecutionError(
                '%s%s' % (_node_prefix(), secrets.safe_text(e)))
        return {'disconnected': [_public(r) for r in records]}

    @base.sync_command('list_connections',
                       _no_parameters('cinder.list_connections'))
    @METRICS.timer('CinderExtension.list_connections')
    def list_connections(self):
        """Every connection this node has recorded."""
        return {'connections': [_public(r)
                                for r in self.connections.list()]}

    @base.sync_command('configure_boot', _validate_configure_boot)
    @METRICS.timer('CinderExtension.configure_boot')
    def configure_boot(self, initiator=None):
        """Set the initiator name of the OS on the boot volume.

        The OS must log in with the identity Cinder granted: the
        connector's initiator. Skipped (and said in the log) when no boot
        volume is connected, there is no initiator, or the OS has no
        open-iscsi configuration to edit.
        """
        record = self.connections.boot_connection()
        if record is None:
            LOG.info('cinder_configure_boot: no boot volume connected, '
                     'nothing to configure')
            return {'configured': False, 'reason': 'no boot volume'}
        if initiator is None:
            # The name get_connector made this node's, if it did.
            initiator = initiator_file.read()
        if not initiator:
            LOG.info('cinder_configure_boot: this node has no iSCSI '
                     'initiator name, nothing to configure')
            return {'configured': False, 'reason': 'no initiator'}
        try:
            result = os_config.set_initiator_name(record['device_path'],
                                                  initiator)
        except Exception as e:
            raise errors.CommandExecutionError(
                '%scannot set the initiator name on the boot volume %s: %s'
                % (_node_prefix(), record['volume_id'],
                   secrets.safe_text(e)))
        result['volume_id'] = record['volume_id']
        return result

    @base.async_command('disconnect_all', _validate_disconnect_all)
    @METRICS.timer('CinderExtension.disconnect_all')
    def disconnect_all(self, all_iscsi_sessions=False):
        """Flush and disconnect every volume; the attachments stay.

        :param all_iscsi_sessions: also log out every iSCSI session that
            no connection record knows (a firmware/iBFT login, a crashed
            agent's), so that cleaning sees no disk of a SAN.
        """
        all_iscsi_sessions = _bool('all_iscsi_sessions', all_iscsi_sessions)
        try:
            records, sessions = self.connections.disconnect_all(
                all_iscsi_sessions=all_iscsi_sessions)
        except exception.VolumeConnectionError as e:
            raise errors.CommandExecutionError(
                '%s%s' % (_node_prefix(), secrets.safe_text(e)))
        LOG.info('cinder.disconnect_all: disconnected %d volume(s), logged '
                 'out of %d other iSCSI session(s)', len(records),
                 len(sessions))
        return {'disconnected': [r['volume_id'] for r in records],
                'sessions_logged_out': sessions}


def _public(record):
    """What a command returns of a record: no connection_info data."""
    shown = {k: v for k, v in record.items() if k != 'connection_info'}
    info = record.get('connection_info') or {}
    shown['driver_volume_type'] = info.get(
        'driver_volume_type', record.get('driver_volume_type'))
    return secrets.mask(shown)
