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
"""Hardware types whose deploy interface can be ``cinder-agent``.

Ironic checks a node's interfaces against its hardware type by exact
class, so a real hardware type must list ``CinderAgentDeploy``.
``fake-hardware`` accepts any interface and needs nothing from here.
"""

from ironic.drivers import ipmi
from ironic.drivers import redfish

from ipa_cinder.conductor import deploy


class CinderIPMIHardware(ipmi.IPMIHardware):
    """IPMI hardware that boots from Cinder volumes (``cinder-ipmi``)."""

    @property
    def supported_deploy_interfaces(self):
        return [deploy.CinderAgentDeploy] + super().supported_deploy_interfaces


class CinderRedfishHardware(redfish.RedfishHardware):
    """Redfish hardware that boots from Cinder volumes (``cinder-redfish``)."""

    @property
    def supported_deploy_interfaces(self):
        return [deploy.CinderAgentDeploy] + super().supported_deploy_interfaces
