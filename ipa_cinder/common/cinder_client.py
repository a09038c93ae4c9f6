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

"""Cinder attachments and volumes, as the conductor and the CLI use them.

:class:`CinderClient` speaks Cinder's "new attach" API directly through a
:class:`~ipa_cinder.common.cinder_transport.Transport`, with an explicit
microversion on every request:

* ``create_attachment`` sends the connector in the create request (one round
  trip, no reserve + update) at microversion 3.54 when a mode (``rw``/``ro``)
  is given, 3.44 otherwise. The connector is validated first: Cinder answers
  500 to a connector without ``host`` (or, for iSCSI, without ``initiator``)
  and leaves a reserved attachment behind. Strays of a failed or retried
  create are removed (:mod:`ipa_cinder.common.cinder_strays`).
* ``complete_attachment`` (``os-complete``, 3.44) moves the volume to
  ``in-use``; ``update_attachment`` (3.44) adds a connector to a reserved
  attachment.
* ``delete_attachment`` (3.44) treats 404 as success: the attachment is gone.
* ``get_attachment``, ``list_attachments`` (by volume and/or instance; the
  attachments of a node are those whose ``instance`` is the node UUID),
  ``get_volume``, ``find_volume`` (by id or name) and ``list_volumes``.

Why raw requests and not openstacksdk's ``create_attachment`` and friends:
in openstacksdk 4.22 these negotiate the microversion with version
discovery (the highest both sides support, up to 3.71), so the mode argument
and the request shape depend on the server, and they cannot add a header to
one call only. Here every call states its microversion.

Deleting attachments: the service role. Since the fix for CVE-2023-2088,
Cinder refuses to delete an attachment that has an instance UUID and
connection info unless the request is a *service request* (``service_roles``
of the request context intersect ``[keystone_authtoken]
service_token_roles``, default ``service``); otherwise it asks Nova, and
without a Nova endpoint it answers 500. A node UUID is not a Nova server,
so this client must be a service:

* With Keystone, the roles come from a service token (``X-Service-Token``)
  validated by keystonemiddleware, which strips any client-sent
  ``X-Service-Roles`` header. On the conductor,
  :func:`ipa_cinder.conductor.cinder_session.cinder_client` makes sure a
  service token is sent. Ironic's service user needs the ``service`` role,
  as every service user of a standard deployment has.
* With a standalone Cinder in ``noauth`` mode (Bifrost-style), there is no
  token: Cinder builds the request context from headers, so the client sends
  ``X-Service-Roles: service`` with DELETE. This is not an escalation:
  under noauth every request is already admin. The header is sent when
  ``service_role_header`` is True, or, when it is None (the default), when
  the adapter's auth plugin is keystoneauth's ``none`` plugin (Ironic
  ``[cinder] auth_type = none``; ``auth_type: none`` in clouds.yaml). Pass
  True when a noauth Cinder is reached with another plugin (for instance an
  ``admin_token`` of the form ``user:project``).
"""

import time

from oslo_log import log
from oslo_utils import uuidutils

from ipa_cinder.common import cinder_strays
from ipa_cinder.common import cinder_transport
from ipa_cinder.common import connection
from ipa_cinder.common import secrets
from ipa_cinder import exception

LOG = log.getLogger(__name__)

MV_ATTACH = cinder_transport.MV_ATTACH
MV_ATTACH_MODE = cinder_transport.MV_ATTACH_MODE
MODES = connection.VALID_MODES
SERVICE_ROLES_HEADER = 'X-Service-Roles'

#: Volumes asked for per page by list_volumes, and the most pages read:
#: a bound on what a misbehaving endpoint can make this client read.
VOLUMES_PAGE_SIZE = 500
VOLUMES_MAX_PAGES = 200


def validate_connector(connector, protocol=None, *, node=None,
                       volume=None):
    """Check a connector before it is sent to Cinder.

    :param connector: os-brick connector properties (a dict).
    :param protocol: storage protocol of the volume when the caller knows it
        (``iscsi``, ``fibre_channel``, ``nvmeof``, ``local``...): its own
        required keys are checked too.
    :raises: InvalidConnector naming the missing field.
    """
    try:
        connection.validate_connector(connector, protocol)
    except exception.InvalidConnectionInfo as e:
        raise exception.InvalidConnector(
            '%s: %s' % (e.field, e.reason), call='create_attachment',
            node=node, volume=volume)


def volume_project_id(volume):
    """Project owning a volume dict (admin view), or None."""
    return volume.get('os-vol-tenant-attr:tenant_id')


