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

"""Fuzzing secret masking (common/secrets.py).

* ``mask`` of any value never fails, and its answer does not depend on the
  values stored under secret keys;
* ``mask_text`` hides a secret written as ``key=value``, as a dict's repr
  or as JSON, whatever characters it holds;
* once a distinctive secret is remembered, ``scrub`` and ``safe_text`` of
  any text holding it (as it is, escaped as in a repr or JSON, next to or
  overlapping another remembered secret) show no 8-character run of it;
  short or plain values are never searched for (test_fuzz_log_filter.py).
  oslo.utils' patterns alone can mask only the end of such a value (one
  holding "Pw-", quotes, spaces...): remembered secrets go first.
"""

import json

from hypothesis import assume
from hypothesis import given
from hypothesis import strategies as st

from ipa_cinder.common import secrets
from tests.unit.fuzz import strategies as fz

KEY_WORDS = ('password', 'PassWord', 'secret', 'SECRET', 'username',
             '_username', 'UserName', 'auth_username', 'CHAPPASSWORD')

secret_keys = st.one_of(
    st.sampled_from(fz.SECRET_KEYS),
    st.builds(lambda head, word, tail: head + word + tail,
              fz.small_text, st.sampled_from(KEY_WORDS), fz.small_text))


@given(key=st.one_of(secret_keys, fz.keys))
@fz.counted
def test_secret_keys(key):
    if fz.is_secret_key(key):
        assert secrets.is_secret_key(key)


def walk_masked(original, masked):
    """Every secret-keyed value of ``original`` is masked in ``masked``."""
    stack = [(original, masked)]
    while stack:
        before, after = stack.pop()
        if isinstance(before, dict):
            for key, value in before.items():
                if value in (None, ''):
                    continue
                if fz.is_secret_key(key):
                    assert after[key] == secrets.MASK
                elif not secrets.is_secret_key(key):
                    # (oslo.utils' list has more keys: adminPass...)
                    stack.append((value, after[key]))
        elif isinstance(before, list):
            stack.extend(zip(before, after))


shallow_dicts = st.dictionaries(fz.keys, fz.json_values, max_size=5)


@given(value=st.one_of(fz.planted(shallow_dicts), fz.json_values,
                       fz.connection_infos()))
@fz.counted
def test_mask_shallow(value):
    copy = json.loads(json.dumps(value)) if _plain(value) else None
    masked = secrets.mask(value)
    walk_masked(value, masked)
    # (repr: NaN is not equal to itself)
    assert repr(masked) == repr(secrets.mask(fz.swap_secrets(value)))
    if copy is not None:
        assert value == copy  # the original is left alone


def _plain(value):
    try:
        json.dumps(value, allow_nan=False)
        return True
    except (ValueError, TypeError, RecursionError):
        return False


@given(value=fz.any_value)
@fz.counted
def test_mask_and_safe_text_any(value):
    secrets.mask(value)
    assert isinstance(secrets.safe_text(value), str)


# Values a key=value parser can delimit: no white space, quote, comma or
# closing brace (in a repr or JSON, any character goes: see below).
bare_secrets = st.text(
    st.characters(exclude_categories=('Cs', 'Z', 'Cc'),
                  exclude_characters='\'",}\x85\u180e\u200b'),
    min_size=4, max_size=40)

FORMS = {
    'repr': lambda key, value: repr({key: value}),
    'json': lambda key, value: json.dumps({key: value}),
    'json-unicode': lambda key, value: json.dumps({key: value},
                                                  ensure_ascii=False),
    'repr-list': lambda key, value: repr([{'x': 1, key: value}]),
}


@given(prefix=fz.text, suffix=fz.text,
       key=st.sampled_from(fz.SECRET_KEYS), secret=fz.secret_values,
       form=st.sampled_from(sorted(FORMS)))
