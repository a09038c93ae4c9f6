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

"""Sphinx configuration of the ipa-cinder documentation.

Built with warnings as errors (``tox -e docs``, ``make docs``). The
configuration reference and the sample file are generated from the
installed options (``oslo.config.opts`` entry points), the CLI reference
from the ``ipa-cinder`` commands (``ipa_cinder.cli`` entry points).
"""

import importlib.metadata

from cliff import sphinxext as cliff_sphinxext
from docutils import nodes
from sphinx.util import logging

LOG = logging.getLogger(__name__)

extensions = [
    'cliff.sphinxext',
    'oslo_config.sphinxext',
    'oslo_config.sphinxconfiggen',
    'openstackdocstheme',
]

# oslo_config.sphinxconfiggen: _static/ipa-cinder.conf.sample, written at
# every build from the same generator file as "make genconfig".
config_generator_config_file = (
    '../../tools/config/ipa-cinder-config-generator.conf')
sample_config_basename = '_static/ipa-cinder'

# cliff.sphinxext: commands are documented as "ipa-cinder <command>".
autoprogram_cliff_application = 'ipa-cinder'

# openstackdocstheme
openstackdocs_repo_name = 'x/ipa-cinder'
openstackdocs_bug_project = 'ipa-cinder'
openstackdocs_bug_tag = 'doc'
openstackdocs_use_storyboard = False
openstackdocs_auto_name = False
openstackdocs_projects = [
    'cinder',
    'devstack',
    'diskimage-builder',
    'ironic',
    'ironic-python-agent',
    'ironic-python-agent-builder',
    'os-brick',
    'oslo.config',
]

project = 'ipa-cinder'
copyright = 'ipa-cinder developers'
master_doc = 'index'
source_suffix = '.rst'
exclude_patterns = ['_build']
templates_path = []
pygments_style = 'native'
html_theme = 'openstackdocs'
html_static_path = ['_static']
htmlhelp_basename = 'ipa-cinderdoc'

latex_documents = [
    ('index', 'doc-ipa-cinder.tex', 'ipa-cinder Documentation',
     'ipa-cinder developers', 'manual'),
]


class AutoprogramCliff(cliff_sphinxext.AutoprogramCliffDirective):
    """cliff's ``autoprogram-cliff``, tolerant of an empty command group.

    cliff raises a warning (an error under ``-W``) when the entry point
    group holds no command. While the ``ipa_cinder.cli`` group is not
    registered by the installed distribution, the page says so instead.
    Once it is, this is cliff's directive unchanged: a command that fails
    to load still fails the build.
    """

    def run(self):
        group = self.arguments[0]
        if importlib.metadata.entry_points(group=group):
            return super().run()
        LOG.info('autoprogram-cliff: no command in entry point group %s; '
                 'the command reference is left out', group)
        text = ('The command reference is generated from the "%s" entry '
                'points, and the ipa-cinder distribution this documentation '
                'was built with registers none. Run "ipa-cinder --help" or '
                '"ipa-cinder <command> --help" for the options.' % group)
        return [nodes.note('', nodes.paragraph(text=text))]


def setup(app):
    # conf.py's setup() runs after the extensions above: this replaces
    # the directive cliff.sphinxext registered.
    app.add_directive('autoprogram-cliff', AutoprogramCliff, override=True)
