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
    assert 'abcdef' not in secrets.brief('password=abcdef')
    assert secrets.brief('/dev/loop0') == "'/dev/loop0'"
    # Longer than MAX_BRIEF_INPUT: its length only, nothing masked.
    assert secrets.brief('y' * 5000) == 'a string of 5000 characters'


# Issue 15: hostile input against the agent.

IPA_ARGS = {'volume_id': '5c8b3b5e-8a36-4b48-9a3c-6f0c1c2f7f10',
            'connection_info': {'driver_volume_type': 'iscsi', 'data': {
                'target_portal': '127.0.0.1:3260',
                'auth_username': "us er,{x}'\\\u00e9",
                'auth_password': "Pw'xyz\" ,}{\u00fc"}}}


def _ipa_execute(params, command='cinder.connect_volume'):
    """IPA's own execute_command, which logs the arguments first."""
    from ironic_python_agent.extensions import base

    class Agent(base.ExecuteCommandMixin):
        def get_extension(self, name):
            raise KeyError(name)

    with pytest.raises(Exception):
        Agent().execute_command(command, **params)


@pytest.fixture
def capture():
    """Records of every logger, through the filter, as text."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter('%(name)s %(message)s'))
    handler.addFilter(log_filter.SecretsFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def test_ipa_command_log_masks_any_characters(capture, forget):
    # Masked by text patterns, "Pw'xyz" was logged as ***'xyz and user
    # names leaked: the arguments are now masked as a dict.
    _ipa_execute(IPA_ARGS)
    output = capture.getvalue()
    assert 'Executing command: cinder.connect_volume' in output
    assert '127.0.0.1:3260' in output
    for part in ('xyz', 'us er', '{x}', '\u00fc', '\u00e9', ' ,}{'):
        assert part not in output, output


def test_ipa_batch_command_log_masks_every_volume(capture, forget):
    other = {'volume_id': '0d2e4f60-1a2b-4c3d-8e9f-a0b1c2d3e4f5',
             'connection_info': {'driver_volume_type': 'iscsi', 'data': {
                 'target_portal': '127.0.0.2:3260',
                 'auth_username': 'second-user-Qz',
                 'auth_password': 'second-secret-Wq'}}}
    _ipa_execute({'volumes': [IPA_ARGS, other]},
                 command='cinder.connect_volumes')
    output = capture.getvalue()
    assert 'Executing command: cinder.connect_volumes' in output
    assert '127.0.0.1:3260' in output and '127.0.0.2:3260' in output
    for part in ('xyz', 'us er', '\u00fc', 'second-user', 'second-secret'):
        assert part not in output, output


def test_os_brick_trace_with_credentials_hidden(capture, forget):
    from os_brick import utils as brick_utils

    class Connector(object):
        @brick_utils.trace
        def connect_volume(self, connection_properties):
            return {'path': '/dev/loop0', 'auth_username': 'user-' + 'q' * 3}

    data = dict(IPA_ARGS['connection_info']['data'])
    secrets.remember({'data': data})
    Connector().connect_volume(data)
    output = capture.getvalue()
    assert '==> connect_volume: call' in output
    assert 'arguments not shown: they hold credentials' in output
    assert "'path': '/dev/loop0'" in output
    for part in ('xyz', 'us er', '{x}', 'qqq'):
        assert part not in output, output


def test_common_words_never_masked(logger, forget):
    # A CHAP user "cinder" and password "true" masked "cinder-volume" and
    # "wait=true" in every later line.
    log, stream = logger
    secrets.remember({'data': {'auth_username': 'cinder',
                               'auth_password': 'true'}})
    lines = ['os_brick.initiator.connectors.iscsi.ISCSIConnector.'
             'disconnect_volume wait=true', 'cinder-volume is up',
             'the secret-ish word stays', 'token-based auth works']
    for line in lines:
        log.info(line)
        assert secrets.safe_text(line) == line
    assert stream.getvalue().splitlines() == ['INFO ' + ln for ln in lines]
    # As field values they are masked all the same.
    log.info('%s', {'auth_username': 'cinder', 'auth_password': 'true'})
    assert "'auth_username': '***', 'auth_password': '***'" in (
        stream.getvalue())


def test_masked_argument_that_breaks_the_format(logger):
    log, stream = logger
    log.info('pin %(password)d of %(user)s',
             {'password': 4242, 'user': 'x'})
    output = stream.getvalue()
    assert '4242' not in output
    assert 'arguments not shown' in output


def test_huge_arguments_cut_before_masking(logger):
    log, stream = logger
    log.debug('Executing command: %(name)s with args: %(args)s',
              {'name': 'cinder.connect_volume',
               'args': {'volume_id': 'v' * (8 << 20),
                        'names': list(range(100000))}})
    output = stream.getvalue()
    assert len(output) < 5000
    assert '8388608 characters not shown' in output
    assert 'more items' in output


@pytest.mark.parametrize('value, distinctive', [
    ('true', False), ('cinder', False), ('cinder-volume', False),
    ('disconnect_volume', False), ('ISCSIConnector', False),
    ('chap-user', False), ('Pw-12345', True), ('a1B2c3D4', True),
    ('volume000001', True), ('hHqTzWnCkPbXrLsY', True),
    ('correcthorsebatterystaple', True)])
def test_only_distinctive_values_searched_in_text(value, distinctive):
    assert secrets.is_distinctive(value) is distinctive
