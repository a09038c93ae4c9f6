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

"""The ``cinder`` extension driven over a real IPA's REST API."""

import os
import socket
import uuid

import pytest
import requests

PASSWORD = 'Chap-Secret-%s' % uuid.uuid4().hex[:12]
CHAP_USER = 'chap-user-%s' % uuid.uuid4().hex[:8]


def ids():
    return str(uuid.uuid4()), str(uuid.uuid4())


def local(device):
    return {'driver_volume_type': 'local', 'data': {'device_path': device}}


def write_through(device, offset, data):
    fd = os.open(device, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_file(path, offset, size):
    with open(path, 'rb') as f:
        f.seek(offset)
        return f.read(size)


def test_get_connector(agent):
    connector = agent.command('cinder.get_connector')
    # No Ironic, so no node: the host name stands in for the node uuid.
    assert connector['host'] == socket.gethostname()
    assert connector['ip'] == '127.0.0.1'
    assert connector['multipath'] is False
    initiator_file = '/etc/iscsi/initiatorname.iscsi'
    if os.path.exists(initiator_file):
        with open(initiator_file) as f:
            expected = [line.split('=', 1)[1].strip() for line in f
                        if line.startswith('InitiatorName=')]
        assert connector['initiator'] == expected[0]


def test_get_connector_bad_boolean(agent):
    response = agent.post_command('cinder.get_connector',
                                  {'multipath': 'perhaps'})
    assert response.status_code == 400
    assert 'multipath must be a boolean' in response.text


def test_connect_write_list_restart_disconnect(agent, loops):
    loop = loops[0]
    volume, attachment = ids()
    result = agent.command('cinder.connect_volume', {
        'volume_id': volume, 'attachment_id': attachment,
        'connection_info': local(loop.path), 'boot': True})
    assert result['device_path'] == loop.path
    assert result['device_info'] == {'type': 'local', 'path': loop.path}
    assert result['reused'] is False and result['boot'] is True

    payload = os.urandom(1 << 20)
    write_through(result['device_path'], 1 << 20, payload)
    assert read_file(loop.backing, 1 << 20, len(payload)) == payload

    listed = agent.command('cinder.list_connections')['connections']
    assert [(c['volume_id'], c['present']) for c in listed] == [
        (volume, True)]

    agent.restart()
    listed = agent.command('cinder.list_connections')['connections']
    assert [c['attachment_id'] for c in listed] == [attachment]

    again = agent.command('cinder.connect_volume', {
        'volume_id': volume, 'attachment_id': attachment,
        'connection_info': local(loop.path), 'boot': True})
    assert again['reused'] is True
    assert len(agent.command('cinder.list_connections')['connections']) == 1

    gone = agent.command('cinder.disconnect_volume', {'volume_id': volume})
    assert [d['attachment_id'] for d in gone['disconnected']] == [attachment]
    assert agent.command('cinder.list_connections')['connections'] == []
    # Disconnecting what is not connected is a success.
    assert agent.command('cinder.disconnect_volume',
                         {'attachment_id': attachment}) == {
        'disconnected': []}


def test_read_only_refuses_writes(agent, loops):
    loop = loops[1]
    volume, attachment = ids()
    result = agent.command('cinder.connect_volume', {
        'volume_id': volume, 'attachment_id': attachment,
        'connection_info': local(loop.path), 'mode': 'ro'})
    assert result['mode'] == 'ro'
    with pytest.raises(OSError):
        write_through(loop.path, 0, b'must not land' * 100)
    assert read_file(loop.backing, 0, 13) == bytes(13)
    agent.command('cinder.disconnect_volume', {'volume_id': volume})
    write_through(loop.path, 0, b'writable again')
    assert read_file(loop.backing, 0, 14) == b'writable again'


def test_iscsi_with_chap_fails_clearly_without_leaking(agent):
    volume, attachment = ids()
    response = agent.post_command('cinder.connect_volume', {
        'volume_id': volume, 'attachment_id': attachment,
        'connection_info': {
            'driver_volume_type': 'iscsi',
            'data': {'target_portal': '127.0.0.1:3260',
                     'target_iqn': 'iqn.2010-10.org.openstack:volume-' +
                     volume, 'target_lun': 1, 'auth_method': 'CHAP',
                     'auth_username': CHAP_USER,
                     'auth_password': PASSWORD}}})
    body = response.json()
    assert body['command_status'] == 'FAILED'
    error = str(body['command_error'])
    assert volume in error and 'iSCSI' in error
    assert PASSWORD not in response.text
    assert agent.command('cinder.list_connections')['connections'] == []
    log = agent.read_log()
    # The agent logged the command and its arguments (debug is on) ...
    assert 'cinder.connect_volume' in log
    # ... but never the CHAP credentials.
    assert PASSWORD not in log
    assert CHAP_USER not in log


def test_connect_volumes_in_one_command(agent, loops):
    (first, att1), (second, att2) = ids(), ids()
    result = agent.command('cinder.connect_volumes', {'volumes': [
        {'volume_id': first, 'attachment_id': att1, 'boot': True,
         'connection_info': local(loops[0].path)},
        {'volume_id': second, 'attachment_id': att2, 'mode': 'ro',
         'connection_info': local(loops[1].path)}]})
    connected = result['connected']
    assert [c['volume_id'] for c in connected] == [first, second]
    assert [c['device_path'] for c in connected] == [loops[0].path,
                                                     loops[1].path]
    assert connected[0]['boot'] is True and connected[1]['mode'] == 'ro'
    listed = agent.command('cinder.list_connections')['connections']
    assert sorted(c['attachment_id'] for c in listed) == sorted([att1, att2])
    # Again: the existing connections are reused, nothing doubles.
    again = agent.command('cinder.connect_volumes', {'volumes': [
        {'volume_id': first, 'attachment_id': att1, 'boot': True,
         'connection_info': local(loops[0].path)}]})
    assert again['connected'][0]['reused'] is True
    agent.command('cinder.disconnect_all')
    assert agent.command('cinder.list_connections')['connections'] == []


def test_connect_volumes_failure_undoes_the_command(agent, loops):
    (first, att1), (second, att2) = ids(), ids()
    response = agent.post_command('cinder.connect_volumes', {'volumes': [
        {'volume_id': first, 'attachment_id': att1,
         'connection_info': local(loops[0].path)},
        {'volume_id': second, 'attachment_id': att2,
         'connection_info': {
             'driver_volume_type': 'iscsi',
             'data': {'target_portal': '127.0.0.1:3260',
                      'target_iqn': 'iqn.2010-10.org.openstack:volume-' +
                      second, 'target_lun': 1, 'auth_method': 'CHAP',
                      'auth_username': CHAP_USER,
                      'auth_password': PASSWORD}}}]})
    body = response.json()
    assert body['command_status'] == 'FAILED'
    error = str(body['command_error'])
    assert second in error and 'iSCSI' in error
    assert PASSWORD not in response.text
    # The first volume, connected by this command, was disconnected.
    assert agent.command('cinder.list_connections')['connections'] == []
    log = agent.read_log()
    assert PASSWORD not in log and CHAP_USER not in log


def test_unknown_command_text_the_conductor_recognises(agent):
    # An agent of an older release has no cinder.connect_volumes: the
    # conductor falls back to one command per volume when IPA says so.
    from ipa_cinder.conductor import agent_commands
    response = agent.post_command('cinder.connect_volumes_of_the_future',
                                  {})
    assert response.status_code == 400
    assert agent_commands._UNKNOWN_COMMAND in response.json()['faultstring']


@pytest.mark.parametrize('volumes, field', [
    ([], 'volumes must be a list of 1 to 64'),
    ('all', 'volumes must be a list'),
    ([{}] * 65, 'volumes must be a list of 1 to 64'),
    (['x'], 'volumes[0] must be an object'),
    ([{'colour': 'blue'}], 'colour'),
])
def test_connect_volumes_refuses_malformed_lists(agent, volumes, field):
    response = agent.post_command('cinder.connect_volumes',
                                  {'volumes': volumes})
    assert response.status_code == 400
    assert field in response.text
    assert 'Traceback' not in response.text


def test_connect_volumes_names_the_bad_item(agent, loops):
    volume, attachment = ids()
    good = {'volume_id': volume, 'attachment_id': attachment,
            'connection_info': local(loops[0].path)}
    bad = dict(good, volume_id=str(uuid.uuid4()), mode='rwx')
    response = agent.post_command('cinder.connect_volumes',
                                  {'volumes': [good, bad]})
    assert response.status_code == 400
    assert 'volumes[1]' in response.text and 'mode' in response.text
    twice = agent.post_command('cinder.connect_volumes',
                               {'volumes': [good, good]})
    assert twice.status_code == 400 and 'listed twice' in twice.text
    assert agent.command('cinder.list_connections')['connections'] == []


@pytest.mark.parametrize('params, field', [
    ({'connection_info': {'driver_volume_type': 'floppy', 'data': {}}},
     'driver_volume_type'),
    ({'connection_info': {'driver_volume_type': 'local', 'data': {}}},
     'data.device_path'),
    ({'connection_info': {'driver_volume_type': 'local',
                          'data': {'device_path': 42}}},
     'data.device_path'),
    ({'connection_info': 'local:/dev/loop0'}, 'connection_info'),
    ({'connection_info': {'driver_volume_type': 'iscsi',
                          'data': {'target_portal': '127.0.0.1:3260',
                                   'target_iqn': 'iqn.x',
                                   'target_lun': 'first'}}},
     'data.target_lun'),
    ({'mode': 'rwx'}, 'mode'),
    ({'boot': 'maybe'}, 'boot'),
    ({'volume_id': '../../etc'}, 'volume_id'),
    ({'colour': 'blue'}, 'colour'),
])
def test_malformed_input_is_refused_clearly(agent, loops, params, field):
    volume, attachment = ids()
    full = {'volume_id': volume, 'attachment_id': attachment,
            'connection_info': local(loops[0].path)}
    full.update(params)
    response = agent.post_command('cinder.connect_volume', full)
    assert response.status_code == 400
    assert field in response.text
    assert 'Traceback' not in response.text
    assert agent.command('cinder.list_connections')['connections'] == []


def test_disconnect_needs_an_id(agent):
    response = agent.post_command('cinder.disconnect_volume', {})
    assert response.status_code == 400
    assert 'volume_id or attachment_id' in response.text


def test_agent_sees_only_granted_devices(agent, loops):
    root = '/proc/%d/root/dev' % agent.jail.inner_pid()
    block = sorted('/dev/' + name for name in os.listdir(root)
                   if os.path.exists(os.path.join(root, name))
                   and not os.path.islink(os.path.join(root, name))
                   and os.path.isfile(os.path.join(root, name)) is False
                   and name != 'shm' and os.stat(os.path.join(
                       root, name)).st_mode & 0o060000 == 0o060000)
    assert block == sorted(loop.path for loop in loops)


def test_power_off_is_harmless(agent):
    response = agent.post_command('standby.power_off', {})
    assert response.status_code < 500
    log = agent.read_log()
    assert 'refused by the ipa-cinder sandbox' in log
    # The agent itself is still there and still answers.
    assert agent.command('cinder.list_connections') == {'connections': []}


def test_commands_need_the_agent_token(agent):
    response = requests.post(agent.url + '/v1/commands/',
                             json={'name': 'cinder.list_connections',
                                   'params': {}}, timeout=10)
    assert response.status_code == 401