@fz.counted
def test_mask_text_quoted(prefix, suffix, key, secret, form):
    # Known limit of text masking (secrets never remembered): after a
    # quote left open on the line, the text is ambiguous
    # ('PASSWD:"' + "{'auth_username': \"0'\"}" reads as PASSWD's value
    # running up to the next double quote). Remembered secrets are found
    # whatever the text around them (test_remembered_secret_never_shown).
    last_line = prefix.rsplit('\n', 1)[-1].replace('\\', '')
    assume(last_line.count("'") % 2 == 0 and last_line.count('"') % 2 == 0)
    shown = secrets.mask_text(prefix + FORMS[form](key, secret) + suffix)
    context = prefix + FORMS[form](key, secrets.MASK) + suffix
    for escaped in fz.escaped_forms(secret):
        assert escaped[1:-1] not in shown or escaped[1:-1] in context
    fz.assert_no_window(secret, shown, context)


@given(prefix=fz.text, key=st.sampled_from(fz.SECRET_KEYS),
       separator=st.sampled_from(('=', ': ', ' = ', ':')),
       secret=bare_secrets,
       suffix=st.one_of(st.just(''), fz.text.map(lambda t: ' ' + t)))
@fz.counted
def test_mask_text_key_value(prefix, key, separator, secret, suffix):
    text = '%s %s%s%s%s' % (prefix, key, separator, secret, suffix)
    shown = secrets.mask_text(text)
    context = '%s %s%s%s%s' % (prefix, key, separator, secrets.MASK,
                               suffix)
    fz.assert_no_window(secret, shown, context)


EMBEDDINGS = {
    'as is': lambda s: s,
    'repr': repr,
    'json': json.dumps,
    'json-unicode': lambda s: json.dumps(s, ensure_ascii=False),
    'dict repr': lambda s: repr({'connection_info': {'data': {'x': s}}}),
    'password=': lambda s: 'password=%s' % s,
    'cli': lambda s: 'iscsiadm -n node.session.auth.password -v %s' % s,
}


@st.composite
def remembered_cases(draw):
    """A secret, other remembered ones, a text holding it, and context.

    The context is the same text with the secret masked.
    """
    # Only distinctive values are searched for in text (short or plain
    # ones would mask ordinary words): made so by a random-looking part.
    secret = draw(st.builds(lambda s, mark, first: mark + s if first
                            else s + mark, fz.secret_values,
                            st.sampled_from(('Zq7-', '9xQ!', 'k\u00e9Y2')),
                            st.booleans()))
    others = draw(st.lists(fz.secret_values, max_size=3))
    head = draw(fz.small_text)
    # Another secret that ends with the start of this one and is longer:
    # masked first, it must not leave the rest of this one in view.
    cut = draw(st.integers(1, len(secret)))
    overlapping = draw(fz.small_text.filter(lambda t: len(t) >= 4)
                       ) + secret[:cut]
    if draw(st.booleans()):
        others.append(overlapping)
        head = overlapping[:-cut]
    prefix = draw(fz.text) + head
    suffix = draw(fz.text)
    embed = EMBEDDINGS[draw(st.sampled_from(sorted(EMBEDDINGS)))]
    return (secret, others, prefix + embed(secret) + suffix,
            prefix + embed(secrets.MASK) + suffix)


@given(case=remembered_cases())
@fz.counted
def test_remembered_secret_never_shown(case):
    secret, others, text, context = case
    assume(secret not in context)
    with fz.isolated_memory():
        secrets.remember({'data': {'auth_password': secret}})
        for other in others:
            secrets.remember({'auth_username': other})
        for shown in (secrets.scrub(text), secrets.safe_text(text),
                      secrets.safe_text(RuntimeError(text))):
            fz.assert_no_window(secret, shown, context)


@given(value=st.one_of(fz.any_value, fz.planted(shallow_dicts)),
       limit=st.integers(8, 200))
@fz.counted
def test_brief(value, limit):
    shown = secrets.brief(value, limit)
    assert isinstance(shown, str)
    assert len(shown) <= limit + 64
    for secret in fz.planted_secrets(value) if isinstance(value, dict) \
            and fz.is_shallow(value) else ():
        assert secret not in shown or secret in secrets.brief(
            fz.swap_secrets(value), limit)
