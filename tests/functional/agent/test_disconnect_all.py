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

"""``cinder.disconnect_all`` of a real, confined IPA, with all_iscsi_sessions.

The agent runs the real ``iscsiadm`` against this host's kernel. A real
iSCSI session only exists in a virtual machine (tests/functional/vm); here
the host has none, and these tests refuse to run if it has any: the
command logs out every session it sees, and the host's own must never be
one of them.
"""

import os
import uuid

import pytest

SESSIONS = '/sys/class/iscsi_session'


@pytest.fixture(autouse=True)
def no_host_sessions():
    if os.path.isdir(SESSIONS) and os.listdir(SESSIONS):
        pytest.skip('this host has iSCSI sessions of its own: '
                    'cinder.disconnect_all(all_iscsi_sessions) would log '
                    'them out')
    yield
    assert not (os.path.isdir(SESSIONS) and os.listdir(SESSIONS))


def _connect(agent, loop):
    volume, attachment = str(uuid.uuid4()), str(uuid.uuid4())
    agent.command('cinder.connect_volume', {
        'volume_id': volume, 'attachment_id': attachment,
        'connection_info': {'driver_volume_type': 'local',
                            'data': {'device_path': loop.path}}})
    return volume


def test_all_iscsi_sessions_with_none_on_the_host(agent, loops):
    volume = _connect(agent, loops[0])
    result = agent.command('cinder.disconnect_all',
                           {'all_iscsi_sessions': True})
    assert result == {'disconnected': [volume], 'sessions_logged_out': []}
    assert agent.command('cinder.list_connections')['connections'] == []
    # Nothing left: a second run is a success with nothing to do.
    assert agent.command('cinder.disconnect_all', {
        'all_iscsi_sessions': True}) == {'disconnected': [],
                                         'sessions_logged_out': []}
    log = agent.read_log()
    assert 'logged out of 0 other iSCSI session(s)' in log
    # (IPA without Ironic logs a traceback of its own after every
    # asynchronous command: it has no heartbeater to force.)
    assert not [line for line in log.splitlines()
                if line.startswith('  File ') and '/ipa_cinder/' in line]


def test_without_the_flag_as_deploy_step_45(agent, loops):
    volume = _connect(agent, loops[1])
    assert agent.command('cinder.disconnect_all') == {
        'disconnected': [volume], 'sessions_logged_out': []}


@pytest.mark.parametrize('value', ['perhaps', [True], {'a': 1}, 2, 1.5])
def test_non_boolean_refused(agent, value):
    response = agent.post_command('cinder.disconnect_all',
                                  {'all_iscsi_sessions': value}, timeout=60)
    assert response.status_code == 400, response.text[:500]
    assert 'all_iscsi_sessions must be a boolean' in response.text
    assert 'Traceback' not in response.text
