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

"""A short watch of an in-band agent step, on the conductor.

Ironic learns that an in-band step such as ``write_image`` has ended only
at the agent's next heartbeat, and IPA sends one at the end of a command
only when 5 s have passed since the previous one: a short step costs a
whole heartbeat interval. After starting such a step, the deploy
interface may watch the step's agent command for a few seconds
(``[ipa_cinder] write_image_wait``) in a thread of its own, WITHOUT the
node's lock: the node waits in ``wait call-back`` exactly as it would
without the watch, so a conductor restart, an abort or a heartbeat that
comes first are handled by Ironic as always.

The watch looks up the id of the running command once, then asks the
agent for it with ``wait=true`` (IPA answers when the command has ended),
so the end is seen at once and the agent does not serialize its whole
command list again and again. An agent that cannot answer that way is
asked for its command list every ``POLL_INTERVAL`` instead.

When the agent says the step has ended, the watch checks the command list
as a heartbeat would, takes the node's lock for a moment and runs what a
heartbeat would run (Ironic's own ``_heartbeat_deploy_wait``): success,
failure, reboot requests and post-step hooks are Ironic's to handle, as
after a heartbeat.
"""

import threading
import time

from ironic.common import exception as ironic_exc
from ironic.common import states
from ironic.conductor import steps as conductor_steps
from ironic.conductor import task_manager
from ironic.drivers.modules import agent_base
from oslo_log import log

from ipa_cinder.conductor import agent_long_poll

LOG = log.getLogger(__name__)

#: Seconds between two looks at the agent's command list, when the agent
#: cannot be asked to answer at the end of the command.
POLL_INTERVAL = 0.5

_PURPOSE = 'watching the agent step'
_WAITING = (states.DEPLOYING, states.DEPLOYWAIT)
_RUNNING = agent_long_poll.RUNNING


def _completed(task, commands):
    """The agent's command of the current deploy step once it ended."""
    if not commands:
        return None
    return agent_base._get_completed_command(task, commands, 'deploy')


def _running_id(node, commands):
    """The id of the agent's command running the current deploy step.

    IPA runs one asynchronous command at a time (it refuses another while
    one runs) and reports a command's step only once it has ended: as in
    Ironic's ``_get_completed_command``, the step just started is the last
    command, a running ``execute_deploy_step``.
    """
    if not commands or not isinstance(commands[-1], dict):
        return None
    last = commands[-1]
    if (last.get('command_name') != 'execute_deploy_step'
            or last.get('command_status') != _RUNNING):
        return None
    # Should an agent report the step of a running command, it must be
    # the node's current one.
    result, params = last.get('command_result'), last.get('command_params')
    step = ((result.get('deploy_step') if isinstance(result, dict) else None)
            or (params.get('step') if isinstance(params, dict) else None))
    if step and not (isinstance(step, dict) and conductor_steps.is_equivalent(
            step, node.deploy_step or {})):
        return None
    command_id = last.get('id')
    return command_id if isinstance(command_id, str) and command_id else None


def _request(task, commands):
    """The long-poll of the running step's command, or None to poll."""
    node = task.node
    command_id = _running_id(node, commands)
    if command_id is None:
        LOG.debug('Node %s: no running deploy step command with an id in '
                  'the agent\'s list; polling it', node.uuid)
        return None
    try:
        return agent_long_poll.request(task, command_id)
    except Exception as e:
        LOG.debug('Node %(node)s: cannot ask the agent for its command '
                  '(%(err)s); polling it',
                  {'node': node.uuid, 'err': agent_long_poll.masked(
                      e, agent_long_poll.token(node))})
        return None


def _look(context, node_uuid, long_poll=False):
    """One look at the node and its agent, under a shared task.

    :returns: (waiting, command, step, request): whether the node still
        waits for its deploy step, the agent's command of the step once it
        ended (else None), the step's name and, if ``long_poll``, the
        long-poll of the running command (else None).
    """
    with task_manager.acquire(context, node_uuid, shared=True,
                              purpose=_PURPOSE) as task:
        node = task.node
        if node.provision_state not in _WAITING:
            return False, None, None, None
        step = (node.deploy_step or {}).get('step')
        commands = agent_long_poll.command_list(task)
        command = _completed(task, commands)
        request = None
        if long_poll and command is None:
            request = _request(task, commands)
        return True, command, step, request


def _still_running(node_uuid, step, seconds):
    LOG.info('Node %(node)s: agent deploy step %(step)s still running '
             'after %(secs)s s; the heartbeat will report its end',
             {'node': node_uuid, 'step': step, 'secs': seconds})
    return False


def ended_within(context, node_uuid, seconds):
    """Whether the node's in-band deploy step ended within ``seconds``.

    Reads the node without locking it (shared tasks) and holds no task
    while waiting for the agent.
    """
    started = time.monotonic()
    deadline = started + seconds
    waiting, command, step, request = _look(context, node_uuid,
                                            long_poll=True)
    if not waiting:
        return False
    remaining = deadline - time.monotonic()
    if command is None and request is not None and remaining > 0:
        ended = agent_long_poll.wait(request, node_uuid, remaining).ended
        if ended is False:
            return _still_running(node_uuid, step, seconds)
        if ended is None:
            LOG.debug('Node %s: no end of the command from the agent; '
                      'polling it', node_uuid)
        if ended:
            # The agent's word is not Ironic's decision: the node must
            # still wait and the command list must show the step's end,
            # as at a heartbeat.
            waiting, command, step, _ = _look(context, node_uuid)
            if not waiting:
                return False
    while command is None:
        if time.monotonic() + POLL_INTERVAL > deadline:
            return _still_running(node_uuid, step, seconds)
        time.sleep(POLL_INTERVAL)
        waiting, command, step, _ = _look(context, node_uuid)
        if not waiting:
            return False
    LOG.info('Node %(node)s: agent deploy step %(step)s ended '
             '(%(status)s) after %(secs).1f s; processing it now '
             'rather than at the next heartbeat',
             {'node': node_uuid, 'step': step,
              'status': command.get('command_status'),
              'secs': time.monotonic() - started})
    return True


def process_as_heartbeat(context, node_uuid):
    """Run what a heartbeat runs for a node waiting for its agent."""
    try:
        with task_manager.acquire(context, node_uuid, shared=False,
                                  purpose=_PURPOSE) as task:
            if (task.node.provision_state != states.DEPLOYWAIT
                    or task.node.maintenance):
                # A heartbeat came first, the deploy was aborted, or an
                # operator set maintenance: a heartbeat would not go on.
                LOG.debug('Node %(node)s is %(state)s: nothing to do',
                          {'node': node_uuid,
                           'state': task.node.provision_state})
                return
            task.driver.deploy._heartbeat_deploy_wait(task)
    except ironic_exc.NodeLocked:
        LOG.debug('Node %s is locked (a heartbeat is processing it)',
                  node_uuid)


def _watch(context, node_uuid, seconds):
    try:
        if ended_within(context, node_uuid, seconds):
            process_as_heartbeat(context, node_uuid)
    except Exception:
        # Nothing is lost: the agent's heartbeat reports the step.
        LOG.exception('Node %s: watching the agent step failed; waiting '
                      'for the heartbeat', node_uuid)


def watch(task, seconds):
    """Watch the in-band deploy step just started, for ``seconds``.

    Returns at once; the watch runs in a daemon thread. 0 starts nothing.
    """
    if seconds <= 0:
        return None
    thread = threading.Thread(
        target=_watch, args=(task.context, task.node.uuid, seconds),
        name='agent-step-watch-%s' % task.node.uuid, daemon=True)
    thread.start()
    return thread
