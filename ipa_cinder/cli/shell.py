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

"""``ipa-cinder``: the cliff application and the console script.

The commands are cliff commands found on the entry-point group
``ipa_cinder.cli`` (``get-connector``, ``local-attach``, ``local-detach``,
``list``). The application owns the global options, wherever they stand
on the command line, sets up logging (secrets filtered) and, once a
command runs, the configuration; it builds the Cinder client on first use,
the way OpenStack clients build theirs. It imports neither os-brick nor
the Cinder client: ``--help`` and usage errors stay fast and quiet.

Exit codes are in :mod:`ipa_cinder.cli.errors`.
"""

import argparse
import importlib.metadata
import logging
import os
import socket
import sys
import warnings

from cliff import app
from cliff import commandmanager
from cliff import help as cliff_help
from openstack import exceptions as os_exc
from oslo_config import cfg

from ipa_cinder.cli import cloud
from ipa_cinder.cli import errors
from ipa_cinder.cli import options
from ipa_cinder.common import log_filter
from ipa_cinder.common import secrets
from ipa_cinder import conf as ipa_conf
from ipa_cinder import exception

CONF = ipa_conf.CONF

#: The entry-point group of the commands.
NAMESPACE = 'ipa_cinder.cli'

DESCRIPTION = (
    'Attach Cinder volumes to this Linux host. Cloud and credentials come '
    'from clouds.yaml and the OS_* variables (openstacksdk) or the --os-* '
    'options; auth type "none" with OS_ENDPOINT reaches a standalone '
    'Cinder. Results go to stdout, logs to stderr.')

LOG_FORMAT = '%(asctime)s %(levelname)s %(name)s: %(message)s'


def _version():
    try:
        return importlib.metadata.version('ipa-cinder')
    except importlib.metadata.PackageNotFoundError:
        return 'unknown'


def log_level(options):
    """The root log level: -q errors, warnings by default, -v, -vv/--debug.

    As in the openstack client (cliff counts -v from 1, -q sets 0).
    """
    if options.debug or options.verbose_level >= 3:
        return logging.DEBUG
    return {0: logging.ERROR, 1: logging.WARNING}.get(options.verbose_level,
                                                      logging.INFO)


class HelpAction(cliff_help.HelpAction):
    """``--help``: the global options, then one line per command.

    cliff's own asks importlib.metadata which distribution provides each
    command, to name plugins: that reads every installed distribution's
    metadata (about a second here), and every command of ipa-cinder is its
    own.
    """

    def __call__(self, parser, namespace, values, option_string=None):
        application = self.default
        out = application.stdout
        parser.print_help(out)
        out.write('\nCommands:\n')
        for name, entry_point in sorted(application.command_manager):
            command = entry_point.load()(application, None)
            summary = command.get_description().split('\n')[0].rstrip('.')
            out.write('  %-13s  %s\n' % (name, summary))
        raise cliff_help.HelpExit()


class HelpCommand(cliff_help.HelpCommand):
    """Print the help of a command, or the list of commands."""

    def get_epilog(self):
        return ''  # not cliff's look-up of the providing distribution

    def take_action(self, parsed_args):
        if parsed_args.cmd:
            try:
                return super().take_action(parsed_args)
            except ValueError:  # neither a command nor a command's prefix
                self.app.stderr.write(
                    'ipa-cinder: error: %r is not a command (see ipa-cinder '
                    '--help)\n' % ' '.join(parsed_args.cmd))
                return errors.EXIT_USAGE
        HelpAction([], argparse.SUPPRESS, default=self.app)(
            self.app.parser, self.app.options, None, None)


