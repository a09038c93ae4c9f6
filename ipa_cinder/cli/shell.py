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

"""``ipa-cinder``: attach a Cinder volume to this Linux host.

``get-connector``, ``local-attach``, ``local-detach`` and ``list``: the job
of python-brick-cinderclient-ext, on the code the agent half uses
(:class:`~ipa_cinder.agent.connections.VolumeConnections` for os-brick and
the on-disk record, :class:`~ipa_cinder.cinder.CinderClient` for Cinder).

The implementation is in :mod:`ipa_cinder.cli_commands` and
:mod:`ipa_cinder.cli_output`; this module parses arguments, sets up
configuration and logging, and maps errors to exit codes. It imports
os-brick only once the arguments are parsed, so that ``--help`` and usage
errors are fast and quiet.

Exit codes: 0 success, 1 unexpected error, 2 usage or configuration
error, 3 Cinder error (API, authentication, volume not found), 4 local
error (os-brick connect/disconnect, mount, no storage identity),
5 not root.
"""

import argparse
import logging
import os
import signal
import socket
import sys
import warnings

from keystoneauth1 import exceptions as ks_exc
import openstack
from openstack import config as os_config
from openstack import exceptions as os_exc
from oslo_config import cfg
from oslo_utils import strutils
from oslo_utils import uuidutils

from ipa_cinder.common import noauth
from ipa_cinder import conf as ipa_conf
from ipa_cinder import exception

LOG = logging.getLogger('ipa_cinder.cli')
CONF = ipa_conf.CONF

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CINDER = 3
EXIT_LOCAL = 4
EXIT_NOT_ROOT = 5

DEFAULT_CONFIG_FILE = '/etc/ipa-cinder/ipa-cinder.conf'
# Flags that take an optional boolean: "--multipath" alone is true.
OPTIONAL_BOOL_FLAGS = ('--multipath', '--enforce-multipath',
                       '--show-secrets', '--force')
MODES = ('rw', 'ro')
FORMATS = ('table', 'json')


CLIError = exception.CLIError
PartialResult = exception.PartialResult


def parse_bool(value):
    """A strict boolean: true/false, yes/no, on/off, 1/0; else an error."""
    try:
        return strutils.bool_from_string(value, strict=True)
    except ValueError:
        raise argparse.ArgumentTypeError(
            'expected a boolean (true/false, yes/no, on/off, 1/0), got %r'
            % value)


def _is_bool_word(value):
    try:
        strutils.bool_from_string(value, strict=True)
    except ValueError:
        return False
    return True


def normalize_argv(argv):
    """``--multipath`` alone means ``--multipath=true``.

    ``--multipath false`` keeps its value; ``--multipath VOLUME`` does not
    swallow the volume.
    """
    result = []
    for i, arg in enumerate(argv):
        if arg in OPTIONAL_BOOL_FLAGS and (
                i + 1 >= len(argv) or not _is_bool_word(argv[i + 1])):
            arg += '=true'
        result.append(arg)
    return result


def _uuid(value):
    if not uuidutils.is_uuid_like(value):
        raise argparse.ArgumentTypeError('expected a UUID, got %r' % value)
    return value


