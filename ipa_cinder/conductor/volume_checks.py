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

"""Whether a node may attach a Cinder volume, on the conductor.

Each check raises VolumeAttachError naming the node, the volume and what
is wrong: before anything is created in Cinder, or (:func:`
check_still_attached`) before the deploy builds on an attachment.
"""

from oslo_log import log

from ipa_cinder.common import cinder_client
from ipa_cinder import exception

LOG = log.getLogger(__name__)

_ATTACHABLE = ('available', 'in-use', 'reserved', 'attaching')


def check_owner(node, volume):
    """The node's owner or lessee must own the volume, if it has one.

    Checked for every volume, reused and adopted attachments included: a
    volume that changed hands since must not stay attached.
    """
    project = cinder_client.volume_project_id(volume)
    owners = [p for p in (node.owner, node.lessee) if p]
    if not owners:
        LOG.info('Node %(node)s has neither owner nor lessee: volume '
                 '%(vol)s of project %(proj)s is attached without an '
                 'ownership check (set the node\'s owner or lessee to '
                 'restrict it)', {'node': node.uuid, 'vol': volume['id'],
                                  'proj': project})
        return
    if project not in owners:
        raise exception.VolumeAttachError(
            node.uuid, volume['id'],
            'the volume belongs to project %s, which is neither the node\'s '
            'owner nor its lessee (%s)' % (project, ', '.join(owners)))


def check_attachable(node, volume):
    """The volume's status, and multi-attach if it is in use elsewhere."""
    volume_id = volume['id']
    status = volume.get('status')
    if status not in _ATTACHABLE:
        raise exception.VolumeAttachError(
            node.uuid, volume_id,
            'the volume is %s; it must be available (or in-use and '
            'multiattach) to be attached' % status)
    others = [a for a in volume.get('attachments') or []
              if a.get('server_id') != node.uuid]
    if others and not volume.get('multiattach'):
        raise exception.VolumeAttachError(
            node.uuid, volume_id,
            'the volume is in use by %s and is not multiattach; detach it '
            'there first' % ', '.join(sorted(
                {str(a.get('server_id') or a.get('host_name'))
                 for a in others})))


# What an attached volume is while the node keeps its attachment.
_ATTACHED = ('in-use', 'attaching', 'reserved')


def check_still_attached(node, cinder, recorded):
    """The recorded attachments still exist; the boot volume is attached.

    An admin may reset a volume's status, detach or delete it while the
    image is written; the deploy must not go on to boot from it. Two
    requests whatever the number of volumes: one listing of the node's
    attachments (a detached or deleted volume has none any more) and the
    boot volume (whose status an admin may have reset).

    :param recorded: the node's recorded attachments, volume id -> entry
        with ``attachment_id`` and ``target``.
    """
    if not recorded:
        return
    try:
        present = {a.get('id') for a in cinder.list_attachments(
            instance_uuid=node.uuid)}
    except exception.CinderError as e:
        raise exception.VolumeAttachError(
            node.uuid, None, 'the node\'s attachments cannot be read from '
            'Cinder any more: %s' % e)
    for volume_id, entry in sorted(recorded.items()):
        if entry.get('attachment_id') not in present:
            raise exception.VolumeAttachError(
                node.uuid, volume_id,
                'its attachment %s is gone from Cinder since the volume was '
                'attached (detached or deleted); the deploy does not go on '
                'with it' % entry.get('attachment_id'))
    boot_target = node.driver_internal_info.get('boot_from_volume')
    for volume_id, entry in sorted(recorded.items()):
        if entry.get('target') != boot_target:
            continue
        try:
            status = cinder.get_volume(volume_id).get('status')
        except exception.CinderError as e:
            raise exception.VolumeAttachError(
                node.uuid, volume_id,
                'the volume cannot be read from Cinder any more: %s' % e)
        if status not in _ATTACHED:
            raise exception.VolumeAttachError(
                node.uuid, volume_id,
                'the volume is %s since it was attached; the deploy does '
                'not go on with it' % status)
