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

"""One Cinder request: microversion, retries, masked errors, metrics.

:class:`Transport` sends requests to the block-storage v3 endpoint of an
openstacksdk ``Connection`` (or any keystoneauth adapter) with an explicit
microversion on every request, and turns answers into dicts or into
:class:`~ipa_cinder.exception.CinderError` subclasses.

Retries (tenacity). HTTP 500, 502, 503, 504 and keystoneauth connection
failures (refused, reset, timeouts) are retried with exponential backoff and
random jitter, bounded both in attempts and in total time by the
``[ipa_cinder] cinder_retry_*`` options. 400, 403, 404 and 409 are never
retried. Every retry is logged with the call, the attempt and the cause.

Errors name the call, the node (when known), the volume and the
attachment, and never contain secrets: every text taken from Cinder is
masked. keystoneauth's own request logging is off (answers carry CHAP
credentials); one masked line per request is logged instead.
"""

import contextlib
import time

from keystoneauth1 import adapter as ks_adapter
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import noauth
from oslo_log import log
import tenacity

from ipa_cinder.common import secrets
from ipa_cinder import conf
from ipa_cinder import exception

LOG = log.getLogger(__name__)
CONF = conf.CONF

#: Attachments API with ``os-complete`` (3.27 "new attach", 3.44 complete).
MV_ATTACH = '3.44'
#: Attachment create with a ``mode`` argument.
MV_ATTACH_MODE = '3.54'

RETRIABLE_STATUS_CODES = frozenset([500, 502, 503, 504])


def cinder_reason(response):
    """The error message of a Cinder answer, masked, without its body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body:
        # Cinder wraps its faults: {"badRequest": {"message": ..., ...}}
        fault = next(iter(body.values()))
        if isinstance(fault, dict) and fault.get('message'):
            return secrets.safe_text(fault['message'])
        if isinstance(fault, str):
            return secrets.safe_text(fault)
    return response.reason or 'HTTP %s' % response.status_code


class _RetriableHTTPError(Exception):
    """A 5xx answer worth another attempt."""

    def __init__(self, response):
        self.response = response
        super().__init__('HTTP %s: %s' % (response.status_code,
                                          cinder_reason(response)))


def _is_retriable(exc):
    return isinstance(exc, (_RetriableHTTPError,
                            ks_exc.RetriableConnectionFailure,
                            ks_exc.UnknownConnectionError))


def _describe(ctx):
    return ', '.join('%s %s' % (k, v) for k, v in ctx.items() if v) or '-'


def plain_adapter(conn):
    """A keystoneauth adapter of a Connection's block-storage endpoint."""
    config = conn.config
    return ks_adapter.Adapter(
        session=conn.session, service_type='block-storage',
        interface=config.get_interface('block-storage'),
        region_name=config.get_region_name('block-storage'),
        endpoint_override=config.get_endpoint('block-storage'))


def uses_noauth(adapter):
    """Whether the adapter authenticates with keystoneauth's none plugin."""
    auth = getattr(adapter, 'auth', None)
    if auth is None:
        auth = getattr(getattr(adapter, 'session', None), 'auth', None)
    return isinstance(auth, noauth.NoAuth)


class Transport(object):
    """Requests to one Cinder endpoint with the retry policy.

    :param cloud: an ``openstack.connection.Connection`` or any
        keystoneauth adapter of the block-storage v3 endpoint.
    :param node: node UUID or name named in error messages.
    :param metrics: object with a ``timer(name)`` context manager, such as
        Ironic's metrics logger; None for no metrics.
    :param conf: oslo.config object holding the ``[ipa_cinder]`` options.
    :param sleep: function used to wait between attempts (tests).
    """

    def __init__(self, cloud, *, node=None, metrics=None, conf=None,
                 sleep=time.sleep):
        if isinstance(cloud, ks_adapter.Adapter):
            self._cloud, self._proxy = None, cloud
        else:
            # A Connection builds its proxy on first use, reading Cinder's
            # version document: done inside the retry policy (see proxy).
            self._cloud, self._proxy = cloud, None
        self.node = node
        self._metrics = metrics
        self._conf = conf or CONF
        self._sleep = sleep

    def auth_is_noauth(self):
        """Whether requests go out with keystoneauth's none plugin."""
        return uses_noauth(self._proxy
                           or getattr(self._cloud, 'session', None))

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
                self._proxy = plain_adapter(self._cloud)
        return self._proxy

    def retrying(self, call, ctx, retry=True):
        """The tenacity policy of one call (one attempt if not ``retry``)."""
        opts = self._conf.ipa_cinder
        attempts = opts.cinder_retry_attempts if retry else 1

        def log_retry(state):
            exc = state.outcome.exception()
            LOG.warning('Cinder %(call)s (%(ctx)s) failed on attempt '
                        '%(n)d of %(max)d: %(cause)s; retrying in '
                        '%(wait).2f s',
                        {'call': call, 'ctx': _describe(ctx),
                         'n': state.attempt_number, 'max': attempts,
                         'cause': (secrets.safe_text(exc)
                                   or type(exc).__name__),
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

    def call(self, call, method, url, *, microversion, json=None,
             params=None, headers=None, ok=(200,), before_retry=None,
             retry=True, volume=None, attachment=None, hint=None):
        """Send one Cinder request with the retry policy.

        :param call: the name of the client call, for messages and metrics.
        :param before_retry: called before every attempt but the first.
        :param hint: function of the final 5xx answer returning a text
            appended to the error (what the operator may do about it).
        :returns: (decoded JSON body or {}, number of attempts made).
        :raises: a CinderError subclass.
        """
        ctx = {'node': self.node, 'volume': volume,
               'attachment': attachment}
        kwargs = self._request_kwargs(microversion, json, params, headers)
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
                response = self.retrying(call, ctx, retry)(once)
        except _RetriableHTTPError as exc:
            raise exception.CinderUnavailable(
                '%s after %d attempt(s)%s' % (
                    exc, attempt['n'], hint(exc.response) if hint else ''),
                call=call, status_code=exc.response.status_code, **ctx)
        except (ks_exc.ConnectionError,
                ks_exc.RetriableConnectionFailure) as exc:
            raise exception.CinderUnavailable(
                'cannot reach Cinder after %d attempt(s): %s'
                % (attempt['n'], secrets.safe_text(exc)), call=call, **ctx)
        except ks_exc.ClientException as exc:
            # Endpoint lookup or authentication failed: not worth a retry.
            raise exception.CinderError(secrets.safe_text(exc), call=call,
                                        **ctx)
        return self._decode(call, response, ok, ctx), attempt['n']

    def _request_kwargs(self, microversion, json, params, headers):
        # log=False: keystoneauth would log answers at DEBUG level verbatim,
        # and attachments carry CHAP credentials.
        kwargs = {'microversion': microversion, 'raise_exc': False,
                  'log': False,
                  'timeout': self._conf.ipa_cinder.cinder_request_timeout}
        for key, value in (('params', params), ('headers', headers)):
            if value:
                kwargs[key] = value
        if json is not None:
            kwargs['json'] = json
        return kwargs

    @staticmethod
    def _decode(call, response, ok, ctx):
        if response.status_code not in ok:
            error = exception.CINDER_STATUS_ERRORS.get(
                response.status_code, exception.CinderError)
            raise error(cinder_reason(response), call=call,
                        status_code=response.status_code, **ctx)
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise exception.CinderError(
                'Cinder answered HTTP %s with a body that is not JSON'
                % response.status_code, call=call,
                status_code=response.status_code, **ctx)
