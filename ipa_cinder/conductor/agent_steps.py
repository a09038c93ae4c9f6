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
interface may watch the agent's command status for a few seconds
(``[ipa_cinder] write_image_wait``) in a thread of its own, WITHOUT the
node's lock: the node waits in ``wait call-back`` exactly as it would
without the watch, so a conductor restart, an abort or a heartbeat that
comes first are handled by Ironic as always. When the step has ended, the
watch takes the node's lock for a moment and runs what a heartbeat would
run (Ironic's own ``_heartbeat_deploy_wait``): success, failure, reboot
requests and post-step hooks are Ironic's to handle, as after a heartbeat.
"""

import threading
import time

from ironic.common import exception as ironic_exc
from ironic.common import states
from ironic.conductor import task_manager
from ironic.drivers.modules import agent_base
from ironic.drivers.modules import agent_client
from oslo_log import log

LOG = log.getLogger(__name__)

#: Seconds between two looks at the agent's command status.
POLL_INTERVAL = 0.5

_PURPOSE = 'watching the agent step'


def _completed(task):
    """The agent's command of the current deploy step once it ended."""
    try:
        commands = agent_client.get_client(task).get_commands_status(
            task.node, retry_connection=False, expect_errors=True)
    except Exception as e:
        # The heartbeat path retries and reports this properly.
        LOG.debug('Node %(node)s: no command status from the agent '
                  '(%(err)s)', {'node': task.node.uuid, 'err': e})
        return None
    if not commands:
        return None
    return agent_base._get_completed_command(task, commands, 'deploy')


def ended_within(context, node_uuid, seconds):
    """Whether the node's in-band deploy step ended within ``seconds``.

    Reads the node without locking it (a shared task).
    """
    started = time.monotonic()
    deadline = started + seconds
    while True:
        time.sleep(POLL_INTERVAL)
        with task_manager.acquire(context, node_uuid, shared=True,
                                  purpose=_PURPOSE) as task:
            node = task.node
            if node.provision_state not in (states.DEPLOYING,
                                            states.DEPLOYWAIT):
                return False
            command = _completed(task)
            step = (node.deploy_step or {}).get('step')
        if command is not None:
            LOG.info('Node %(node)s: agent deploy step %(step)s ended '
                     '(%(status)s) after %(secs).1f s; processing it now '
                     'rather than at the next heartbeat',
                     {'node': node_uuid, 'step': step,
                      'status': command.get('command_status'),
                      'secs': time.monotonic() - started})
            return True
        if time.monotonic() + POLL_INTERVAL > deadline:
            LOG.info('Node %(node)s: agent deploy step %(step)s still '
                     'running after %(secs)s s; the heartbeat will report '
                     'its end', {'node': node_uuid, 'step': step,
                                 'secs': seconds})
            return False


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

    Returns at once; the watch runs in a daemon thread once the caller's
    step has released the node. 0 starts nothing.
    """
    if seconds <= 0:
        return None
    thread = threading.Thread(
        target=_watch, args=(task.context, task.node.uuid, seconds),
        name='agent-step-watch-%s' % task.node.uuid, daemon=True)
    thread.start()
    return thread
