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

"""Sphinx configuration of the ipa-cinder release notes.

The notes are the YAML files of ``releasenotes/notes/``, gathered by reno
from the git history (``tox -e releasenotes``, ``make releasenotes``).
"""

extensions = [
    'openstackdocstheme',
    'reno.sphinxext',
]

# openstackdocstheme
openstackdocs_repo_name = 'x/ipa-cinder'
openstackdocs_bug_project = 'ipa-cinder'
openstackdocs_bug_tag = 'releasenotes'
openstackdocs_use_storyboard = False
openstackdocs_auto_name = False

project = 'ipa-cinder Release Notes'
copyright = 'ipa-cinder developers'
master_doc = 'index'
source_suffix = '.rst'
templates_path = ['_templates']
exclude_patterns = []
pygments_style = 'native'
html_theme = 'openstackdocs'
html_static_path = ['_static']
htmlhelp_basename = 'ipa-cinderReleaseNotesdoc'

# Release notes are not versioned by the theme: reno sorts them by release.
release = ''
version = ''

locale_dirs = ['locale/']
