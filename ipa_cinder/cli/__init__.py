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

"""The ``ipa-cinder`` command: runs on any Linux host (as root to attach).

A cliff application (:mod:`~ipa_cinder.cli.shell`) whose commands are
found on the entry-point group ``ipa_cinder.cli``: ``get-connector``
(:mod:`~ipa_cinder.cli.connector`), ``local-attach``
(:mod:`~ipa_cinder.cli.attach`), ``local-detach``
(:mod:`~ipa_cinder.cli.detach`) and ``list``
(:mod:`~ipa_cinder.cli.listing`), with cliff's output formats. They run
the same code as the agent half (:mod:`ipa_cinder.host`) and the same
Cinder client as the conductor half
(:mod:`ipa_cinder.common.cinder_client`); what they do step by step is in
:mod:`~ipa_cinder.cli.volumes` and :mod:`~ipa_cinder.cli.attaching`, the
modules that import os-brick, imported only when a command runs so that
``--help`` and usage errors stay fast and quiet. Signals are handled in
:mod:`~ipa_cinder.cli.interrupts`.
"""
