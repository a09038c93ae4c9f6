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

"""What every ``ipa-cinder`` command shares, on cliff's ShowOne and Lister.

A command's ``run`` sets up configuration, checks for root when the
command needs it, turns SIGINT, SIGTERM and SIGHUP into
:class:`~ipa_cinder.cli.interrupts.Interrupted` (so that ``local-attach``
undoes what it did, as after any failure), masks secrets in the result
unless ``--show-secrets`` is given, and maps any error to its exit code
(:mod:`ipa_cinder.cli.errors`). A command whose work failed half-way
(``PartialResult``) prints what it has, then reports the error.

Commands may be built without an application (cliff's Sphinx extension
does so to document them): nothing here touches ``self.app`` before
``run``.
"""

import importlib
import logging
import os
import warnings

from cliff import lister
from cliff import show

from ipa_cinder.cli import errors
from ipa_cinder.cli import interrupts
from ipa_cinder.cli import options
from ipa_cinder.cli import output
from ipa_cinder import conf as ipa_conf
from ipa_cinder import exception

LOG = logging.getLogger(__name__)
CONF = ipa_conf.CONF

EPILOG = (
    'Global options (--os-* cloud options, --host, --state-dir, '
    '--config-file, --service-role-header, -v, --debug) may be given '
    'before or after the command: see "ipa-cinder --help". On/off flags '
    'also take an explicit value: "--multipath false" is "--no-multipath". '
    + errors.EPILOG)


def _import_quietly(name):
    with warnings.catch_warnings():
        # oslo.privsep imports eventlet, which warns on every start that it
        # is deprecated: nothing a user can act on.
        warnings.simplefilter('ignore')
        return importlib.import_module(name)


def _normalized(name):
    return name.lower().strip().replace(' ', '_')


class CommandBase(object):
    """Mixed into ShowOne and Lister: set-up, masking, exit codes."""

    #: The distribution of the commands and of the application: keeps
    #: cliff from calling the commands a plugin in help and docs.
    app_dist_name = 'ipa-cinder'
    _epilog = EPILOG
    #: Whether the command connects or records block devices.
    needs_root = False
    #: Output fields in display order (None: a ShowOne's sorted keys).
    columns = None

    def get_epilog(self):
        # Not cliff's: it looks up the distribution of the command's module
        # in every installed distribution's metadata (about a second) to
        # name plugins, and ipa-cinder's commands are its own.
        return self._epilog

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        options.add_on_off(
            self._formatter_group, 'show-secrets',
            'show CHAP user names, passwords and other secrets instead of '
            'masking them (error messages stay masked)')
        return parser

    @property
    def volumes(self):
        """:mod:`ipa_cinder.cli.volumes`, imported when a command runs.

        It imports os-brick, which ``--help`` and usage errors do without.
        """
        return _import_quietly('ipa_cinder.cli.volumes')

    @property
    def attaching(self):
        """:mod:`ipa_cinder.cli.attaching`, imported when a command runs."""
        return _import_quietly('ipa_cinder.cli.attaching')

    def columns_for(self, parsed_args):
        """The fields this invocation shows before ``-c`` selects."""
        return self.columns

    def show(self, result, parsed_args):
        """``(names, values)`` of a result, masked unless asked for."""
        raise NotImplementedError()

    def _check_columns(self, parsed_args):
        """Refuse an unknown ``-c`` before the command does anything."""
        known = self.columns_for(parsed_args)
        if not parsed_args.columns or known is None:
            return
        names = {_normalized(c) for c in known}
        unknown = [c for c in parsed_args.columns
                   if _normalized(c) not in names]
        if unknown:
            raise exception.CLIError(
                'unknown column(s) %s; the columns are: %s'
                % (', '.join(unknown), ', '.join(known)), errors.EXIT_USAGE)

    def _require_root(self):
        if self.needs_root and os.geteuid() != 0:
            raise exception.CLIError(
                'ipa-cinder %s must run as root: it connects block devices '
                'through os-brick and records them in %s. Run it with sudo.'
                % (self.cmd_name, CONF.ipa_cinder.state_dir),
                errors.EXIT_NOT_ROOT)

    def run(self, parsed_args):
        interrupts.GUARD.install()
        try:
            self.app.configure()
            self._check_columns(parsed_args)
            self._require_root()
            return super().run(parsed_args)
        except KeyboardInterrupt as e:
            return self._interrupted(e, parsed_args)
        except exception.PartialResult as e:
            self.produce_output(parsed_args,
                                *self.show(e.result, parsed_args))
            return self._report(e, parsed_args, document=False)
        except Exception as e:
            return self._report(e, parsed_args)
        finally:
            interrupts.GUARD.restore()

    def _interrupted(self, exc, parsed_args):
        """Report an interrupt; returns 128 + the signal number."""
        signum = getattr(exc, 'signum', None) or interrupts.SIGINT
        code = 128 + signum
        text = 'interrupted by %s' % interrupts.signal_name(signum)
        self.app.stderr.write('ipa-cinder: %s\n' % text)
        if parsed_args.formatter in errors.DOCUMENT_FORMATS:
            formatter = self._formatter_plugins[parsed_args.formatter].obj
            formatter.emit_one(['error'],
                               [errors.document(code, 'interrupted', text)],
                               self.app.stdout, parsed_args)
        return code

    def produce_output(self, parsed_args, column_names, data):
        try:
            return super().produce_output(parsed_args, column_names, data)
        except ValueError as e:  # cliff's answer to an unknown -c
            raise exception.CLIError(str(e), errors.EXIT_USAGE)

    def _report(self, exc, parsed_args, document=True):
        """Report an error on stderr (and stdout); returns the exit code."""
        code, kind = errors.classify(exc)
        LOG.debug('ipa-cinder %s failed', self.cmd_name, exc_info=True)
        self.app.stderr.write(errors.message(kind, exc) + '\n')
        if document and parsed_args.formatter in errors.DOCUMENT_FORMATS:
            formatter = self._formatter_plugins[parsed_args.formatter].obj
            formatter.emit_one(['error'],
                               [errors.document(code, kind, str(exc))],
                               self.app.stdout, parsed_args)
        return code


class ShowCommand(CommandBase, show.ShowOne):
    """A command that shows one object, field by field."""

    def show(self, result, parsed_args):
        return output.one(result, self.columns_for(parsed_args),
                          parsed_args.show_secrets)


class ListCommand(CommandBase, lister.Lister):
    """A command that shows a list of objects, one row each."""

    columns = ()
    #: Added to ``columns`` by ``--long``.
    long_columns = ()

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        if self.long_columns:
            parser.add_argument(
                '--long', action='store_true', default=False,
                help='also show the columns %s' % ', '.join(
                    self.long_columns))
        return parser

    def columns_for(self, parsed_args):
        # Selecting one of the long columns with -c implies --long.
        wanted = {_normalized(c) for c in parsed_args.columns or ()}
        if getattr(parsed_args, 'long', False) or wanted & {
                _normalized(c) for c in self.long_columns}:
            return tuple(self.columns) + tuple(self.long_columns)
        return tuple(self.columns)

    def show(self, result, parsed_args):
        return output.many(result, self.columns_for(parsed_args),
                           parsed_args.show_secrets)
