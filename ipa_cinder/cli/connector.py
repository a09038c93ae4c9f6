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

"""``ipa-cinder get-connector``: this host's os-brick connector."""

from ipa_cinder.cli import base
from ipa_cinder.cli import options


class GetConnector(base.ShowCommand):
    """Show this host's os-brick connector, as Cinder receives it.

    The connector is what local-attach sends with the attachment: host is
    the connector host name (see --host; Cinder locks on it), ip is read
    from the routing table (no packet is sent), and initiator (iSCSI), nqn
    (NVMe) and wwpns (Fibre Channel) appear when this host has them. Needs
    root: os-brick reads the host's storage identities.
    """

    needs_root = True

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        options.add_multipath_options(parser)
        return parser

    def take_action(self, parsed_args):
        connector = self.volumes.connector(
            self.app.connector_host, multipath=parsed_args.multipath,
            enforce_multipath=parsed_args.enforce_multipath)
        return self.show(connector, parsed_args)
