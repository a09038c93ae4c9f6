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

"""Hostile inputs shared by the fuzz properties, and the checks they share.

Everything here is what an API caller, a Cinder driver or a node can send:
JSON-like values (dicts, lists, strings, ints, floats, booleans, None),
strings of any character (control characters, lone surrogates, case-folding
traps, regex metacharacters, quotes), huge strings, huge containers, very
deep nesting, and CHAP credentials planted under secret keys.
"""

import collections
import contextlib
import functools
import json
import time
import uuid

from hypothesis import strategies as st
from keystoneauth1 import adapter as ks_adapter
from keystoneauth1 import session as ks_session
from oslo_config import cfg

from ipa_cinder.common import cinder_client
from ipa_cinder.common import secrets
from ipa_cinder import conf as ipa_conf

#: Cases run per property (``module.test``), summed up by conftest.py.
CASES = collections.Counter()

#: No error text may be longer: an echoed value is cut, never copied whole.
MAX_MESSAGE_LENGTH = 2048

#: An 8-character run of a secret is enough to recognise it.
SECRET_WINDOW = 8


def counted(test):
    """Count every case the property runs (the session summary adds up)."""
    name = '%s.%s' % (test.__module__.rsplit('.', 1)[-1], test.__name__)

    @functools.wraps(test)
    def run(*args, **kwargs):
        CASES[name] += 1
        return test(*args, **kwargs)
    return run


# -- characters and strings ------------------------------------------------

# Characters that trip parsers: controls, separators, quotes, regex and
# format metacharacters, case folding that maps non-ASCII onto [a-z]
# (KELVIN SIGN, LONG S, DOTLESS I, I WITH DOT), non-ASCII digits, lone
# surrogates (JSON can carry them: "\ud800").
TRICKY_CHARS = (
    '\x00', '\t', '\n', '\r', '\x0b', '\x1b', '\x7f', ' ', '\xa0', '\u2028',
    '\u202e', '\ufeff', '\ud800', '\udfff', "'", '"', '\\', '%', '{', '}',
    ',', ':', '=', '*', '.', '+', '?', '[', ']', '(', ')', '|', '^', '$',
    '-', '_', '/', '#', '@', '\u212a', '\u017f', '\u0131', '\u0130',
    '\u0661', '\uff11', '\U0001f600', '\xdf', 'a', 'Z', '0', '9')

# Fragments of the formats being parsed: key=value secrets as oslo.utils
# and ipa-cinder mask them, iSCSI names, UUIDs, booleans, protocol names,
# paths, format strings, a backtracking regex.
TRICKY_WORDS = (
    '', 'password', 'Password', 'auth_password=', "'auth_password': '",
    '"auth_password": "', 'Pw-', 'password=', '--password ', 'secret',
    'secret_uuid', 'token: ', 'username=', 'auth_username', 'user=',
    'passwd', 'adminPass', 'iqn.2004-10.org.openstack:', 'iqn.', 'eui.',
    'naa.', 'iqn.2004-10.', 'iscsi', 'ISCSI', 'local', 'rbd', 'nvmeof',
    'fibre_channel', 'CHAP', 'true', 'False', 'yes', 'on', '0', '1', '-1',
    '01', '1e3', '1_0', 'nan', 'None', 'null', '%s', '%(x)s', '{0}', '.*',
    '(a+)+$', '\\', '\\x41', '\\u0041', str(uuid.UUID(int=0)),
    '{%s}' % uuid.UUID(int=1), 'urn:uuid:%s' % uuid.UUID(int=2),
    uuid.UUID(int=3).hex, '/dev/loop0', '../../etc/passwd', 'rw', 'ro',
    'RW', ' rw', 'a' * 64)

chars = st.one_of(st.characters(exclude_categories=()),
                  st.sampled_from(TRICKY_CHARS))
small_text = st.text(chars, max_size=24)
words = st.sampled_from(TRICKY_WORDS)
joined_text = st.lists(st.one_of(words, small_text),
                       max_size=8).map(''.join)

#: Long enough that a quadratic parser blows the deadline (about 20,000
#: characters: one pass of a linear parser is well under a millisecond).
HUGE_TEXT_LENGTH = 20000


