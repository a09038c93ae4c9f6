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
"""The ``cinder`` hardware manager of ironic-python-agent.

Support level SERVICE_PROVIDER, so IPA asks it before the generic manager
and it composes with it:

* ``get_os_install_device``: the boot volume's device while a boot
  connection exists, so IPA's own ``write_image`` writes the image onto the
  Cinder volume; otherwise the generic manager decides.
* ``filter_device``: connected volumes (and their partitions) are removed
  from IPA's block device listings, which keeps them out of every cleaning
  erase and out of root device selection.
* deploy steps ``cinder_configure_boot`` (70) and
  ``cinder_disconnect_volumes`` (45) of the ``cinder-agent`` deploy
  interface.
"""

from ironic_python_agent import errors
from ironic_python_agent import hardware
from oslo_log import log

from ipa_cinder.agent import os_config
from ipa_cinder.common import log_filter
from ipa_cinder.host import brick
from ipa_cinder.host import connections

LOG = log.getLogger(__name__)

CONFIGURE_BOOT_PRIORITY = 70
DISCONNECT_PRIORITY = 45


class CinderHardwareManager(hardware.HardwareManager):
    """Makes Cinder volumes the install device and protects them."""

    HARDWARE_MANAGER_NAME = 'CinderHardwareManager'
    HARDWARE_MANAGER_VERSION = '1.0'

    def __init__(self):
        self.connections = connections.VolumeConnections()

    def evaluate_hardware_support(self):
        # The earliest hook IPA gives a plugin: logging is set up by now,
        # and nothing has seen a connection_info yet.
        log_filter.install()
        return hardware.HardwareSupport.SERVICE_PROVIDER

    def get_os_install_device(self, permit_refresh=False):
        record = self.connections.boot_connection()
        if record is None or not record.get('device_path'):
            raise errors.IncompatibleHardwareMethodError()
        LOG.info('Install device is the boot volume %s: %s',
                 record.get('volume_id'), record['device_path'])
        return record['device_path']

    def filter_device(self, device):
        if (isinstance(device, hardware.BlockDevice)
                and self.connections.is_connected_device(device.name)):
            LOG.debug('Hiding %s from block device listings: it is a '
                      'connected Cinder volume', device.name)
            return None
        raise errors.IncompatibleHardwareMethodError()

    def get_deploy_steps(self, node, ports):
        return [
            {'step': 'cinder_configure_boot',
             'priority': CONFIGURE_BOOT_PRIORITY,
             'interface': 'deploy', 'reboot_requested': False,
             'argsinfo': None},
            {'step': 'cinder_disconnect_volumes',
             'priority': DISCONNECT_PRIORITY,
             'interface': 'deploy', 'reboot_requested': False,
             'argsinfo': None},
        ]

    def cinder_configure_boot(self, node, ports):
        """Set the initiator name of the OS on the boot volume.

        The OS must log in with the identity Cinder granted: the
        connector's initiator. Skipped (and said in the log) when no boot
        volume is connected, the node has no initiator, or the OS has no
        open-iscsi configuration to edit.
        """
        record = self.connections.boot_connection()
        if record is None:
            LOG.info('cinder_configure_boot: no boot volume connected, '
                     'nothing to configure')
            return {'configured': False, 'reason': 'no boot volume'}
        connector = brick.get_connector(node['uuid'])
        initiator = connector.get('initiator')
        if not initiator:
            LOG.info('cinder_configure_boot: this node has no iSCSI '
                     'initiator name, nothing to configure')
            return {'configured': False, 'reason': 'no initiator'}
        result = os_config.set_initiator_name(record['device_path'],
                                              initiator)
        result['volume_id'] = record['volume_id']
        return result

    def cinder_disconnect_volumes(self, node, ports):
        """Flush and disconnect every volume; the attachments stay."""
        records = self.connections.disconnect_all()
        LOG.info('cinder_disconnect_volumes: disconnected %d volume(s)',
                 len(records))
        return {'disconnected': [r['volume_id'] for r in records]}
