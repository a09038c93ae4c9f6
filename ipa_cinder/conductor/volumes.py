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

"""Cinder attachments of a node's volume targets, on the conductor.

The node's attachments are remembered in ``driver_internal_info`` under
``cinder_attachments`` (volume id -> attachment id and what was written
into the volume target), saved right after each creation so that a
restarted conductor finds them. Cinder is the reference, though: every
attach and detach also looks for attachments whose ``instance`` is the
node, so nothing is created twice and nothing is left behind.
"""

from ironic.common import exception as ironic_exc
from ironic import objects
from oslo_log import log

from ipa_cinder.common import cinder_client
from ipa_cinder.common import connection
from ipa_cinder.common import log_filter
from ipa_cinder.common import secrets
from ipa_cinder.conductor import agent_commands
from ipa_cinder import exception

LOG = log.getLogger(__name__)

ATTACHMENTS_KEY = 'cinder_attachments'
CONNECTOR_KEY = 'cinder_connector'

# Ironic volume connector types for the identities of a connector.
_CONNECTOR_TYPES = (('initiator', 'iqn'), ('ip', 'ip'), ('wwpns', 'wwpn'),
                    ('wwnns', 'wwnn'))

_ATTACHABLE = ('available', 'in-use', 'reserved', 'attaching')


def _fail(node, volume_id, reason):
    return exception.VolumeAttachError(node.uuid, volume_id, reason)


def sorted_targets(task):
    """The node's volume targets, boot volume (index 0) first."""
    return sorted(task.volume_targets, key=lambda t: t.boot_index)


def target_mode(node, target):
    mode = (target.properties or {}).get('attach_mode', 'rw')
    if mode not in connection.VALID_MODES:
        raise _fail(node, target.volume_id,
                    'volume target %s: properties/attach_mode must be rw or '
                    'ro, got %r' % (target.uuid, mode))
    return mode


def record_connectors(task, connector):
    """Record the connector's identities as the node's volume connectors.

    Existing connectors of the node are kept or updated, never duplicated;
    an identity already recorded for another node is skipped with a
    warning (Ironic keeps them unique).
    """
    node = task.node
    existing = objects.VolumeConnector.list_by_node_id(task.context,
                                                       node.id)
    have = {(c.type, c.connector_id) for c in existing}
    for key, ctype in _CONNECTOR_TYPES:
        values = connector.get(key)
        if not values:
            continue
        if not isinstance(values, list):
            values = [values]
        for value in values:
            if (ctype, value) in have:
                continue
            vc = objects.VolumeConnector(task.context, node_id=node.id,
                                         type=ctype, connector_id=value)
            try:
                vc.create()
                LOG.info('Node %(node)s: recorded volume connector %(type)s '
                         '%(id)s', {'node': node.uuid, 'type': ctype,
                                    'id': value})
            except ironic_exc.VolumeConnectorTypeAndIdAlreadyExists:
                LOG.warning('Node %(node)s: volume connector %(type)s '
                            '%(id)s belongs to another node; not recorded',
                            {'node': node.uuid, 'type': ctype, 'id': value})
    if connector.get('nqn'):
        LOG.debug('Node %s: Ironic has no connector type for NVMe NQNs; '
                  '%s kept in driver_internal_info only', node.uuid,
                  connector['nqn'])


