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
  erase and out of root device selection. So is every device of an iSCSI
  session (found in sysfs), recorded or not: a disk of the firmware's
  iBFT login stays out of reach even when its logout failed.

It reports no deploy step: the node-side work of the ``cinder-agent`` deploy
interface's steps runs as commands of the ``cinder`` extension, which the
conductor calls synchronously. A ramdisk that carries this plugin deploys
any other interface exactly as it would without it.
"""

from ironic_python_agent import errors
from ironic_python_agent import hardware
from oslo_log import log

from ipa_cinder.common import log_filter
from ipa_cinder.host import connections
from ipa_cinder.host import iscsi_sessions

LOG = log.getLogger(__name__)


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
        if not self.connections.is_present(record):
            # Never fall back to the generic manager here: it would pick a
            # local disk and the image meant for the volume would land on
            # it.
            raise errors.DeviceNotFound(
                'boot volume %s was connected as %s, but that device no '
                'longer holds it (gone, or reused for something else); '
                'reconnect the volume' % (record.get('volume_id'),
                                          record['device_path']))
        LOG.info('Install device is the boot volume %s: %s',
                 record.get('volume_id'), record['device_path'])
        return record['device_path']

    def filter_device(self, device):
        if not isinstance(device, hardware.BlockDevice):
            raise errors.IncompatibleHardwareMethodError()
        if self.connections.is_connected_device(device.name):
            LOG.debug('Hiding %s from block device listings: it is a '
                      'connected Cinder volume', device.name)
            return None
        session = iscsi_sessions.session_of_device(device.name)
        if session is not None:
            LOG.info('Hiding %s from block device listings: it belongs to '
                     'iSCSI session %s (a SAN volume is never erased nor '
                     'chosen as root device)', device.name, session)
            return None
        raise errors.IncompatibleHardwareMethodError()
