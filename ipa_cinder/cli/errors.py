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

from ipa_cinder.common import secrets
from ipa_cinder import exception

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CINDER = 3
EXIT_LOCAL = 4
EXIT_NOT_ROOT = 5
EXIT_INTERRUPTED = 130

EPILOG = ('Exit codes: 0 success, 1 unexpected error, 2 usage or '
          'configuration error, 3 Cinder error, 4 local connect/disconnect/'
          'mount error, 5 not root, 130 interrupted (Ctrl-C or SIGTERM).')

KINDS = {EXIT_USAGE: 'usage', EXIT_CINDER: 'cinder', EXIT_LOCAL: 'local',
         EXIT_NOT_ROOT: 'not-root', EXIT_ERROR: 'unexpected'}

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
    if isinstance(exc, (exception.VolumeConnectionError,
                        exception.InvalidConnectionInfo,
                        exception.InvalidIdentifier,
                        exception.NoStorageIdentity,
                        processutils.ProcessExecutionError, OSError)):
        return EXIT_LOCAL, 'local'
    return EXIT_ERROR, 'unexpected'


def message(kind, exc):
    """The stderr line of an error, secrets masked."""
    return 'ipa-cinder: %s error: %s' % (kind, secrets.safe_text(exc))


def document(code, kind, text):
    """The error document: ``{'exit_code', 'kind', 'message'}``, masked.

    Printed (under the key ``error``) on stdout by the formats named in
    DOCUMENT_FORMATS, through the command's own formatter.
    """
    return {'exit_code': code, 'kind': kind,
            'message': secrets.safe_text(text)}