@st.composite
def huge_text(draw):
    """A string of up to HUGE_TEXT_LENGTH characters, by repetition."""
    piece = draw(st.one_of(words, small_text).filter(bool))
    count = draw(st.integers(1, max(1, HUGE_TEXT_LENGTH // len(piece))))
    return piece * count


#: Strings as they come inside a value (kept cheap: a value has a dozen).
short_text = st.one_of(small_text, words, joined_text)

# one_of picks a branch uniformly: small strings are repeated so that most
# cases stay cheap and one in six is huge.
text = st.one_of(small_text, small_text, words, joined_text, joined_text,
                 huge_text())

# -- JSON-like values --------------------------------------------------------

#: Keys of connection_info, connectors and command parameters.
KNOWN_KEYS = (
    'driver_volume_type', 'data', 'target_portal', 'target_portals',
    'target_iqn', 'target_iqns', 'target_lun', 'target_luns', 'device_path',
    'target_nqn', 'portals', 'name', 'auth_method', 'access_mode',
    'target_wwn', 'initiator_target_map', 'volume_id', 'host', 'initiator',
    'wwpns', 'nqn', 'ip', 'multipath', 'platform', 'os_type',
    'do_local_attach', 'hosts', 'ports', 'volume_replicas', 'encrypted',
    'qos_specs')

#: Keys whose values must never be shown: CHAP user names and passwords,
#: any *password* and *secret* key, whatever the case.
SECRET_KEYS = (
    'auth_username', 'auth_password', 'discovery_auth_username',
    'discovery_auth_password', 'chap_secret', 'keyring_secret',
    'secret_uuid', 'my_password', 'PASSWORD', 'Auth_Password',
    'target_secret', 'password', 'secret', 'CHAPPASSWORD')

keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.sampled_from(SECRET_KEYS),
                 small_text, words)

# JSON decoding refuses integers of more than 4300 digits (and so do str()
# and repr(), which would break the reports of hypothesis itself).
# Built by map, so that no report prints the strategy with 4,300 digits.
huge_ints = st.sampled_from((63, 64, 4299)).flatmap(
    lambda bits: st.sampled_from((2 ** bits - 1, -(10 ** bits))))

_non_strings = st.one_of(
    st.none(), st.booleans(), st.integers(), huge_ints,
    st.floats(allow_nan=True, allow_infinity=True))
scalars = st.one_of(_non_strings, text)

#: Nested dicts and lists of scalars, a dozen leaves at most (their
#: strings short: huge strings come one at a time, as ``text``).
json_values = st.recursive(
    st.one_of(_non_strings, short_text),
    lambda kids: st.one_of(st.lists(kids, max_size=4),
                           st.dictionaries(keys, kids, max_size=4)),
    max_leaves=12)


def nest(leaf, depth, kind):
    # Built iteratively: the point is a depth recursion cannot walk.
    value = leaf
    for level in range(depth):
        value = [value] if kind == 'list' else {'k%d' % (level % 3): value}
    return value


#: Nesting deeper than the interpreter's recursion limit (1000).
deep_values = st.builds(nest, scalars, st.integers(60, 3000),
                        st.sampled_from(('list', 'dict')))

#: Containers with up to 2,000 items: enough for quadratic code to show
#: (millions of steps), while masking each string item costs oslo.utils
#: some 20 microseconds.
huge_containers = st.one_of(
    st.builds(lambda n, item: [item] * n, st.integers(300, 2000), words),
    st.builds(lambda n: {'k%d' % i: i for i in range(n)},
              st.integers(300, 2000)))

any_value = st.one_of(json_values, json_values, json_values, deep_values,
                      huge_containers)

# -- secrets -----------------------------------------------------------------

# Secrets that defeat text masking: "Pw-" and "password=" inside the
# value, quotes, backslashes, spaces, separators, regex and format
# metacharacters, periodic values, non-ASCII, controls, lone surrogates.
TRICKY_SECRETS = (
    'Pw-0123456789', 'xPw-abc', 'password=Pw-x', 'abc password -x cd',
    "it's\"quoted'", 'back\\slash\\', '.*+?[](a+)+$', '%s%(x)s{0}',
    'with some spaces', ' leading', '\n\x00ctl\x1b', '\xfcn\xef\xa9\xf8d\xe9',
    '\ud800surrogate', 'aaaaaaaaaaaaaaaaa', 'abababababababab', "', '",
    '": "', '}{}{', '\\x41\\u0041', 'chap-user', '***masked', 'auth_password')

secret_values = st.one_of(
    st.text(chars, min_size=4, max_size=40), st.sampled_from(TRICKY_SECRETS),
    joined_text.filter(lambda s: len(s) >= 4))


def is_secret_key(key):
    """What must be hidden, as the brief states it (independent oracle)."""
    if not isinstance(key, str):
        return False
    lowered = key.lower()
    return ('password' in lowered or 'secret' in lowered
            or lowered.endswith('username'))


def dicts_in(value, limit=64):
    """The dicts of a (shallow) tree, to plant secrets into."""
    found, stack = [], [value]
    while stack and len(found) < limit:
        item = stack.pop()
        if isinstance(item, dict):
            found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def is_shallow(value, max_depth=40, max_dicts=64):
    """Whether the recursive helpers here (and a repr) can walk ``value``."""
    stack, dicts = [(value, 0)], 0
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            return False
        if isinstance(item, dict):
            dicts += 1
            if dicts > max_dicts:
                return False
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


@st.composite
def planted(draw, dicts, min_secrets=1):
    """A dict from ``dicts`` with secrets planted in it or in its dicts."""
    value = draw(dicts)
    targets = dicts_in(value)
    for _ in range(draw(st.integers(min_secrets, 4))):
        target = draw(st.sampled_from(targets))
        target[draw(st.sampled_from(SECRET_KEYS))] = draw(secret_values)
    return value


def planted_secrets(value):
    """Every non-empty string stored under a secret key of ``value``."""
    found, stack = set(), [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for k, v in item.items():
                if is_secret_key(k) and isinstance(v, str) and v:
                    found.add(v)
                else:
                    stack.append(v)
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _other_secret(secret):
    # The quotes a secret holds decide which quotes a repr puts around it,
    # and a masked quoted value keeps its quotes: that much shows.
    return 'swapped-%s%s' % ("'" if "'" in secret else '',
                             '"' if '"' in secret else '')


def swap_secrets(value):
    """``value`` with every secret string replaced by another one.

    Same types, same emptiness: whatever a validator decides from the rest
    of the input is unchanged, so its answer must be too.
    """
    if isinstance(value, dict):
        return {k: (_other_secret(v)
                    if is_secret_key(k) and isinstance(v, str) and v
                    else swap_secrets(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [swap_secrets(v) for v in value]
    return value


# -- connection info ----------------------------------------------------------

#: Usable ``data`` of each protocol, before fuzzing mutates it.
VALID_DATA = {
    'iscsi': {'target_portal': '127.0.0.1:3260',
              'target_iqn': 'iqn.2010-10.org.openstack:volume-1',
              'target_lun': 1, 'auth_method': 'CHAP',
              'auth_username': 'chap-user', 'auth_password': 'chap-pass-1'},
    'local': {'device_path': '/dev/loop7'},
    'rbd': {'name': 'volumes/volume-1', 'hosts': ['127.0.0.1'],
            'ports': ['6789'], 'auth_enabled': True,
            'secret_uuid': str(uuid.UUID(int=9))},
    'nvmeof': {'target_nqn': 'nqn.2014-08.org.nvmexpress:uuid:1',
               'portals': [['127.0.0.1', '4420', 'tcp']]},
    'fibre_channel': {'target_wwn': ['500a098280feeba5'], 'target_lun': 2,
                      'initiator_target_map': {'21000024ff30441c':
                                               ['500a098280feeba5']}},
}
VALID_DATA['iser'] = dict(VALID_DATA['iscsi'])

PROTOCOL_NAMES = tuple(VALID_DATA) + (
    'ISCSI', 'Local', 'FIBRE_CHANNEL', 'floppy', '', ' iscsi', 'iscsi\x00',
    'LOCAL\n', 'r\u0130d', 'lo\u212aal')


@st.composite
def connection_infos(draw):
    """connection_info: valid ones, each mutated, nested or flat."""
    protocol = draw(st.one_of(st.sampled_from(PROTOCOL_NAMES),
                              st.sampled_from(PROTOCOL_NAMES), scalars))
    base = VALID_DATA.get(protocol.lower() if isinstance(protocol, str)
                          else None, VALID_DATA['iscsi'])
    data = {k: v for k, v in base.items()
            if not draw(st.booleans()) or not draw(st.booleans())}
    data.update(draw(st.dictionaries(
        st.one_of(st.sampled_from(tuple(base) + KNOWN_KEYS), keys),
        json_values, max_size=3)))
    info = {'driver_volume_type': protocol, 'data': data}
    shape = draw(st.sampled_from(('nested', 'nested', 'flat', 'odd')))
    if shape == 'flat':
        info = dict(data, driver_volume_type=protocol)
    elif shape == 'odd':
        info.update(draw(st.dictionaries(
            keys, st.one_of(json_values, huge_containers), max_size=2)))
    for _ in range(draw(st.integers(0, 4))):
        target = draw(st.sampled_from(dicts_in(info)))
        target[draw(st.sampled_from(SECRET_KEYS))] = draw(secret_values)
    return info


connectors = st.one_of(
    st.builds(dict, st.dictionaries(keys, json_values, max_size=5),
              host=st.one_of(text, scalars),
              initiator=st.one_of(text, scalars)),
    planted(st.dictionaries(keys, json_values, max_size=5).map(
        lambda d: dict(d, host='node-1'))),
    any_value)

uuids = st.one_of(st.uuids().map(str), st.uuids().map(lambda u: u.hex),
                  st.uuids().map(lambda u: str(u).upper()),
                  st.uuids().map(lambda u: '{%s}' % u),
                  st.uuids().map(lambda u: 'urn:uuid:%s' % u))

ids = st.one_of(uuids, uuids, text, any_value)

# -- checks ------------------------------------------------------------------


@contextlib.contextmanager
def isolated_memory():
    """Run with an empty set of remembered secrets, then restore it.

    remember() is process-wide: secrets a case plants must not mask text
    in other tests (or in the next case).
    """
    with secrets._lock:
        saved = set(secrets._remembered)
        secrets._remembered.clear()
    try:
        yield
    finally:
        with secrets._lock:
            secrets._remembered.clear()
            secrets._remembered.update(saved)


def assert_names_field(error, field):
    """The error names its field, in its text too, and stays short."""
    assert isinstance(field, str) and field
    text = str(error)
    assert field in text, text[:500]
    assert len(text) <= MAX_MESSAGE_LENGTH, len(text)


def assert_no_window(secret, shown, context):
    """No 8-character run of ``secret`` in ``shown``...

    ... unless ``context`` (the text around the secret, the secret
    masked) has it as well: then it is not the secret that shows.
    """
    assert secret not in shown or secret in context, shown[:500]
    for start in range(len(secret) - SECRET_WINDOW + 1):
        window = secret[start:start + SECRET_WINDOW]
        assert window not in shown or window in context, (window, shown[:500])


def escaped_forms(secret):
    """How a secret appears in a dict's repr, JSON, or a %r."""
    return {repr(secret), json.dumps(secret),
            json.dumps(secret, ensure_ascii=False)}


def best_time(function, argument, repeat=3):
    """The shortest of ``repeat`` runs of ``function(argument)``, seconds."""
    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        function(argument)
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    return best


# -- a Cinder client that sends nothing ---------------------------------------

VOLUME = '5c8b3b5e-8a36-4b48-9a3c-6f0c1c2f7f10'
NODE = '1be26c0b-03f2-4d2e-ae87-c02d7f33c781'


class RequestSent(Exception):
    """A request left the client."""


class RefusingSession(ks_session.Session):
    """A keystoneauth session that fails loudly on any request."""

    def __init__(self):
        super().__init__()
        self.requests = []

    def request(self, url, method, **kwargs):
        self.requests.append((method, url))
        raise RequestSent('%s %s' % (method, url))


def refusing_cinder_client():
    """(CinderClient over a real keystoneauth adapter, its session)."""
    conf = cfg.ConfigOpts()
    ipa_conf.register_opts(conf)
    conf([], project='ipa-cinder-fuzz')
    session = RefusingSession()
    adapter = ks_adapter.Adapter(session=session,
                                 service_type='block-storage',
                                 endpoint_override='http://cinder.invalid/v3')
    client = cinder_client.CinderClient(adapter, node=NODE, conf=conf,
                                        sleep=lambda _seconds: None)
    return client, session
