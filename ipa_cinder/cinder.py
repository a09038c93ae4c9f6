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

"""Cinder attachments client of the conductor half and of the CLI.

:class:`CinderClient` wraps openstacksdk's block_storage v3 proxy (a
keystoneauth adapter) and speaks the Cinder "new attach" API directly, with
an explicit microversion on every request:

* ``create_attachment`` sends the connector in the create request (one round
  trip, no reserve + update) at microversion 3.54 when a mode (``rw``/``ro``)
  is given, 3.44 otherwise. The connector is validated first: Cinder answers
  500 to a connector without ``host`` (or, for iSCSI, without ``initiator``)
  and leaves a reserved attachment behind.
* ``complete_attachment`` (``os-complete``, 3.44) moves the volume to
  ``in-use``; ``update_attachment`` (3.44) adds a connector to a reserved
  attachment.
* ``delete_attachment`` (3.44) treats 404 as success: the attachment is gone.
* ``get_attachment``, ``list_attachments`` (by volume and/or instance; the
  attachments of a node are those whose ``instance`` is the node UUID),
  ``get_volume`` and ``find_volume`` (by id or name).

Why raw ``request()`` calls and not the proxy's ``create_attachment`` and
friends: in openstacksdk 4.22 these negotiate the microversion with version
discovery (the highest both sides support, up to 3.71), so the mode argument
and the request shape depend on the server, and they cannot add a header to
one call only. Here every call states its microversion.

Retries (tenacity). HTTP 500, 502, 503, 504 and keystoneauth connection
failures (refused, reset, timeouts) are retried with exponential backoff and
random jitter, bounded both in attempts and in total time by the
``[ipa_cinder] cinder_retry_*`` options. 400, 403, 404 and 409 are never
retried. Every retry is logged with the call, the attempt and the cause.
A create whose response was lost may have succeeded in Cinder: before each
new attempt, after a retried success and after a final failure, attachments
of the same (volume, instance) that did not exist before the first attempt
are deleted, except the one returned to the caller. They are deleted rather
than reused because nothing tells whether Cinder finished them: a create
that failed in the volume driver leaves a ``reserved`` attachment without
connection info, while the attachment returned by the successful attempt is
known to be complete. Deleting them also frees a non-multiattach volume,
which the strays would otherwise keep ``reserved`` (the retry would get a
400).

Deleting attachments: the service role. Since the fix for CVE-2023-2088,
Cinder refuses to delete an attachment that has an instance UUID and
connection info unless the request is a *service request* (``service_roles``
of the request context intersect ``[keystone_authtoken]
service_token_roles``, default ``service``); otherwise it asks Nova, and
without a Nova endpoint it answers 500. A node UUID is not a Nova server,
so this client must be a service:

* With Keystone, the roles come from a service token (``X-Service-Token``)
  validated by keystonemiddleware, which strips any client-sent
  ``X-Service-Roles`` header. Ironic's ``[cinder]`` session sends a service
  token only when the request context carries a user token;
  :func:`ironic_client` adds one built from Ironic's own ``[cinder]``
  credentials when it does not (periodic tasks, conductor-initiated
  cleaning). Ironic's service user needs the ``service`` role, as every
  service user of a standard deployment has.
* With a standalone Cinder in ``noauth`` mode (Bifrost-style), there is no
  token: Cinder builds the request context from headers, so the client sends
  ``X-Service-Roles: service`` with DELETE. This is not an escalation:
  under noauth every request is already admin. The header is sent when
  ``service_role_header`` is True, or, when it is None (the default), when
  the adapter's auth plugin is keystoneauth's ``none`` plugin (Ironic
  ``[cinder] auth_type = none``; ``auth_type: none`` in clouds.yaml). Pass
  True when a noauth Cinder is reached with another plugin (for instance an
  ``admin_token`` of the form ``user:project``).

Errors are translated into :class:`CinderError` subclasses whose messages
name the call, the node (when known), the volume and the attachment, and
never contain secrets: ``connection_info`` carries CHAP credentials, so
every text taken from Cinder is masked (:func:`mask_secrets`).

Metrics: each Cinder call runs under ``metrics.timer('CinderClient.<call>')``
when a metrics logger is given (Ironic's ``get_metrics_logger`` on the
conductor, :func:`ironic_client` passes it); the module itself needs neither
Ironic nor a running service to import.
"""

