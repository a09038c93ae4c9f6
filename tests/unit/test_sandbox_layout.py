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

"""The sandbox's layout: small pieces, each kind of plumbing in one place.

These checks read the source of ``ipa_cinder_sandbox`` (AST), as
``test_layout`` does for the shipped package: modules of at most 400 lines
and functions of at most 60, every error class in ``errors``, programs run
through ``commands``, the process table read in ``process`` only, polling
through ``polling`` only.
"""

import ast
import os
import re

import testtools

import ipa_cinder_sandbox

SANDBOX_DIR = os.path.dirname(ipa_cinder_sandbox.__file__)
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# subprocess calls that run a program to its end: only commands.py does.
_RUN_TO_END = {'run', 'call', 'check_call', 'check_output', 'getoutput',
               'getstatusoutput'}
# Long-running children are started in these modules only.
POPEN_MODULES = {'process.py', os.path.join('jail', 'host.py')}
# Paths of the kernel's process and mount tables.
_PROC_TABLES = re.compile(r'/proc/.*/(stat|cmdline|task|children)\b|'
                          r'mountinfo')


def _modules():
    """(path relative to the sandbox folder, AST) of every module."""
    for root, dirs, files in os.walk(SANDBOX_DIR):
        dirs[:] = [d for d in dirs if not d.startswith(('__pycache__', '.'))]
        for name in sorted(files):
            if name.endswith('.py'):
                path = os.path.join(root, name)
                with open(path) as f:
                    source = f.read()
                yield (os.path.relpath(path, SANDBOX_DIR), source,
                       ast.parse(source, path))


def _calls(tree, module, names):
    """Calls of ``module.<name>`` for ``name`` in ``names``."""
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == module
                and node.func.attr in names):
            yield node


def _imported(tree):
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


class TestSandboxLayout(testtools.TestCase):

    def test_modules_and_functions_are_small(self):
        for rel, source, tree in _modules():
            self.assertLessEqual(len(source.splitlines()), MAX_MODULE_LINES,
                                 rel)
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = node.end_lineno - node.lineno + 1
                    self.assertLessEqual(
                        length, MAX_FUNCTION_LINES,
                        '%s: %s is %d lines' % (rel, node.name, length))

    def test_every_error_class_is_in_errors(self):
        for rel, _source, tree in _modules():
            if rel == 'errors.py':
                continue
            for node in ast.walk(tree):
                if not isinstance(node, ast.ClassDef):
                    continue
                bases = {ast.unparse(base) for base in node.bases}
                self.assertFalse(
                    [b for b in bases if b.endswith(('Error', 'Exception',
                                                     'Failed'))],
                    '%s defines the error %s: it belongs in errors.py'
                    % (rel, node.name))

    def test_programs_run_through_commands(self):
        for rel, _source, tree in _modules():
            if rel != 'commands.py':
                self.assertEqual(
                    [], list(_calls(tree, 'subprocess', _RUN_TO_END)),
                    '%s runs a program itself: use commands.run' % rel)
            if rel not in POPEN_MODULES:
                self.assertEqual(
                    [], list(_calls(tree, 'subprocess', {'Popen'})),
                    '%s starts a child itself: use process.ProcessTable'
                    % rel)

    def test_process_table_read_in_process_only(self):
        for rel, _source, tree in _modules():
            if rel == 'process.py':
                continue
            self.assertNotIn('psutil', _imported(tree), rel)
            tables = [node.value for node in ast.walk(tree)
                      if isinstance(node, ast.Constant)
                      and isinstance(node.value, str)
                      and _PROC_TABLES.search(node.value)]
            self.assertEqual([], tables, '%s reads the process or mount '
                             'table itself' % rel)

    def test_polling_through_polling_only(self):
        for rel, _source, tree in _modules():
            if rel == 'polling.py':
                continue
            self.assertEqual([], list(_calls(tree, 'time', {'sleep'})),
                             '%s sleeps in a loop: use polling.wait_until'
                             % rel)
            self.assertNotIn('tenacity', _imported(tree), rel)
