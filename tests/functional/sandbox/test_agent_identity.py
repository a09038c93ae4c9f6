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

"""Several confined agents at once, each its own node's, on one machine.

Two fake-hardware nodes with ports of different MACs are deployed with
``cinder-agent`` onto a ``local`` boot volume each (a loop device of this
machine), at the same time. Two agents started at once report those MACs
(:mod:`ipa_cinder_sandbox.agent_identity`): each looks up and heartbeats
to its own node, reports its own connector (the conductor records it),
and gets from a device broker owned by its node its own volume's device
and never the other node's.
"""

import concurrent.futures
import os
import time

from ipa_cinder.host import initiator as initiator_file
from ipa_cinder_sandbox import loopdev


def _mac():
    """A locally administered unicast MAC no real NIC has."""
    return '02:%02x:%02x:%02x:%02x:%02x' % tuple(os.urandom(5))


def _bfv_node(sandbox, mac, volume):
    node = sandbox.create_node(
        mac=mac, deploy_interface='cinder-agent',
        properties={'capabilities': 'iscsi_boot:true'})
    sandbox.ironic.post('/v1/volume/targets', {
        'node_uuid': node['uuid'], 'volume_type': 'local',
        'boot_index': 0, 'volume_id': volume['id'], 'properties': {}})
    return node


def _wait_active(sandbox, uuids, timeout=300):
    """Wait for every node to be active; the agent URLs seen meanwhile.

    Ironic forgets ``agent_url`` when a deploy ends, so it is read while
    the nodes deploy.
    """
    seen = {uuid: set() for uuid in uuids}
    pending = set(uuids)
    deadline = time.monotonic() + timeout
    while pending:
        assert time.monotonic() < deadline, 'not active: %s' % pending
        for uuid in sorted(pending):
            node = sandbox.get_node(uuid)
            url = node['driver_internal_info'].get('agent_url')
            if url:
                seen[uuid].add(url)
            assert node['provision_state'] not in ('deploy failed',
                                                   'error'), (
                node['last_error'])
            if node['provision_state'] == 'active':
                pending.discard(uuid)
        time.sleep(0.25)
    return seen


def _in_jail(agent, device):
    """Does ``device`` exist in the agent's private /dev?"""
    return os.path.exists('/proc/%d/root%s' % (agent.jail.inner_pid(),
                                               device))


def test_two_agents_serve_their_own_nodes_at_once(sandbox):
    macs = [_mac(), _mac()]
    volumes = [sandbox.create_volume(size=1, volume_type='local')
               for _ in macs]
    nodes = [_bfv_node(sandbox, mac, volume)
             for mac, volume in zip(macs, volumes)]
    uuids = [node['uuid'] for node in nodes]
    agents, brokers = [], []
    try:
        for uuid in uuids:
            sandbox.set_provision_state(uuid, 'active')
        for uuid in uuids:
            sandbox.wait_node(uuid, 'wait call-back')
        with concurrent.futures.ThreadPoolExecutor(len(macs)) as pool:
            agents.extend(pool.map(
                lambda mac: sandbox.start_agent(mac=mac), macs))
        for agent, uuid in zip(agents, uuids):
            brokers.append(sandbox.device_broker(agent, owner=uuid).start())
        seen_urls = _wait_active(sandbox, uuids)
        for broker in brokers:
            broker.sync()
        _check_identities(sandbox, agents, uuids, seen_urls)
        _check_devices(sandbox, agents, brokers, volumes)
    finally:
        for broker in brokers:
            broker.stop()
        for agent in agents:
            sandbox.stop_agent(agent)
        for uuid in uuids:
            sandbox.delete_node(uuid)
        for volume in volumes:
            sandbox.delete_volume(volume['id'])


def _check_identities(sandbox, agents, uuids, seen_urls):
    connectors = []
    for agent, uuid in zip(agents, uuids):
        # Looked up by its own MAC...
        assert 'Lookup succeeded, node UUID is %s' % uuid in agent.read_log()
        # ...heartbeated to its own node only...
        assert seen_urls[uuid] == {agent.url}
        node = sandbox.get_node(uuid)
        assert node['driver_internal_info'].get('agent_last_heartbeat')
        # ...and answered the conductor's cinder.get_connector for it.
        connector = node['driver_internal_info']['cinder_connector']
        assert connector['host'] == uuid
        assert agent.hostname == agent.name
        # The node's initiator name, written into the agent's own file.
        assert initiator_file.read(agent.initiator_file) == (
            connector['initiator'])
        connectors.append(connector)
    assert connectors[0]['host'] != connectors[1]['host']
    assert connectors[0]['initiator'] != connectors[1]['initiator']


def _check_devices(sandbox, agents, brokers, volumes):
    devices = []
    for volume in volumes:
        found = loopdev.devices_of(sandbox.volume_file(volume))
        assert len(found) == 1, found
        devices.extend(found)
    for index, (agent, broker) in enumerate(zip(agents, brokers)):
        own, other = devices[index], devices[1 - index]
        assert broker.granted == {own}
        assert other in broker.denied
        assert _in_jail(agent, own)
        assert not _in_jail(agent, other)
        # One Cinder query per device it saw (these two, and any another
        # test left), however many times it looked.
        assert broker.queries == len(broker.granted | broker.denied)


def test_agents_without_a_node_report_their_own_host_names(sandbox):
    agents = []
    try:
        for _ in range(2):
            agents.append(sandbox.start_agent(with_ironic=False,
                                              mac=_mac()))
        hosts = [agent.command('cinder.get_connector')['host']
                 for agent in agents]
        assert hosts == [agent.name for agent in agents]
    finally:
        for agent in agents:
            sandbox.stop_agent(agent)