import contextlib
import time
import uuid

from keystoneauth1 import adapter as ks_adapter
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import noauth
from oslo_log import log
import tenacity

from ipa_cinder import conf
from ipa_cinder import connection

LOG = log.getLogger(__name__)
CONF = conf.CONF

#: Attachments API with ``os-complete`` (3.27 "new attach", 3.44 complete).
MV_ATTACH = '3.44'
#: Attachment create with a ``mode`` argument.
MV_ATTACH_MODE = '3.54'

MODES = ('rw', 'ro')
RETRIABLE_STATUS_CODES = frozenset([500, 502, 503, 504])
SERVICE_ROLES_HEADER = 'X-Service-Roles'

# --------------------------------------------------------------- errors --


class CinderError(Exception):
    """Base of every error of this module.

    :ivar call: the client call that failed (``create_attachment``...).
    :ivar node: node UUID or name, when known.
    :ivar volume: volume ID, when known.
    :ivar attachment: attachment ID, when known.
    :ivar status_code: HTTP status of Cinder's answer, None when there was
        none (connection error, input refused before calling Cinder).
    :ivar reason: masked explanation.
    """

    def __init__(self, reason, *, call=None, node=None, volume=None,
                 attachment=None, status_code=None):
        self.call = call
        self.node = node
        self.volume = volume
        self.attachment = attachment
        self.status_code = status_code
        self.reason = mask_secrets(str(reason))
        subject = ', '.join(
            '%s %s' % (kind, value) for kind, value in
            (('node', node), ('volume', volume), ('attachment', attachment))
            if value)
        what = 'Cinder %s' % call if call else 'Cinder'
        text = '%s failed' % what
        if subject:
            text += ' for %s' % subject
        if status_code:
            text += ' (HTTP %s)' % status_code
        super().__init__('%s: %s' % (text, self.reason))


class InvalidInput(CinderError):
    """The request was refused before reaching Cinder."""


class InvalidConnector(InvalidInput):
    """The connector misses ``host`` or a key its protocol needs."""


class CinderBadRequest(CinderError):
    """Cinder answered 400 (invalid state, invalid argument)."""


class CinderForbidden(CinderError):
    """Cinder answered 401 or 403."""


class CinderNotFound(CinderError):
    """Cinder answered 404 (or a name matched no volume)."""


class CinderConflict(CinderError):
    """Cinder answered 409."""


class CinderUnavailable(CinderError):
    """Connection errors or 5xx answers, after every allowed retry."""


_STATUS_EXCEPTIONS = {400: CinderBadRequest, 401: CinderForbidden,
                      403: CinderForbidden, 404: CinderNotFound,
                      409: CinderConflict}


# -------------------------------------------------------------- helpers --

def mask_secrets(value):
    """A copy of ``value`` (dict, list or text) with every secret masked.

    See :func:`ipa_cinder.connection.mask`: passwords, secrets, tokens and
    user names of credentials.
    """
    return connection.mask(value)


def validate_connector(connector, protocol=None, *, node=None,
                       volume=None):
    """Check a connector before it is sent to Cinder.

    :param connector: os-brick connector properties (a dict).
    :param protocol: storage protocol of the volume when the caller knows it
        (``iscsi``, ``fibre_channel``, ``nvmeof``, ``local``...): its own
        required keys are checked too.
    :param node: node UUID or name, for the error message.
    :param volume: volume ID, for the error message.
    :raises: InvalidConnector naming the missing field.
    """
    try:
        connection.validate_connector(connector, protocol)
    except connection.InvalidConnectionInfo as e:
        raise InvalidConnector('%s: %s' % (e.field, e.reason),
                               call='create_attachment', node=node,
                               volume=volume)


def volume_project_id(volume):
    """Project owning a volume dict (admin view), or None."""
    return volume.get('os-vol-tenant-attr:tenant_id')


