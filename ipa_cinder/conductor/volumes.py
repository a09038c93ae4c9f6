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
into the volume target), saved as soon as they exist so that a restarted
conductor finds them. Cinder is the reference, though: every attach and
detach starts from ONE listing of the attachments whose ``instance`` is
the node, so nothing is created twice and nothing is left behind.

Attaching runs in three stages. Cinder's reads (the node's attachments,
each volume) run while the agent reports its connector. Cinder work of
each volume (checks, attachment create with the connector) runs
concurrently, bounded by ``[ipa_cinder] attach_concurrency``. The agent
then connects all the volumes in ONE command (``cinder.connect_volumes``,
boot volume first: IPA runs one command at a time and each costs a round
trip) while Cinder completes the attachments (complete only marks them
attached, and a failure deletes them either way). A fresh volume
costs three Cinder requests (volume, create, complete) plus one listing
per node. Any failure undoes everything this run created.
"""

from concurrent import futures

from oslo_log import log

from ipa_cinder.common import connection
from ipa_cinder.common import log_filter
from ipa_cinder.common import secrets
from ipa_cinder.conductor import agent_volumes
from ipa_cinder.conductor import concurrency
from ipa_cinder.conductor import targets as targets_mod
from ipa_cinder.conductor import volume_checks
from ipa_cinder import conf
from ipa_cinder import exception

LOG = log.getLogger(__name__)
CONF = conf.CONF

ATTACHMENTS_KEY = 'cinder_attachments'
CONNECTOR_KEY = 'cinder_connector'
#: The volume connectors this interface created on the node.
CONNECTORS_KEY = 'cinder_volume_connectors'


def _fail(node, volume_id, reason):
    return exception.VolumeAttachError(node.uuid, volume_id, reason)


class _Prepared(object):
    """One volume target on its way to being attached."""

    def __init__(self, target, mode):
        self.target = target
        self.volume_id = target.volume_id
        self.mode = mode
        self.volume = None
        self.attachment = None
        self.info = None
        self.created = False
        self.connected = False
        self.result = None


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
        self._save_records(dict(self._recorded(), **{volume_id: entry}))

    def _save_records(self, recorded):
        self.node.set_driver_internal_info(ATTACHMENTS_KEY, recorded)
        self.node.save()

    def _forget(self, volume_ids):
        recorded = {volume: entry for volume, entry in self._recorded().items()
                    if volume not in volume_ids}
        if recorded:
            return self._save_records(recorded)
        self.node.del_driver_internal_info(ATTACHMENTS_KEY)
        self.node.save()

    def _node_attachments(self):
        """The node's attachments in Cinder, by volume (one listing)."""
        by_volume = {}
        for attachment in self.cinder.list_attachments(
                instance_uuid=self.node.uuid):
            by_volume.setdefault(attachment.get('volume_id'),
                                 []).append(attachment)
        return by_volume

    def _reusable(self, volume_id, found):
        """The node's attachment of this volume in Cinder, if any.

        ``found`` is what the node listing holds for the volume. The
        recorded attachment wins; extra ones are deleted.
        """
        recorded = (self._recorded().get(volume_id) or {}).get(
            'attachment_id')
        if recorded and recorded not in {a['id'] for a in found}:
            # Not the node's in Cinder's eyes (an attachment without
            # instance, from an older run): ask for it by id.
            try:
                attachment = self.cinder.get_attachment(
                    recorded, volume_id=volume_id)
                if attachment.get('instance') in (None, self.node.uuid):
                    found = [attachment] + list(found)
            except exception.CinderNotFound:
                LOG.info('Node %(node)s: recorded attachment %(att)s of '
                         'volume %(vol)s is gone from Cinder',
                         {'node': self.node.uuid, 'vol': volume_id,
                          'att': recorded})
        if not found:
            return None
        found = sorted(found, key=lambda a: a['id'] != recorded)
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

    def attach_all(self, get_connector):
        """Attach every volume target, boot volume first.

        :param get_connector: returns the node's connector (asks the
            agent); Cinder's reads, which need no connector, run meanwhile.

        On any failure, what this call did is undone (agent connections
        disconnected, attachments it created deleted, target properties
        restored) and VolumeAttachError is raised.

        :returns: a list of ``(target, attachment, agent_result)``.
        """
        log_filter.install()
        prepared = [_Prepared(t, targets_mod.target_mode(self.node, t))
                    for t in targets_mod.sorted_targets(self.task)]
        with futures.ThreadPoolExecutor(max_workers=1) as reader:
            lookup = reader.submit(self._read_cinder, prepared)
            connector = get_connector()
        workers = CONF.ipa_cinder.attach_concurrency
        try:
            existing = lookup.result()
            concurrency.concurrently(
                lambda p: self._prepare(p, connector,
                                        existing.get(p.volume_id, [])),
                prepared, workers)
            self._record_all(prepared)
            # Cinder completes the attachments while the agent connects
            # the volumes and Ironic's database takes the targets'
            # connection data; a failure of either undoes all three.
            with futures.ThreadPoolExecutor(max_workers=1) as pool:
                completing = pool.submit(concurrency.concurrently,
                                         self._complete, prepared, workers)
                agent_volumes.connect_all(self.task, prepared)
                for item in prepared:
                    targets_mod.write_properties(item.target, item.info)
                completing.result()
        except Exception as e:
            LOG.error('Node %(node)s: attaching volumes failed, rolling '
                      'back: %(err)s', {'node': self.node.uuid,
                                        'err': secrets.safe_text(e)})
            self._rollback(prepared)
            if isinstance(e, exception.VolumeAttachError):
                raise
            raise _fail(self.node, getattr(e, 'volume', None), e)
        return [(p.target, p.attachment, p.result) for p in prepared]

    def _read_cinder(self, prepared):
        """The node's attachments (one listing) and each volume."""
        existing = self._node_attachments()

        def read(item):
            item.volume = self.cinder.get_volume(item.volume_id)
        concurrency.concurrently(read, prepared,
                                 CONF.ipa_cinder.attach_concurrency)
        return existing

    def _prepare(self, item, connector, found):
        """Cinder's side of one volume: checks, then reuse or create."""
        volume = item.volume
        volume_checks.check_owner(self.node, volume)
        attachment = self._reusable(item.volume_id, found)
        target = item.target
        if attachment is None:
            volume_checks.check_attachable(self.node, volume)
            # The node listing said the node has no attachment of it.
            attachment = self.cinder.create_attachment(
                item.volume_id, connector, instance_uuid=self.node.uuid,
                mode=item.mode, protocol=target.volume_type, existing=[])
            item.created = True
        elif not attachment.get('connection_info'):
            # A reservation without a connector (a create that failed
            # half-way in an older run): give it the connector now.
            attachment = self.cinder.update_attachment(
                attachment['id'], connector, volume_id=item.volume_id,
                protocol=target.volume_type)
        item.attachment = attachment
        item.info = connection.from_attachment(
            attachment.get('connection_info') or {})
        secrets.remember(item.info)
        LOG.info('Node %(node)s: %(how)s attachment %(att)s of volume '
                 '%(vol)s (%(type)s, mode %(mode)s)',
                 {'node': self.node.uuid, 'vol': item.volume_id,
                  'how': 'created' if item.created else 'reusing',
                  'att': attachment['id'], 'mode': item.mode,
                  'type': item.info.get('driver_volume_type')})

    def _record_all(self, prepared):
        """Record the attachments; each must use its target's protocol."""
        self._save_records(dict(self._recorded(), **{
            p.volume_id: self._entry(p) for p in prepared}))
        for item in prepared:
            protocol = str(item.info.get('driver_volume_type', '')).lower()
            if protocol and item.target.volume_type.lower() != protocol:
                raise _fail(self.node, item.volume_id,
                            'volume target %s says %s but Cinder exports the '
                            'volume as %s' % (item.target.uuid,
                                              item.target.volume_type,
                                              protocol))

    @staticmethod
    def _entry(item):
        """What driver_internal_info records of an attachment."""
        return {'attachment_id': item.attachment['id'],
                'target': item.target.uuid, 'mode': item.mode,
                'properties': sorted((item.info.get('data') or {}).keys())}

    def _complete(self, item):
        if item.attachment.get('status') != 'attached':
            self.cinder.complete_attachment(item.attachment['id'],
                                            volume_id=item.volume_id)

    def _rollback(self, prepared):
        """Undo a failed attach: agent first, then Cinder, then records."""
        busy = []
        for item in reversed(prepared):
            if item.connected:
                if busy or not agent_volumes.disconnect_one(
                        self.task, item.volume_id, item.attachment['id']):
                    busy.append(item.volume_id)
            if item.info is not None:
                targets_mod.clear_properties(
                    item.target, (item.info.get('data') or {}).keys())
        if busy:
            # One line, not one refusal per volume: the agent runs
            # another command (one that outlived agent_command_timeout).
            LOG.error('Node %(node)s: the agent is still busy with another '
                      'command and refuses to disconnect volume(s) %(vols)s; '
                      'they stay connected on the node until it is cleaned '
                      'or powered off', {'node': self.task.node.uuid,
                                         'vols': ', '.join(busy)})
        forget = []
        for item in prepared:
            if not item.created:
                # Attachments that existed before this call stay recorded:
                # they belong to an earlier, successful run of the step.
                continue
            try:
                self.cinder.delete_attachment(item.attachment['id'],
                                              volume_id=item.volume_id)
            except exception.CinderError as e:
                # Still in Cinder: keep it recorded, so that the undeploy
                # or the next run finds and deletes it.
                LOG.error('Node %(node)s: could not delete attachment '
                          '%(att)s of volume %(vol)s while rolling back: '
                          '%(err)s', {'node': self.node.uuid,
                                      'att': item.attachment['id'],
                                      'vol': item.volume_id, 'err': e})
                if item.volume_id not in self._recorded():
                    self._remember(item.volume_id, self._entry(item))
                continue
            forget.append(item.volume_id)
        if forget:
            self._forget(forget)

    # detach

    def disconnect_on_agent(self, all_iscsi_sessions=False):
        """Disconnect on the agent (if asked, every iSCSI session too)."""
        return agent_volumes.disconnect_all(self.task, all_iscsi_sessions)

    def delete_all(self):
        """Delete every attachment of the node and clear the targets.

        Reconciles against Cinder: attachments whose instance is the node
        are deleted too, not only the recorded ones. Volume targets are
        kept; only the connection data written into them is removed.

        :returns: the ids of the deleted attachments.
        """
        recorded = self._recorded()
        pairs = {(vol, entry['attachment_id'])
                 for vol, entry in recorded.items()}
        for volume_id, found in self._node_attachments().items():
            pairs.update((volume_id, a['id']) for a in found)
        deleted, errors = [], []
        for volume_id, attachment_id in sorted(pairs):
            try:
                if self.cinder.delete_attachment(attachment_id,
                                                 volume_id=volume_id):
                    deleted.append(attachment_id)
            except exception.CinderError as e:
                errors.append(str(e))
        by_target = {e.get('target'): e.get('properties')
                     for e in recorded.values()}
        for target in self.task.volume_targets:
            targets_mod.clear_properties(target, by_target.get(target.uuid))
        if errors:
            raise _fail(self.node, None, '; '.join(errors))
        self.node.del_driver_internal_info(ATTACHMENTS_KEY)
        self.node.del_driver_internal_info(CONNECTOR_KEY)
        self.node.save()
        return deleted
