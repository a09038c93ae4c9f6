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

"""Waiting for the end of one agent command, by its id.

IPA answers ``GET /v1/commands/<id>?wait=true`` once the command has
ended (it joins the command), so the end is seen at once and the agent
does not serialize its whole command list again and again. The request
is built while the node's task is held (URL, TLS verification, agent
token, as Ironic's agent client sends its own requests) and may be sent
after the task is gone: the client keeps its HTTP session.
"""

import collections
from urllib import parse

from ironic.drivers.modules import agent_client
from oslo_log import log

LOG = log.getLogger(__name__)

RUNNING = 'RUNNING'
_MASK = '***'
# The HTTP library of Ironic's agent client (through Ironic: not a
# requirement of ours) raises this when the agent has not answered in time.
_READ_TIMEOUT = agent_client.requests.exceptions.ReadTimeout

#: One long-poll of one command.
Request = collections.namedtuple('Request', 'client url params verify')

#: What the agent answered: ``ended`` is True (``command`` is the ended
#: command), False (still running after the time given) or None (the
#: agent cannot tell this way: look at its command list instead).
Answer = collections.namedtuple('Answer', 'ended command')


def token(node):
    """The node's agent token, or None."""
    return node.driver_internal_info.get('agent_secret_token')


def masked(what, agent_token):
    """``str(what)`` without the agent token.

    requests and urllib3 put the URL, query included, in their errors:
    the agent token must not reach the log with them.
    """
    text = str(what)
    if agent_token:
        for form in (agent_token, parse.quote(agent_token, safe='')):
            text = text.replace(form, _MASK)
    return text


def command_list(task):
    """The agent's command list, or None if the agent does not answer.

    Without Ironic's retries: the callers look again soon, and a heartbeat
    reports what they miss.
    """
    try:
        return agent_client.get_client(task).get_commands_status(
            task.node, retry_connection=False, expect_errors=True)
    except Exception as e:
        LOG.debug('Node %(node)s: no command status from the agent '
                  '(%(err)s)', {'node': task.node.uuid,
                                'err': masked(e, token(task.node))})
        return None


def request(task, command_id):
    """The long-poll of the node's agent command ``command_id``.

    :raises: whatever Ironic's agent client raises when the node has no
        usable agent URL.
    """
    node = task.node
    client = agent_client.get_client(task)
    params = {'wait': 'true'}
    agent_token = token(node)
    if agent_token:
        params['agent_token'] = agent_token
    return Request(client,
                   client._get_command_url(node)
                   + parse.quote(command_id, safe=''),
                   params, client._get_verify(node))


def wait(poll, node_uuid, seconds):
    """Wait up to ``seconds`` for the agent to answer that it ended.

    :param poll: a ``Request``.
    :returns: an ``Answer``.
    """
    agent_token = poll.params.get('agent_token')
    try:
        # The read timeout bounds the wait: the agent sends nothing
        # before the command has ended.
        response = poll.client.session.get(
            poll.url, params=poll.params, verify=poll.verify,
            timeout=(seconds, seconds))
        response.raise_for_status()
        command = response.json()
        status = command['command_status']
    except _READ_TIMEOUT:
        return Answer(False, None)
    except Exception as e:
        # An HTTP error, no connection, an agent without this endpoint
        # or a strange answer: the command list still tells.
        LOG.debug('Node %(node)s: the agent did not answer the end of its '
                  'command (%(cls)s: %(err)s)',
                  {'node': node_uuid, 'cls': type(e).__name__,
                   'err': masked(e, agent_token)})
        return Answer(None, None)
    if status == RUNNING:
        LOG.debug('Node %s: the agent answered before the end of its '
                  'command', node_uuid)
        return Answer(None, None)
    return Answer(True, command)
