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

"""Attachments a failed or retried create may have left in Cinder.

A create whose response was lost may have succeeded in Cinder. Before each
new attempt, after a retried success and after a final failure, the
attachments of the same (volume, instance) that did not exist before the
first attempt are deleted, except the one returned to the caller. They are
deleted rather than reused because nothing tells whether Cinder finished
them: a create that failed in the volume driver leaves a ``reserved``
attachment without connection info, while the attachment returned by the
successful attempt is known to be complete. Deleting them also frees a
non-multiattach volume, which the strays would otherwise keep ``reserved``
(the retry would get a 400).

Without an instance there is no telling a stray from another host's
attachment of a multiattach volume made meanwhile: nothing is deleted
then, the candidates are only logged.
"""

from oslo_log import log

from ipa_cinder import exception

LOG = log.getLogger(__name__)


def same_attachments(client, volume_id, instance_uuid, retry=True):
    """Attachments of (volume, instance); instance-less ones if None."""
    attachments = client.list_attachments(
        volume_id=volume_id, instance_uuid=instance_uuid, retry=retry)
    if not instance_uuid:
        attachments = [a for a in attachments if not a.get('instance')]
    return attachments


def _log_instanceless(client, volume_id, keep, retry):
    try:
        candidates = [a['id'] for a in same_attachments(
            client, volume_id, None, retry=retry) if a['id'] not in keep]
    except exception.CinderError:
        candidates = []
    if candidates:
        LOG.warning('Volume %(vol)s has instance-less attachments made '
                    'while a create was retried (%(ids)s); not deleting '
                    'them: they may belong to other hosts',
                    {'vol': volume_id, 'ids': ', '.join(candidates)})


def delete_strays(client, volume_id, instance_uuid, keep, retry=True):
    """Delete attachments of (volume, instance) whose id is not in ``keep``.

    Best effort: a failure is logged (with the ids left behind) and never
    hides the error the caller is about to report.
    """
    if not instance_uuid:
        _log_instanceless(client, volume_id, keep, retry)
        return
    try:
        strays = [a['id'] for a in
                  same_attachments(client, volume_id, instance_uuid,
                                   retry=retry)
                  if a['id'] not in keep]
    except exception.CinderError as exc:
        LOG.warning('Could not look for attachments of volume %(vol)s left '
                    'by a failed create: %(err)s',
                    {'vol': volume_id, 'err': exc})
        return
    for attachment_id in strays:
        LOG.warning('Deleting attachment %(att)s of volume %(vol)s for '
                    '%(inst)s, left in Cinder by a failed or retried '
                    'create', {'att': attachment_id, 'vol': volume_id,
                               'inst': instance_uuid})
        try:
            client.delete_attachment(attachment_id, volume_id=volume_id)
        except exception.CinderError as exc:
            LOG.error('Attachment %(att)s of volume %(vol)s is left in '
                      'Cinder: %(err)s', {'att': attachment_id,
                                          'vol': volume_id, 'err': exc})