class CinderClient(object):
    """Cinder attachments and volumes, with retries and clear errors.

    :param cloud: an ``openstack.connection.Connection`` or its
        ``block_storage`` proxy (what ``ironic.common.cinder.get_client``
        returns), or any keystoneauth adapter of the block-storage v3
        endpoint.
    :param node: node UUID or name named in error messages.
    :param service_role_header: send ``X-Service-Roles: service`` with
        DELETE: True, False, or None to decide from the auth plugin (sent
        with keystoneauth's ``none`` plugin only). See the module docstring.
    :param metrics: object with a ``timer(name)`` context manager, such as
        Ironic's metrics logger; None for no metrics.
    :param conf: oslo.config object holding the ``[ipa_cinder]`` options.
    :param sleep: function used to wait between attempts (tests).
    """

    def __init__(self, cloud, *, node=None, service_role_header=None,
                 metrics=None, conf=None, sleep=time.sleep):
        self.transport = cinder_transport.Transport(
            cloud, node=node, metrics=metrics, conf=conf, sleep=sleep)
        self.node = node
        if service_role_header is None:
            service_role_header = self.transport.auth_is_noauth()
        self.service_role_header = bool(service_role_header)

    @property
    def proxy(self):
        """The block-storage adapter (built on first use)."""
        return self.transport.proxy

    def _call(self, call, method, url, **kwargs):
        return self.transport.call(call, method, url, **kwargs)

    # ------------------------------------------------------ attachments --

    def create_attachment(self, volume_id, connector, *, instance_uuid=None,
                          mode=None, protocol=None, existing=None):
        """Create an attachment with its connector (attached in one call).

        :param volume_id: the volume.
        :param connector: os-brick connector properties of the node.
        :param instance_uuid: the node UUID (Cinder's "instance").
        :param mode: ``rw`` or ``ro``; None lets Cinder decide (``rw``).
        :param protocol: volume protocol when known, see
            :func:`validate_connector`.
        :param existing: the attachments of (volume, instance) the caller
            has just listed, if it has: saves listing them again.
        :returns: the attachment dict (``id``, ``status``, ``attach_mode``,
            ``connection_info``...). It holds secrets: mask before logging.
        :raises: InvalidConnector, InvalidInput or CinderError.
        """
        body, microversion = self._create_body(
            volume_id, connector, instance_uuid, mode, protocol)
        # What exists before the first attempt is not ours to clean up.
        if existing is None:
            existing = cinder_strays.same_attachments(self, volume_id,
                                                      instance_uuid)
        known = {a['id'] for a in existing}

        def before_retry():
            # A failed or lost attempt may have left an attachment in
            # Cinder (a driver error leaves one "reserved"): remove it now,
            # or it would keep a non-multiattach volume reserved.
            cinder_strays.delete_strays(self, volume_id, instance_uuid,
                                        known, retry=False)

        try:
            result, attempts = self._call(
                'create_attachment', 'POST', '/attachments',
                microversion=microversion, json=body,
                ok=(200, 202), before_retry=before_retry, volume=volume_id)
        except exception.InvalidInput:
            raise
        except exception.CinderError:
            cinder_strays.delete_strays(self, volume_id, instance_uuid,
                                        known)
            raise
        attachment = result['attachment']
        if attempts > 1:
            cinder_strays.delete_strays(self, volume_id, instance_uuid,
                                        known | {attachment['id']})
        LOG.info('Created Cinder attachment %(att)s of volume %(vol)s for '
                 '%(inst)s, mode %(mode)s',
                 {'att': attachment['id'], 'vol': volume_id,
                  'inst': instance_uuid,
                  'mode': attachment.get('attach_mode', mode)})
        return attachment

    def _create_body(self, volume_id, connector, instance_uuid, mode,
                     protocol):
        """(request body, microversion) of an attachment create."""
        if mode is not None and (not isinstance(mode, str)
                                 or mode not in MODES):
            raise exception.InvalidInput(
                'mode must be one of %s, not %s'
                % (', '.join(MODES), secrets.brief(mode)),
                call='create_attachment', node=self.node, volume=volume_id)
        validate_connector(connector, protocol, node=self.node,
                           volume=volume_id)
        body = {'volume_uuid': volume_id, 'connector': connector}
        if instance_uuid:
            body['instance_uuid'] = instance_uuid
        if mode is None:
            return {'attachment': body}, MV_ATTACH
        body['mode'] = mode
        return {'attachment': body}, MV_ATTACH_MODE

    def update_attachment(self, attachment_id, connector, *, volume_id=None,
                          protocol=None):
        """Add the connector to a reserved attachment.

        :returns: the attachment dict. Note that Cinder returns a stale
            ``status`` here (``reserved``); fetch it again if it matters.
        """
        validate_connector(connector, protocol, node=self.node,
                           volume=volume_id)
        result, _attempts = self._call(
            'update_attachment', 'PUT', '/attachments/%s' % attachment_id,
            microversion=MV_ATTACH,
            json={'attachment': {'connector': connector}},
            volume=volume_id, attachment=attachment_id)
        return result['attachment']

    def complete_attachment(self, attachment_id, *, volume_id=None):
        """Mark the attachment attached; the volume becomes ``in-use``."""
        self._call('complete_attachment', 'POST',
                   '/attachments/%s/action' % attachment_id,
                   microversion=MV_ATTACH, json={'os-complete': None},
                   ok=(200, 202, 204), volume=volume_id,
                   attachment=attachment_id)

    def delete_attachment(self, attachment_id, *, volume_id=None):
        """Delete an attachment; one that is already gone is not an error.

        :returns: True when this call deleted it, False when Cinder did not
            know it (404), which covers a retried delete whose first answer
            was lost.
        """
        headers = None
        if self.service_role_header:
            headers = {SERVICE_ROLES_HEADER: 'service'}
        try:
            self._call('delete_attachment', 'DELETE',
                       '/attachments/%s' % attachment_id,
                       microversion=MV_ATTACH, headers=headers,
                       ok=(200, 202, 204), volume=volume_id,
                       attachment=attachment_id, hint=self._delete_hint)
        except exception.CinderNotFound:
            LOG.info('Cinder attachment %(att)s (volume %(vol)s) is already '
                     'gone', {'att': attachment_id, 'vol': volume_id})
            return False
        LOG.info('Deleted Cinder attachment %(att)s (volume %(vol)s)',
                 {'att': attachment_id, 'vol': volume_id})
        return True

    def _delete_hint(self, response):
        if response.status_code != 500:
            return ''
        # The service-role trap: Cinder asked Nova and failed.
        return ('; if the attachment has connection info, Cinder deletes it '
                'only for a service: a service token with Keystone, or the '
                'X-Service-Roles header with noauth (service_role_header=%s)'
                % self.service_role_header)

    def get_attachment(self, attachment_id, *, volume_id=None):
        """One attachment (dict, with connection_info: mask it to log)."""
        result, _attempts = self._call(
            'get_attachment', 'GET', '/attachments/%s' % attachment_id,
            microversion=MV_ATTACH, volume=volume_id,
            attachment=attachment_id)
        return result['attachment']

    def list_attachments(self, *, volume_id=None, instance_uuid=None,
                         all_projects=True, retry=True):
        """Attachments (detailed) filtered by volume and/or instance.

        :param all_projects: also those of other projects (admin only;
            Cinder ignores it for other callers). Attachments belong to the
            project that created them, which may not be the caller's.
        :param retry: apply the retry policy (False: one attempt).
        """
        params = {}
        if volume_id:
            params['volume_id'] = volume_id
        if instance_uuid:
            params['instance_id'] = instance_uuid
        if all_projects:
            params['all_tenants'] = 1
        result, _attempts = self._call(
            'list_attachments', 'GET', '/attachments/detail',
            microversion=MV_ATTACH, params=params, volume=volume_id,
            retry=retry)
        attachments = result.get('attachments', [])
        # Filter again: a Cinder that ignored a filter must not make us
        # touch another node's attachments.
        return [a for a in attachments
                if (not volume_id or a.get('volume_id') == volume_id)
                and (not instance_uuid or a.get('instance') == instance_uuid)]

    # ---------------------------------------------------------- volumes --

    def get_volume(self, volume_id):
        """One volume, as a dict.

        It has ``status``, ``multiattach``, ``attachments`` and, for an
        admin, ``os-vol-tenant-attr:tenant_id`` (see
        :func:`volume_project_id`).
        """
        result, _attempts = self._call('get_volume', 'GET',
                                       '/volumes/%s' % volume_id,
                                       microversion=MV_ATTACH,
                                       volume=volume_id)
        return result['volume']

    def find_volume(self, name_or_id, *, all_projects=True):
        """A volume by ID, or else by its (unique) name.

        :raises: CinderNotFound when nothing matches, CinderConflict when
            several volumes carry the name.
        """
        if uuidutils.is_uuid_like(name_or_id):
            try:
                return self.get_volume(name_or_id)
            except exception.CinderNotFound:
                pass  # a name may look like a UUID
        found = [v for v in self.list_volumes(all_projects=all_projects,
                                              filters={'name': name_or_id})
                 if name_or_id in (v.get('name'), v.get('id'))]
        if not found:
            raise exception.CinderNotFound(
                'no volume has this ID or name', call='find_volume',
                node=self.node, volume=name_or_id)
        if len(found) > 1:
            raise exception.CinderConflict(
                '%d volumes are named so (%s): use an ID'
                % (len(found), ', '.join(v['id'] for v in found)),
                call='find_volume', node=self.node, volume=name_or_id)
        return found[0]

    def list_volumes(self, *, all_projects=True, filters=None):
        """Every volume (detailed), page by page.

        :param all_projects: volumes of every project (admin only).
        :param filters: Cinder query filters (``name``, ``status``...).
        :raises: CinderError; CinderUnavailable if the listing does not
            end within VOLUMES_MAX_PAGES pages.
        """
        params = dict(filters or {}, limit=VOLUMES_PAGE_SIZE)
        if all_projects:
            params['all_tenants'] = 1
        volumes = []
        for _page in range(VOLUMES_MAX_PAGES):
            result, _attempts = self._call(
                'list_volumes', 'GET', '/volumes/detail',
                microversion=MV_ATTACH, params=params)
            page = result.get('volumes') or []
            volumes.extend(page)
            if len(page) < VOLUMES_PAGE_SIZE or not page[-1].get('id'):
                return volumes
            params['marker'] = page[-1]['id']
        raise exception.CinderUnavailable(
            'the volume listing did not end after %d pages of %d'
            % (VOLUMES_MAX_PAGES, VOLUMES_PAGE_SIZE), call='list_volumes',
            node=self.node)
