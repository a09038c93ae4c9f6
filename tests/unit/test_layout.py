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

"""The shipped package's layout: where code runs, what it may import.

These checks read the source (AST) and the installed metadata; they need no
service. They keep the promises of the README's layout section: the five
places, no sandbox in the product, no import cycle, small modules, each
half importing only what its extra installs.
"""

import ast
import importlib.metadata
import os
import re
import subprocess
import sys

import packaging.requirements
import testtools

import ipa_cinder

PACKAGE_DIR = os.path.dirname(ipa_cinder.__file__)
PLACES = ('common', 'host', 'agent', 'conductor', 'cli')
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# Where each place may run, so what it may import from ipa_cinder.
ALLOWED_PLACES = {
    'common': {'common'},
    'host': {'common', 'host'},
    'agent': {'common', 'host', 'agent'},
    'conductor': {'common', 'conductor'},
    'cli': {'common', 'host', 'cli'},
}


def _modules():
    """(dotted name, path) of every module of the shipped package."""
    for root, dirs, files in os.walk(PACKAGE_DIR):
        dirs[:] = [d for d in dirs if d != '__pycache__']
        for name in files:
            if not name.endswith('.py'):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, os.path.dirname(PACKAGE_DIR))
            dotted = rel[:-3].replace(os.sep, '.')
            if dotted.endswith('.__init__'):
                dotted = dotted[:-len('.__init__')]
            yield dotted, path


def _tree(path):
    with open(path) as f:
        return ast.parse(f.read(), path)


