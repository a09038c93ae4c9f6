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

"""Secrets: what must never be shown, and the one way to hide it.

Connection info carries CHAP credentials; connectors and records carry
them too once merged. Four tools, used everywhere in ipa-cinder:

* :func:`mask` returns a copy of a dict, list or text with every secret
  value replaced by ``***`` (keys judged by oslo.utils' password key list,
  plus the user names of credentials);
* :func:`remember` records the secret values of a connection_info that
  passed through this process, so that :func:`scrub` can find them in any
  text (an os-brick error, an IPA log line, a traceback), as they are or
  escaped as a repr or JSON writes them. Only values that cannot be
  ordinary words are remembered (:func:`is_distinctive`): a short or
  plain secret is masked where it is a field's value, never searched for
  in text, where it would mask common words ("true", "cinder");
* :func:`safe_text` is what an error message or a log argument goes
  through: every remembered secret masked, then the values of secret keys
  written as text (:func:`mask_text`, from
  :mod:`ipa_cinder.common.secrets_text`);
* :func:`brief` is what an error message shows of a refused value: short,
  masked, and only the type of a container.

Every text function here runs in linear time: they see request parameters
and log lines of any size.
"""

import json
import re
import threading

from oslo_utils import strutils

from ipa_cinder.common import secrets_text

MASK = secrets_text.MASK
mask_text = secrets_text.mask_text

#: What an error message shows of a refused string, at most (characters).
BRIEF_LENGTH = 64

# User names of CHAP and friends (auth_username, discovery_auth_username,
# chap_username...) are half of a credential: masked like passwords.
_USER_KEY = re.compile(r'(user_?name|^user$|_user$)', re.IGNORECASE)

# Words that tell a text may hold a secret in key=value form.
_HINTS = ('pass', 'secret', 'token', 'pwd', 'pswd', 'user', 'key')
# Words that make brief() show nothing of a refused value.
_CREDENTIAL_HINTS = _HINTS + ('auth', 'chap', 'cred')

# Remembered values are searched for in free text only when they cannot
# be ordinary words: a CHAP user "cinder" or a password "true" would mask
# "cinder-volume" and "wait=true" in every later line, corrupting the text
# and revealing the value by its absence. Identifiers ("disconnect_volume")
# are as common in log lines. A short or plain value is masked where it is
# a field's value (mask(), the log filter's structural masking, key=value
# patterns), never searched for elsewhere. Cinder's generated CHAP
# credentials (16 and 20 random letters and digits) are distinctive.
_DISTINCTIVE_LENGTH = 8
_DIGITS_LENGTH = 12
_MIXED_CASE_LENGTH = 16
_VERY_LONG_LENGTH = 24

#: Strings longer than this are not masked and cut by brief(): only
#: their length is shown (masking megabytes costs seconds, and no error
#: message needs more than the start of a value).
MAX_BRIEF_INPUT = 4096

# Containers nested deeper than this are masked whole by mask(): no
# connection info or record nests so deep, and a hostile value nested
# past the interpreter's recursion limit must not become a traceback.
_MAX_DEPTH = 32

_lock = threading.Lock()
_remembered = set()


def is_secret_key(key):
    """Whether the value stored under ``key`` must never be shown."""
    if not isinstance(key, str):
        return False
    if _USER_KEY.search(key):
        return True
    # mask_dict_password decides by oslo.utils' key list; ask it rather
    # than keeping a second copy of that list here.
    return strutils.mask_dict_password({key: 'x'}, MASK)[key] == MASK


def mask(value):
    """A deep copy of ``value`` with every secret masked.

    Works on dicts (connection_info, connector, records), lists and
    strings (``password=...`` style text). A container nested deeper than
    32 levels is replaced by the mask whole.
    """
    return _mask(value, 0)


