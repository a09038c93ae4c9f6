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

"""Exit codes of ``ipa-cinder`` and how an error is reported.

The errors themselves are in :mod:`ipa_cinder.exception` (``CLIError``
carries its exit code, ``PartialResult`` also a result to print). An error
is reported as one line on stderr, ``ipa-cinder: <kind> error: <message>``,
and, with ``-f json`` or ``-f yaml``, as a document on stdout too, so that
a script reading stdout learns why there is no result::

    {"error": {"exit_code": 3, "kind": "cinder", "message": "..."}}

Messages always go through :func:`ipa_cinder.common.secrets.safe_text`,
whatever ``--show-secrets`` says.
"""

import re

from oslo_config import cfg

from ipa_cinder.common import secrets
from ipa_cinder import exception

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CINDER = 3
EXIT_LOCAL = 4
EXIT_NOT_ROOT = 5
#: Interrupted: 128 + the signal number (:mod:`ipa_cinder.cli.interrupts`).
EXIT_HANGUP = 129
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

EPILOG = ('Exit codes: 0 success, 1 unexpected error, 2 usage or '
          'configuration error, 3 Cinder error, 4 local connect/disconnect/'
          'mount error, 5 not root, 128 + the signal number when '
          'interrupted (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP; what '
          'local-attach had done is undone first).')

KINDS = {EXIT_USAGE: 'usage', EXIT_CINDER: 'cinder', EXIT_LOCAL: 'local',
         EXIT_NOT_ROOT: 'not-root', EXIT_ERROR: 'unexpected'}

#: oslo.config's text of a bad value, which names the source in a repr.
_CONFIG_VALUE = re.compile(
    r"^Value for option (?P<option>\S+) from LocationInfo\(.*?"
    r"detail='(?P<source>[^']*)'\) is not valid: (?P<reason>.*)$",
    re.DOTALL)

#: Formats whose error document goes to stdout.
DOCUMENT_FORMATS = ('json', 'yaml')


def classify(exc):
    """(exit code, kind) of an exception."""
    # Imported here: the command line parses its arguments without it.
    from oslo_concurrency import processutils

    if isinstance(exc, exception.CLIError):
        return exc.code, KINDS.get(exc.code, 'unexpected')
    if isinstance(exc, exception.CinderError):
        return EXIT_CINDER, 'cinder'
    if isinstance(exc, cfg.Error):  # a bad value met late
        return EXIT_USAGE, 'usage'
    if isinstance(exc, (exception.VolumeConnectionError,
                        exception.InvalidConnectionInfo,
                        exception.InvalidIdentifier,
                        exception.NoStorageIdentity,
                        processutils.ProcessExecutionError, OSError)):
        return EXIT_LOCAL, 'local'
    return EXIT_ERROR, 'unexpected'


def config_text(exc, group=None):
    """The text of an oslo.config error, naming the file and the option.

    :param group: the option's group, when the caller knows it.
    """
    match = _CONFIG_VALUE.match(str(exc))
    if not match:
        return str(exc)
    option = match.group('option')
    if group:
        option = '[%s] %s' % (group, option)
    return 'configuration: %s: option %s: invalid value: %s' % (
        match.group('source'), option, match.group('reason'))


def message(kind, exc):
    """The stderr line of an error, secrets masked."""
    if isinstance(exc, cfg.Error):
        exc = config_text(exc)
    return 'ipa-cinder: %s error: %s' % (kind, secrets.safe_text(exc))


def document(code, kind, text):
    """The error document: ``{'exit_code', 'kind', 'message'}``, masked.

    Printed (under the key ``error``) on stdout by the formats named in
    DOCUMENT_FORMATS, through the command's own formatter.
    """
    return {'exit_code': code, 'kind': kind,
            'message': secrets.safe_text(text)}
