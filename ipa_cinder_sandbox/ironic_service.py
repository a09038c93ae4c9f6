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
``[cinder]`` section pointing at the sandbox's services. What Ironic hands
to a node (its API URL, ``[deploy] http_url`` for iPXE scripts, kernels and
images) names the address VM nodes reach the sandbox at; the conductor
reaches those URLs itself through the sandbox's HTTP server
(:mod:`ipa_cinder_sandbox.node_network`). Confined agents on this host are
given the loopback URL directly.
"""

import configparser
import os
import sys

from oslo_log import log as logging

from ipa_cinder_sandbox import commands
from ipa_cinder_sandbox import interfaces
from ipa_cinder_sandbox import node_network
from ipa_cinder_sandbox import polling
from ipa_cinder_sandbox import rest

LOG = logging.getLogger(__name__)


def write_config_file(conf, path):
    """Write a ConfigParser to ``path``, creating its directory."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        conf.write(f)


class Ironic(object):
    """Configure, start, wait for and stop Ironic."""

    name = 'ironic'

    def __init__(self, layout, procs):
        self.layout = layout
        self.procs = procs
        self.base = layout.path('ironic')
        self.conf = layout.path('etc', 'ironic.conf')
        self.client = rest.IronicClient(layout.ironic_url)

    def config(self):
        """The whole ``ironic.conf`` as a ConfigParser: the one writer.

        The cluster (:mod:`ipa_cinder_sandbox.ironic_cluster`) and a second
        Ironic (:mod:`ipa_cinder_sandbox.extra_ironic`) start from it and
        change a few options.
        """
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
        conf['conductor'] = self._conductor_options()
        # IPMI to the sandbox's own BMCs on loopback: no need to space
        # commands 5 s apart as for a real BMC.
        conf['ipmi'] = {'min_command_interval': '1'}
        conf['agent'] = {'deploy_logs_collect': 'never',
                         'image_download_source': 'http'}
        conf['deploy'] = {'http_url': node_network.url(self.layout, 'http'),
                          'http_root': self.layout.path('images'),
                          # Cleaning of a VM node erases its scratch disk's
                          # metadata (priority 99), not every byte.
                          'erase_devices_priority': '0'}
        conf['pxe'] = self._pxe_options()
        conf['service_catalog'] = {
            'auth_type': 'none',
            'endpoint_override': node_network.url(self.layout, 'ironic')}
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
        return conf

    def write_config(self):
        """Write :meth:`config` to ``etc/ironic.conf``."""
        conf = self.config()
        os.makedirs(os.path.join(self.base, 'locks'), exist_ok=True)
        write_config_file(conf, self.conf)

    @staticmethod
    def _conductor_options():
        return {'automated_clean': 'false',
                'deploy_callback_timeout': '600',
                'heartbeat_interval': '5',
                # A VM node's test OS powers itself off once it has shown
                # it booted: record that, do not power it on again.
                'force_power_state_during_sync': 'false',
                # Ironic unpacks a zstd deploy ramdisk it downloads: 147 MiB
                # would reach the VM as 545 MiB of cpio that no longer fits
                # its RAM next to its unpacked copy.
                'disable_zstandard_decompression': 'true'}

    def _pxe_options(self):
        """iPXE for VM nodes: everything under the state directory."""
        tftp = os.path.join(self.base, 'tftpboot')
        return {
            'tftp_root': tftp,
            'tftp_master_path': os.path.join(tftp, 'master_images'),
            'images_path': os.path.join(self.base, 'pxe-images'),
            'instance_master_path': os.path.join(self.base, 'master_images'),
            # The serial console is the VM's log; IPA's options come per
            # node (driver_info kernel_append_params).
            'kernel_append_params': 'console=ttyS0',
            'ipxe_timeout': '60',
        }

    def process_names(self):
        """The names of the recorded processes that make up this Ironic."""
        return [self.name]

    def argv(self):
        return [sys.executable, self.layout.venv_tool('ironic'),
                '--config-file', self.conf,
                '--log-file', self.procs.log_path(self.name)]

    def environment(self):
        """Ironic's environment: node-facing URLs through the proxy."""
        return node_network.proxy_environment(self.layout, os.environ)

    def start(self):
        """Write the configuration, create the schema, start ironic."""
        self.write_config()
        commands.run(self.layout.venv_tool('ironic-dbsync'), '--config-file',
                     self.conf, 'create_schema')
        self.procs.start(self.name, self.argv(), env=self.environment())

    def restart(self, argv=None):
        """Stop the process and start it again (same database)."""
        argv = argv or self.procs.get(self.name)['argv']
        self.procs.stop(self.name, timeout=30)
        self.procs.start(self.name, argv, env=self.environment())
        self.wait()

    def wait(self, timeout=60):
        """Poll GET /v1/drivers until the fake hardware type is listed."""
        def ready():
            self.procs.ensure_alive(self.name)
            drivers = self.client.get('/v1/drivers', timeout=5)['drivers']
            return any(d['name'] == 'fake-hardware' for d in drivers)
        polling.wait_until(ready, timeout, 'Ironic %s' % self.name,
                           interval=0.3)

    def stop(self):
        self.procs.stop(self.name, timeout=20)
