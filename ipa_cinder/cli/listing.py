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

"""``ipa-cinder list``: what this host has attached."""

from ipa_cinder.cli import base


class ListAttached(base.ListCommand):
    """List the volumes attached to this host.

    One row per attachment: first the connections this host recorded
    (recorded_here; present tells whether the device still exists), each
    marked with whether Cinder has the attachment for this connector host
    (in_cinder), then the attachments Cinder shows for this host's name
    that are not recorded here. When Cinder cannot be reached, the
    recorded connections are still listed (in_cinder empty) and the
    command exits with 3.
    """

    columns = ('volume_id', 'volume_name', 'attachment_id', 'device_path',
               'present', 'mode', 'mountpoint', 'recorded_here',
               'in_cinder', 'volume_status')
    long_columns = ('driver_volume_type', 'connected_at', 'host_name',
                    'instance', 'attached_at')

    def take_action(self, parsed_args):
        rows = self.volumes.list_attached(lambda: self.app.cinder,
                                          self.app.connector_host)
        return self.show(rows, parsed_args)