def _is_uuid(value):
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _cinder_reason(response):
    """The error message of a Cinder answer, masked, without its body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body:
        # Cinder wraps its faults: {"badRequest": {"message": ..., ...}}
        fault = next(iter(body.values()))
        if isinstance(fault, dict) and fault.get('message'):
            return mask_secrets(str(fault['message']))
        if isinstance(fault, str):
            return mask_secrets(fault)
    return response.reason or 'HTTP %s' % response.status_code


class _RetriableHTTPError(Exception):
    """A 5xx answer worth another attempt."""

    def __init__(self, response):
        self.response = response
        super().__init__('HTTP %s: %s' % (response.status_code,
                                          _cinder_reason(response)))


def _is_retriable(exc):
    return isinstance(exc, (_RetriableHTTPError,
                            ks_exc.RetriableConnectionFailure,
                            ks_exc.UnknownConnectionError))


# --------------------------------------------------------------- client --

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
        if isinstance(cloud, ks_adapter.Adapter):
            self._cloud, self._proxy = None, cloud
        else:
            # A Connection builds its proxy on first use, reading Cinder's
            # version document: done inside the retry policy (see proxy).
            self._cloud, self._proxy = cloud, None
        self.node = node
        if service_role_header is None:
            service_role_header = _uses_noauth(
                self._proxy or getattr(cloud, 'session', None))
        self.service_role_header = bool(service_role_header)
        self._metrics = metrics
        self._conf = conf or CONF
        self._sleep = sleep

    @property
    def proxy(self):
        """The block-storage adapter (built on first use)."""
        if self._proxy is None:
            try:
                self._proxy = self._cloud.block_storage
            except ks_exc.DiscoveryFailure as exc:
                # openstacksdk reads Cinder's version document without a
                # token, and a noauth Cinder answers that with an empty
                # 204; Cinder may also just be down. Every call here names
                # its microversion, so the configured endpoint is enough.
                LOG.debug('No block-storage version discovery (%s); using '
                          'the endpoint as configured', exc)
                self._proxy = _plain_adapter(self._cloud)
        return self._proxy

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
        ctx = {'volume': volume_id}
        if mode is not None and mode not in MODES:
            raise InvalidInput('mode must be one of %s, not %r'
                               % (', '.join(MODES), mode),
                               call='create_attachment', node=self.node,
                               **ctx)
        validate_connector(connector, protocol, node=self.node,
                           volume=volume_id)
        body = {'volume_uuid': volume_id, 'connector': connector}
        if instance_uuid:
            body['instance_uuid'] = instance_uuid
        microversion = MV_ATTACH
        if mode is not None:
            body['mode'] = mode
            microversion = MV_ATTACH_MODE

        # What exists before the first attempt is not ours to clean up.
        if existing is None:
            existing = self._same_attachments(volume_id, instance_uuid)
        known = {a['id'] for a in existing}

        def before_retry():
            # A failed or lost attempt may have left an attachment in
            # Cinder (a driver error leaves one "reserved"): remove it now,
            # or it would keep a non-multiattach volume reserved.
            self._delete_strays(volume_id, instance_uuid, known, retry=False)

        try:
            result, attempts = self._call(
                'create_attachment', 'POST', '/attachments',
                microversion=microversion, json={'attachment': body},
                ok=(200, 202), before_retry=before_retry, **ctx)
        except InvalidInput:
            raise
        except CinderError:
            self._delete_strays(volume_id, instance_uuid, known)
            raise
        attachment = result['attachment']
        if attempts > 1:
            self._delete_strays(volume_id, instance_uuid,
                                known | {attachment['id']})
        LOG.info('Created Cinder attachment %(att)s of volume %(vol)s for '
                 '%(inst)s, mode %(mode)s',
                 {'att': attachment['id'], 'vol': volume_id,
                  'inst': instance_uuid, 'mode': attachment.get('attach_mode',
                                                                mode)})
        return attachment

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
                       ok=(200, 202, 204),
                       volume=volume_id, attachment=attachment_id)
        except CinderNotFound:
            LOG.info('Cinder attachment %(att)s (volume %(vol)s) is already '
                     'gone', {'att': attachment_id, 'vol': volume_id})
            return False
        LOG.info('Deleted Cinder attachment %(att)s (volume %(vol)s)',
                 {'att': attachment_id, 'vol': volume_id})
        return True

    def get_attachment(self, attachment_id, *, volume_id=None):
        """One attachment (dict, with connection_info: mask it to log)."""
        result, _attempts = self._call(
            'get_attachment', 'GET', '/attachments/%s' % attachment_id,
            microversion=MV_ATTACH, volume=volume_id,
            attachment=attachment_id)
        return result['attachment']

    def list_attachments(self, *, volume_id=None, instance_uuid=None,
                         all_projects=True):
        """Attachments (detailed) filtered by volume and/or instance.

        :param all_projects: also those of other projects (admin only;
            Cinder ignores it for other callers). Attachments belong to the
            project that created them, which may not be the caller's.
        """
        return self._list_attachments(volume_id, instance_uuid,
                                      all_projects)

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
        if _is_uuid(name_or_id):
            try:
                return self.get_volume(name_or_id)
            except CinderNotFound:
                pass  # a name may look like a UUID
        params = {'name': name_or_id}
        if all_projects:
            params['all_tenants'] = 1
        result, _attempts = self._call('find_volume', 'GET',
                                       '/volumes/detail',
                                       microversion=MV_ATTACH, params=params,
                                       volume=name_or_id)
        found = [v for v in result.get('volumes', [])
                 if v.get('name') == name_or_id or v.get('id') == name_or_id]
        if not found:
            raise CinderNotFound('no volume has this ID or name',
                                 call='find_volume', node=self.node,
                                 volume=name_or_id)
        if len(found) > 1:
            raise CinderConflict(
                '%d volumes are named so (%s): use an ID'
                % (len(found), ', '.join(v['id'] for v in found)),
                call='find_volume', node=self.node, volume=name_or_id)
        return found[0]

    # --------------------------------------------------------- internals --

    def _list_attachments(self, volume_id, instance_uuid, all_projects,
                          retry=True):
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

    def _same_attachments(self, volume_id, instance_uuid, retry=True):
        attachments = self._list_attachments(volume_id, instance_uuid, True,
                                             retry=retry)
        if not instance_uuid:
            attachments = [a for a in attachments if not a.get('instance')]
        return attachments

    def _delete_strays(self, volume_id, instance_uuid, keep, retry=True):
        """Delete attachments of (volume, instance) not in ``keep``.

        Best effort: a failure is logged (with the IDs left behind) and
        never hides the error the caller is about to report.

        Without an instance there is no telling a stray from another host's
        attachment of a multiattach volume made meanwhile: nothing is
        deleted then, the candidates are only logged.
        """
        if not instance_uuid:
            try:
                candidates = [a['id'] for a in self._same_attachments(
                    volume_id, None, retry=retry) if a['id'] not in keep]
            except CinderError:
                candidates = []
            if candidates:
                LOG.warning('Volume %(vol)s has instance-less attachments '
                            'made while a create was retried (%(ids)s); '
                            'not deleting them: they may belong to other '
                            'hosts', {'vol': volume_id,
                                      'ids': ', '.join(candidates)})
            return
        try:
            strays = [a['id'] for a in
                      self._same_attachments(volume_id, instance_uuid,
                                             retry=retry)
                      if a['id'] not in keep]
        except CinderError as exc:
            LOG.warning('Could not look for attachments of volume %(vol)s '
                        'left by a failed create: %(err)s',
                        {'vol': volume_id, 'err': exc})
            return
        for attachment_id in strays:
            LOG.warning('Deleting attachment %(att)s of volume %(vol)s for '
                        '%(inst)s, left in Cinder by a failed or retried '
                        'create', {'att': attachment_id, 'vol': volume_id,
                                   'inst': instance_uuid})
            try:
                self.delete_attachment(attachment_id, volume_id=volume_id)
            except CinderError as exc:
                LOG.error('Attachment %(att)s of volume %(vol)s is left in '
                          'Cinder: %(err)s', {'att': attachment_id,
                                              'vol': volume_id, 'err': exc})

    def _retrying(self, call, ctx, retry):
        opts = self._conf.ipa_cinder
        attempts = opts.cinder_retry_attempts if retry else 1

        def log_retry(state):
            exc = state.outcome.exception()
            LOG.warning('Cinder %(call)s (%(ctx)s) failed on attempt '
                        '%(n)d of %(max)d: %(cause)s; retrying in '
                        '%(wait).2f s',
                        {'call': call, 'ctx': _describe(ctx),
                         'n': state.attempt_number, 'max': attempts,
                         'cause': mask_secrets(str(exc)) or type(exc).__name__,
                         'wait': state.upcoming_sleep})

        return tenacity.Retrying(
            retry=tenacity.retry_if_exception(_is_retriable),
            # stop_before_delay: never start a sleep that would end after
            # the time budget, so the bound holds whatever the jitter.
            stop=(tenacity.stop_after_attempt(attempts)
                  | tenacity.stop_before_delay(opts.cinder_retry_max_time)),
            wait=tenacity.wait_exponential_jitter(
                multiplier=opts.cinder_retry_initial_delay,
                max=opts.cinder_retry_max_delay,
                jitter=opts.cinder_retry_initial_delay),
            before_sleep=log_retry,
            sleep=self._sleep,
            reraise=True)

    def _call(self, call, method, url, *, microversion, json=None,
              params=None, headers=None, ok=(200,), before_retry=None,
              retry=True, volume=None, attachment=None):
        """Send one Cinder request with the retry policy.

        :returns: (decoded JSON body or {}, number of attempts made).
        :raises: a CinderError subclass.
        """
        ctx = {'node': self.node, 'volume': volume,
               'attachment': attachment}
        # log=False: keystoneauth would log answers at DEBUG level verbatim,
        # and attachments carry CHAP credentials; this module logs a masked
        # line per request instead.
        kwargs = {'microversion': microversion, 'raise_exc': False,
                  'log': False}
        if json is not None:
            kwargs['json'] = json
        if params:
            kwargs['params'] = params
        if headers:
            kwargs['headers'] = headers
        attempt = {'n': 0}

        def once():
            attempt['n'] += 1
            if attempt['n'] > 1 and before_retry is not None:
                before_retry()
            start = time.monotonic()
            response = self.proxy.request(url, method, **kwargs)
            LOG.debug('Cinder %(call)s: %(method)s %(url)s (microversion '
                      '%(mv)s) -> HTTP %(status)s in %(time).3f s',
                      {'call': call, 'method': method, 'url': url,
                       'mv': microversion, 'status': response.status_code,
                       'time': time.monotonic() - start})
            if response.status_code in RETRIABLE_STATUS_CODES:
                raise _RetriableHTTPError(response)
            return response

        timer = (self._metrics.timer('CinderClient.%s' % call)
                 if self._metrics is not None else contextlib.nullcontext())
        try:
            with timer:
                response = self._retrying(call, ctx, retry)(once)
        except _RetriableHTTPError as exc:
            raise CinderUnavailable(
                '%s after %d attempt(s)%s' % (exc, attempt['n'],
                                              self._hint(call, exc)),
                call=call, status_code=exc.response.status_code, **ctx)
        except (ks_exc.ConnectionError,
                ks_exc.RetriableConnectionFailure) as exc:
            raise CinderUnavailable(
                'cannot reach Cinder after %d attempt(s): %s'
                % (attempt['n'], mask_secrets(str(exc))), call=call, **ctx)
        except ks_exc.ClientException as exc:
            # Endpoint lookup or authentication failed: not worth a retry.
            raise CinderError(mask_secrets(str(exc)), call=call, **ctx)

        if response.status_code not in ok:
            error = _STATUS_EXCEPTIONS.get(response.status_code, CinderError)
            raise error(_cinder_reason(response), call=call,
                        status_code=response.status_code, **ctx)
        if not response.content:
            return {}, attempt['n']
        try:
            return response.json(), attempt['n']
        except ValueError:
            raise CinderError('Cinder answered HTTP %s with a body that is '
                              'not JSON' % response.status_code, call=call,
                              status_code=response.status_code, **ctx)

    def _hint(self, call, exc):
        if (call == 'delete_attachment'
                and exc.response.status_code == 500):
            # The service-role trap: Cinder asked Nova and failed.
            return ('; if the attachment has connection info, Cinder '
                    'deletes it only for a service: a service token with '
                    'Keystone, or the X-Service-Roles header with noauth '
                    '(service_role_header=%s)' % self.service_role_header)
        return ''


def _describe(ctx):
    return ', '.join('%s %s' % (k, v) for k, v in ctx.items() if v) or '-'


def _plain_adapter(conn):
    """A keystoneauth adapter of a Connection's block-storage endpoint."""
    config = conn.config
    return ks_adapter.Adapter(
        session=conn.session, service_type='block-storage',
        interface=config.get_interface('block-storage'),
        region_name=config.get_region_name('block-storage'),
        endpoint_override=config.get_endpoint('block-storage'))


