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

"""Agent commands that outlive Ironic's [agent] command_timeout.

The conductor's command runner (ipa_cinder.conductor.agent_commands) and
Ironic's own agent client talk to a real, confined agent. A command is
made long the way a real node makes it long: its device node appears late
(udev lagging behind the export): the device is taken out of the agent's
/dev and given back a few seconds later, while the agent waits for it.
"""

import threading
import time
import types
import uuid

from ironic.conf import CONF as IRONIC_CONF
import pytest

from ipa_cinder.conductor import agent_commands
from ipa_cinder.conductor import agent_volumes
from ipa_cinder import conf
from ipa_cinder import exception
from ipa_cinder_sandbox import errors

NODE = '1be26c0b-03f2-4d90-9c29-8fd1d0f6f0a1'
#: Ironic's HTTP request to the agent gives up after this (its default is
#: 60 s); the commands below run longer.
REQUEST_TIMEOUT = 1


def _task(agent):
    info = {'agent_url': agent.url}
    if agent.token:
        info['agent_secret_token'] = agent.token
    return types.SimpleNamespace(node=types.SimpleNamespace(
        uuid=NODE, driver_internal_info=info, driver_info={}))


def _item(device, boot=False):
    return {'volume_id': str(uuid.uuid4()),
            'attachment_id': str(uuid.uuid4()), 'boot': boot,
            'connection_info': {'driver_volume_type': 'local',
                                'data': {'device_path': device}}}


@pytest.fixture
def timeouts():
    def set_bound(seconds):
        conf.CONF.set_override('agent_command_timeout', seconds,
                               'ipa_cinder')
    IRONIC_CONF.set_override('command_timeout', REQUEST_TIMEOUT, 'agent')
    yield set_bound
    IRONIC_CONF.clear_override('command_timeout', 'agent')
    conf.CONF.clear_override('agent_command_timeout', 'ipa_cinder')


def _wait_until_idle(agent, seconds=30):
    # The next test's commands would be refused while one still runs.
    deadline = time.monotonic() + seconds
    while True:
        try:
            return agent.command('cinder.list_connections', timeout=5)
        except errors.CommandFailed:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _late_device(agent, device, after):
    agent.revoke_device(device)
    timer = threading.Timer(after, agent.grant_device, args=(device,))
    timer.start()
    return timer


def test_command_longer_than_the_request_is_waited_for(agent, loops,
                                                       timeouts, caplog):
    timeouts(60)
    first, second = _item(loops[0].path, boot=True), _item(loops[1].path)
    timer = _late_device(agent, loops[1].path, after=REQUEST_TIMEOUT + 3)
    began = time.monotonic()
    try:
        result = agent_commands.run(_task(agent), 'cinder.connect_volumes',
                                    {'volumes': [first, second]})
    finally:
        timer.join()
    took = time.monotonic() - began
    # The answer is the command's own, after its end: both connected.
    assert [c['volume_id'] for c in result['connected']] == [
        first['volume_id'], second['volume_id']]
    assert took > REQUEST_TIMEOUT + 3
    assert 'still running after' in caplog.text and NODE in caplog.text
    if agent.token:
        assert agent.token not in caplog.text
    listed = agent.command('cinder.list_connections')['connections']
    assert sorted(c['volume_id'] for c in listed) == sorted(
        [first['volume_id'], second['volume_id']])
    agent.command('cinder.disconnect_all')


def test_command_failing_after_the_request_reports_its_error(agent, loops,
                                                             timeouts):
    timeouts(60)
    absent = '/dev/ipa-cinder-absent-%s' % uuid.uuid4().hex[:8]
    first, missing = _item(loops[0].path, boot=True), _item(absent)
    with pytest.raises(exception.AgentCommandError) as exc:
        agent_commands.run(_task(agent), 'cinder.connect_volumes',
                           {'volumes': [first, missing]})
    # The agent's reason, not "running": the end was waited for.
    message = str(exc.value)
    assert missing['volume_id'] in message and 'device_path' in message
    assert 'failed' in message
    # The agent undid what this command connected.
    assert agent.command('cinder.list_connections')['connections'] == []


def test_command_still_running_at_the_bound(agent, loops, timeouts):
    bound = REQUEST_TIMEOUT + 2
    timeouts(bound)
    item = _item(loops[1].path)
    timer = _late_device(agent, loops[1].path, after=bound + 4)
    began = time.monotonic()
    try:
        with pytest.raises(exception.AgentCommandError) as exc:
            agent_commands.run(_task(agent), 'cinder.connect_volumes',
                               {'volumes': [item]})
        took = time.monotonic() - began
        message = str(exc.value)
        assert 'still running' in message and NODE in message
        assert 'agent_command_timeout' in message
        # Bounded: not Ironic's 60 s, not the agent's end.
        assert bound <= took < bound + 3
        # The rollback's disconnect meets a busy agent (IPA's 409, Ironic's
        # AgentInProgress): told apart, so the rollback says it once.
        assert agent_volumes.disconnect_one(
            _task(agent), item['volume_id'], item['attachment_id']) is False
    finally:
        timer.join()
    # The agent finishes on its own; its connection stays until a
    # disconnect (cleaning's disconnect_all on a real node).
    listed = _wait_until_idle(agent)
    assert [c['volume_id'] for c in listed['connections']] == [
        item['volume_id']]
    agent.command('cinder.disconnect_all')
