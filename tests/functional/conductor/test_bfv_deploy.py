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

"""cinder-agent deploys: real Ironic 39, IPA 13, Cinder 29 and os-brick."""

import glob
import hashlib
import os
import re
import subprocess
import uuid

import pytest

from ipa_cinder.common import connection
from ipa_cinder_sandbox import device_broker
from tests.functional.conductor import conftest as helpers


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _volume_connectors(sandbox, node):
    return sandbox.ironic.get('/v1/volume/connectors?node=%s&detail=True'
                              % node['uuid'])['connectors']


def _target(sandbox, target):
    return sandbox.ironic.get('/v1/volume/targets/%s' % target['uuid'])


def test_bfv_deploy_local_end_to_end(sandbox, deployer):
    image = sandbox.image
    deployer.image = dict(image, url='%s/%s' % (sandbox.http_url,
                                                image['name']))
    volume = sandbox.create_volume(size=1, volume_type='local')
    node = deployer.create_node()
    target = deployer.add_target(node, volume)

    active, agent = deployer.deploy(node)
    attachments = deployer.attachments(volume['id'])
    assert len(attachments) == 1
    assert attachments[0]['status'] == 'attached'
    assert attachments[0]['instance'] == node['uuid']
    assert sandbox.get_volume(volume['id'])['status'] == 'in-use'
    # The image's bytes are on the volume: the whole partition (the GPT
    # headers around it are rewritten by IPA for the larger disk).
    with open(image['path'], 'rb') as f:
        written = f.read()
    start, end = image['partition_offset'], image['size'] - 34 * 512
    assert _sha256(deployer.volume_bytes(volume, end)[start:]) == \
        _sha256(written[start:end])
    info = active['driver_internal_info']
    assert info['boot_from_volume'] == target['uuid']
    assert list(info['cinder_attachments']) == [volume['id']]
    properties = _target(sandbox, target)['properties']
    assert properties['driver_volume_type'] == 'local'
    assert properties['device_path'].startswith('/dev/loop')
    connectors = {c['type'] for c in _volume_connectors(sandbox, node)}
    assert 'iqn' in connectors
    log = agent.read_log()
    assert 'Install device is the boot volume %s' % volume['id'] in log
    assert 'cinder.disconnect_all: disconnected 1 volume' in log

    deployer.undeploy(node)
    assert deployer.attachments(volume['id']) == []
    assert sandbox.get_volume(volume['id'])['status'] == 'available'
    kept = _target(sandbox, target)
    assert 'device_path' not in kept['properties']
    assert kept['volume_id'] == volume['id']

    # Again, with no image: the volume keeps the OS it holds.
    before = _sha256(deployer.volume_bytes(volume, image['size']))
    active, agent = deployer.deploy(node)
    assert len(deployer.attachments(volume['id'])) == 1
    with open(os.path.join(sandbox.state_dir, 'log', 'ironic.log')) as f:
        assert ('Node %s: no image_source, the boot volume keeps the '
                'operating system' % node['uuid']) in f.read()
    assert _sha256(deployer.volume_bytes(volume, image['size'])) == before
    deployer.undeploy(node)
    assert deployer.attachments(volume['id']) == []


def test_boot_configuration_and_data_volume(sandbox, deployer, os_image):
    boot = sandbox.create_volume(size=1, volume_type='local')
    data = sandbox.create_volume(size=1, volume_type='local')
    node = deployer.create_node()
    deployer.add_target(node, boot, boot_index=0)
    deployer.add_target(node, data, boot_index=1)

    deployer.deploy(node)
    for volume in (boot, data):
        attachments = deployer.attachments(volume['id'])
        assert [a['status'] for a in attachments] == ['attached']
    iqns = [c['connector_id'] for c in _volume_connectors(sandbox, node)
            if c['type'] == 'iqn']
    assert len(iqns) == 1
    # The OS on the boot volume now carries the node's initiator name.
    target = '%s?offset=%d' % (sandbox.volume_file(boot), os_image['offset'])
    written = subprocess.run(['debugfs', '-R',
                              'cat /etc/iscsi/initiatorname.iscsi', target],
                             check=True, capture_output=True,
                             text=True).stdout
    assert written == 'InitiatorName=%s\n' % iqns[0]
    assert helpers.OLD_INITIATOR not in written
    deployer.undeploy(node)
    for volume in (boot, data):
        assert deployer.attachments(volume['id']) == []


def test_rw_sharing_of_a_volume_in_use_is_refused(sandbox, deployer):
    volume = sandbox.create_volume(size=1, volume_type='local')
    other = sandbox.cinder.post('/attachments', {'attachment': {
        'volume_uuid': volume['id'], 'connector': sandbox.connector(
            'another-host'), 'mode': 'rw'}}, microversion='3.54')[
        'attachment']
    sandbox.cinder.post('/attachments/%s/action' % other['id'],
                        {'os-complete': None}, microversion='3.44',
                        expect=(200, 204))
    node = deployer.create_node()
    deployer.add_target(node, volume)
    failed, _agent = deployer.deploy(node, expect='deploy failed')
    assert volume['id'] in failed['last_error']
    assert 'not multiattach' in failed['last_error']
    # Only the other host's attachment is there; nothing leaked.
    assert [a['id'] for a in deployer.attachments(volume['id'])] == [
        other['id']]