def _mask(value, depth):
    if isinstance(value, (dict, list, tuple)) and depth >= _MAX_DEPTH:
        return MASK
    if isinstance(value, dict):
        return {k: (MASK if is_secret_key(k) and v not in (None, '')
                    else _mask(v, depth + 1))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        masked = [_mask(v, depth + 1) for v in value]
        return masked if isinstance(value, list) else tuple(masked)
    if isinstance(value, str):
        return mask_text(value)
    return value


def secret_values(value):
    """Every secret string in ``value``, at any depth.

    That is every string stored under a secret key, however deep below it.
    """
    found = set()
    stack = [(value, False)]
    while stack:
        item, under_secret_key = stack.pop()
        if isinstance(item, dict):
            stack.extend((v, under_secret_key or is_secret_key(k))
                         for k, v in item.items())
        elif isinstance(item, (list, tuple)):
            stack.extend((v, under_secret_key) for v in item)
        elif under_secret_key and isinstance(item, str) and item:
            found.add(item)
    return found


def _written_forms(secret):
    """A secret as it is and as a repr or JSON writes it (escaped).

    A log line of a dict holds the escaped form: a password with a quote,
    a backslash or a control character is not found in it as it is.
    """
    forms = {secret}
    for quoted in (repr(secret), json.dumps(secret),
                   json.dumps(secret, ensure_ascii=False)):
        forms.add(quoted[1:-1])
    return forms


def _character_classes(value):
    """Which of lower case, upper case, digits and others ``value`` has."""
    classes = set()
    for char in value:
        if char.islower():
            classes.add('lower')
        elif char.isupper():
            classes.add('upper')
        elif char.isdigit():
            classes.add('digit')
        else:
            classes.add('other')
        if len(classes) == 4:
            break
    return classes


def is_distinctive(value):
    """Whether ``value`` is long and varied enough to be searched for.

    Such a value cannot be an ordinary word: masking it wherever it
    appears hides nothing but the secret.
    """
    if not isinstance(value, str) or len(value) < _DISTINCTIVE_LENGTH:
        return False
    if len(value) >= _VERY_LONG_LENGTH:
        return True
    classes = _character_classes(value)
    return (len(classes) >= 3
            or (len(value) >= _DIGITS_LENGTH and 'digit' in classes
                and len(classes) >= 2)
            or (len(value) >= _MIXED_CASE_LENGTH
                and {'lower', 'upper'} <= classes))


def remember(value):
    """Mask from now on, in any text, the distinctive secrets of ``value``.

    Only secrets that pass :func:`is_distinctive` are remembered; the
    others are masked where they are a field's value.
    """
    found = set()
    for secret in secret_values(value):
        if is_distinctive(secret):
            found.update(_written_forms(secret))
    if found:
        with _lock:
            _remembered.update(found)


def _known():
    with _lock:
        return tuple(_remembered)


def _mask_known(text, known):
    """``text`` with every character that a known secret covers masked.

    Occurrences that overlap or touch, of one secret or of several, become
    one mask: replacing the secrets one after the other would leave in
    view the part of a secret that another one, masked first, had covered.
    """
    covered = []
    for secret in known:
        start = text.find(secret)
        while start != -1:
            covered.append((start, start + len(secret)))
            start = text.find(secret, start + 1)
    if not covered:
        return text
    covered.sort()
    pieces, shown_from = [], 0
    begin, end = covered[0]
    for start, stop in covered[1:]:
        if start <= end:
            end = max(end, stop)
            continue
        pieces += [text[shown_from:begin], MASK]
        shown_from, begin, end = end, start, stop
    pieces += [text[shown_from:begin], MASK, text[end:]]
    return ''.join(pieces)


def scrub(text):
    """``text`` with every remembered secret and key=value secret masked."""
    if not isinstance(text, str) or not text:
        return text
    text = _mask_known(text, _known())
    lowered = text.lower()
    if any(hint in lowered for hint in _HINTS):
        text = mask_text(text)
    return text


def safe_text(value):
    """The text of ``value`` (an exception, any object) safe to show.

    Remembered secrets go first: text patterns may mask only the
    end of a secret (a password holding "Pw-"), after which the whole
    value could no longer be found.
    """
    try:
        text = '%s' % (value,)
    except Exception:
        # Nested past the recursion limit, or an int too long to print.
        text = '<a %s that cannot be shown>' % type(value).__name__
    # scrub() and then mask_text(), without scrub's own mask_text(): the
    # same text, in half the time.
    return mask_text(_mask_known(text, _known()))


def brief(value, limit=BRIEF_LENGTH):
    """What an error message shows of a refused value: short and masked.

    A string is shown masked (:func:`safe_text`) and cut to about
    ``limit`` characters, or by its length only when it is longer than
    MAX_BRIEF_INPUT or reads like a credential (``password=...`` in a
    device path); None, a boolean, a float or a 64-bit integer as it is;
    anything else by its type only: a container may hold secrets, be huge,
    or nest too deep to print.
    """
    if isinstance(value, str):
        if len(value) > MAX_BRIEF_INPUT:
            return 'a string of %d characters' % len(value)
        lowered = value.lower()
        if any(hint in lowered for hint in _CREDENTIAL_HINTS):
            # Text patterns cannot always tell where a value ends (an
            # unterminated quote, a tab): a refused value that reads like
            # a credential is not shown at all.
            return "'%s' (%d characters, not shown: it reads like a " \
                "credential)" % (MASK, len(value))
        shown = repr(safe_text(value))
        if len(shown) > limit:
            return '%s... (%d characters)' % (shown[:limit], len(value))
        return shown
    if value is None or isinstance(value, (bool, float)):
        return repr(value)
    if isinstance(value, int) and value.bit_length() <= 64:
        return repr(value)
    return 'a value of type %s' % type(value).__name__
