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

"""A logging filter that keeps volume secrets out of every log line.

Code outside ipa-cinder logs what it is given: IPA logs the arguments of
every command it executes (at debug level, before any validation),
os-brick traces the arguments and results of its connector calls, and
os-brick and oslo.concurrency log command lines and errors. Masking our
own messages is not enough, so the processes that handle connection info
(the agent, the conductor, the command-line tool) install this filter on
their log handlers. Each record is made safe in three steps:

1. Its arguments are masked STRUCTURALLY, before formatting
   (:func:`ipa_cinder.common.secrets.mask`): the value of every secret
   field is hidden whatever characters it holds, which text patterns
   cannot promise once a dict is rendered (a quote, a space or a brace
   inside a password ends a pattern's idea of the value). Strings longer
   than :data:`MAX_ARG_TEXT` and containers with more than
   :data:`MAX_ARG_ITEMS` items are cut first, so a hostile request
   costs the log as much as a normal one.
2. os-brick's trace of a call logs ``strutils.mask_password(str(args))``,
   text that oslo.utils has already masked in part (and can have cut in
   the middle of a secret). When that text names a credential, it is not
   shown at all.
3. The formatted message (and traceback) goes through
   :func:`ipa_cinder.common.secrets.scrub`: remembered secrets
   (:func:`~ipa_cinder.common.secrets.remember`) and ``password=...``
   text are masked, a second net for secrets in free text.
"""

import logging
import traceback

from ipa_cinder.common import secrets

#: Strings of a record's arguments longer than this are replaced by their
#: length: a log line does not need megabytes of a request parameter.
MAX_ARG_TEXT = 8192
#: Items of a container (in a record's arguments) shown, at most.
MAX_ARG_ITEMS = 256
#: Containers nested deeper than this are shown by type only.
MAX_ARG_DEPTH = 16

# os-brick's utils.trace: the arguments of a call, pre-masked as text.
_BRICK_TRACE_CALL = '==> %(func)s: call %(all_args)r'
_BRICK_HIDDEN = '<arguments not shown: they hold credentials>'
# Words that tell a pre-rendered text holds credentials.
_CREDENTIAL_HINTS = ('pass', 'secret', 'user', 'token', 'pwd', 'auth',
                     'chap', 'key')


def _cut(value, depth=0):
    """``value`` with long strings and big or deep containers cut short.

    The copy keeps every dict's keys that are shown, so that structural
    masking still sees which values are secrets.
    """
    if isinstance(value, str):
        if len(value) > MAX_ARG_TEXT:
            return '<%d characters not shown>' % len(value)
        return value
    if isinstance(value, (dict, list, tuple)):
        if depth >= MAX_ARG_DEPTH:
            return '<a %s nested too deep>' % type(value).__name__
        more = len(value) - MAX_ARG_ITEMS
        if isinstance(value, dict):
            cut = {}
            for index, (key, item) in enumerate(value.items()):
                if index >= MAX_ARG_ITEMS:
                    break
                cut[_cut(key, depth + 1) if isinstance(key, str)
                    else key] = _cut(item, depth + 1)
            if more > 0:
                cut['<not shown>'] = '%d more items' % more
            return cut
        items = [_cut(item, depth + 1)
                 for item in value[:MAX_ARG_ITEMS]]
        if more > 0:
            items.append('<%d more items>' % more)
        return items if isinstance(value, list) else tuple(items)
    return value


def _is_brick_trace_with_credentials(record):
    if record.msg != _BRICK_TRACE_CALL or not isinstance(record.args, dict):
        return False
    text = record.args.get('all_args')
    if not isinstance(text, str):
        return False
    lowered = text.lower()
    return '***' in text or any(hint in lowered
                                for hint in _CREDENTIAL_HINTS)


def _masked_args(record):
    """The record's arguments, cut short and masked field by field."""
    args = record.args
    if _is_brick_trace_with_credentials(record):
        args = dict(args, all_args=_BRICK_HIDDEN)
    if isinstance(args, dict):
        return secrets.mask(_cut(args))
    if isinstance(args, tuple):
        return tuple(secrets.mask(_cut(arg)) for arg in args)
    return args


def _message(record):
    """The record's message, formatted from masked arguments."""
    if not record.args:
        return '%s' % (record.msg,)
    args = _masked_args(record)
    try:
        return '%s' % (record.msg,) % args
    except Exception as e:
        # A masked value where the format wants a number (%(password)d),
        # or a format string that does not match its arguments: the
        # original arguments are never formatted instead.
        return '%s (arguments not shown: %s)' % (record.msg,
                                                 type(e).__name__)


class SecretsFilter(logging.Filter):
    """Rewrites each record so that no known secret reaches a handler."""

    def filter(self, record):
        try:
            message = _message(record)
        except Exception:
            # Even str() of the format failed: nothing of it is shown.
            message = '<a log message that cannot be shown>'
        if record.exc_info and record.exc_info[0] is not None:
            # Formatters re-render tracebacks from exc_info, so render it
            # here, scrubbed, and drop exc_info.
            message = '%s\n%s' % (message, ''.join(
                traceback.format_exception(*record.exc_info)).rstrip())
            record.exc_info = None
            record.exc_text = None
        record.msg = secrets.scrub(message)
        record.args = None
        return True


def install(logger=None):
    """Attach the filter to the handlers of ``logger`` (default: root).

    Idempotent. Handlers added later are not covered, so call it once
    logging is set up (oslo.log's ``setup``).
    """
    logger = logger or logging.getLogger()
    for handler in logger.handlers:
        if not any(isinstance(f, SecretsFilter) for f in handler.filters):
            handler.addFilter(SecretsFilter())
    return logger
