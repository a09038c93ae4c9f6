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

"""The conductor's agent command runner (conductor/agent_commands.py).

A real agent answers these paths in
tests/functional/agent/test_long_commands.py; here the agent client gives
canned answers for what IPA 13 never does: no answer to the long-poll
(an older agent, a proxy in the way), a running command without an id.
"""

import json
import logging
import types

import pytest
import requests

from ipa_cinder.conductor import agent_commands
from ipa_cinder import conf
from ipa_cinder import exception

URL = 'http://192.0.2.10:9999/v1/commands/'
TOKEN = 'T0KEN-5ecret-77aa'
NAME = 'cinder.connect_volumes'


def _command(status, cid='cmd-9', result=None):
    return {'id': cid, 'command_name': 'connect_volumes',
            'command_status': status, 'command_error': None,
            'command_result': result}


def _response(status_code, body):
    response = requests.Response()
    response.status_code = status_code
    response.url = URL
    response._content = json.dumps(body).encode()
    return response


class _Session(object):
    def __init__(self, answer):
        self.answer = answer
        self.gets = []

    def get(self, url, **kwargs):
        self.gets.append(url)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class _Client(object):
    """Ironic's agent client after its request timed out."""

    def __init__(self, first, lists, session):
        self.first, self.lists, self.session = first, list(lists), session
        self.looks = 0

    def _command(self, node, method, params, wait=False):
        return self.first

    def _get_command_url(self, node):
        return URL

    def _get_verify(self, node):
        return True

    def get_commands_status(self, node, retry_connection=True,
                            expect_errors=False):
        self.looks += 1
        answer = self.lists[min(self.looks, len(self.lists)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def agent(monkeypatch):
    def use(first, *lists, session=None):
        client = _Client(first, lists,
                         session or _Session(_response(404, {})))
        monkeypatch.setattr(agent_commands.agent_client, 'get_client',
                            lambda task: client)
        return client
    monkeypatch.setattr(agent_commands, 'POLL_INTERVAL', 0.01)
    conf.CONF.set_override('agent_command_timeout', 2, 'ipa_cinder')
    yield use
    conf.CONF.clear_override('agent_command_timeout', 'ipa_cinder')


def _task():
    return types.SimpleNamespace(node=types.SimpleNamespace(
        uuid='node-7', driver_internal_info={'agent_secret_token': TOKEN,
                                             'agent_url': URL[:-13]}))


def test_long_poll_answers_the_end(agent):
    done = _command('SUCCEEDED', result={'connected': []})
    client = agent(_command('RUNNING'),
                   session=_Session(_response(200, done)))
    assert agent_commands.run(_task(), NAME) == {'connected': []}
    assert client.session.gets == [URL + 'cmd-9'] and client.looks == 0


def test_without_long_poll_the_list_is_read_until_the_end(agent, caplog):
    caplog.set_level(logging.DEBUG)
    failure = requests.exceptions.ConnectionError(
        'Max retries exceeded with url: /v1/commands/cmd-9?agent_token='
        + TOKEN)
    done = dict(_command('FAILED'), command_error={'details': 'no device'})
    client = agent(_command('RUNNING'),
                   [_command('SUCCEEDED', cid='older'), _command('RUNNING')],
                   ConnectionError('agent away'),
                   [_command('SUCCEEDED', cid='older'), done],
                   session=_Session(failure))
    with pytest.raises(exception.AgentCommandError) as exc:
        agent_commands.run(_task(), NAME)
    assert 'failed: no device' in str(exc.value)
    assert client.looks == 3
    assert TOKEN not in caplog.text


@pytest.mark.parametrize('command', [
    _command('RUNNING', cid=None), _command('RUNNING', cid=''),
    dict(_command('RUNNING'), id=['x'])])
def test_running_command_without_an_id(agent, command):
    agent(command)
    with pytest.raises(exception.AgentCommandError) as exc:
        agent_commands.run(_task(), NAME)
    assert 'no id' in str(exc.value) and 'node-7' in str(exc.value)


def test_polling_is_bounded(agent):
    conf.CONF.set_override('agent_command_timeout', 1, 'ipa_cinder')
    client = agent(_command('RUNNING'), [_command('RUNNING')])
    with pytest.raises(exception.AgentCommandError) as exc:
        agent_commands.run(_task(), NAME)
    assert 'still running after 1 s' in str(exc.value)
    assert 'agent_command_timeout' in str(exc.value)
    assert 10 < client.looks < 200
