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

"""Connecting a node's volumes on its agent (conductor/agent_volumes.py).

A ramdisk of an older release cannot exist here: the agent's answers are
given. The real agent's batch command is driven in
tests/functional/agent/test_agent_commands.py and by every deploy of the
functional suite.
"""

import types
from unittest import mock

import pytest

from ipa_cinder.conductor import agent_volumes
from ipa_cinder import exception

NODE = '0b5b1a9e-5e2f-4c34-9a0e-8f1f3c2d7e10'


def _items(count):
    return [types.SimpleNamespace(
        volume_id='vol-%d' % i, attachment={'id': 'att-%d' % i},
        info={'driver_volume_type': 'local', 'data': {}}, mode='rw',
        target=types.SimpleNamespace(boot_index=i), result=None,
        connected=False) for i in range(count)]


@pytest.fixture
def run():
    task = types.SimpleNamespace(node=types.SimpleNamespace(uuid=NODE))
    with mock.patch.object(agent_volumes.agent_commands, 'run',
                           autospec=True) as run:
        run.task = task
        yield run


def test_one_command_for_every_volume_boot_first(run):
    items = _items(3)
    run.return_value = {'connected': [{'device_path': '/dev/x%d' % i}
                                      for i in range(3)]}
    agent_volumes.connect_all(run.task, items)
    run.assert_called_once()
    name, params = run.call_args[0][1:]
    assert name == 'cinder.connect_volumes'
    assert [v['volume_id'] for v in params['volumes']] == [
        'vol-0', 'vol-1', 'vol-2']
    assert [v['boot'] for v in params['volumes']] == [True, False, False]
    assert [i.result['device_path'] for i in items] == [
        '/dev/x0', '/dev/x1', '/dev/x2']
    assert all(i.connected for i in items)


def test_older_agent_gets_one_command_per_volume(run):
    items = _items(2)
    run.side_effect = [
        exception.AgentCommandUnknown('Unknown command: connect_volumes'),
        {'device_path': '/dev/a'}, {'device_path': '/dev/b'}]
    agent_volumes.connect_all(run.task, items)
    assert [c[0][1] for c in run.call_args_list] == [
        'cinder.connect_volumes', 'cinder.connect_volume',
        'cinder.connect_volume']
    assert [i.result for i in items] == [{'device_path': '/dev/a'},
                                         {'device_path': '/dev/b'}]


def test_older_agent_failure_names_the_volume(run):
    items = _items(2)
    run.side_effect = [exception.AgentCommandUnknown('unknown'),
                       {'device_path': '/dev/a'},
                       exception.AgentCommandError('no such target')]
    with pytest.raises(exception.VolumeAttachError) as e:
        agent_volumes.connect_all(run.task, items)
    assert NODE in str(e.value) and 'vol-1' in str(e.value)
    assert [i.connected for i in items] == [True, False]


@pytest.mark.parametrize('answer', [
    exception.AgentCommandError('agent command failed: node x: volume '
                                'vol-1: iSCSI login failed'),
    {'connected': [{}]}, {'connected': 'all'}, {}])
def test_failure_or_odd_answer_leaves_every_volume_to_the_rollback(
        run, answer):
    items = _items(2)
    if isinstance(answer, Exception):
        run.side_effect = answer
    else:
        run.return_value = answer
    with pytest.raises(exception.VolumeAttachError) as e:
        agent_volumes.connect_all(run.task, items)
    assert NODE in str(e.value)
    # Whatever the agent did, the rollback asks it to disconnect each.
    assert all(i.connected for i in items)


def test_disconnect_one_only_logs_a_failure(run, caplog):
    run.side_effect = exception.AgentCommandError('agent gone')
    agent_volumes.disconnect_one(run.task, 'vol-0', 'att-0')
    assert 'could not disconnect volume vol-0' in caplog.text


def _answer(task, name, params):
    return {'connected': [{'device_path': '/dev/%s' % v['volume_id']}
                          for v in params['volumes']]}


def test_more_volumes_than_one_command_takes(run):
    per = agent_volumes.PER_COMMAND
    items = _items(2 * per + 2)
    run.side_effect = _answer
    agent_volumes.connect_all(run.task, items)
    sizes = [len(call[0][2]['volumes']) for call in run.call_args_list]
    assert sizes == [per, per, 2]
    # The boot volume once, in the first command.
    boots = [v['boot'] for call in run.call_args_list
             for v in call[0][2]['volumes']]
    assert boots == [True] + [False] * (2 * per + 1)
    assert all(i.connected for i in items)
    assert items[-1].result == {'device_path': '/dev/vol-%d' % (2 * per + 1)}


def test_failed_later_command_leaves_the_rest_untouched(run):
    per = agent_volumes.PER_COMMAND
    items = _items(2 * per + 2)
    run.side_effect = [_answer(None, None, {'volumes': [
        {'volume_id': 'vol-%d' % i} for i in range(per)]}),
        exception.AgentCommandError('no device')]
    with pytest.raises(exception.VolumeAttachError) as exc:
        agent_volumes.connect_all(run.task, items)
    assert NODE in str(exc.value) and 'no device' in str(exc.value)
    # The rollback disconnects the first two commands' volumes (the second
    # may have connected some before failing); the third was never sent.
    assert all(i.connected for i in items[:2 * per])
    assert not any(i.connected for i in items[2 * per:])
    assert run.call_count == 2


def test_disconnect_one_tells_a_busy_agent(run, caplog):
    run.side_effect = exception.AgentBusy('agent is busy')
    assert agent_volumes.disconnect_one(run.task, 'vol-0', 'att-0') is False
    assert 'could not disconnect' not in caplog.text
    run.side_effect = exception.AgentCommandError('flush failed')
    assert agent_volumes.disconnect_one(run.task, 'vol-0', 'att-0') is True
    assert 'flush failed' in caplog.text
