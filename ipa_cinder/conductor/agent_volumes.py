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

"""A node's volume connections on its agent, driven by the conductor.

The agent runs one command at a time (IPA refuses a command while another
runs) and every command costs a round trip: all of a node's volumes are
connected with ONE ``cinder.connect_volumes`` command, boot volume first.
An agent of an older release, which does not have it, gets one
``cinder.connect_volume`` per volume.
"""

from oslo_log import log

from ipa_cinder.common import connection
from ipa_cinder.common import secrets
from ipa_cinder.conductor import agent_commands
from ipa_cinder import exception

LOG = log.getLogger(__name__)

#: Volumes per cinder.connect_volumes command (the agent refuses more).
PER_COMMAND = connection.MAX_VOLUMES_PER_COMMAND


def _params(item):
    return {'volume_id': item.volume_id,
            'attachment_id': item.attachment['id'],
            'connection_info': item.info, 'mode': item.mode,
            'boot': item.target.boot_index == 0}


def _maybe_connected(items):
    # The agent undoes a failed command itself, but its answer may be
    # lost: the caller's rollback asks it to disconnect each volume
    # (unknown volumes are a success).
    for item in items:
        item.connected = True


def connect_all(task, items):
    """Connect the prepared volumes on the agent, in the order given.

    Sets ``result`` (the agent's answer for the volume) and ``connected``
    of every item. One command connects up to
    ``MAX_VOLUMES_PER_COMMAND`` volumes; a node with more gets several.

    :param items: objects with ``volume_id``, ``attachment``, ``info``
        (connection info), ``mode`` and ``target``.
    :raises: VolumeAttachError naming the node (and the volume, when one
        command per volume was used).
    """
    for first in range(0, len(items), PER_COMMAND):
        if not _connect_batch(task, items[first:first + PER_COMMAND]):
            LOG.info('Node %s: the agent has no cinder.connect_volumes (a '
                     'ramdisk of an older release); connecting one volume '
                     'per command', task.node.uuid)
            for item in items[first:]:
                _connect_one(task, item)
            return


def _connect_batch(task, batch):
    """One cinder.connect_volumes; False if the agent does not know it."""
    node = task.node.uuid
    try:
        result = agent_commands.run(task, 'cinder.connect_volumes',
                                    {'volumes': [_params(i) for i in batch]})
    except exception.AgentCommandUnknown:
        return False
    except exception.AgentCommandError as e:
        _maybe_connected(batch)
        raise exception.VolumeAttachError(node, None, e)
    results = result.get('connected')
    if not isinstance(results, list) or len(results) != len(batch):
        _maybe_connected(batch)
        raise exception.VolumeAttachError(
            node, None, 'the agent answered cinder.connect_volumes for %s '
            'of %d volumes' % (secrets.brief(results, 40), len(batch)))
    for item, one in zip(batch, results):
        item.result, item.connected = one, True
    return True


def _connect_one(task, item):
    try:
        item.result = agent_commands.run(task, 'cinder.connect_volume',
                                         _params(item))
    except exception.AgentCommandError as e:
        raise exception.VolumeAttachError(task.node.uuid, item.volume_id, e)
    item.connected = True


def disconnect_one(task, volume_id, attachment_id):
    """Disconnect one volume on the agent; a failure is only logged.

    :returns: False when the agent is busy with another command (the
        caller's further disconnects would be refused too), else True.
    """
    try:
        agent_commands.run(task, 'cinder.disconnect_volume',
                           {'attachment_id': attachment_id})
    except exception.AgentBusy:
        return False
    except exception.AgentCommandError as e:
        LOG.error('Node %(node)s: the agent could not disconnect volume '
                  '%(vol)s: %(err)s', {'node': task.node.uuid,
                                       'vol': volume_id, 'err': e})
    return True


def disconnect_all(task, all_iscsi_sessions=False):
    """Disconnect every volume on the agent (and every iSCSI session).

    :returns: the ids of the volumes the agent disconnected.
    :raises: AgentCommandError.
    """
    node = task.node.uuid
    # Without the flag, the parameters an older agent knows.
    params = {'all_iscsi_sessions': True} if all_iscsi_sessions else {}
    result = agent_commands.run(task, 'cinder.disconnect_all', params)
    gone = result.get('disconnected') or []
    for volume_id in gone:
        LOG.info('Node %(node)s: agent disconnected volume %(vol)s',
                 {'node': node, 'vol': volume_id})
    for session in result.get('sessions_logged_out') or []:
        LOG.info('Node %(node)s: agent logged out of iSCSI portal '
                 '%(portal)s, target %(iqn)s (firmware/iBFT or leftover '
                 'session)', dict(node=node, iqn=session.get('target_iqn'),
                                  portal=session.get('portal')))
    return gone
