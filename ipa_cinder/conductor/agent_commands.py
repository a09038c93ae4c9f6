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
"""Commands sent to the node's agent (the ``cinder`` IPA extension)."""

from ironic.common import exception as ironic_exc
from ironic.drivers.modules import agent_client
from oslo_log import log

from ipa_cinder.common import secrets
from ipa_cinder import exception

LOG = log.getLogger(__name__)

#: How IPA refuses a command no extension of it has (HTTP 400).
_UNKNOWN_COMMAND = 'Unknown command:'


def run(task, name, params=None):
    """Run ``cinder.<name>`` on the node's agent and return its result.

    :param task: the TaskManager of the node.
    :param name: the command, e.g. ``cinder.connect_volume``.
    :param params: its parameters.
    :raises: AgentCommandError with the agent's (masked) reason;
        AgentCommandUnknown when the agent has no such command.
    """
    client = agent_client.get_client(task)
    try:
        result = client._command(task.node, method=name,
                                 params=params or {}, wait=True)
    except ironic_exc.IronicException as e:
        error = exception.AgentCommandError
        if _UNKNOWN_COMMAND in str(e):
            error = exception.AgentCommandUnknown
        raise error(
            'agent command %s failed: %s' % (name, secrets.safe_text(e)))
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