class NodeVolumes(object):
    """Attach and detach the Cinder volumes of one node.

    :param task: a TaskManager holding an exclusive lock on the node.
    :param cinder: a :class:`ipa_cinder.common.cinder_client.CinderClient`.
    """

    def __init__(self, task, cinder):
        self.task = task
        self.node = task.node
        self.cinder = cinder

    # bookkeeping

    def _recorded(self):
        return dict(self.node.driver_internal_info.get(ATTACHMENTS_KEY)
                    or {})

    def _remember(self, volume_id, entry):
        recorded = self._recorded()
        recorded[volume_id] = entry
        self.node.set_driver_internal_info(ATTACHMENTS_KEY, recorded)
        self.node.save()

    def _forget(self, volume_id):
        recorded = self._recorded()
        recorded.pop(volume_id, None)
        if recorded:
            self.node.set_driver_internal_info(ATTACHMENTS_KEY, recorded)
        else:
            self.node.del_driver_internal_info(ATTACHMENTS_KEY)
        self.node.save()

    # checks

    def _check_volume(self, volume, mode):
        volume_id = volume['id']
        status = volume.get('status')
        if status not in _ATTACHABLE:
            raise _fail(self.node, volume_id,
                        'the volume is %s; it must be available (or in-use '
                        'and multiattach) to be attached' % status)
        project = cinder_client.volume_project_id(volume)
        owners = [p for p in (self.node.owner, self.node.lessee) if p]
        if owners and project not in owners:
            raise _fail(self.node, volume_id,
                        'the volume belongs to project %s, which is neither '
                        'the node\'s owner nor its lessee (%s)'
                        % (project, ', '.join(owners)))
        others = [a for a in volume.get('attachments') or []
                  if a.get('server_id') != self.node.uuid]
        if others and not volume.get('multiattach'):
            raise _fail(self.node, volume_id,
                        'the volume is in use by %s and is not multiattach; '
                        'detach it there first'
                        % ', '.join(sorted({str(a.get('server_id')
                                                or a.get('host_name'))
                                            for a in others})))

    def _existing_attachment(self, volume_id):
        """The node's attachment of this volume in Cinder, if any.

        What driver_internal_info recorded is checked first; then Cinder is
        asked for attachments whose instance is the node (a conductor that
        died between create and save). Extra ones are deleted.
        """
        recorded = self._recorded().get(volume_id)
        if recorded:
            try:
                attachment = self.cinder.get_attachment(
                    recorded['attachment_id'], volume_id=volume_id)
                if attachment.get('instance') in (None, self.node.uuid):
                    return attachment
            except exception.CinderNotFound:
                LOG.info('Node %(node)s: recorded attachment %(att)s of '
                         'volume %(vol)s is gone from Cinder',
                         {'node': self.node.uuid, 'vol': volume_id,
                          'att': recorded['attachment_id']})
        found = self.cinder.list_attachments(volume_id=volume_id,
                                             instance_uuid=self.node.uuid)
        if not found:
            return None
        keep, extra = found[0], found[1:]
        for attachment in extra:
            LOG.warning('Node %(node)s: deleting duplicate attachment '
                        '%(att)s of volume %(vol)s',
                        {'node': self.node.uuid, 'att': attachment['id'],
                         'vol': volume_id})
            self.cinder.delete_attachment(attachment['id'],
                                          volume_id=volume_id)
        if not keep.get('connection_info'):
            keep = self.cinder.get_attachment(keep['id'],
                                              volume_id=volume_id)
        return keep

    # attach

    def attach_all(self, connector):
        """Attach every volume target, boot volume first.

        On any failure, what this call did is undone (agent connections
        disconnected, attachments it created deleted, target properties
        restored) and VolumeAttachError is raised.

        :returns: a list of ``(target, attachment, agent_result)``.
        """
        log_filter.install()
        done = []
        created = []
        try:
            for target in sorted_targets(self.task):
                done.append(self._attach_one(target, connector, created))
        except Exception as e:
            LOG.error('Node %(node)s: attaching volumes failed, rolling '
                      'back: %(err)s', {'node': self.node.uuid,
                                        'err': secrets.safe_text(e)})
            self._rollback(done, created)
            if isinstance(e, exception.VolumeAttachError):
                raise
            volume_id = getattr(e, 'volume', None)
            raise _fail(self.node, volume_id, e)
        return done

    def _attach_one(self, target, connector, created):
        volume_id = target.volume_id
        mode = target_mode(self.node, target)
        volume = self.cinder.get_volume(volume_id)
        attachment = self._existing_attachment(volume_id)
        if attachment is None:
            self._check_volume(volume, mode)
            # Cinder was just asked: the node has no attachment of it.
            attachment = self.cinder.create_attachment(
                volume_id, connector, instance_uuid=self.node.uuid,
                mode=mode, protocol=target.volume_type, existing=[])
            created.append((volume_id, attachment['id']))
            reused = False
        else:
            reused = True
            if not attachment.get('connection_info'):
                # A reservation without a connector (a create that failed
                # half-way in an older run): give it the connector now.
                attachment = self.cinder.update_attachment(
                    attachment['id'], connector, volume_id=volume_id,
                    protocol=target.volume_type)
        info = connection.from_attachment(
            attachment.get('connection_info') or {})
        secrets.remember(info)
        entry = {'attachment_id': attachment['id'], 'target': target.uuid,
                 'mode': mode, 'properties': sorted((info.get('data')
                                                     or {}).keys())}
        self._remember(volume_id, entry)
        LOG.info('Node %(node)s: %(how)s attachment %(att)s of volume '
                 '%(vol)s (%(type)s, mode %(mode)s)',
                 {'node': self.node.uuid, 'vol': volume_id,
                  'how': 'reusing' if reused else 'created',
                  'att': attachment['id'], 'mode': mode,
                  'type': info.get('driver_volume_type')})
        protocol = str(info.get('driver_volume_type', '')).lower()
        if protocol and target.volume_type.lower() != protocol:
            raise _fail(self.node, volume_id,
                        'volume target %s says %s but Cinder exports the '
                        'volume as %s' % (target.uuid, target.volume_type,
                                          protocol))
        try:
            result = agent_commands.run(self.task, 'cinder.connect_volume', {
                'volume_id': volume_id, 'attachment_id': attachment['id'],
                'connection_info': info, 'mode': mode,
                'boot': target.boot_index == 0})
        except exception.AgentCommandError as e:
            raise _fail(self.node, volume_id, e)
        try:
            if attachment.get('status') != 'attached':
                self.cinder.complete_attachment(attachment['id'],
                                                volume_id=volume_id)
            self._write_target_properties(target, info)
        except Exception:
            # This target is not in the caller's list of done ones yet:
            # undo its agent connection here, the rollback does the rest.
            self._disconnect_on_agent(volume_id, attachment['id'])
            self._clear_target_properties(target)
            raise
        return target, attachment, result

    def _write_target_properties(self, target, info):
        """Put the connection data where Ironic's boot interfaces read it.

        iPXE renders ``sanboot`` from ``target_portal``, ``target_iqn``,
        ``target_lun`` and the CHAP credentials of the boot volume target.
        Ironic masks passwords in the API and shows properties only to
        callers allowed ``baremetal:volume:view_target_properties``.
        """
        properties = dict(target.properties or {})
        properties.update(info.get('data') or {})
        properties['driver_volume_type'] = info.get('driver_volume_type')
        target.properties = properties
        target.save()

    def _rollback(self, done, created):
        for target, attachment, _result in reversed(done):
            self._disconnect_on_agent(target.volume_id, attachment['id'])
            self._clear_target_properties(target)
        created_ids = {att for _vol, att in created}
        for volume_id, attachment_id in created:
            try:
                self.cinder.delete_attachment(attachment_id,
                                              volume_id=volume_id)
            except exception.CinderError as e:
                LOG.error('Node %(node)s: could not delete attachment '
                          '%(att)s of volume %(vol)s while rolling back: '
                          '%(err)s', {'node': self.node.uuid,
                                      'att': attachment_id,
                                      'vol': volume_id, 'err': e})
                continue
            self._forget(volume_id)
        # Attachments that existed before this call stay recorded: they
        # belong to an earlier, successful run of the step.
        for volume_id, entry in self._recorded().items():
            if entry['attachment_id'] in created_ids:
                self._forget(volume_id)

    def _disconnect_on_agent(self, volume_id, attachment_id):
        try:
            agent_commands.run(self.task, 'cinder.disconnect_volume',
                               {'attachment_id': attachment_id})
        except exception.AgentCommandError as e:
            LOG.error('Node %(node)s: the agent could not disconnect volume '
                      '%(vol)s: %(err)s', {'node': self.node.uuid,
                                           'vol': volume_id, 'err': e})

    def _clear_target_properties(self, target):
        entry = None
        for volume_id, recorded in self._recorded().items():
            if recorded.get('target') == target.uuid:
                entry = recorded
        keys = set(entry.get('properties', ())) if entry else set()
        keys.add('driver_volume_type')
        properties = {k: v for k, v in (target.properties or {}).items()
                      if k not in keys}
        if properties != (target.properties or {}):
            target.properties = properties
            target.save()

    # detach

    def disconnect_on_agent(self):
        """Ask the agent to disconnect everything it has connected."""
        listed = agent_commands.run(self.task, 'cinder.list_connections')
        for conn in listed.get('connections', []):
            agent_commands.run(self.task, 'cinder.disconnect_volume',
                               {'attachment_id': conn['attachment_id']})
            LOG.info('Node %(node)s: agent disconnected volume %(vol)s',
                     {'node': self.node.uuid, 'vol': conn['volume_id']})
        return listed.get('connections', [])

    def delete_all(self):
        """Delete every attachment of the node and clear the targets.

        Reconciles against Cinder: attachments whose instance is the node
        are deleted too, not only the recorded ones. Volume targets are
        kept; only the connection data written into them is removed.

        :returns: the ids of the deleted attachments.
        """
        deleted = []
        recorded = self._recorded()
        pairs = {(vol, entry['attachment_id'])
                 for vol, entry in recorded.items()}
        for attachment in self.cinder.list_attachments(
                instance_uuid=self.node.uuid):
            pairs.add((attachment.get('volume_id'), attachment['id']))
        errors = []
        for volume_id, attachment_id in sorted(pairs):
            try:
                if self.cinder.delete_attachment(attachment_id,
                                                 volume_id=volume_id):
                    deleted.append(attachment_id)
            except exception.CinderError as e:
                errors.append(str(e))
        for target in self.task.volume_targets:
            self._clear_target_properties(target)
        if errors:
            raise _fail(self.node, None, '; '.join(errors))
        self.node.del_driver_internal_info(ATTACHMENTS_KEY)
        self.node.del_driver_internal_info(CONNECTOR_KEY)
        self.node.save()
        return deleted
