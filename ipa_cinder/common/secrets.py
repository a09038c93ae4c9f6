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
  escaped as a repr or JSON writes them;
* :func:`safe_text` is what an error message or a log argument goes
  through: every remembered secret masked, then ``password=...``-style
  text masked by oslo.utils and by the key=value pattern here;
* :func:`brief` is what an error message shows of a refused value: short,
  masked, and only the type of a container.

Every text function here runs in linear time: they see request parameters
and log lines of any size.
"""

import json
import re
import threading

from oslo_utils import strutils

MASK = '***'

#: What an error message shows of a refused string, at most (characters).
BRIEF_LENGTH = 64

# User names of CHAP and friends (auth_username, discovery_auth_username,
# chap_username...) are half of a credential: masked like passwords.
_USER_KEY = re.compile(r'(user_?name|^user$|_user$)', re.IGNORECASE)

# ``key=value`` / ``'key': 'value'`` / ``"key": "value"`` secrets in free
# text, beyond the password patterns oslo.utils knows. A key is a word
# holding password, passwd, secret, token or user name, or ending with
# user (as is_secret_key judges keys), or a quoted string holding one of
# these words followed by ``:`` or ``=``. A quoted value is taken whole up
# to its closing quote, escaped quotes included (a dict's repr or JSON);
# an unquoted one up to a quote, comma, brace or space, and not when it is
# itself such a key (``password= username: bob`` masks bob).
# Two readings, both applied (each only masks): _KEY_VALUE_TEXT reads
# quoted strings as wholes, left to right, so that a key is never looked
# for inside one, where its "value" would run over the string's end and
# up to the real value, leaving that in view
# (``{'password: "': 1, 'auth_password': "a'b"}``); strings that are not
# keys are masked inside (free text in quotes). _KEY_VALUE_LOOSE looks
# for keys anywhere: a stray quote before a dict (``can't: {...}``) pairs
# with a quote inside a value and misleads the first reading.
# Linear time, because nothing is tried twice: a key word is looked for
# only where a word starts (``\b``), with one backtracking pass over the
# word (the possessive ``\w++`` gives back nothing), a quote after a
# backslash starts no string, the two halves of each quoted form never
# match the same character, and a string is read at most three times.
# (An unanchored ``[a-z_]*`` before the key word was tried at every
# character and backtracked over the rest of the word each time:
# quadratic, 20 s for 10,000 letters.)
_KEY_WORD = (r"""(?=\w*(?:password|passwd|secret|token|user_?name)"""
             r"""|\w*user\b)\w++""")
_KEY = _KEY_WORD + r"""['"]?\s*[:=]"""
_QUOTED = r"""(?<!\\)(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")"""
_QUOTED_KEY = (
    r"""(?<!\\)(?:'(?=(?:[^'\\\n]|\\.)*?%(words)s)(?:[^'\\\n]|\\.)*'"""
    r"""|"(?=(?:[^"\\\n]|\\.)*?%(words)s)(?:[^"\\\n]|\\.)*")"""
    % {'words': '(?:password|passwd|secret|token|user)'})
_KEY_VALUE_TEXT = re.compile(
    r"""(?P<key>(?:%(quoted_key)s|(?!%(quoted)s)['"]?\b%(key_word)s['"]?)"""
    r"""\s*[:=]\s*)"""
    r"""(?:%(quoted)s|(?P<quote>['"]?)(?!%(key)s)[^'",}\s]+)"""
    r"""|(?P<string>%(quoted)s)"""
    % {'key': _KEY, 'key_word': _KEY_WORD, 'quoted': _QUOTED,
       'quoted_key': _QUOTED_KEY},
    re.IGNORECASE)
_KEY_VALUE_LOOSE = re.compile(
    r"""(?P<key>['"]?\b%(key)s\s*)"""
    r"""(?:%(quoted)s|(?P<quote>['"]?)(?!%(key)s)[^'",}\s]+)"""
    r"""|(?P<string>(?!))"""
    % {'key': _KEY, 'quoted': _QUOTED}, re.IGNORECASE)

# Words that tell a text may hold a secret in key=value form.
_HINTS = ('pass', 'secret', 'token', 'pwd', 'username')

# Secrets shorter than this are not searched for in text: a 1-2 character
# value would mask half of every line and reveal the value by its
# absence. CHAP secrets are 12+ characters in practice.
_MIN_SECRET_LENGTH = 4

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


def _masked_value(match):
    string = match.group('string')
    if string is not None:
        # Not a key: free text in quotes, masked inside (no key=value
        # without a separator: most strings are left as they are).
        inside = string[1:-1]
        if ':' in inside or '=' in inside:
            inside = _KEY_VALUE_TEXT.sub(_masked_value, inside)
        return string[0] + inside + string[-1]
    if match.group('quote') is None:
        # A whole quoted value: its quotes stay, so that the text still
        # reads as the repr or JSON it was.
        quote = match.string[match.end('key')]
        return match.group('key') + quote + MASK + quote
    return match.group('key') + match.group('quote') + MASK


def mask_text(text):
    """Mask ``key=value`` / ``'key': 'value'`` secrets in free text.

    The patterns here run before oslo.utils' too: those take the word
    after ``password=`` as its value even when it is the key of another
    secret (``password= auth_username: bob``), hiding that key.
    """
    text = _KEY_VALUE_TEXT.sub(_masked_value, text)
    text = _KEY_VALUE_LOOSE.sub(_masked_value, text)
    text = strutils.mask_password(text, MASK)
    return _KEY_VALUE_LOOSE.sub(_masked_value, text)


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


def remember(value):
    """Mask from now on every secret found in ``value`` (a dict)."""
    found = set()
    for secret in secret_values(value):
        if len(secret) >= _MIN_SECRET_LENGTH:
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

    Remembered secrets go first: oslo.utils' patterns may mask only the
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
    ``limit`` characters; None, a boolean, a float or a 64-bit integer as
    it is; anything else by its type only: a container may hold secrets,
    be huge, or nest too deep to print.
    """
    if isinstance(value, str):
        shown = repr(safe_text(value))
        if len(shown) > limit:
            return '%s... (%d characters)' % (shown[:limit], len(value))
        return shown
    if value is None or isinstance(value, (bool, float)):
        return repr(value)
    if isinstance(value, int) and value.bit_length() <= 64:
        return repr(value)
    return 'a value of type %s' % type(value).__name__
