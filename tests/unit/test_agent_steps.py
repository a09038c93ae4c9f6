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

"""The watch of an in-band agent step (conductor/agent_steps.py).

The agent's HTTP API and Ironic's database cannot exist in a unit test:
the agent client answers canned command lists and the node lock is a
stand-in that records how it was taken (the real path is exercised by
tests/functional/conductor/test_bfv_deploy.py).
"""

import contextlib
import json
import logging
import types
from unittest import mock

from ironic.common import exception as ironic_exc
import pytest
import requests

from ipa_cinder.conductor import agent_steps

STEP = {'interface': 'deploy', 'step': 'write_image', 'priority': 80,
        'args': {}}
AGENT_URL = 'http://192.0.2.10:9999/v1/commands/'
TOKEN = 'T0KEN-5ecret-4f1b'


def _command(status, step=None, name='execute_deploy_step', cid='cmd-1'):
    # As IPA serializes a command: its step only once it has ended.
    return {'id': cid, 'command_name': name, 'command_status': status,
            'command_error': None,
            'command_result': (None if status == 'RUNNING' else
                               {'deploy_step': dict(step or STEP),
                                'deploy_result': None})}


def _response(status_code, body, url=AGENT_URL):
    response = requests.Response()
    response.status_code = status_code
    response.url = url
    response._content = (body if isinstance(body, bytes)
                         else json.dumps(body).encode())
    return response


