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

"""``ipa-cinder local-detach``: detach a Cinder volume from this host."""

from ipa_cinder.cli import base
from ipa_cinder.cli import options


class LocalDetach(base.ShowCommand):
    """Detach a Cinder volume from this host.

    Removes, in this order of preference, the attachment named with the
    option --attachment-id (an ID that neither Cinder nor this host knows
    is a usage error), the ones this host recorded for the volume, or the
    one Cinder has for this connector host (see --host), in any status:
    also what an interrupted or killed local-attach left. A multi-attached
    volume is detached from this host only, and when Cinder has several
    attachments for this host and none is recorded, it asks for the
    attachment ID.

    Unmounts what local-attach mounted, refuses a device mounted elsewhere
    or still held by the kernel (a mount in another mount namespace,
    device-mapper, md, an exclusive open) unless forced, flushes,
    disconnects, then deletes the attachment. A volume that is not
    attached is a success (already_detached: true); the field detached
    lists what was removed. Needs root.
    """

    needs_root = True
    columns = ('volume_id', 'volume_name', 'host', 'already_detached',
               'detached')

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('volume', metavar='VOLUME',
                            help='the volume, by ID or name (an ID of a '
                                 'volume Cinder no longer has still '
                                 'disconnects what this host recorded)')
        parser.add_argument(
            '--attachment-id', metavar='UUID', type=options.uuid_type,
            default=None,
            help="the attachment to remove (default: this host's)")
        options.add_on_off(
            parser, 'force',
            'disconnect even if the device is still in use (mounted in '
            'another mount namespace, held by device-mapper...) or cannot '
            'be flushed (default: off)')
        return parser

    def take_action(self, parsed_args):
        result = self.volumes.detach(
            self.app.cinder, parsed_args.volume,
            host=self.app.connector_host,
            attachment_id=parsed_args.attachment_id,
            force=parsed_args.force)
        return self.show(result, parsed_args)
