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

"""The documentation agrees with the tree and with the code.

The build itself (``make docs``, warnings as errors) checks the pages and
their cross-references; these tests check what Sphinx cannot: the README's
links into the sources, the config generator's namespaces, and the deploy
and clean steps the administrator guide promises.
"""

import configparser
import importlib.metadata
import inspect
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
DOC = os.path.join(ROOT, 'doc', 'source')
GENERATOR = os.path.join(ROOT, 'tools', 'config',
                         'ipa-cinder-config-generator.conf')


def _read(*parts):
    with open(os.path.join(*parts)) as f:
        return f.read()


def test_readme_links_point_at_existing_sources():
    links = re.findall(r'<([^<>\s]+\.rst)>`_', _read(ROOT, 'README.rst'))
    assert links, 'the README links into the documentation'
    missing = [link for link in links
               if not os.path.isfile(os.path.join(ROOT, link))]
    assert not missing


@pytest.mark.parametrize('guide', ['install', 'admin', 'cli',
                                   'configuration', 'reference',
                                   'contributor'])
def test_every_guide_has_an_index_in_the_root_toctree(guide):
    assert os.path.isfile(os.path.join(DOC, guide, 'index.rst'))
    assert '   %s/index\n' % guide in _read(DOC, 'index.rst')


def test_config_generator_namespaces_are_installed():
    parser = configparser.ConfigParser(strict=False,
                                       interpolation=None)
    # oslo-config-generator repeats the "namespace" key.
    namespaces = re.findall(r'^namespace = (\S+)$', _read(GENERATOR),
                            re.MULTILINE)
    parser.read(GENERATOR)
    assert parser.get('DEFAULT', 'output_file') == (
        'etc/ipa-cinder/ipa-cinder.conf.sample')
    registered = {ep.name for ep in importlib.metadata.entry_points(
        group='oslo.config.opts')}
    assert namespaces[0] == 'ipa_cinder'
    assert set(namespaces) <= registered


def _steps(cls, kind):
    found = {}
    for name, method in inspect.getmembers(cls, inspect.isfunction):
        if getattr(method, '_is_%s_step' % kind, False):
            found[name] = getattr(method, '_%s_step_priority' % kind)
    return found


def test_deploy_steps_table_matches_the_deploy_interface():
    from ipa_cinder.conductor import deploy

    text = _read(DOC, 'admin', 'deploy-steps.rst')
    own = {name: priority for name, priority
           in _steps(deploy.CinderAgentDeploy, 'deploy').items()
           if name.startswith('cinder_')}
    assert own, 'cinder-agent has deploy steps of its own'
    for name, priority in own.items():
        assert re.search(r'^``%s``\s+%d\s' % (name, priority), text,
                         re.MULTILINE), (name, priority)


def test_clean_step_priority_is_documented():
    from ipa_cinder.conductor import deploy

    steps = _steps(deploy.CinderAgentDeploy, 'clean')
    assert steps == {'cinder_detach_volumes': deploy.DETACH_CLEAN_PRIORITY}
    text = _read(DOC, 'admin', 'cleaning.rst')
    assert '``cinder_detach_volumes``, priority **%d**' % (
        deploy.DETACH_CLEAN_PRIORITY) in ' '.join(text.split())
