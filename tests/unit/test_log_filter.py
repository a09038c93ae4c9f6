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
import json
import logging
import time

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


# Regressions found by the fuzz properties (tests/unit/fuzz).


@pytest.fixture
def forget():
    """Remembered secrets of the test are forgotten afterwards."""
    with secrets._lock:
        saved = set(secrets._remembered)
    yield
    with secrets._lock:
        secrets._remembered.clear()
        secrets._remembered.update(saved)


def test_masking_takes_linear_time():
    # 'a' * 4,000 took 2.7 s and 'a' * 10,000 took 20 s (a key prefix
    # pattern retried at every character): this would take hours.
    start = time.monotonic()
    for text in ('a' * 300000, 'user' * 75000, "'password': '" * 20000):
        secrets.safe_text(text)
        secrets.mask({'x': text})
    assert time.monotonic() - start < 10


def test_remembered_secret_found_escaped(forget):
    # A repr escapes the quotes of this password: it was shown whole.
    password = 'it\'s"secret-123456'
    secrets.remember({'auth_password': password})
    shown = secrets.safe_text({'data': {'x': password}})
    assert 'secret-123456' not in shown
    assert 'secret-123456' not in secrets.scrub(json.dumps([password]))


def test_overlapping_remembered_secrets(forget):
    # The longer secret was masked first and left the first 8 characters
    # of the user name in view.
    secrets.remember({'auth_password': 'SECRETPART-0123456789',
                      'auth_username': 'xxxxxxxxSECRETPART'})
    shown = secrets.scrub('log: xxxxxxxxSECRETPART-0123456789 end')
    assert shown == 'log: *** end'


@pytest.mark.parametrize('text, secret', [
    # A JSON value holding an escaped quote: only its start was masked.
    ('{"auth_username": "\\"0000000"}', '0000000'),
    # oslo.utils takes the next key as the password's value.
    ('PASSWORD= auth_username: user-0000', 'user-0000'),
    # A key with the key word inside it, unquoted.
    ('secret_uuid: 0a1b2c3d4e', '0a1b2c3d4e'),
    ("{'auth_password': \"it's a secret\"}", 'a secret'),
    # Keys that are strings holding a quote or a colon: a "value" found
    # inside the first ran up to the real one, or the key was not seen.
    ('{\'PASSWD:"\': None, \'password\': "000-x\'"}', "000-x'"),
    ("{'PASSWORD:': 'y-0'}", 'y-0'),
    ('[\'password: "\', {\'auth_password\': "s\'x-1"}]', "s'x-1"),
    # A stray quote before the dict pairs with the quote in the value.
    ('can\'t: {"auth_username": "\'000-z"}', "000-z"),
])
def test_mask_text_hides(text, secret):
    assert secret not in secrets.mask_text(text)


def test_safe_text_of_unprintable_values():
    nested = 'x'
    for _ in range(5000):
        nested = [nested]
    assert 'list' in secrets.safe_text(nested)


def test_brief():
    assert len(secrets.brief('x' * 100000)) < 100
    assert 'abcdef' not in secrets.brief({'auth_password': 'abcdef'})
    assert secrets.brief(10 ** 5000) == 'a value of type int'
    assert secrets.brief('password=abcdef') == "'password=***'"