def build_parser(argv=(), cloud_config=None):
    """The argument parser (openstacksdk's --os-* options included)."""
    parser = argparse.ArgumentParser(
        prog='ipa-cinder',
        description='Attach Cinder volumes to this Linux host. Cloud and '
                    'credentials come from clouds.yaml and OS_* variables '
                    '(openstacksdk); --os-* options go before the command.',
        epilog='Exit codes: 0 success, 1 unexpected error, 2 usage or '
               'configuration error, 3 Cinder error, 4 local connect/'
               'disconnect/mount error, 5 not root.')
    (cloud_config or os_config.OpenStackConfig()).register_argparse_arguments(
        parser, list(argv), service_keys=['block-storage'])

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--format', choices=FORMATS,
                        default='table', help='output format')
    common.add_argument('--show-secrets', nargs='?', const=True,
                        default=False, type=parse_bool, metavar='BOOL',
                        help='show CHAP credentials instead of masking them')
    common.add_argument('--host', default=None,
                        help='connector host name (default: this host\'s '
                             'name, %s)' % socket.gethostname())
    common.add_argument('--state-dir', default=None,
                        help='where connections are recorded (default: '
                             '[ipa_cinder] state_dir, /var/lib/ipa-cinder)')
    common.add_argument('--config-file', action='append', default=None,
                        help='oslo.config file (default: %s if it exists)'
                             % DEFAULT_CONFIG_FILE)
    common.add_argument('--service-role-header', type=parse_bool,
                        default=None, metavar='BOOL',
                        help='send X-Service-Roles: service with attachment '
                             'deletes (default: only with auth type none; '
                             'see the README)')
    common.add_argument('-v', '--verbose', action='store_true',
                        help='log what is done (stderr)')
    common.add_argument('--debug', action='store_true',
                        help='debug logging (stderr)')

    multipath = argparse.ArgumentParser(add_help=False)
    multipath.add_argument('--multipath', nargs='?', const=True,
                           default=None, type=parse_bool, metavar='BOOL',
                           help='use multipath (default: [ipa_cinder] '
                                'use_multipath)')
    multipath.add_argument('--enforce-multipath', nargs='?', const=True,
                           default=False, type=parse_bool, metavar='BOOL',
                           help='fail when multipathd is not running')

    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True
    sub.add_parser('get-connector', parents=[common, multipath],
                   help="print this host's os-brick connector")
    attach = sub.add_parser(
        'local-attach', parents=[common, multipath],
        help='attach a volume to this host: attachment create with the '
             'connector and mode, os-brick connect, attachment complete')
    attach.add_argument('volume', metavar='VOLUME', help='volume ID or name')
    attach.add_argument('--mode', choices=MODES,
                        default='rw', help='attach mode (default: rw)')
    attach.add_argument('--mountpoint', default=None,
                        help='mount the volume\'s filesystem there')
    attach.add_argument('--instance-uuid', type=_uuid, default=None,
                        help='instance UUID recorded in the attachment')
    detach = sub.add_parser(
        'local-detach', parents=[common],
        help="detach a volume from this host (unmount, disconnect, "
             "attachment delete)")
    detach.add_argument('volume', metavar='VOLUME', help='volume ID or name')
    detach.add_argument('--attachment-id', type=_uuid, default=None,
                        help='the attachment to remove (default: the one '
                             'of this host)')
    detach.add_argument('--force', nargs='?', const=True, default=False,
                        type=parse_bool, metavar='BOOL',
                        help='disconnect even if the device is still in '
                             'use (mounted in another mount namespace, held '
                             'by device-mapper...) or cannot be flushed')
    sub.add_parser('list', parents=[common],
                   help='what this host has attached: local record and '
                        'Cinder\'s view')
    return parser


# ----------------------------------------------------------- set-up --

def setup(args):
    """Configuration files, the state directory, logging."""
    files = args.config_file
    if files is None:
        files = ([DEFAULT_CONFIG_FILE]
                 if os.path.exists(DEFAULT_CONFIG_FILE) else [])
    try:
        CONF([], project='ipa-cinder', default_config_files=files)
    except cfg.Error as e:
        raise CLIError('configuration: %s' % e, EXIT_USAGE)
    if args.state_dir:
        CONF.set_override('state_dir', os.path.abspath(args.state_dir),
                          group='ipa_cinder')
    level = (logging.DEBUG if args.debug else
             logging.INFO if args.verbose else logging.WARNING)
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(
            '%(asctime)s %(levelname)s %(name)s: %(message)s'))
        root.addHandler(handler)
    root.setLevel(level)
    if level > logging.INFO:
        # os-brick warns about every protocol this host lacks (NVMe...).
        logging.getLogger('os_brick').setLevel(logging.ERROR)
    # Imported here: see the module docstring.
    from ipa_cinder.common import log_filter
    log_filter.install(root)


