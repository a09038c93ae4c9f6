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
import types
from unittest import mock

from ironic.common import exception as ironic_exc
import pytest

from ipa_cinder.conductor import agent_steps

STEP = {'interface': 'deploy', 'step': 'write_image', 'priority': 80,
        'args': {}}


def _command(status, step=None, name='execute_deploy_step'):
    return {'command_name': name, 'command_status': status,
            'command_error': None,
            'command_result': {'deploy_step': dict(step or STEP),
                               'deploy_result': None}}


class _Agent(object):
    """Answers get_commands_status with the given lists, in turn."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = 0

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
    monkeypatch.setattr(agent_steps.agent_client, 'get_client',
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
