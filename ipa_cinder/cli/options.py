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

"""Arguments of ``ipa-cinder``: value types, on/off flags, global options.

Global options (openstacksdk's ``--os-*``, ``--state-dir``,
``--config-file``, ``--host``, ``--service-role-header``, and cliff's
``-v``/``-q``/``--debug``/``--log-file``) belong to the application's
parser, which picks them out wherever they stand on the command line:
before or after the command. Each command's own options belong to the
command's parser and follow the command.

On/off flags are written ``--multipath`` / ``--no-multipath``. An explicit
value is accepted as well, strictly: ``--multipath false`` and
``--multipath=no`` mean off, ``--multipath maybe`` is a usage error, and
``--multipath VOLUME`` does not swallow the volume.
"""

import argparse
import os
import socket

from oslo_utils import strutils
from oslo_utils import uuidutils

DEFAULT_CONFIG_FILE = '/etc/ipa-cinder/ipa-cinder.conf'
MODES = ('rw', 'ro')

#: The on/off flags of the commands (see :func:`normalize_argv`).
BOOL_FLAGS = ('--multipath', '--enforce-multipath', '--show-secrets',
              '--force')


def parse_bool(value):
    """A strict boolean: true/false, yes/no, on/off, 1/0; else an error."""
    try:
        return strutils.bool_from_string(value, strict=True)
    except ValueError:
        raise argparse.ArgumentTypeError(
            'expected a boolean (true/false, yes/no, on/off, 1/0), got %r'
            % value)


def _bool_word(value):
    """The boolean a word stands for, or None if it is not one."""
    try:
        return strutils.bool_from_string(value, strict=True)
    except ValueError:
        return None


def uuid_type(value):
    """An argument that must look like a UUID."""
    if not uuidutils.is_uuid_like(value):
        raise argparse.ArgumentTypeError('expected a UUID, got %r' % value)
    return value


def instance_uuid_type(value):
    """``--instance-uuid``: a UUID, or ``none`` for no instance ('')."""
    if value.lower() == 'none':
        return ''
    return uuid_type(value)


def normalize_argv(argv):
    """Rewrite explicit values of on/off flags into ``--flag``/``--no-flag``.

    ``--multipath false`` and ``--multipath=false`` become
    ``--no-multipath``; ``--multipath true`` becomes ``--multipath``.
    A word after the flag that is not a boolean is left alone (it is the
    next argument, a volume for instance). Nothing after ``--`` is touched.

    :raises: argparse.ArgumentTypeError for ``--multipath=maybe``.
    """
    argv = list(argv)
    result = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == '--':
            result.extend(argv[i:])
            break
        flag, has_value, text = arg.partition('=')
        value = None
        if flag in BOOL_FLAGS:
            if has_value:
                try:
                    value = parse_bool(text)
                except argparse.ArgumentTypeError as e:
                    raise argparse.ArgumentTypeError(
                        'argument %s: %s' % (flag, e))
            elif i + 1 < len(argv):
                value = _bool_word(argv[i + 1])
                if value is not None:
                    i += 1
        if value is None:
            result.append(arg)
        else:
            result.append(flag if value else '--no-' + flag[2:])
        i += 1
    return result


class OnOffAction(argparse.Action):
    """``--name`` sets True, ``--no-name`` sets False.

    argparse's BooleanOptionalAction would do, but it appends its own
    "(default: ...)" to every help text, which reads badly next to ours.
    """

    def __init__(self, option_strings, dest, **kwargs):
        strings = []
        for option in option_strings:
            strings += [option, '--no-' + option[2:]]
        super().__init__(strings, dest, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, not option_string.startswith('--no-'))

    def format_usage(self):
        return ' | '.join(self.option_strings)


def add_on_off(parser, name, help, default=False):
    """``--name`` / ``--no-name``; see :func:`normalize_argv`."""
    parser.add_argument('--' + name, action=OnOffAction, default=default,
                        help=help)


def add_global_options(parser, argv, cloud_config):
    """The global options of ``ipa-cinder`` on the application's parser.

    :param argv: the command line; openstacksdk looks at it to add the
        options of the chosen auth plugin (``--os-auth-type``).
    :param cloud_config: an ``openstack.config.OpenStackConfig``.
    :raises: openstack.exceptions.ConfigException for an unknown auth type.
    """
    cloud_config.register_argparse_arguments(
        parser, argv, service_keys=['block-storage'])
    group = parser.add_argument_group(
        'ipa-cinder options',
        'They may also follow the command.')
    group.add_argument(
        '--host', metavar='NAME', default=None,
        help="connector host name: Cinder records it in the attachment, "
             "and local-detach and list find this host's attachments by "
             "it (default: this host's name, %s)" % socket.gethostname())
    group.add_argument(
        '--state-dir', metavar='DIR', default=None,
        help='where connections are recorded (default: [ipa_cinder] '
             'state_dir, /var/lib/ipa-cinder)')
    group.add_argument(
        '--config-file', metavar='FILE', action='append', default=None,
        help='oslo.config file, may be repeated (default: %s if it '
             'exists)' % DEFAULT_CONFIG_FILE)
    group.add_argument(
        '--service-role-header', type=parse_bool, default=None,
        metavar='BOOL',
        help='send X-Service-Roles: service with attachment deletes '
             '(default: only with auth type none; see the README)')


def config_files(options):
    """The oslo.config files to read for the global ``options``."""
    if options.config_file is not None:
        return options.config_file
    if os.path.exists(DEFAULT_CONFIG_FILE):
        return [DEFAULT_CONFIG_FILE]
    return []


def check_config_values(conf):
    """Read every option once, so that a bad value fails now.

    oslo.config converts a value when it is first read: without this, a
    bad value in a configuration file would surface half-way through a
    command.

    :raises: oslo_config.cfg.Error, and the group of the bad option as
        the exception's ``group`` attribute.
    """
    for name in list(conf):
        value = conf[name]
        if not hasattr(value, '_group'):  # an option of [DEFAULT]
            continue
        for opt_name in list(value):
            try:
                getattr(value, opt_name)
            except ValueError as e:
                e.group = name
                raise


def add_multipath_options(parser):
    """``--multipath`` and ``--enforce-multipath`` (connector options)."""
    add_on_off(parser, 'multipath',
               'ask os-brick for a multipath connector and device (default: '
               '[ipa_cinder] use_multipath)', default=None)
    add_on_off(parser, 'enforce-multipath',
               'with --multipath, fail when multipathd is not running '
               'instead of falling back to a single path (default: off)')


def absolute_path(value):
    """An argument that must be an absolute path."""
    if not os.path.isabs(value):
        raise argparse.ArgumentTypeError(
            'must be an absolute path, got %r' % value)
    return value
