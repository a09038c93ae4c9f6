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

"""Many boot-from-volume deploys at once, on two conductors.

The ``cluster`` sandbox runs ``ironic-api`` and two ``ironic-conductor``
processes on MariaDB and RabbitMQ. Every node has its own MAC, its own
confined agent (own host name and initiator) and a device broker that
grants that agent only the exports of its node's attachments.

* Eight nodes deploy concurrently across both conductors and undeploy:
  each volume attached to its own node only, then nothing left.
* A conductor is SIGKILLed while some of its nodes are inside
  ``cinder_attach_volumes`` (held there by a stopped cinder-api) and
  others wait for their agent: the survivor takes them over; each node
  ends ``active`` or ``deploy failed``, a retry makes it ``active``, no
  volume ever holds two attachments for one node, and undeploy leaves
  nothing.
"""

import os
import signal
import time

import pytest

from tests.functional.faults import leaks
from tests.functional.scale import fleet as fleet_mod

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason='the sandbox needs root')


@pytest.fixture(scope='module')
def image(cluster):
    return fleet_mod.os_image(cluster)


@pytest.fixture
def fleet(cluster, image):
    before = set(cluster._volumes)
    baseline = leaks.process_baseline(cluster)
    fleet = fleet_mod.Fleet(cluster, image)
    fleet.baseline = baseline
    try:
        yield fleet
    finally:
        fleet.close(before)


def _check_attached_to_own_node(fleet):
    for member in fleet.members:
        found = [(a['instance'], a['status'])
                 for a in fleet.attachments(member)]
        assert found == [(member.uuid, 'attached')], (member.uuid, found)
        # The agent was given its own volume's export and nothing else.
        assert len(fleet.granted(member)) == 1, fleet.granted(member)


def _check_nothing_left(cluster, fleet):
    leaks.assert_no_leaks(cluster, volumes=[m.volume for m in fleet.members],
                          nodes=[m.node for m in fleet.members],
                          baseline=fleet.baseline)


def _spread(cluster, fleet):
    return {m.uuid: cluster.box.ironic.conductor_of(m.uuid)
            for m in fleet.members}


def test_eight_nodes_deploy_at_once_on_two_conductors(cluster, fleet):
    fleet.enrol(8)
    spread = _spread(cluster, fleet)
    with fleet_mod.AttachmentWatch(cluster, [m.volume for m in
                                             fleet.members]) as watch:
        began = time.monotonic()
        fleet.set_state('active')
        fleet.wait('wait call-back', timeout=180)
        fleet.start_agents()
        fleet.wait('active', timeout=900)
        took = time.monotonic() - began
        _check_attached_to_own_node(fleet)
        fleet.set_state('deleted')
        fleet.wait('available', timeout=300)
    print('\n8 nodes: all active %.1f s after the deploy request; '
          'conductors %s' % (took, sorted(set(spread.values()))))
    assert not watch.doubled(), watch.doubled()
    assert watch.polls > 0
    fleet.stop_agents()
    _check_nothing_left(cluster, fleet)
    # Both conductors took part (the ring spreads nodes by UUID).
    assert len(set(spread.values())) == 2, spread


def _victim_and_groups(cluster, fleet):
    """The conductor to kill; nodes to hold in attach, nodes to wait.

    Each group gets nodes of the victim and, where it has any, of the
    survivor.
    """
    spread = _spread(cluster, fleet)
    by_conductor = {}
    for uuid, conductor in spread.items():
        by_conductor.setdefault(conductor, []).append(uuid)
    victim = max(by_conductor, key=lambda c: len(by_conductor[c]))
    attaching, waiting = [], []
    for uuids in by_conductor.values():
        half = max(1, len(uuids) // 2)
        attaching += uuids[:half]
        waiting += uuids[half:]
    pick = {m.uuid: m for m in fleet.members}
    return (victim, [pick[u] for u in attaching],
            [pick[u] for u in waiting])


def _process_of(ironic, host):
    """The process name of conductor ``host`` (conductor-N)."""
    return [name for name in ironic.conductor_names()
            if ironic.host_of(name) == host][0]


def _signal_cinder_api(cluster, signum):
    """Signal cinder-api and its workers (it leads its process group)."""
    os.killpg(cluster.box.procs.get('cinder-api')['pid'], signum)


def _in_attach_step(node):
    step = (node.get('deploy_step') or {}).get('step')
    if node['provision_state'] not in ('deploying', 'wait call-back'):
        raise AssertionError('node %s went %s before its attach step could '
                             'be held' % (node['uuid'],
                                          node['provision_state']))
    return step == 'cinder_attach_volumes'


def _failure_reason(cluster, node):
    """The node's last_error, or the error its history keeps.

    Ironic's power state sync clears last_error of a node in a stable
    state once its power state is confirmed, when the error is kept in
    the node's history ([conductor] node_history): a node that failed
    early may be seen only after that.
    """
    if node['last_error']:
        return node['last_error']
    history = cluster.ironic.get('/v1/nodes/%s/history' % node['uuid'])
    return [h['event'] for h in history['history']
            if h['severity'] == 'ERROR']


def test_conductor_killed_mid_attach_and_in_wait_callback(cluster, fleet):
    fleet.enrol(6, first_index=100)
    victim, attaching, waiting = _victim_and_groups(cluster, fleet)
    assert [m for m in attaching
            if cluster.box.ironic.conductor_of(m.uuid) == victim]
    assert [m for m in waiting
            if cluster.box.ironic.conductor_of(m.uuid) == victim]
    ironic = cluster.box.ironic
    with fleet_mod.AttachmentWatch(cluster, [m.volume for m in
                                             fleet.members]) as watch:
        fleet.set_state('active')
        fleet.wait('wait call-back', timeout=180)
        # Cinder requests hang: the attach steps stay inside Cinder calls.
        _signal_cinder_api(cluster, signal.SIGSTOP)
        try:
            fleet.start_agents(attaching)
            for member in attaching:
                fleet.deployer.wait_for(member.node, _in_attach_step,
                                        timeout=300)
            ironic.kill_conductor(_process_of(ironic, victim))
        finally:
            _signal_cinder_api(cluster, signal.SIGCONT)
        fleet.start_agents(waiting)
        ended = fleet.wait('active', timeout=600, accept=('deploy failed',))
        failed = [m for m in fleet.members
                  if ended[m.uuid]['provision_state'] == 'deploy failed']
        for member in failed:
            # Named: the node and why (its conductor went away).
            assert _failure_reason(cluster, ended[member.uuid]), member.uuid
        # A retry of each failed node ends active, on the survivor. A real
        # node reboots into a fresh ramdisk, whose agent looks itself up
        # again (the retry gave the node a new agent token): so here.
        fleet.stop_agents(failed)
        fleet.set_state('active', failed)
        fleet.wait('wait call-back', failed, timeout=180)
        fleet.start_agents(failed)
        fleet.wait('active', timeout=600)
        _check_attached_to_own_node(fleet)
        ironic.start_conductor(_process_of(ironic, victim))
        ironic.wait()
        fleet.set_state('deleted')
        fleet.wait('available', timeout=300)
    print('\nkilled %s; %d of 6 nodes failed and were retried'
          % (victim, len(failed)))
    assert not watch.doubled(), watch.doubled()
    fleet.stop_agents()
    _check_nothing_left(cluster, fleet)
