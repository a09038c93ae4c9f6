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

"""Small REST clients for the sandbox's Cinder and Ironic (noauth).

Readiness checks, volume types and tests talk HTTP directly: no client
library hides a status code or a header. Cinder under noauth takes the
caller from ``X-Auth-Token: <user>:<project>`` and treats it as admin;
``X-Service-Roles: service`` makes a request a service request (what a
service token does with Keystone).
"""

import requests

from ipa_cinder.common import noauth
from ipa_cinder_sandbox import errors
from ipa_cinder_sandbox import layout as layout_mod

# The benchmark catches rest.APIError: the class lives in errors.
APIError = errors.APIError


class _Client(object):
    timeout = 30

    def __init__(self, base_url):
        self.base_url = base_url.rstrip('/')
        self.session = requests.Session()

    def headers(self, microversion=None, service=False):
        return {}

    def request(self, method, path, json=None, microversion=None,
                service=False, expect=(200, 201, 202, 204), timeout=None):
        """Send one request; return the decoded JSON body (or None).

        :param expect: acceptable statuses; anything else raises
            :class:`ipa_cinder_sandbox.errors.APIError`.
        """
        url = path if path.startswith('http') else self.base_url + path
        resp = self.session.request(
            method, url, json=json, timeout=timeout or self.timeout,
            headers=self.headers(microversion, service))
        if expect and resp.status_code not in expect:
            raise errors.APIError(method, url, resp.status_code, resp.text)
        if resp.content and 'json' in resp.headers.get('Content-Type', ''):
            return resp.json()
        return None

    def raw(self, method, path, **kwargs):
        """Send one request and return the requests.Response as is."""
        microversion = kwargs.pop('microversion', None)
        service = kwargs.pop('service', False)
        kwargs.setdefault('timeout', self.timeout)
        return self.session.request(
            method, self.base_url + path,
            headers=self.headers(microversion, service), **kwargs)

    def get(self, path, **kwargs):
        return self.request('GET', path, **kwargs)

    def post(self, path, json=None, **kwargs):
        return self.request('POST', path, json=json, **kwargs)

    def put(self, path, json=None, **kwargs):
        return self.request('PUT', path, json=json, **kwargs)

    def patch(self, path, json=None, **kwargs):
        return self.request('PATCH', path, json=json, **kwargs)

    def delete(self, path, **kwargs):
        return self.request('DELETE', path, **kwargs)


class CinderClient(_Client):
    """Cinder block-storage v3 under noauth; paths relative to the project.

    :param base_url: ``http://127.0.0.1:<port>/v3/<project id>``.
    """

    def __init__(self, base_url, user=layout_mod.USER_ID,
                 project=layout_mod.PROJECT_ID):
        super(CinderClient, self).__init__(base_url)
        self.token = noauth.token(user, project)

    def headers(self, microversion=None, service=False):
        headers = {'X-Auth-Token': self.token, 'Accept': 'application/json'}
        if microversion:
            headers['OpenStack-API-Version'] = 'volume %s' % microversion
        if service:
            headers['X-Service-Roles'] = 'service'
        return headers


class IronicClient(_Client):
    """Ironic under noauth, newest API version."""

    def headers(self, microversion=None, service=False):
        return {'X-OpenStack-Ironic-API-Version': microversion or 'latest',
                'Accept': 'application/json'}
