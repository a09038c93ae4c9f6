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

"""``ipa-cinder local-attach``: attach a Cinder volume to this host."""

from ipa_cinder.cli import base
from ipa_cinder.cli import options


class LocalAttach(base.ShowCommand):
    """Attach a Cinder volume to this host.

    Creates the attachment WITH this host's connector and the mode (one
    call, microversion 3.54), connects it with os-brick, sets the kernel
    read-only flag on the device for mode ro, records the connection under
    the state directory, then completes the attachment (3.44): the volume
    is in-use. With --mountpoint it also mounts the volume's filesystem
    (read-only for mode ro).

    Nothing leaks: if anything fails after the attachment is created
    (connect, complete, mount), the volume is disconnected and the
    attachment deleted. Ctrl-C, SIGTERM or SIGHUP let the running step
    (attachment create, connect, complete, mount) finish, then undo the
    same way; a second signal does not stop that. Running it again for an
    attached volume shows the existing attachment (reused: true) instead
    of creating a second one; a recorded attachment that Cinder no longer
    has is forgotten and a new one is made. Needs root.
    """

    needs_root = True
    columns = ('volume_id', 'volume_name', 'attachment_id', 'host',
               'device_path', 'mode', 'attach_mode', 'mountpoint',
               'driver_volume_type', 'reused', 'connection_info')

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('volume', metavar='VOLUME',
                            help='the volume, by ID or name')
        parser.add_argument(
            '--mode', choices=options.MODES, default='rw',
            help='attach mode, recorded by Cinder (attach_mode) and '
                 'enforced on the device (default: rw)')
        parser.add_argument(
            '--mountpoint', metavar='PATH', type=options.absolute_path,
            default=None,
            help="mount the volume's filesystem there (an absolute path, "
                 "created if missing; not already a mount point)")
        parser.add_argument(
            '--instance-uuid', metavar='UUID', type=options.instance_uuid_type,
            default=None,
            help='instance UUID recorded in the attachment (default: one '
                 'derived from the connector host and the volume, so that '
                 'what an interrupted attach left can be found again; '
                 '"none" for no instance). Cinder deletes an attachment '
                 'that has an instance only for a service, or when Nova '
                 'does not know the instance: see --service-role-header')
        options.add_multipath_options(parser)
        return parser

    def take_action(self, parsed_args):
        result = self.attaching.attach(
            self.app.cinder, parsed_args.volume,
            host=self.app.connector_host, mode=parsed_args.mode,
            mountpoint=parsed_args.mountpoint,
            instance_uuid=parsed_args.instance_uuid,
            multipath=parsed_args.multipath,
            enforce_multipath=parsed_args.enforce_multipath)
        return self.show(result, parsed_args)