class IpaCinderApp(app.App):
    """The ``ipa-cinder`` application.

    :param argv: the command line (openstacksdk adds the options of the
        auth plugin it names); may be empty, e.g. to document the options.
    :param cloud_config: an ``openstack.config.OpenStackConfig``.
    """

    NAME = 'ipa-cinder'
    LOG = logging.getLogger('ipa_cinder.cli')

    def __init__(self, argv=(), stdin=None, stdout=None, stderr=None,
                 cloud_config=None):
        self._argv = list(argv)
        self.cloud_config = cloud_config or cloud.CloudConfig()
        self._configured = False
        self._cinder = None
        super().__init__(
            description=DESCRIPTION, version=_version(),
            command_manager=commandmanager.CommandManager(NAMESPACE),
            stdin=stdin, stdout=stdout, stderr=stderr, deferred_help=True)
        self.command_manager.add_command('help', HelpCommand)

    def build_option_parser(self, description, version,
                            argparse_kwargs=None):
        kwargs = dict(argparse_kwargs or {}, prog=self.NAME,
                      usage='%s [GLOBAL OPTIONS] COMMAND [OPTIONS]'
                      % self.NAME,
                      # Abbreviations off: this parser must not take a
                      # command's option for one of its own.
                      allow_abbrev=False, epilog=errors.EPILOG)
        parser = super().build_option_parser(description, version, kwargs)
        for action in parser._actions:
            if action.dest == 'debug':  # cliff's text says less
                action.help = ('log everything, and the traceback of an '
                               'error, on stderr')
        options.add_global_options(parser, self._argv, self.cloud_config)
        return parser

    def print_help_if_requested(self):
        if self.options.deferred_help:
            HelpAction([], argparse.SUPPRESS, default=self)(
                self.parser, self.options, None, None)

    def run(self, argv):
        if list(argv) != self._argv:
            # The auth plugin options depend on the command line.
            self._argv = list(argv)
            self.parser = self.build_option_parser(DESCRIPTION, _version())
        try:
            argv = options.normalize_argv(argv)
        except argparse.ArgumentTypeError as e:
            self.parser.error(str(e))
        return super().run(argv)

    def configure_logging(self):
        """Logs to stderr (and --log-file), secrets filtered."""
        root = logging.getLogger()
        if not root.handlers:
            handler = logging.StreamHandler(self.stderr)
            handler.setFormatter(logging.Formatter(LOG_FORMAT))
            root.addHandler(handler)
        if self.options.log_file:
            handler = logging.FileHandler(self.options.log_file)
            handler.setFormatter(logging.Formatter(LOG_FORMAT))
            root.addHandler(handler)
        level = log_level(self.options)
        root.setLevel(level)
        if level > logging.INFO:
            # os-brick warns about every protocol this host lacks (NVMe...).
            logging.getLogger('os_brick').setLevel(logging.ERROR)
        log_filter.install(root)
        if not self.options.debug:
            # Library deprecation warnings are nothing a user can act on.
            warnings.simplefilter('ignore')

    def interact(self):
        # cliff starts an interactive shell when no command is given;
        # ipa-cinder has none to offer.
        self.parser.error('a command is required (see %s --help)'
                          % self.NAME)

    def run_subcommand(self, argv):
        try:
            self.command_manager.find_command(argv)
        except ValueError:
            # cliff would print its suggestions on stdout, where a script
            # expects a result: usage errors go to stderr.
            self.parser.print_usage(self.stderr)
            matches = self.get_fuzzy_matches(argv[0])
            self.stderr.write(
                '%s: error: %r is not a command (see %s --help)%s\n'
                % (self.NAME, ' '.join(argv), self.NAME,
                   '; did you mean %s?' % ' or '.join(matches)
                   if matches else ''))
            return errors.EXIT_USAGE
        return super().run_subcommand(argv)

    def configure(self):
        """Read the configuration files; called once a command runs."""
        if self._configured:
            return
        try:
            CONF([], project='ipa-cinder',
                 default_config_files=options.config_files(self.options))
            options.check_config_values(CONF)
        except cfg.Error as e:
            text = errors.config_text(e, getattr(e, 'group', None))
            if not text.startswith('configuration: '):
                text = 'configuration: %s' % text
            raise exception.CLIError(text, errors.EXIT_USAGE)
        if self.options.state_dir:
            CONF.set_override('state_dir',
                              os.path.abspath(self.options.state_dir),
                              group='ipa_cinder')
        self._configured = True

    @property
    def connector_host(self):
        """``connector["host"]``: ``--host`` or this host's name."""
        return self.options.host or socket.gethostname()

    @property
    def cinder(self):
        """The CinderClient of the chosen cloud (built on first use)."""
        if self._cinder is None:
            self._cinder = cloud.cinder_client(self.cloud_config,
                                               self.options)
        return self._cinder


def main(argv=None):
    """The ``ipa-cinder`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    cloud_config = None
    try:
        cloud_config = cloud.CloudConfig()
        return IpaCinderApp(argv, cloud_config=cloud_config).run(argv)
    except os_exc.ConfigException as e:
        # A cloud named in OS_CLOUD is looked up while the options are
        # built: a clouds.yaml skipped for its syntax is the cause then.
        text = (cloud.unparsable_text(cloud_config)
                or secrets.safe_text(e))
        sys.stderr.write('ipa-cinder: error: cloud configuration: %s\n'
                         % text)
        return errors.EXIT_USAGE
    except KeyboardInterrupt:
        # Ctrl-C before or after a command ran: nothing to undo.
        sys.stderr.write('ipa-cinder: interrupted\n')
        return errors.EXIT_INTERRUPTED
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        if e.code is None or isinstance(e.code, int):
            return e.code or errors.EXIT_OK
        return errors.EXIT_USAGE


if __name__ == '__main__':
    sys.exit(main())
