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

"""Ironic's ``[cinder]`` session, as the conductor half talks to Cinder.

Ironic already builds a keystoneauth session for Cinder from its own
``[cinder]`` options (credentials, endpoint, timeout, TLS); this module
hands it to :class:`ipa_cinder.common.cinder_client.CinderClient`, adding
what Ironic's own storage code does not need: a service token on requests
without a user token, the noauth special cases, and a bound on every
request: Ironic's ``[cinder] timeout`` has no default, and openstacksdk's
version discovery (made when the client is built) would wait forever for a
cinder-api that accepts connections and never answers. When it is unset,
its default becomes ``[ipa_cinder] cinder_request_timeout``.
"""

import math


from ironic.common import cinder as ironic_cinder
from ironic.common import keystone
from ironic.common import metrics_utils
from ironic.conf import CONF as IRONIC_CONF
from keystoneauth1 import adapter as ks_adapter
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import service_token
from oslo_log import log

from ipa_cinder.common import cinder_client as cinder_client_mod
from ipa_cinder import conf as ipa_conf
from ipa_cinder import exception

LOG = log.getLogger(__name__)
METRICS = metrics_utils.get_metrics_logger(__name__)
CONF = ipa_conf.CONF


def bound_requests():
    """Give Ironic's ``[cinder]`` session a timeout if it has none.

    The operator's ``[cinder] timeout`` wins; without one, the default
    becomes ``[ipa_cinder] cinder_request_timeout`` (whole seconds), which
    also bounds the requests of Ironic's own ``cinder`` storage interface.
    """
    if IRONIC_CONF.cinder.timeout is None:
        IRONIC_CONF.set_default(
            'timeout', math.ceil(CONF.ipa_cinder.cinder_request_timeout),
            group='cinder')
    return IRONIC_CONF.cinder.timeout


def cinder_client(context=None, node=None):
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
    noauth_cinder = IRONIC_CONF.cinder.auth_type == 'none'
    timeout = bound_requests()
    try:
        proxy = ironic_cinder.get_client(context)
    except ks_exc.DiscoveryFailure as exc:
        if not noauth_cinder:
            raise exception.CinderUnavailable(
                'cannot read the version document of Cinder: %s' % exc,
                call='connect', node=node)
        # A noauth Cinder answers openstacksdk's unauthenticated version
        # request with an empty 204: use [cinder] endpoint_override as it
        # is (every call here names its microversion).
        auth = keystone.get_auth('cinder')
        session = keystone.get_session('cinder', timeout=timeout,
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
    return cinder_client_mod.CinderClient(
        proxy, node=node, service_role_header=noauth_cinder, metrics=METRICS)
