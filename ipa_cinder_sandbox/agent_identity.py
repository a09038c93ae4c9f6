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

"""The network identity of one sandbox agent among many on one machine.

IPA finds its node by the MAC addresses of the NICs it lists: Ironic's
lookup returns the node that has a port with one of them, and Ironic
allows a MAC on one port only. Every sandbox agent runs on the same
machine, so without help they all list this machine's NICs and only one
node could be served at a time.

:class:`SandboxIdentityHardwareManager` makes an agent report one network
interface with a MAC of its own, given by the sandbox in the agent's
environment (``IPA_CINDER_SANDBOX_AGENT_MAC``). It answers
``list_network_interfaces`` (IPA's wait for a usable interface) and
``list_hardware_info`` (the inventory the lookup takes its addresses
from; the generic manager builds it with its own method, not the
dispatched one, so the interfaces are replaced in the inventory too). The
heartbeat carries only the node UUID the lookup returned, so the agent
heartbeats to its own node. Without the variable the manager reports
NOT_SUPPORTED and IPA never loads it: an agent started without a MAC
behaves exactly as before.

Why not a network namespace per agent with a link of its own: the agent
must reach Ironic, and Ironic the agent, on 127.0.0.1, which a new
network namespace cuts off; IPA lists only NICs with a ``device`` link in
sysfs (physical ones), which no veth or dummy link has; and creating
links needs CAP_NET_ADMIN on the host's side for every agent. Reporting
the MAC changes nothing on the host: the agent never touches a link
(the jail drops CAP_NET_ADMIN either way).

The manager is registered by the sandbox's distribution only, under
``ironic_python_agent.hardware_managers`` as ``sandbox_identity``: it is
never part of the shipped ``ipa-cinder`` or of a ramdisk.
"""

import os

from ironic_python_agent import errors
from ironic_python_agent import hardware
from oslo_log import log
from oslo_utils import netutils

LOG = log.getLogger(__name__)

# Set by ipa_cinder_sandbox.agent_process (the same name, checked by a unit
# test: that module is the sandbox's side and does not import this one).
MAC_VARIABLE = 'IPA_CINDER_SANDBOX_AGENT_MAC'
INTERFACE_NAME = 'sandbox0'


def configured_mac(environ=None):
    """The agent's own MAC (lower case), or None when none is set.

    :raises: ironic_python_agent.errors.HardwareManagerConfigurationError
        for a value that is not a unicast MAC: looking up with another
        identity (this machine's) would find the wrong node.
    """
    environ = os.environ if environ is None else environ
    mac = (environ.get(MAC_VARIABLE) or '').strip().lower()
    if not mac:
        return None
    if not netutils.is_valid_mac(mac) or int(mac[:2], 16) & 1:
        raise errors.HardwareManagerConfigurationError(
            '%s=%r is not a unicast MAC address' % (MAC_VARIABLE, mac))
    return mac


class SandboxIdentityHardwareManager(hardware.HardwareManager):
    """One NIC with the agent's own MAC (see the module docstring)."""

    HARDWARE_MANAGER_NAME = 'SandboxIdentityHardwareManager'
    HARDWARE_MANAGER_VERSION = '1.0'

    def __init__(self):
        self.mac = configured_mac()

    def evaluate_hardware_support(self):
        if not self.mac:
            return hardware.HardwareSupport.NONE
        LOG.info('Sandbox agent identity: reporting only interface %s '
                 'with MAC %s', INTERFACE_NAME, self.mac)
        return hardware.HardwareSupport.SERVICE_PROVIDER

    def list_network_interfaces(self):
        if not self.mac:
            raise errors.IncompatibleHardwareMethodError()
        return [hardware.NetworkInterface(INTERFACE_NAME, self.mac,
                                          ipv4_address='127.0.0.1',
                                          has_carrier=True)]

    def list_hardware_info(self):
        """The next manager's inventory, with this agent's interface."""
        if not self.mac:
            raise errors.IncompatibleHardwareMethodError()
        for manager in hardware.get_managers():
            if manager is self:
                continue
            try:
                info = manager.list_hardware_info()
            except errors.IncompatibleHardwareMethodError:
                continue
            info['interfaces'] = self.list_network_interfaces()
            return info
        raise errors.IncompatibleHardwareMethodError()
