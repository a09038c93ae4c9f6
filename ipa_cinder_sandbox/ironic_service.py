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

"""Ironic 39 as one process (API and conductor), standalone.

SQLite, noauth, ``rpc_transport = none``, fake hardware with the agent
deploy interfaces, automated cleaning off, the service catalog and the
``[cinder]`` section pointing at the sandbox's services.
"""

import configparser
import os
import sys

from oslo_log import log as logging

from ipa_cinder_sandbox import commands
from ipa_cinder_sandbox import interfaces
from ipa_cinder_sandbox import polling
from ipa_cinder_sandbox import rest

LOG = logging.getLogger(__name__)


class Ironic(object):
    """Configure, start, wait for and stop Ironic."""

    def __init__(self, layout, procs):
        self.layout = layout
        self.procs = procs
        self.base = layout.path('ironic')
        self.conf = layout.path('etc', 'ironic.conf')
        self.client = rest.IronicClient(layout.ironic_url)

    def write_config(self):
        conf = configparser.ConfigParser(interpolation=None)
        default = {
            'debug': 'True',
            'auth_strategy': 'noauth',
            'rpc_transport': 'none',
            'host': 'sandbox',
            'my_ip': '127.0.0.1',
            'state_path': self.base,
            'default_deploy_interface': 'direct',
            'graceful_shutdown_timeout': '5',
        }
        default.update(interfaces.ironic_options())
        conf['DEFAULT'] = default
        conf['api'] = {'host_ip': '127.0.0.1',
                       'port': str(self.layout.ports['ironic']),
                       # IPA heartbeats at its minimum interval (5 s).
                       'ramdisk_heartbeat_timeout': '10'}
        conf['database'] = {
            'connection': 'sqlite:///%s' % os.path.join(self.base,
                                                        'ironic.sqlite')}
        conf['dhcp'] = {'dhcp_provider': 'none'}
        conf['conductor'] = {'automated_clean': 'false',
                             'deploy_callback_timeout': '600',
                             'heartbeat_interval': '5'}
        conf['agent'] = {'deploy_logs_collect': 'never',
                         'image_download_source': 'http'}
        conf['deploy'] = {'http_url': self.layout.http_url,
                          'http_root': self.layout.path('images')}
        conf['service_catalog'] = {'auth_type': 'none',
                                   'endpoint_override':
                                       self.layout.ironic_url}
        # A standalone (noauth) Cinder as a Bifrost-style deployment reaches
        # it: no Keystone, the unversioned-project endpoint (with
        # auth_type none every request carries the token "notused", which
        # noauth Cinder reads as project "notused": a project id in the
        # URL would not match it). ipa-cinder then marks attachment
        # deletes as service requests (X-Service-Roles), see the README.
        conf['cinder'] = {
            'auth_type': 'none',
            'endpoint_override': self.layout.cinder_url.rsplit('/', 1)[0],
        }
        conf['oslo_concurrency'] = {'lock_path': os.path.join(self.base,
                                                              'locks')}
        conf['oslo_messaging_notifications'] = {'driver': 'noop'}
        os.makedirs(os.path.join(self.base, 'locks'), exist_ok=True)
        os.makedirs(os.path.dirname(self.conf), exist_ok=True)
        with open(self.conf, 'w') as f:
            conf.write(f)

    def start(self):
        """Write the configuration, create the schema, start ironic."""
        self.write_config()
        commands.run(self.layout.venv_tool('ironic-dbsync'), '--config-file',
                     self.conf, 'create_schema')
        self.procs.start('ironic', [
            sys.executable, self.layout.venv_tool('ironic'),
            '--config-file', self.conf,
            '--log-file', self.procs.log_path('ironic')])

    def wait(self, timeout=60):
        """Poll GET /v1/drivers until the fake hardware type is listed."""
        def ready():
            self.procs.ensure_alive('ironic')
            drivers = self.client.get('/v1/drivers', timeout=5)['drivers']
            return any(d['name'] == 'fake-hardware' for d in drivers)
        polling.wait_until(ready, timeout, 'Ironic', interval=0.3)

    def stop(self):
        self.procs.stop('ironic', timeout=20)
