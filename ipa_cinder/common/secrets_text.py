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

"""Secrets written as text: the patterns that find a secret key's value.

Runs anywhere, used by :mod:`ipa_cinder.common.secrets` (import that
one). Only values
of secret keys are masked: ``password=...``, ``'auth_username': '...'``,
JSON, ``--password ...``, ``... .password -v ...``. oslo.utils'
``mask_password`` is not used on text: its pattern for command-line
options takes ``secret-ish word`` for an option and its value and masks
the ordinary word that follows.
"""

import re

MASK = '***'

# ``key=value`` / ``'key': 'value'`` / ``"key": "value"`` secrets in free
# text. A key is a word holding one of the key words below (password,
# passwd, secret, token, user name and the other secret keys of
# oslo.utils' list), or ending with user (as is_secret_key judges keys),
# or a quoted string holding one of
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
_KEY_WORDS = (r"""(?:password|passwd|passphrase|admin_?pass|new_pass|pswd"""
              r"""|secret|token|user_?name|(?:private|encrypted|ssl|fernet)"""
              r"""_?key)""")
_KEY_WORD = r"""(?=\w*%s|\w*user\b)\w++""" % _KEY_WORDS
_KEY = _KEY_WORD + r"""['"]?\s*[:=]"""
_QUOTED = r"""(?<!\\)(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")"""
_QUOTED_KEY = (
    r"""(?<!\\)(?:'(?=(?:[^'\\\n]|\\.)*?%(words)s)(?:[^'\\\n]|\\.)*'"""
    r"""|"(?=(?:[^"\\\n]|\\.)*?%(words)s)(?:[^"\\\n]|\\.)*")"""
    % {'words': '(?:%s|user)' % _KEY_WORDS})
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

# ``--key value`` and ``key -o value`` (iscsiadm ... auth.password -v x):
# the key word, white space, an option, white space, then the value (a
# quoted string whole, else up to white space). White space is required
# on both sides of the option, so "secret-ish word" is no option.
_OPTION = re.compile(
    r"""(?P<key>(?:--%(key_word)s\s+|\b%(key_word)s\s+-[A-Za-z][\w-]*\s+))"""
    r"""(?P<value>%(quoted)s|[^\s'"]+)"""
    % {'key_word': _KEY_WORD, 'quoted': _QUOTED}, re.IGNORECASE)


# A line of an open-iscsi record (``iscsiadm -m node -o show``,
# ``iscsistart -f``): ``node.session.auth.password = <value>``. The value
# is everything up to the end of the line, spaces included, so a secret
# key's whole value is masked. Lines also end at an escaped newline: the
# record inside a repr (a command error's ``Stdout: '...\n...'``). The
# key is taken whole (possessive: nothing is tried twice) and its last
# dotted part judged by :data:`_SECRET_KEY_WORD` afterwards.
_RECORD_LINE = re.compile(
    r"""(?:^|(?<=\\n))"""
    r"""(?P<key>[ \t]*[\w.\[\]]++[ \t]*=[ \t]*)"""
    r"""(?P<value>(?:[^\n\\]|\\[^n\n])*+)""",
    re.MULTILINE)
_SECRET_KEY_WORD = re.compile(r"""%s|user""" % _KEY_WORDS, re.IGNORECASE)


def _masked_record_line(match):
    # The last part of a dotted name says what the value is
    # (node.session.auth.password; not password.wait).
    name = match.group('key').split('=', 1)[0].strip().rsplit('.', 1)[-1]
    if not match.group('value') or not _SECRET_KEY_WORD.search(name):
        return match.group(0)
    return match.group('key') + MASK


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


def _masked_option(match):
    value = match.group('value')
    if value[0] in '\'"' and len(value) > 1 and value[-1] == value[0]:
        return match.group('key') + value[0] + MASK + value[0]
    return match.group('key') + MASK


def mask_text(text):
    """Mask the values of secret keys written in free text.

    ``key=value``, ``key: value``, a dict's repr or JSON, ``--key value``,
    ``key -v value`` (iscsiadm's ``node.session.auth.password -v``) and
    the lines of an open-iscsi record (``key = value`` up to the line's
    end, as ``iscsistart -f`` prints the firmware's boot target).
    Nothing else: ordinary words around a key word stay as they are.
    """
    if '=' in text:
        text = _RECORD_LINE.sub(_masked_record_line, text)
    text = _KEY_VALUE_TEXT.sub(_masked_value, text)
    text = _KEY_VALUE_LOOSE.sub(_masked_value, text)
    return _OPTION.sub(_masked_option, text)
