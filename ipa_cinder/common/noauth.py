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

"""Talking to a Cinder that runs without Keystone (``noauth``).

Cinder's noauth middleware builds the request context from the token
``<user>:<project>`` (``X-Auth-Token``); every request is admin, and a
request with no token gets an empty 204. keystoneauth's ``none`` plugin
sends the token ``notused``, which such a Cinder reads as project
``notused``: :class:`TokenAuth` sends a real ``user:project`` instead.
"""

import re

from keystoneauth1 import noauth

#: The project id in a Cinder v2/v3 endpoint URL, if it has one.
_PROJECT_IN_URL = re.compile(r'/v[23](?:\.\d+)?/([0-9a-fA-F-]+)/?$')

DEFAULT_USER = 'ipa-cinder'
DEFAULT_PROJECT = 'admin'


def token(user, project):
    """The token a noauth Cinder reads as (user, project)."""
    return '%s:%s' % (user, project)


def project_from_endpoint(endpoint):
    """The project id an endpoint URL ends with, or None."""
    match = _PROJECT_IN_URL.search(endpoint or '')
    return match.group(1) if match else None


def token_for(endpoint, auth):
    """``<user>:<project>`` for a noauth Cinder at ``endpoint``.

    :param auth: the ``auth`` section of a cloud's configuration
        (``user_id`` and ``project_id`` are used when present); the project
        in the endpoint URL wins, since Cinder refuses another one.
    """
    project = (project_from_endpoint(endpoint)
               or auth.get('project_id') or DEFAULT_PROJECT)
    return token(auth.get('user_id') or DEFAULT_USER, project)


class TokenAuth(noauth.NoAuth):
    """keystoneauth's ``none`` plugin, with the token noauth Cinder reads."""

    def __init__(self, endpoint, token):
        super().__init__(endpoint=endpoint)
        self._token = token

    def get_token(self, session, **kwargs):
        return self._token
