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

Code outside this project logs what it is given: IPA logs the arguments of
every command it executes (at debug level), os-brick and oslo.concurrency
log command lines and errors. Masking our own messages is not enough, so
the processes that handle connection info (the agent, the conductor, the
command-line tool) install this filter on their log handlers. It masks

* every secret value it was told about (the CHAP credentials of each
  connection_info passed through this code), wherever it appears, in the
  message and in the formatted traceback;
* ``password=...``-style text, through oslo.utils.
"""

import logging
import threading
import traceback

from ipa_cinder import connection

# Secrets shorter than this are not searched for in log text: a 1-2
# character value would mask half of every line and reveal the value by
# its absence. CHAP secrets are 12+ characters in practice.
_MIN_SECRET_LENGTH = 4

_HINTS = ('pass', 'secret', 'token', 'pwd', 'auth_username')

_lock = threading.Lock()
_secrets = set()


def remember(value):
    """Mask from now on every secret found in ``value`` (a dict)."""
    found = {s for s in connection.secret_values(value)
             if len(s) >= _MIN_SECRET_LENGTH}
    if found:
        with _lock:
            _secrets.update(found)


def scrub(text):
    """Return ``text`` with every known secret masked."""
    if not isinstance(text, str) or not text:
        return text
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, connection.MASK)
    lowered = text.lower()
    if any(hint in lowered for hint in _HINTS):
        text = connection.mask_text(text)
    return text


class SecretsFilter(logging.Filter):
    """Rewrites each record so that no known secret reaches a handler."""

    def filter(self, record):
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not ours to fix
            return True
        if record.exc_info and record.exc_info[0] is not None:
            # Formatters re-render tracebacks from exc_info, so render it
            # here, scrubbed, and drop exc_info.
            message = '%s\n%s' % (message, ''.join(
                traceback.format_exception(*record.exc_info)).rstrip())
            record.exc_info = None
            record.exc_text = None
        scrubbed = scrub(message)
        record.msg = scrubbed
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