class _Session(object):
    """Answers the long-poll GETs in turn; an agent without it by default."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def get(self, url, **kwargs):
        self.calls.append(dict(kwargs, url=url))
        answer = (self.answers.pop(0) if self.answers
                  else _response(404, {'faultstring': 'Not Found'}))
        if isinstance(answer, Exception):
            raise answer
        return answer


class _Agent(object):
    """Answers get_commands_status with the given lists, in turn."""

    def __init__(self, *answers, session=None):
        self.answers = list(answers)
        self.calls = 0
        self.session = session or _Session()

    def _get_command_url(self, node):
        return AGENT_URL

    def _get_verify(self, node):
        return '/etc/ironic/agent-ca.pem'

    def get_commands_status(self, node, retry_connection=True,
                            expect_errors=False):
        self.calls += 1
        answer = self.answers[min(self.calls, len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer


class _Node(object):
    def __init__(self, state='wait call-back', step=None, maintenance=False):
        self.uuid = 'node-1'
        self.provision_state = state
        self.deploy_step = dict(step or STEP)
        self.maintenance = maintenance
        self.driver_internal_info = {}


@pytest.fixture
def world(monkeypatch):
    """The node, the agent, and every lock taken."""
    state = types.SimpleNamespace(node=_Node(), agent=_Agent(), locks=[],
                                  processed=[], locked=False)

    @contextlib.contextmanager
    def acquire(context, node_uuid, shared=False, purpose=None):
        if not shared and state.locked:
            raise ironic_exc.NodeLocked(node=node_uuid, host='other')
        state.locks.append('shared' if shared else 'exclusive')
        deploy = types.SimpleNamespace(
            _heartbeat_deploy_wait=lambda task: state.processed.append(
                task.node.uuid))
        yield types.SimpleNamespace(node=state.node, context=context,
                                    driver=types.SimpleNamespace(
                                        deploy=deploy))

    monkeypatch.setattr(agent_steps.task_manager, 'acquire', acquire)
    monkeypatch.setattr(agent_steps.agent_long_poll.agent_client, 'get_client',
                        lambda task: state.agent)
    monkeypatch.setattr(agent_steps, 'POLL_INTERVAL', 0.01)
    return state


def test_ended_at_once_is_processed_like_a_heartbeat(world):
    world.agent = _Agent([_command('SUCCEEDED')])
    agent_steps._watch(None, 'node-1', 2)
    assert world.processed == ['node-1']
    # Polling never holds the node's lock; processing takes it once.
    assert world.locks == ['shared', 'exclusive']


def test_ended_after_running(world):
    world.agent = _Agent([_command('RUNNING')], [_command('RUNNING')],
                         [_command('SUCCEEDED')])
    assert agent_steps.ended_within(None, 'node-1', 2)
    assert world.agent.calls == 3


@pytest.mark.parametrize('status', ['FAILED', 'VERSION_MISMATCH'])
def test_any_end_goes_to_ironic(world, status):
    # Ironic's heartbeat code handles failures: the watch hands them over.
    world.agent = _Agent([_command(status)])
    agent_steps._watch(None, 'node-1', 2)
    assert world.processed == ['node-1']


def test_still_running_after_the_wait_is_left_to_the_heartbeat(world):
    world.agent = _Agent([_command('RUNNING')])
    agent_steps._watch(None, 'node-1', 0.1)
    assert world.processed == []
    assert 'exclusive' not in world.locks


def test_previous_step_result_is_not_this_step(world):
    previous = dict(STEP, step='erase_devices_metadata')
    world.agent = _Agent([_command('SUCCEEDED', step=previous)],
                         [_command('SUCCEEDED')])
    assert agent_steps.ended_within(None, 'node-1', 2)
    assert world.agent.calls == 2


def test_unreachable_agent_then_done(world):
    world.agent = _Agent(ConnectionError('refused'), [_command('SUCCEEDED')])
    assert agent_steps.ended_within(None, 'node-1', 2)


@pytest.mark.parametrize('node', [_Node(state='deploying'),
                                  _Node(state='active'),
                                  _Node(maintenance=True)])
def test_nothing_done_unless_waiting(world, node):
    # A heartbeat came first, the deploy moved on, or maintenance is set.
    world.agent = _Agent([_command('SUCCEEDED')])
    world.node = node
    agent_steps.process_as_heartbeat(None, 'node-1')
    assert world.processed == []


def test_stops_watching_a_node_that_left_the_deploy(world):
    world.node = _Node(state='deploy failed')
    assert not agent_steps.ended_within(None, 'node-1', 2)
    assert world.agent.calls == 0


def test_locked_node_is_left_to_the_heartbeat(world):
    world.locked = True
    agent_steps.process_as_heartbeat(None, 'node-1')
    assert world.processed == []


def test_watch_runs_in_a_thread_and_zero_starts_nothing(world):
    world.agent = _Agent([_command('SUCCEEDED')])
    task = types.SimpleNamespace(context=None, node=world.node)
    assert agent_steps.watch(task, 0) is None
    thread = agent_steps.watch(task, 2)
    thread.join(5)
    assert not thread.is_alive()
    assert world.processed == ['node-1']


def test_unexpected_error_is_logged_not_raised(world):
    with mock.patch.object(agent_steps, 'ended_within', autospec=True,
                           side_effect=RuntimeError('boom')):
        agent_steps._watch(None, 'node-1', 1)
    assert world.processed == []


def _url(cid='cmd-1'):
    return AGENT_URL + cid


def test_long_poll_sees_the_end_at_once(world, monkeypatch):
    # A poll loop would give up at once: the long-poll alone sees the end.
    monkeypatch.setattr(agent_steps, 'POLL_INTERVAL', 60)
    world.node.driver_internal_info = {'agent_secret_token': TOKEN}
    session = _Session(_response(200, _command('SUCCEEDED')))
    world.agent = _Agent([_command('RUNNING')], [_command('SUCCEEDED')],
                         session=session)
    agent_steps._watch(None, 'node-1', 2)
    assert world.processed == ['node-1']
    # The id lookup, the long-poll without any task, one look to let
    # Ironic decide from the command list, then the heartbeat's work.
    assert world.agent.calls == 2
    assert world.locks == ['shared', 'shared', 'exclusive']
    [call] = session.calls
    assert call['url'] == _url()
    # Mirrors Ironic's agent client: token as a query parameter, its TLS
    # verification, and a wait bounded by write_image_wait.
    assert call['params'] == {'wait': 'true', 'agent_token': TOKEN}
    assert call['verify'] == '/etc/ironic/agent-ca.pem'
    connect, read = call['timeout']
    assert 0 < read <= 2 and 0 < connect <= 2


def test_long_poll_without_a_token(world):
    world.agent = _Agent([_command('RUNNING')], [_command('FAILED')],
                         session=_Session(_response(200,
                                                    _command('FAILED'))))
    assert agent_steps.ended_within(None, 'node-1', 2)
    assert world.agent.session.calls[0]['params'] == {'wait': 'true'}


def test_long_poll_read_timeout_is_still_running(world, caplog):
    caplog.set_level(logging.INFO, logger=agent_steps.__name__)
    session = _Session(requests.exceptions.ReadTimeout('read timed out'))
    world.agent = _Agent([_command('RUNNING')], [_command('SUCCEEDED')],
                         session=session)
    agent_steps._watch(None, 'node-1', 0.5)
    assert world.processed == []
    assert 'exclusive' not in world.locks
    # No poll after the wait: the heartbeat reports the end.
    assert world.agent.calls == 1
    assert len(session.calls) == 1
    assert 'the heartbeat will report its end' in caplog.text


@pytest.mark.parametrize('failure', [
    _response(404, {'faultstring': 'Not Found'}),
    _response(500, {'faultstring': 'boom'}),
    _response(200, b'<html>not json</html>'),
    _response(200, {'no': 'status'}),
    _response(200, _command('RUNNING')),
    requests.exceptions.ConnectionError('refused'),
    requests.exceptions.ConnectTimeout('connect timed out'),
])
def test_long_poll_failure_falls_back_to_polling(world, failure):
    session = _Session(failure)
    world.agent = _Agent([_command('RUNNING')], [_command('RUNNING')],
                         [_command('SUCCEEDED')], session=session)
    agent_steps._watch(None, 'node-1', 2)
    assert world.processed == ['node-1']
    assert world.agent.calls == 3
    assert len(session.calls) == 1
    assert world.locks == ['shared', 'shared', 'shared', 'exclusive']


def test_end_not_yet_in_the_list_is_polled_for(world):
    # The agent's word alone does not end the step: Ironic's reading of
    # the command list does.
    world.agent = _Agent([_command('RUNNING')], [_command('RUNNING')],
                         [_command('SUCCEEDED')],
                         session=_Session(_response(200,
                                                    _command('SUCCEEDED'))))
    assert agent_steps.ended_within(None, 'node-1', 2)
    assert world.agent.calls == 3


def test_node_that_left_the_deploy_meanwhile_is_not_processed(world):
    world.agent = _Agent([_command('RUNNING')], [_command('SUCCEEDED')],
                         session=_Session(_response(200,
                                                    _command('SUCCEEDED'))))

    def abort(url, **kwargs):
        world.node.provision_state = 'deploy failed'
        return _response(200, _command('SUCCEEDED'))

    world.agent.session.get = abort
    agent_steps._watch(None, 'node-1', 2)
    assert world.processed == []
    assert world.agent.calls == 1


def test_the_running_step_is_found_among_several_commands(world):
    previous = dict(STEP, step='erase_devices_metadata')
    listed = [
        _command('SUCCEEDED', name='get_deploy_steps', cid='a'),
        _command('SUCCEEDED', step=previous, cid='b'),
        _command('SUCCEEDED', name='cinder.get_connector', cid='c'),
        _command('RUNNING', cid='d'),
    ]
    world.agent = _Agent(listed, listed[:3] + [_command('SUCCEEDED',
                                                        cid='d')],
                         session=_Session(_response(200,
                                                    _command('SUCCEEDED'))))
    assert agent_steps.ended_within(None, 'node-1', 2)
    assert [c['url'] for c in world.agent.session.calls] == [_url('d')]


@pytest.mark.parametrize('listed', [
    # The step has not started yet: the last one is the previous step.
    [_command('RUNNING', cid='a'),
     _command('SUCCEEDED', step=dict(STEP, step='prepare'), cid='b')],
    # Something else runs last, or the command carries another step.
    [_command('RUNNING', cid='a'),
     _command('RUNNING', name='cinder.connect_volume', cid='b')],
    [dict(_command('RUNNING', cid='a'),
          command_params={'step': dict(STEP, step='prepare')})],
    # No id (an agent too old to have one), or strange entries.
    [dict(_command('RUNNING'), id=None)],
    [dict(_command('RUNNING'), id=7)],
    [dict(_command('RUNNING'), command_params={'step': 'write_image'})],
    ['execute_deploy_step'],
    [],
])
def test_no_running_step_no_id(listed):
    assert agent_steps._running_id(_Node(), listed) is None


@pytest.mark.parametrize('running', [
    dict(_command('RUNNING', cid='b'),
         command_params={'step': dict(STEP, priority=99)}),
    # Nothing to compare with: the last running step command is the one.
    dict(_command('RUNNING', cid='b'), command_result='odd',
         command_params=[1]),
])
def test_the_running_step_id(world, running):
    listed = [_command('SUCCEEDED', cid='a'), running]
    assert agent_steps._running_id(world.node, listed) == 'b'


@pytest.mark.parametrize('failure', [
    _response(401, {'faultstring': 'Token invalid.'},
              url=_url() + '?wait=true&agent_token=' + TOKEN),
    requests.exceptions.ConnectionError(
        "HTTPConnectionPool(host='192.0.2.10', port=9999): Max retries "
        "exceeded with url: /v1/commands/cmd-1?wait=true&agent_token=%s"
        % TOKEN),
])
def test_the_token_is_never_logged(world, caplog, failure):
    caplog.set_level(logging.DEBUG)
    world.node.driver_internal_info = {'agent_secret_token': TOKEN,
                                       'agent_url': 'http://192.0.2.10:9999'}
    listing_failure = ConnectionError(
        'Max retries exceeded with url: /v1/commands/?agent_token=' + TOKEN)
    world.agent = _Agent([_command('RUNNING')], listing_failure,
                         [_command('SUCCEEDED')], session=_Session(failure))
    agent_steps._watch(None, 'node-1', 2)
    assert world.processed == ['node-1']
    assert 'polling it' in caplog.text
    assert 'no command status from the agent' in caplog.text
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
    assert TOKEN not in caplog.text
