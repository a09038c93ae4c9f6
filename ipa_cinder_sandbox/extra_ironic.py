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

"""One more Ironic next to the sandbox's, with configuration overrides.

For comparisons that need an Ironic configured differently from the
sandbox's (another storage interface, a default option value) against
the same Cinder and HTTP server. It starts from the sandbox Ironic's
configuration, then applies its own name, port, state directory and
database (an SQLite file of its own) and the caller's overrides. It is a
recorded process of the sandbox, so ``down`` stops it even if its
creator dies.
"""

import configparser

from ipa_cinder_sandbox import ironic_service
from ipa_cinder_sandbox import rest


class ExtraIronic(ironic_service.Ironic):
    """A second Ironic process: ``name`` on ``port``.

    :param overrides: ``{section: {option: value}}`` applied last; a value
        of None removes the option (Ironic's default applies).
    """

    def __init__(self, layout, procs, name, port, overrides=None):
        super().__init__(layout, procs)
        self.name = name
        self.port = port
        self.overrides = overrides or {}
        self.base = layout.path('ironic', name)
        self.conf = layout.path('etc', '%s.conf' % name)
        self.url = 'http://127.0.0.1:%d' % port
        self.client = rest.IronicClient(self.url)

    def write_config(self):
        # The sandbox Ironic's options, written under this one's state
        # directory (state_path, database, locks follow self.base).
        super().write_config()
        conf = configparser.ConfigParser(interpolation=None)
        conf.read(self.conf)
        own = {'DEFAULT': {'host': self.name},
               'api': {'port': str(self.port)},
               'service_catalog': {'endpoint_override': self.url}}
        for settings in (own, self.overrides):
            for section, options in settings.items():
                if section != 'DEFAULT' and not conf.has_section(section):
                    conf.add_section(section)
                for option, value in options.items():
                    if value is None:
                        conf.remove_option(section, option)
                    else:
                        conf.set(section, option, str(value))
        with open(self.conf, 'w') as f:
            conf.write(f)

    @property
    def log_path(self):
        return self.procs.log_path(self.name)