def test_iscsi_volume_rolls_back_and_keeps_chap_secret(sandbox, deployer):
    volume = sandbox.create_volume(size=1, volume_type='iscsi')
    node = deployer.create_node()
    deployer.add_target(node, volume, volume_type='iscsi')
    failed, agent = deployer.deploy(node, expect='deploy failed')
    error = failed['last_error']
    assert volume['id'] in error
    assert 'iSCSI' in error
    assert deployer.attachments(volume['id']) == []
    assert sandbox.get_volume(volume['id'])['status'] == 'available'
    secret = sandbox.export_chap(volume['id'])[1]
    logs = glob.glob(os.path.join(sandbox.state_dir, 'log', '*.log'))
    logs.append(agent.log_path)
    for path in logs:
        with open(path, errors='replace') as f:
            assert secret not in f.read(), path
    assert secret not in error


@pytest.mark.parametrize('problem', ['missing', 'error', 'other-project'])
def test_unusable_volume_fails_clearly(sandbox, deployer, problem):
    if problem == 'missing':
        volume = {'id': str(uuid.uuid4())}
    else:
        volume = sandbox.create_volume(size=1, volume_type='local')
    node = deployer.create_node()
    if problem == 'error':
        sandbox.cinder.post('/volumes/%s/action' % volume['id'],
                            {'os-reset_status': {'status': 'error'}},
                            microversion='3.0', expect=(202,))
    elif problem == 'other-project':
        # The node is leased to a project that does not own the volume.
        sandbox.ironic.patch('/v1/nodes/%s' % node['uuid'], [
            {'op': 'add', 'path': '/lessee', 'value': uuid.uuid4().hex}])
    deployer.add_target(node, volume)
    failed, _agent = deployer.deploy(node, expect='deploy failed')
    error = failed['last_error']
    assert volume['id'] in error and node['uuid'] in error
    expected = {'missing': 'HTTP 404', 'error': 'the volume is error',
                'other-project': 'neither the node'}[problem]
    assert expected in error
    assert deployer.attachments(node=node) == []
    if problem == 'error':
        sandbox.cinder.post('/volumes/%s/action' % volume['id'],
                            {'os-reset_status': {'status': 'available'}},
                            microversion='3.0', expect=(202,))


def test_read_only_multiattach_shared_by_two_nodes(sandbox, deployer):
    boot1 = sandbox.create_volume(size=1, volume_type='local')
    boot2 = sandbox.create_volume(size=1, volume_type='local')
    shared = sandbox.create_volume(size=1, volume_type='local-multiattach')
    assert shared['multiattach'] is True

    first = deployer.create_node()
    deployer.add_target(first, boot1, boot_index=0)
    deployer.add_target(first, shared, boot_index=1, attach_mode='ro')
    deployer.deploy(first)
    # One MAC, one agent: move the first node's port out of the way.
    deployer.release_port(first)

    second = deployer.create_node()
    deployer.add_target(second, boot2, boot_index=0)
    deployer.add_target(second, shared, boot_index=1, attach_mode='ro')
    deployer.deploy(second)

    attachments = deployer.attachments(shared['id'])
    assert sorted(a['instance'] for a in attachments) == sorted(
        [first['uuid'], second['uuid']])
    assert {a['attach_mode'] for a in attachments} == {'ro'}
    assert {a['status'] for a in attachments} == {'attached'}
    assert sandbox.get_volume(shared['id'])['status'] == 'in-use'

    deployer.undeploy(second)
    remaining = deployer.attachments(shared['id'])
    assert [a['instance'] for a in remaining] == [first['uuid']]


def test_cinder_api_down_is_ridden_through(sandbox, deployer):
    volume = sandbox.create_volume(size=1, volume_type='local')
    node = deployer.create_node()
    deployer.add_target(node, volume)
    log_path = os.path.join(sandbox.state_dir, 'log', 'ironic.log')
    with open(log_path, 'rb') as f:
        f.seek(0, os.SEEK_END)
        offset = f.tell()
    deployer.deploy(node, cinder_down_for=6)
    with open(log_path, 'rb') as f:
        f.seek(offset)
        log = f.read().decode(errors='replace')
    assert 'failed on attempt 1 of' in log
    assert len(deployer.attachments(volume['id'])) == 1
    deployer.undeploy(node)
    assert deployer.attachments(volume['id']) == []


