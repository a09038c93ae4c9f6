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
``cinder.connect_volumes(volumes)``
    Connect several volumes in one command, in the order given (each item
    takes the parameters of ``connect_volume``): all of them or, after a
    failure, none that this command connected.
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
import socket

from ironic_python_agent import errors
from ironic_python_agent.extensions import base
from ironic_python_agent import hardware
from ironic_python_agent.metrics_lib import metrics_utils
from oslo_log import log

from ipa_cinder.agent import os_config
from ipa_cinder.agent import params
from ipa_cinder.common import connection
from ipa_cinder.common import log_filter
from ipa_cinder.common import secrets
from ipa_cinder import conf as ipa_conf
from ipa_cinder import exception
from ipa_cinder.host import brick
from ipa_cinder.host import connections
from ipa_cinder.host import initiator as initiator_file

LOG = log.getLogger(__name__)
CONF = ipa_conf.CONF
METRICS = metrics_utils.get_metrics_logger(__name__)


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

    @base.sync_command('get_connector', params.validate_get_connector)
    @METRICS.timer('CinderExtension.get_connector')
    def get_connector(self, multipath=False, enforce_multipath=False,
                      initiator=None):
        """Return this node's connector for Cinder attachments.

        The node's iSCSI initiator name (``initiator``, as the conductor
        chose it, else derived from the node) is written to open-iscsi's
        file first, so the connector, iscsid and the deployed OS agree.
        """
        multipath = params.bool_param('multipath', multipath)
        enforce_multipath = params.bool_param('enforce_multipath',
                                              enforce_multipath)
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
                % (params.node_prefix(), secrets.safe_text(e)))

    @base.async_command('connect_volume', params.validate_connect)
    @METRICS.timer('CinderExtension.connect_volume')
    def connect_volume(self, volume_id, attachment_id, connection_info,
                       mode='rw', boot=False, multipath=False):
        """Connect a Cinder volume; returns the device path and info."""
        try:
            record = self.connections.connect(
                volume_id, attachment_id, connection_info, mode=mode,
                boot=params.bool_param('boot', boot),
                multipath=params.bool_param('multipath', multipath),
                node=params.node_uuid())
        except (exception.VolumeConnectionError, ValueError) as e:
            raise errors.CommandExecutionError(secrets.safe_text(e))
        return _public(record)

    @base.async_command('connect_volumes', params.validate_connect_volumes)
    @METRICS.timer('CinderExtension.connect_volumes')
    def connect_volumes(self, volumes):
        """Connect several volumes, in order: one command for a node's all.

        After a failure, the connections this command made are undone
        (those it found already there stay, as a retry of
        ``connect_volume`` would leave them) and the error names the
        volume at fault.

        :returns: ``{'connected': [...]}``, one result of
            ``connect_volume`` per volume, in the order given.
        """
        node = params.node_uuid()
        done = []
        try:
            for item in volumes:
                done.append(self.connections.connect(
                    item['volume_id'], item['attachment_id'],
                    item['connection_info'], mode=item.get('mode', 'rw'),
                    boot=params.bool_param('boot', item.get('boot', False)),
                    multipath=params.bool_param(
                        'multipath', item.get('multipath', False)),
                    node=node))
        except (exception.VolumeConnectionError, ValueError) as e:
            self._undo(done)
            raise errors.CommandExecutionError(secrets.safe_text(e))
        return {'connected': [_public(r) for r in done]}

    def _undo(self, records):
        for record in reversed(records):
            if record.get('reused'):
                continue
            try:
                self.connections.disconnect(
                    attachment_id=record['attachment_id'])
            except Exception as e:
                # Still recorded: disconnect_all and cleaning find it.
                LOG.error('%sCould not undo the connection of volume %s '
                          'after a failed cinder.connect_volumes: %s',
                          params.node_prefix(), record['volume_id'],
                          secrets.safe_text(e))

    @base.async_command('disconnect_volume', params.validate_disconnect)
    @METRICS.timer('CinderExtension.disconnect_volume')
    def disconnect_volume(self, volume_id=None, attachment_id=None,
                          force=False):
        """Flush and disconnect a volume; unknown volumes succeed."""
        try:
            records = self.connections.disconnect(
                volume_id=volume_id, attachment_id=attachment_id,
                force=params.bool_param('force', force))
        except (exception.VolumeConnectionError, ValueError) as e:
            raise errors.CommandExecutionError(
                '%s%s' % (params.node_prefix(), secrets.safe_text(e)))
        return {'disconnected': [_public(r) for r in records]}

    @base.sync_command('list_connections',
                       params.no_parameters('cinder.list_connections'))
    @METRICS.timer('CinderExtension.list_connections')
    def list_connections(self):
        """Every connection this node has recorded."""
        return {'connections': [_public(r)
                                for r in self.connections.list()]}

    @base.sync_command('configure_boot', params.validate_configure_boot)
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
                % (params.node_prefix(), record['volume_id'],
                   secrets.safe_text(e)))
        result['volume_id'] = record['volume_id']
        return result

    @base.async_command('disconnect_all', params.validate_disconnect_all)
    @METRICS.timer('CinderExtension.disconnect_all')
    def disconnect_all(self, all_iscsi_sessions=False):
        """Flush and disconnect every volume; the attachments stay.

        :param all_iscsi_sessions: also log out every iSCSI session that
            no connection record knows (a firmware/iBFT login, a crashed
            agent's), so that cleaning sees no disk of a SAN.
        """
        all_iscsi_sessions = params.bool_param('all_iscsi_sessions',
                                               all_iscsi_sessions)
        try:
            records, sessions = self.connections.disconnect_all(
                all_iscsi_sessions=all_iscsi_sessions)
        except exception.VolumeConnectionError as e:
            raise errors.CommandExecutionError(
                '%s%s' % (params.node_prefix(), secrets.safe_text(e)))
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
