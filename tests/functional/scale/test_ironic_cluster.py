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

"""Ironic as deployed at scale: nodes spread, a dead conductor's move.

The real ironic-api and two ironic-conductor processes on MariaDB and
RabbitMQ. Nodes are fake hardware with fake MACs (no agent is involved):
what is tested is Ironic's own distribution of nodes over conductors, and
that the sandbox's liveness options make a SIGKILLed conductor's nodes
move to the survivor in well under a minute.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from ipa_cinder_sandbox import polling

#: Nodes created at first; more (up to MAX_NODES) only if the hash ring
#: happened to give them all to one conductor.
FIRST_NODES = 6
MAX_NODES = 16
#: The conductor killed and started again.
VICTIM = 'ironic-conductor-2'
#: Bound on the take-over: heartbeat_timeout (10 s) + hash ring refresh
#: (5 s) + the polls, with room for a busy machine.
TAKEOVER_TIMEOUT = 60


def _mac(number):
    # Locally administered, so never a real NIC's address.
    return '02:1c:5c:a1:00:%02x' % number


def _mapping(cluster, nodes):
    return {uuid: cluster.box.ironic.conductor_of(uuid) for uuid in nodes}


@pytest.fixture(scope='module')
def spread(cluster):
    """(node UUIDs, {UUID: conductor host}) as the API placed them."""
    nodes = []
    while len(nodes) < MAX_NODES:
        node = cluster.create_node(name=cluster.name('scale'),
                                   mac=_mac(len(nodes)))
        nodes.append(node['uuid'])
        if len(nodes) >= FIRST_NODES and len(set(
                _mapping(cluster, nodes).values())) > 1:
            break
    return nodes, _mapping(cluster, nodes)


def test_every_conductor_alive(cluster):
    ironic = cluster.box.ironic
    assert ironic.conductor_names() == ['ironic-conductor-1',
                                        'ironic-conductor-2']
    assert ironic.conductors() == {'conductor-1': True, 'conductor-2': True}
    for name in ironic.process_names():
        assert cluster.box.procs.alive(name), name
    assert not cluster.box.procs.alive('ironic')
    assert cluster.info['conductors'] == 2


def test_cli_status_shows_the_cluster(cluster):
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), 'ipa-cinder-sandbox'),
         '--state-dir', cluster.state_dir, 'status'],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status['conductors'] == 2
    for name in cluster.box.ironic.process_names():
        assert status['processes'][name]['running'], name
    assert status['ironic_conductors'] == {'conductor-1': True,
                                           'conductor-2': True}
    assert status['services']['ironic'] is True


def test_nodes_spread_over_conductors(cluster, spread):
    nodes, mapping = spread
    held = sorted(set(mapping.values()))
    assert held == ['conductor-1', 'conductor-2'], mapping
    print('\n%d nodes, per conductor: %s' % (len(nodes), {
        host: list(mapping.values()).count(host) for host in held}))


def _wait_taken_over(cluster, nodes):
    ironic = cluster.box.ironic

    def moved():
        alive = ironic.conductors()
        mapping = _mapping(cluster, nodes)
        return (not alive.get('conductor-2')
                and set(mapping.values()) == {'conductor-1'})
    began = time.monotonic()
    polling.wait_until(moved, TAKEOVER_TIMEOUT,
                       'nodes of %s on conductor-1' % VICTIM, interval=0.5)
    return time.monotonic() - began


def test_survivor_takes_over_killed_conductors_nodes(cluster, spread):
    nodes, mapping = spread
    ironic = cluster.box.ironic
    victims = [uuid for uuid, host in mapping.items()
               if host == 'conductor-2']
    assert victims, mapping
    ironic.kill_conductor(VICTIM)
    assert not cluster.box.procs.alive(VICTIM)
    seconds = _wait_taken_over(cluster, nodes)
    print('\nnodes of the killed conductor on the survivor after %.1fs'
          % seconds)
    assert ironic.conductors()['conductor-1'] is True

    # The survivor manages a node it did not hold before.
    node = victims[0]
    cluster.set_provision_state(node, 'manage')
    cluster.wait_node(node, 'manageable')
    cluster.set_provision_state(node, 'provide')
    cluster.wait_node(node, 'available')
    log = ironic.log_tail('ironic-conductor-1', 100000)
    assert ('Node %s moved to provision state "manageable" from state '
            '"available"' % node) in log


def test_restarted_conductor_rejoins(cluster, spread):
    nodes, mapping = spread
    ironic = cluster.box.ironic
    if cluster.box.procs.alive(VICTIM):
        ironic.kill_conductor(VICTIM)
    began = time.monotonic()
    ironic.start_conductor(VICTIM)
    ironic.wait_alive([VICTIM], timeout=120)
    rejoined = time.monotonic() - began
    assert ironic.conductors() == {'conductor-1': True, 'conductor-2': True}
    # The ring is the same as before the crash: every node goes back.
    polling.wait_until(
        lambda: _mapping(cluster, nodes) == mapping,
        TAKEOVER_TIMEOUT, 'nodes back on %s' % VICTIM, interval=0.5)
    print('\n%s alive again after %.1fs, its nodes back after %.1fs'
          % (VICTIM, rejoined, time.monotonic() - began))
    # It updated its old registration rather than joining as a stranger.
    assert ('A conductor with hostname conductor-2 was previously '
            'registered' in ironic.log_tail(VICTIM, 100000))