def test_attachment_left_by_an_interrupted_run_is_reused(sandbox, deployer):
    """A conductor that died after creating the attachment, before saving.

    Cinder knows an attachment of (volume, node) that Ironic does not: the
    step must adopt it (giving it the connector), never add a second one.
    """
    volume = sandbox.create_volume(size=1, volume_type='local')
    node = deployer.create_node()
    deployer.add_target(node, volume)
    orphan = sandbox.cinder.post('/attachments', {'attachment': {
        'volume_uuid': volume['id'], 'instance_uuid': node['uuid']}},
        microversion='3.27')['attachment']
    deployer.deploy(node)
    attachments = deployer.attachments(volume['id'])
    assert [a['id'] for a in attachments] == [orphan['id']]
    assert attachments[0]['status'] == 'attached'
    deployer.undeploy(node)
    assert deployer.attachments(volume['id']) == []


def test_cleaning_detaches_and_never_erases_volumes(sandbox, deployer):
    """A node taken back with its volume still connected and attached.

    The agent of a previous life of the node left the volume connected
    (recorded in its state, as an iBFT login would be) and Cinder still
    has the node's attachment. Cleaning with ``cinder_detach_volumes``
    before ``erase_devices_metadata`` must disconnect and detach it, and
    the volume's data must come out untouched.
    """
    volume = sandbox.create_volume(size=1, volume_type='local')
    node = deployer.create_node()
    sandbox.set_provision_state(node['uuid'], 'manage')
    sandbox.wait_node(node['uuid'], 'manageable')
    attachment = sandbox.attach_completed(volume['id'], node['uuid'],
                                          sandbox.connector(node['uuid']))
    marker = os.urandom(64 << 10)
    with open(sandbox.volume_file(volume), 'r+b') as f:
        f.write(marker)
    agent_name = sandbox.name('clean-agent')
    agent = sandbox.start_agent(name=agent_name, with_ironic=False)
    with device_broker.DeviceBroker(agent, deployer.volume_dir()) as broker:
        broker.sync()
        agent.command('cinder.connect_volume', {
            'volume_id': volume['id'], 'attachment_id': attachment['id'],
            'connection_info': connection.from_attachment(
                attachment['connection_info'])})
    sandbox.stop_agent(agent)

    _result, agent = deployer.clean(node, [
        {'interface': 'deploy', 'step': 'cinder_detach_volumes'},
        {'interface': 'deploy', 'step': 'erase_devices_metadata'}],
        agent_name=agent_name)
    assert deployer.attachments(node=node) == []
    assert sandbox.get_volume(volume['id'])['status'] == 'available'
    with open(sandbox.volume_file(volume), 'rb') as f:
        assert f.read(len(marker)) == marker
    with open(os.path.join(sandbox.state_dir, 'log', 'ironic.log')) as f:
        assert ('Node %s: agent disconnected 1 volume(s)' % node['uuid']
                in f.read())


def test_ironic_restart_during_deploy_leaks_nothing(sandbox, deployer):
    volume = sandbox.create_volume(size=1, volume_type='local')
    node = deployer.create_node()
    deployer.add_target(node, volume)
    sandbox.set_provision_state(node['uuid'], 'active')
    sandbox.wait_node(node['uuid'], 'wait call-back')
    with deployer.running_agent():
        # Restart Ironic once the attachment exists and the agent writes
        # the image (an asynchronous step: the node waits for a call-back).
        deployer.wait_for(node, lambda n: n['driver_internal_info'].get(
            'cinder_attachments') and n['provision_state'] in (
            'wait call-back', 'deploying'))
        deployer.restart_ironic()
        # The agent keeps heartbeating: the new Ironic resumes the deploy
        # with the attachment it recorded, and creates no other.
        deployer.wait(node, 'active')
    attachments = deployer.attachments(volume['id'])
    assert len(attachments) == 1
    assert attachments[0]['status'] == 'attached'
    deployer.undeploy(node)
    assert deployer.attachments(volume['id']) == []
    assert sandbox.get_volume(volume['id'])['status'] == 'available'


def test_short_image_write_needs_no_heartbeat(sandbox, deployer):
    """The end of a short write_image is noticed without a heartbeat.

    The node waits for its agent as in a direct deploy, while a watch
    without the node's lock asks the agent for at most ``[ipa_cinder]
    write_image_wait`` (5 s). The sandbox's small image is written within
    it unless the machine is very busy: then the heartbeat reports it, as
    before. Either way the steps run in their contract order and the
    deploy ends active.
    """
    volume = sandbox.create_volume(size=1, volume_type='local')
    node = deployer.create_node()
    deployer.add_target(node, volume)
    deployer.deploy(node)
    with open(os.path.join(sandbox.state_dir, 'log', 'ironic.log')) as f:
        log = f.read()
    done = ('Node %s: agent deploy step write_image ended (SUCCEEDED)'
            % node['uuid'])
    left = ('Node %s: agent deploy step write_image still running after'
            % node['uuid'])
    assert done in log or left in log
    if done in log:
        after = log[log.index(done):]
        assert re.search(r"Executing \{'step': 'cinder_configure_boot'.* "
                         r"on node %s" % node['uuid'], after)
    deployer.undeploy(node)
    assert deployer.attachments(volume['id']) == []
