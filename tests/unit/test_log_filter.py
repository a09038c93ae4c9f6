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

import io
import logging

import pytest

from ipa_cinder.common import log_filter
from ipa_cinder.common import secrets

SECRET = 'Zq9-very-secret-chap'


@pytest.fixture
def logger():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter('%(levelname)s %(message)s'))
    log = logging.getLogger('ipa_cinder.tests.log_filter')
    log.propagate = False
    log.handlers = [handler]
    log.setLevel(logging.DEBUG)
    log_filter.install(log)
    yield log, stream
    log.handlers = []


def test_remembered_secret_masked_in_args(logger):
    log, stream = logger
    secrets.remember({'data': {'auth_password': SECRET}})
    log.debug('Executing command with args: %s',
              {'connection_info': {'data': {'x': 'pre' + SECRET + 'post'}}})
    assert SECRET not in stream.getvalue()
    assert 'pre***post' in stream.getvalue()


def test_secret_masked_in_traceback(logger):
    log, stream = logger
    secrets.remember({'auth_password': SECRET})
    try:
        raise RuntimeError('iscsiadm failed for %s' % SECRET)
    except RuntimeError:
        log.exception('Command failed')
    output = stream.getvalue()
    assert 'Traceback' in output
    assert 'RuntimeError' in output
    assert SECRET not in output


def test_password_text_masked_without_remember(logger):
    log, stream = logger
    log.info("auth_password='%s'", 'never-remembered-1')
    assert 'never-remembered-1' not in stream.getvalue()


def test_plain_messages_untouched(logger):
    log, stream = logger
    log.info('Connected volume %s as %s', 'v1', '/dev/loop3')
    assert stream.getvalue().strip() == 'INFO Connected volume v1 as ' \
        '/dev/loop3'


def test_install_is_idempotent(logger):
    log, _stream = logger
    log_filter.install(log)
    filters = [f for f in log.handlers[0].filters
               if isinstance(f, log_filter.SecretsFilter)]
    assert len(filters) == 1


def test_short_values_not_remembered():
    secrets.remember({'auth_password': 'ab'})
    assert secrets.scrub('table abc') == 'table abc'