def cinder_client(args):
    """A CinderClient from clouds.yaml, OS_* variables and --os-* options."""
    # Imported here: see the module docstring (it imports os-brick).
    from ipa_cinder.common import cinder_client as cinder

    try:
        region = os_config.OpenStackConfig().get_one(argparse=args)
        session = region.get_session()
        if region.config.get('auth_type') in ('none', 'noauth'):
            auth = region.config.get('auth') or {}
            endpoint = (region.get_endpoint('block-storage')
                        or auth.get('endpoint'))
            if not endpoint:
                raise CLIError(
                    'auth type none needs the Cinder endpoint: set '
                    'OS_ENDPOINT (or block_storage_endpoint_override in '
                    'clouds.yaml)', EXIT_USAGE)
            token = noauth.token_for(endpoint, auth)
            session.auth = noauth.TokenAuth(endpoint, token)
            # Version discovery is unauthenticated: it needs it too.
            session.additional_headers['X-Auth-Token'] = token
        cloud = openstack.connection.Connection(config=region)
    except (os_exc.ConfigException,
            ks_exc.AuthPluginException) as e:
        raise CLIError('cloud configuration: %s (configure clouds.yaml and '
                       'OS_CLOUD, or the OS_* variables)' % e, EXIT_USAGE)
    return cinder.CinderClient(
        cloud, service_role_header=args.service_role_header)


def _implementation():
    """The command and output modules (they import os-brick)."""
    with warnings.catch_warnings():
        # oslo.privsep imports eventlet, which warns that it is deprecated
        # on every start: not something the user can act on.
        warnings.simplefilter('ignore')
        from ipa_cinder.cli import commands as cli_commands
        from ipa_cinder.cli import output as cli_output
    return cli_commands, cli_output


def _interrupt(signum, frame):
    raise KeyboardInterrupt()


_KINDS = {EXIT_USAGE: 'usage', EXIT_CINDER: 'cinder', EXIT_LOCAL: 'local',
          EXIT_NOT_ROOT: 'not-root', EXIT_ERROR: 'unexpected'}


def classify(exc):
    """(exit code, kind) of an exception."""
    # Imported here: see the module docstring.
    from oslo_concurrency import processutils

    if isinstance(exc, CLIError):
        return exc.code, _KINDS.get(exc.code, 'unexpected')
    if isinstance(exc, exception.CinderError):
        return EXIT_CINDER, 'cinder'
    if isinstance(exc, (exception.VolumeConnectionError,
                        exception.InvalidConnectionInfo,
                        exception.InvalidIdentifier,
                        processutils.ProcessExecutionError, OSError)):
        return EXIT_LOCAL, 'local'
    return EXIT_ERROR, 'unexpected'


def main(argv=None):
    argv = normalize_argv(sys.argv[1:] if argv is None else list(argv))
    try:
        args = build_parser(argv).parse_args(argv)
    except os_exc.ConfigException as e:
        print('ipa-cinder: error: cloud configuration: %s' % e,
              file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        return e.code
    fmt = args.format
    if not args.debug:
        # Library deprecation warnings (eventlet, imported lazily by
        # oslo.privsep...) are nothing a user can act on.
        warnings.simplefilter('ignore')
    commands, output = _implementation()
    # SIGTERM interrupts like Ctrl-C: local-attach undoes what it did.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        setup(args)
        result = commands.COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print('ipa-cinder: interrupted', file=sys.stderr)
        return 130
    except Exception as e:
        code, kind = classify(e)
        LOG.debug('ipa-cinder %s failed', args.command, exc_info=True)
        if isinstance(e, PartialResult):
            print(output.render(e.result, fmt, args.show_secrets,
                                commands.SECTIONS.get(args.command)))
            print('ipa-cinder: %s error: %s' % (kind, output.safe_text(e)),
                  file=sys.stderr)
            return code
        print('ipa-cinder: %s error: %s'
              % (kind, output.safe_text(e)), file=sys.stderr)
        document = output.render_error(code, kind, str(e), fmt)
        if document:
            print(document)
        return code
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(output.render(result, fmt, args.show_secrets,
                        commands.SECTIONS.get(args.command)))
    return EXIT_OK