def _uses_noauth(adapter):
    """Whether the adapter authenticates with keystoneauth's none plugin."""
    auth = getattr(adapter, 'auth', None)
    if auth is None:
        auth = getattr(getattr(adapter, 'session', None), 'auth', None)
    return isinstance(auth, noauth.NoAuth)


def ironic_client(context=None, node=None):
    """A :class:`CinderClient` on Ironic's ``[cinder]`` session.

    For the conductor: the adapter comes from
    ``ironic.common.cinder.get_client``, metrics from Ironic's metrics
    utilities. When the context carries no user token (periodic tasks,
    cleaning started by the conductor), Ironic's session sends Ironic's own
    token and no service token, and Cinder would refuse to delete
    attachments; the adapter then sends Ironic's token as the service token
    too, like Ironic does for its own admin calls.

    With ``[cinder] auth_type = none`` (a noauth Cinder), ``[cinder]
    endpoint_override`` must be the v3 endpoint WITHOUT a project id
    (``http://cinder:8776/v3``): keystoneauth's none plugin sends the token
    ``notused``, which a noauth Cinder reads as project ``notused``, and a
    different project in the URL is a 400. Volumes of any project are still
    reached: every noauth request is admin.

    :param context: Ironic request context (``task.context``).
    :param node: node UUID for error messages.
    """
    # Imported here: the module must work where Ironic is not installed.
    from ironic.common import cinder as ironic_cinder
    from ironic.common import keystone
    from ironic.common import metrics_utils
    from ironic.conf import CONF as IRONIC_CONF
    from keystoneauth1 import service_token

    noauth_cinder = IRONIC_CONF.cinder.auth_type == 'none'
    try:
        proxy = ironic_cinder.get_client(context)
    except ks_exc.DiscoveryFailure as exc:
        if not noauth_cinder:
            raise CinderUnavailable(
                'cannot read the version document of Cinder: %s' % exc,
                call='connect', node=node)
        # A noauth Cinder answers openstacksdk's unauthenticated version
        # request with an empty 204: use [cinder] endpoint_override as it
        # is (every call here names its microversion).
        auth = keystone.get_auth('cinder')
        session = keystone.get_session('cinder',
                                       timeout=IRONIC_CONF.cinder.timeout,
                                       auth=auth)
        endpoint = keystone.get_endpoint('cinder', session=session,
                                         auth=auth)
        LOG.debug('No block-storage version discovery at %(url)s (%(err)s); '
                  'using it as configured', {'url': endpoint, 'err': exc})
        proxy = ks_adapter.Adapter(session=session,
                                   service_type='block-storage',
                                   endpoint_override=endpoint)
    if not noauth_cinder and not getattr(context, 'auth_token', None):
        service_auth = keystone.get_auth('cinder')
        proxy.auth = service_token.ServiceTokenAuthWrapper(
            user_auth=service_auth, service_auth=service_auth)
    # auth_type none means a noauth Cinder: roles come from headers there.
    return CinderClient(proxy, node=node, service_role_header=noauth_cinder,
                        metrics=metrics_utils.get_metrics_logger(__name__))
