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
"""Commands sent to the node's agent (the ``cinder`` IPA extension).

A command is sent as Ironic sends its synchronous ones (the agent answers
at the end of the command), and that HTTP request is bounded by Ironic's
``[agent] command_timeout``. Connecting many volumes, or one whose iSCSI
login is retried, may take longer: Ironic then finds the command still
running on the agent, and the conductor waits for its end by its id up to
``[ipa_cinder] agent_command_timeout`` rather than failing the step while
the agent goes on connecting volumes that the rollback could then not
disconnect (the agent refuses commands while one runs).
"""

import time

from ironic.common import exception as ironic_exc
from ironic.drivers.modules import agent_client
from oslo_log import log

from ipa_cinder.common import secrets
from ipa_cinder.conductor import agent_long_poll
from ipa_cinder import conf
from ipa_cinder import exception

LOG = log.getLogger(__name__)
CONF = conf.CONF

#: How IPA refuses a command no extension of it has (HTTP 400).
_UNKNOWN_COMMAND = 'Unknown command:'

#: Seconds between two looks at the agent's command list, when the agent
#: cannot answer at the end of the command.
POLL_INTERVAL = 1.0


def run(task, name, params=None):
    """Run ``cinder.<name>`` on the node's agent and return its result.

    :param task: the TaskManager of the node.
    :param name: the command, e.g. ``cinder.connect_volume``.
    :param params: its parameters.
    :raises: AgentCommandError with the agent's (masked) reason;
        AgentCommandUnknown when the agent has no such command; AgentBusy
        when it still runs another one.
    """
    client = agent_client.get_client(task)
    started = time.monotonic()
    try:
        result = client._command(task.node, method=name,
                                 params=params or {}, wait=True)
    except ironic_exc.IronicException as e:
        error = exception.AgentCommandError
        if isinstance(e, ironic_exc.AgentInProgress):
            error = exception.AgentBusy
        elif _UNKNOWN_COMMAND in str(e):
            error = exception.AgentCommandUnknown
        raise error(
            'agent command %s failed: %s' % (name, secrets.safe_text(e)))
    if result.get('command_status') == agent_long_poll.RUNNING:
        result = _wait_for_end(task, name, result, started)
    status = result.get('command_status')
    if status != 'SUCCEEDED':
        error = result.get('command_error') or {}
        if isinstance(error, dict):
            reason = error.get('details') or error.get('message') or error
        else:
            reason = error
        raise exception.AgentCommandError(
            'agent command %s %s: %s' % (name, (status or 'failed').lower(),
                                         secrets.safe_text(reason)))
    return result.get('command_result') or {}


def _still_running(node_uuid, name, started):
    return exception.AgentCommandError(
        'agent command %(cmd)s of node %(node)s still running after '
        '%(secs).0f s ([ipa_cinder] agent_command_timeout); the agent ends '
        'it on its own, and what it connects stays connected until the node '
        'is cleaned or powered off' %
        {'cmd': name, 'node': node_uuid,
         'secs': time.monotonic() - started})


def _wait_for_end(task, name, command, started):
    """The agent's command once it has ended, within the bound.

    :param command: the running command, as Ironic found it after its own
        request timed out.
    :raises: AgentCommandError when it still runs at the bound.
    """
    node = task.node.uuid
    deadline = started + CONF.ipa_cinder.agent_command_timeout
    command_id = command.get('id')
    LOG.warning('Node %(node)s: agent command %(cmd)s still running after '
                '%(secs).0f s; waiting for its end up to %(max)d s in all '
                '([ipa_cinder] agent_command_timeout)',
                {'node': node, 'cmd': name, 'max':
                 CONF.ipa_cinder.agent_command_timeout,
                 'secs': time.monotonic() - started})
    if not isinstance(command_id, str) or not command_id:
        raise exception.AgentCommandError(
            'agent command %s of node %s still running; the agent gave it '
            'no id to wait for' % (name, node))
    try:
        poll = agent_long_poll.request(task, command_id)
    except Exception as e:
        LOG.debug('Node %(node)s: cannot ask the agent for its command '
                  '(%(err)s)', {'node': node, 'err': agent_long_poll.masked(
                      e, agent_long_poll.token(task.node))})
        poll = None
    remaining = deadline - time.monotonic()
    if poll is not None and remaining > 0:
        answer = agent_long_poll.wait(poll, node, remaining)
        if answer.ended is False:
            raise _still_running(node, name, started)
        if answer.ended:
            return answer.command
    return _poll_for_end(task, name, command_id, started, deadline)


def _poll_for_end(task, name, command_id, started, deadline):
    while time.monotonic() + POLL_INTERVAL <= deadline:
        time.sleep(POLL_INTERVAL)
        commands = agent_long_poll.command_list(task)
        for command in commands or ():
            if (isinstance(command, dict) and command.get('id') == command_id
                    and command.get('command_status')
                    != agent_long_poll.RUNNING):
                return command
    raise _still_running(task.node.uuid, name, started)
