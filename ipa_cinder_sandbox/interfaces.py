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

"""Which hardware types and interfaces the sandbox's Ironic enables.

A table, so that adding an interface is one line: ``BASE`` is what the
stock fake-hardware flow needs; each entry of ``PLUGIN`` is enabled only
when its entry point exists and loads (the conductor half of ipa-cinder
provides them once it is installed), together with what that hardware
type needs to load.
"""

import importlib.metadata

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

# Interface kind -> names enabled in every sandbox.
BASE = {
    'hardware_types': ['fake-hardware'],
    'boot': ['fake'],
    'console': ['no-console', 'fake'],
    'deploy': ['fake', 'direct'],
    'firmware': ['no-firmware', 'fake'],
    'inspect': ['no-inspect', 'fake'],
    # noop: accepts every boot device (fake refuses 'disk', which a local
    # boot deploy sets).
    'management': ['fake', 'noop'],
    'network': ['noop'],
    'power': ['fake'],
    'raid': ['no-raid', 'fake', 'agent'],
    'rescue': ['no-rescue', 'fake'],
    'storage': ['noop', 'cinder'],
    'vendor': ['no-vendor', 'fake'],
    'bios': ['no-bios', 'fake'],
}

# (entry point group, name, what enabling it adds to BASE)
PLUGIN = [
    ('ironic.hardware.interfaces.deploy', 'cinder-agent',
     {'deploy': ['cinder-agent']}),
    ('ironic.hardware.types', 'cinder-ipmi',
     {'hardware_types': ['cinder-ipmi'], 'boot': ['ipxe', 'pxe'],
      'power': ['ipmitool'], 'management': ['ipmitool'],
      'vendor': ['ipmitool']}),
    ('ironic.hardware.types', 'cinder-redfish',
     {'hardware_types': ['cinder-redfish'], 'boot': ['ipxe', 'pxe'],
      'power': ['redfish'], 'management': ['redfish'],
      'vendor': ['redfish']}),
]

PLUGIN_PACKAGE = 'ipa_cinder.conductor'


def _loadable(group, name):
    """True if entry point ``name`` of ``group`` is ours and imports."""
    for ep in importlib.metadata.entry_points(group=group):
        if ep.name != name or not ep.value.startswith(PLUGIN_PACKAGE):
            continue
        try:
            ep.load()
        except Exception as e:  # any import failure means "not available"
            LOG.warning('Not enabling %s %s: %s', group, name, e)
            return False
        return True
    return False


def enabled_interfaces():
    """{kind: [names]} for the sandbox's ironic.conf."""
    result = {kind: list(names) for kind, names in BASE.items()}
    for group, name, additions in PLUGIN:
        if not _loadable(group, name):
            continue
        LOG.info('Enabling %s from %s', name, PLUGIN_PACKAGE)
        for kind, names in additions.items():
            for item in names:
                if item not in result[kind]:
                    result[kind].append(item)
    return result


def ironic_options():
    """The ``[DEFAULT] enabled_*`` options for ironic.conf."""
    options = {}
    for kind, names in enabled_interfaces().items():
        key = ('enabled_hardware_types' if kind == 'hardware_types'
               else 'enabled_%s_interfaces' % kind)
        options[key] = ','.join(names)
    return options
