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
them too once merged. Three tools, used everywhere in ipa-cinder:

* :func:`mask` returns a copy of a dict, list or text with every secret
  value replaced by ``***`` (keys judged by oslo.utils' password key list,
  plus the user names of credentials);
* :func:`remember` records the secret values of a connection_info that
  passed through this process, so that :func:`scrub` can find them in any
  text (an os-brick error, an IPA log line, a traceback);
* :func:`safe_text` is what an error message or a log argument goes
  through: ``password=...``-style text masked by oslo.utils, then every
  remembered secret masked.
"""

import re
import threading

from oslo_utils import strutils

MASK = '***'

# User names of CHAP and friends (auth_username, discovery_auth_username,
# chap_username...) are half of a credential: masked like passwords.
_USER_KEY = re.compile(r'(user_?name|^user$|_user$)', re.IGNORECASE)

# ``key=value`` / ``'key': 'value'`` secrets in free text, beyond the
# password patterns oslo.utils knows. Linear: no nested repetition.
_KEY_VALUE_TEXT = re.compile(
    r'''(['"]?[a-z_]*(?:user(?:_?name)?|password|passwd|secret|token)'''
    r'''['"]?\s*[:=]\s*)(['"]?)[^'",}\s]+''',
    re.IGNORECASE)

# Words that tell a text may hold a secret in key=value form.
_HINTS = ('pass', 'secret', 'token', 'pwd', 'auth_username')

# Secrets shorter than this are not searched for in text: a 1-2 character
# value would mask half of every line and reveal the value by its
# absence. CHAP secrets are 12+ characters in practice.
_MIN_SECRET_LENGTH = 4

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
    strings (``password=...`` style text).
    """
    if isinstance(value, dict):
        return {k: (MASK if is_secret_key(k) and v not in (None, '')
                    else mask(v))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(mask(v) for v in value)
    if isinstance(value, str):
        return mask_text(value)
    return value


def mask_text(text):
    """Mask ``key=value`` / ``'key': 'value'`` secrets in free text."""
    text = strutils.mask_password(text, MASK)
    return _KEY_VALUE_TEXT.sub(r'\1\2' + MASK, text)


def secret_values(value):
    """Every secret string found in ``value`` (recursively)."""
    found = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if is_secret_key(k) and isinstance(v, str) and v:
                found.add(v)
            else:
                found |= secret_values(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            found |= secret_values(v)
    return found


def remember(value):
    """Mask from now on every secret found in ``value`` (a dict)."""
    found = {s for s in secret_values(value)
             if len(s) >= _MIN_SECRET_LENGTH}
    if found:
        with _lock:
            _remembered.update(found)


def scrub(text):
    """``text`` with every remembered secret and key=value secret masked."""
    if not isinstance(text, str) or not text:
        return text
    with _lock:
        known = sorted(_remembered, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
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
    return mask_text(scrub('%s' % (value,)))
