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

"""The sandbox agent's own MAC, as IPA's hardware manager dispatch sees it.

Real IPA dispatch (``dispatch_to_managers``) over real managers: only the
list of loaded managers is set by the test, since loading every manager
would probe this machine's hardware.
"""

from unittest import mock

from ironic_python_agent import errors as ipa_errors
from ironic_python_agent import hardware
import pytest

from ipa_cinder.agent import hardware_manager as cinder_manager
from ipa_cinder_sandbox import agent_identity
from ipa_cinder_sandbox import agent_process

MAC = '02:00:5e:10:20:30'
HOST_NIC = hardware.NetworkInterface('eth0', '52:54:00:aa:bb:cc')


class _HostInventory(hardware.HardwareManager):
    """Stands for the generic manager: this machine's inventory."""

    def evaluate_hardware_support(self):
        return hardware.HardwareSupport.GENERIC

    def list_network_interfaces(self):
        return [HOST_NIC]

    def list_hardware_info(self):
        return {'interfaces': self.list_network_interfaces(),
                'hostname': 'agent-1'}


@pytest.fixture
def identity(monkeypatch):
    monkeypatch.setenv(agent_identity.MAC_VARIABLE, MAC.upper())
    return agent_identity.SandboxIdentityHardwareManager()


@pytest.fixture
def no_identity(monkeypatch):
    monkeypatch.delenv(agent_identity.MAC_VARIABLE, raising=False)
    return agent_identity.SandboxIdentityHardwareManager()


def _loaded(*managers):
    return mock.patch.object(hardware, 'get_managers', autospec=True,
                             return_value=list(managers))


def test_the_sandbox_sets_the_variable_the_manager_reads():
    assert agent_process.MAC_VARIABLE == agent_identity.MAC_VARIABLE


def test_inert_without_a_mac(no_identity):
    assert no_identity.mac is None
    assert (no_identity.evaluate_hardware_support()
            == hardware.HardwareSupport.NONE)
    with pytest.raises(ipa_errors.IncompatibleHardwareMethodError):
        no_identity.list_network_interfaces()
    with pytest.raises(ipa_errors.IncompatibleHardwareMethodError):
        no_identity.list_hardware_info()


def test_one_interface_with_the_agents_mac(identity):
    assert (identity.evaluate_hardware_support()
            > hardware.HardwareSupport.MAINLINE)
    interfaces = identity.list_network_interfaces()
    assert [(i.name, i.mac_address) for i in interfaces] == [
        ('sandbox0', MAC)]


@pytest.mark.parametrize('value', ['not-a-mac', '01:00:5e:00:00:01',
                                   '02:00:5e:10:20'])
def test_a_bad_mac_stops_the_agent(monkeypatch, value):
    monkeypatch.setenv(agent_identity.MAC_VARIABLE, value)
    with pytest.raises(ipa_errors.HardwareManagerConfigurationError):
        agent_identity.SandboxIdentityHardwareManager()


def test_lookup_inventory_carries_only_the_agents_mac(identity):
    # The cinder manager (inherited list_hardware_info) cannot build an
    # inventory: the next one does, and its interfaces are replaced.
    with _loaded(cinder_manager.CinderHardwareManager(), identity,
                 _HostInventory()):
        info = hardware.dispatch_to_managers('list_hardware_info')
        interfaces = hardware.dispatch_to_managers('list_network_interfaces')
    assert [i.mac_address for i in info['interfaces']] == [MAC]
    assert info['hostname'] == 'agent-1'
    assert [i.mac_address for i in interfaces] == [MAC]


def test_without_a_mac_the_host_inventory_is_untouched(no_identity):
    host = _HostInventory()
    with _loaded(host):
        info = hardware.dispatch_to_managers('list_hardware_info')
    assert info['interfaces'] == [HOST_NIC]


def test_no_other_inventory_is_incompatible(identity):
    with _loaded(identity):
        with pytest.raises(ipa_errors.HardwareManagerMethodNotFound):
            hardware.dispatch_to_managers('list_hardware_info')