def _imports(dotted, tree):
    """Absolute names imported by a module (module level and functions)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update('%s.%s' % (node.module, alias.name)
                         for alias in node.names)
    return names


def _place(dotted):
    parts = dotted.split('.')
    return parts[1] if len(parts) > 2 or (
        len(parts) == 2 and parts[1] in PLACES) else None


def _distribution_closure(name, extras=()):
    """Every distribution ``name[extras]`` pulls in, from installed metadata.

    Markers are evaluated for this interpreter; a requirement that is not
    installed here is reported as such rather than skipped.
    """
    seen = set()
    todo = [(name, tuple(extras))]
    while todo:
        dist_name, dist_extras = todo.pop()
        key = re.sub(r'[-_.]+', '-', dist_name).lower()
        if (key, dist_extras) in seen:
            continue
        seen.add((key, dist_extras))
        dist = importlib.metadata.distribution(dist_name)
        for line in dist.requires or ():
            req = packaging.requirements.Requirement(line)
            env_ok = any(
                req.marker is None or req.marker.evaluate({'extra': extra})
                for extra in (dist_extras or ('',)))
            if env_ok:
                todo.append((req.name, tuple(sorted(req.extras))))
    return {key for key, _extras in seen}


class TestLayout(testtools.TestCase):

    def test_five_places_and_nothing_of_the_sandbox(self):
        entries = {e for e in os.listdir(PACKAGE_DIR)
                   if not e.startswith(('__pycache__', '.'))}
        packages = {e for e in entries
                    if os.path.isdir(os.path.join(PACKAGE_DIR, e))}
        self.assertEqual(set(PLACES), packages)
        self.assertEqual({'__init__.py', 'conf.py', 'exception.py'},
                         entries - packages)

    def test_every_package_says_where_it_runs(self):
        for dotted, path in _modules():
            if not path.endswith('__init__.py'):
                continue
            doc = ast.get_docstring(_tree(path)) or ''
            self.assertRegex(doc, r'(?i)\bruns?\b',
                             '%s: its docstring must say where it runs'
                             % dotted)

    def test_modules_and_functions_are_small(self):
        for dotted, path in _modules():
            with open(path) as f:
                lines = f.read().splitlines()
            self.assertLessEqual(len(lines), MAX_MODULE_LINES, dotted)
            for node in ast.walk(_tree(path)):
                if not isinstance(node, (ast.FunctionDef,
                                         ast.AsyncFunctionDef)):
                    continue
                length = node.end_lineno - node.lineno + 1
                self.assertLessEqual(
                    length, MAX_FUNCTION_LINES,
                    '%s.%s is %d lines' % (dotted, node.name, length))

    def test_each_place_imports_only_where_it_runs(self):
        for dotted, path in _modules():
            place = _place(dotted)
            if place is None:
                continue
            for name in _imports(dotted, _tree(path)):
                other = _place(name) if name.startswith('ipa_cinder.') \
                    else None
                if other is None:
                    continue
                self.assertIn(other, ALLOWED_PLACES[place],
                              '%s imports %s' % (dotted, name))

    def test_no_import_cycles(self):
        modules = dict(_modules())
        graph = {}
        for dotted, path in modules.items():
            graph[dotted] = {n for n in _imports(dotted, _tree(path))
                             if n in modules and n != dotted}
        visiting, done = set(), set()

        def visit(name, trail):
            if name in done:
                return
            self.assertNotIn(name, visiting,
                             'import cycle: %s' % ' -> '.join(trail))
            visiting.add(name)
            for dep in sorted(graph[name]):
                # A package imports its modules' names, not the reverse.
                if not dep.startswith(name + '.'):
                    visit(dep, trail + [dep])
            visiting.discard(name)
            done.add(name)

        for name in sorted(graph):
            visit(name, [name])

    def test_common_loads_neither_brick_nor_ironic_nor_the_agent(self):
        code = ('import sys\n'
                'import ipa_cinder.common.cinder_client\n'
                'import ipa_cinder.common.connection\n'
                'import ipa_cinder.common.log_filter\n'
                'import ipa_cinder.exception, ipa_cinder.conf\n'
                'bad = [m for m in ("os_brick", "ironic", '
                '"ironic_python_agent") if m in sys.modules]\n'
                'print(",".join(bad))\n')
        out = subprocess.run([sys.executable, '-c', code], check=True,
                             capture_output=True, text=True).stdout
        self.assertEqual('', out.strip())


class TestInstallSets(testtools.TestCase):
    """What each install set pulls in, from the installed metadata."""

    def test_base_pulls_neither_ironic_nor_the_agent(self):
        closure = _distribution_closure('ipa-cinder')
        self.assertNotIn('ironic', closure)
        self.assertNotIn('ironic-python-agent', closure)
        self.assertIn('os-brick', closure)

    def test_agent_extra_pulls_no_ironic(self):
        closure = _distribution_closure('ipa-cinder', ['agent'])
        self.assertIn('ironic-python-agent', closure)
        self.assertNotIn('ironic', closure)

    def test_conductor_extra_pulls_no_agent(self):
        closure = _distribution_closure('ipa-cinder', ['conductor'])
        self.assertIn('ironic', closure)
        self.assertNotIn('ironic-python-agent', closure)

    def test_sandbox_is_not_shipped(self):
        dist = importlib.metadata.distribution('ipa-cinder')
        scripts = {ep.name for ep in dist.entry_points
                   if ep.group == 'console_scripts'}
        self.assertEqual({'ipa-cinder'}, scripts)
        for ep in dist.entry_points:
            self.assertTrue(ep.value.startswith('ipa_cinder.'), ep)

    def test_every_imported_package_is_declared(self):
        """Each place imports only distributions its install set declares.

        The base requirements for every place; ``[agent]`` adds IPA to
        agent/, ``[conductor]`` adds Ironic to conductor/.
        """
        dist = importlib.metadata.distribution('ipa-cinder')
        declared = {'': set(), 'agent': set(), 'conductor': set()}
        for line in dist.requires or ():
            req = packaging.requirements.Requirement(line)
            key = re.sub(r'[-_.]+', '-', req.name).lower()
            for extra in declared:
                if req.marker is None and not extra:
                    declared[''].add(key)
                elif req.marker is not None and extra and \
                        req.marker.evaluate({'extra': extra}):
                    declared[extra].add(key)
        providers = importlib.metadata.packages_distributions()
        stdlib = set(sys.stdlib_module_names)
        for dotted, path in _modules():
            place = _place(dotted)
            allowed = declared[''] | declared.get(place, set())
            for name in _imports(dotted, _tree(path)):
                top = name.split('.')[0]
                if top in stdlib or top == 'ipa_cinder':
                    continue
                dists = {re.sub(r'[-_.]+', '-', d).lower()
                         for d in providers.get(top, ())}
                self.assertTrue(dists & allowed,
                                '%s imports %s (from %s), which its install '
                                'set does not declare'
                                % (dotted, top, dists or 'nothing'))
