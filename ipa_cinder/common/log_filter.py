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
every command it executes (at debug level), os-brick and oslo.concurrency
log command lines and errors. Masking our own messages is not enough, so
the processes that handle connection info (the agent, the conductor, the
command-line tool) install this filter on their log handlers. Each record
goes through :func:`ipa_cinder.common.secrets.scrub`: every secret this
process was told about (:func:`~ipa_cinder.common.secrets.remember`) and
``password=...``-style text are masked, in the message and in the
formatted traceback.
"""

import logging
import traceback

from ipa_cinder.common import secrets


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
