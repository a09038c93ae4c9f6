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

"""What an operator gets wrong, caught before or during a deploy.

Each test fails without the fix it names: a 400 instead of an
unexpected 500, a node without volumes that does not need Cinder, an
ownership check that also covers adopted attachments, volume connectors
that do not pile up, and interface combinations that cannot work.
"""

import uuid


def _validate(sandbox, node):
    return sandbox.ironic.get('/v1/nodes/%s/validate' % node['uuid'])


def _connectors(sandbox, node):
    return sorted((c['type'], c['connector_id']) for c in sandbox.ironic.get(
        '/v1/volume/connectors?node=%s&detail=True' % node['uuid'])[
            'connectors'])


def test_invalid_attach_mode_is_a_clear_400(sandbox, deployer):
    volume = sandbox.create_volume(size=1, volume_type='local')
    node = deployer.create_node()
    target = deployer.add_target(node, volume, attach_mode='rx')

    result = _validate(sandbox, node)['deploy']
    assert result['result'] is False
    for named in (node['uuid'], target['uuid'], volume['id'],
                  'attach_mode', "'rx'"):
        assert named in result['reason']
    assert 'Unexpected exception' not in result['reason']

    response = sandbox.ironic.raw(
        'PUT', '/v1/nodes/%s/states/provision' % node['uuid'],
        json={'target': 'active'})
    assert response.status_code == 400, response.text
    assert 'attach_mode' in response.text
    assert sandbox.get_node(node['uuid'])['provision_state'] == 'available'


def test_legacy_storage_interface_is_refused(sandbox, deployer):
    volume = sandbox.create_volume(size=1, volume_type='local')
    node = deployer.create_node()
    deployer.add_target(node, volume)
    sandbox.ironic.patch('/v1/nodes/%s' % node['uuid'], [
        {'op': 'replace', 'path': '/storage_interface', 'value': 'cinder'}])
    result = _validate(sandbox, node)['deploy']
    assert result['result'] is False
    assert 'storage_interface "cinder"' in result['reason']
    assert node['uuid'] in result['reason']


def test_node_without_volumes_undeploys_with_cinder_down(sandbox, deployer):
    """A cinder-agent node with no volume never needs Cinder to undeploy.

    The node is adopted (active without a deploy: no agent, no disk),
    then undeployed while cinder-api is down: without the fix the undeploy
    lists the node's attachments and waits out the retries.
    """
    node = deployer.create_node()
    sandbox.set_provision_state(node['uuid'], 'manage')
    sandbox.wait_node(node['uuid'], 'manageable')
    sandbox.set_provision_state(node['uuid'], 'adopt')
    sandbox.wait_node(node['uuid'], 'active')
    restart = deployer.stop_cinder_api(30)
    try:
        deployer.undeploy(node)
        assert restart.is_alive(), 'the undeploy waited for Cinder'
    finally:
        restart.join()


def test_adopted_attachment_of_a_foreign_volume_is_refused(
        sandbox, deployer):
    """The ownership check covers attachments the step did not create."""
    volume = sandbox.create_volume(size=1, volume_type='local')
    node = deployer.create_node()
    deployer.add_target(node, volume)
    lessee = uuid.uuid4().hex
    sandbox.ironic.patch('/v1/nodes/%s' % node['uuid'], [
        {'op': 'add', 'path': '/lessee', 'value': lessee}])
    # Left by an earlier run (or made by someone else for this node).
    sandbox.cinder.post('/attachments', {'attachment': {
        'volume_uuid': volume['id'], 'instance_uuid': node['uuid']}},
        microversion='3.27')
    failed, _agent = deployer.deploy(node, expect='deploy failed')
    error = failed['last_error']
    assert 'neither the node' in error and lessee in error
    assert volume['id'] in error and node['uuid'] in error
    # Nothing was connected or completed for it.
    assert [a['status'] for a in deployer.attachments(volume['id'])] == [
        'reserved']
    sandbox.ironic.patch('/v1/nodes/%s' % node['uuid'], [
        {'op': 'remove', 'path': '/lessee'}])
    deployer.undeploy(node)
    assert deployer.attachments(volume['id']) == []


def test_volume_connectors_of_earlier_deploys_do_not_pile_up(
        sandbox, deployer):
    """The interface's own connectors follow what the agent reports now."""
    volume = sandbox.create_volume(size=1, volume_type='local')
    node = deployer.create_node()
    deployer.add_target(node, volume)
    operators = ('wwpn', '2000000000000001')
    sandbox.ironic.post('/v1/volume/connectors', {
        'node_uuid': node['uuid'], 'type': operators[0],
        'connector_id': operators[1]})
    deployer.deploy(node)
    assert ('ip', '127.0.0.1') in _connectors(sandbox, node)
    deployer.undeploy(node)
    # The node comes back with another address (all of 127/8 is loopback).
    moved = {'DEFAULT': {'listen_host': '127.0.0.2',
                         'advertise_host': '127.0.0.2'}}
    deployer.deploy(node, agent_conf=moved)
    recorded = _connectors(sandbox, node)
    assert ('ip', '127.0.0.2') in recorded
    assert ('ip', '127.0.0.1') not in recorded
    assert operators in recorded
    assert [t for t, _id in recorded].count('iqn') == 1
    deployer.undeploy(node)


def test_each_node_logs_in_with_its_own_initiator_name(sandbox, deployer):
    """One ramdisk image, many nodes: each gets its own, stable name.

    A name held by another node is an error naming both nodes.
    """
    volume = sandbox.create_volume(size=1, volume_type='local')
    node = deployer.create_node()
    deployer.add_target(node, volume)
    deployer.deploy(node)
    iqns = [i for t, i in _connectors(sandbox, node) if t == 'iqn']
    assert iqns == ['iqn.2010-10.org.openstack.ipa-cinder:%s'
                    % node['uuid']]
    deployer.undeploy(node)
    deployer.release_port(node)

    # Another node whose operator chose the same name.
    second_volume = sandbox.create_volume(size=1, volume_type='local')
    second = deployer.create_node(
        properties={'iscsi_initiator_iqn': iqns[0]})
    deployer.add_target(second, second_volume)
    failed, _agent = deployer.deploy(second, expect='deploy failed')
    error = failed['last_error']
    assert iqns[0] in error
    assert node['uuid'] in error and second['uuid'] in error
    assert deployer.attachments(second_volume['id']) == []
