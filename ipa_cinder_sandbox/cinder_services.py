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

"""Cinder 29 api, scheduler and volume services with the file driver.

noauth, RabbitMQ for RPC, two backends of :mod:`ipa_cinder_sandbox.driver`
(``local`` and ``iscsi``), cinder-volume as root without sudo: privsep's
``helper_command`` runs privsep-helper directly, and the tgt wrappers come
first on its PATH. The privsep daemons re-parent to PID 1; they are stopped
by the PID they log.
"""

import configparser
import os
import sys

from oslo_log import log as logging

from ipa_cinder_sandbox import commands
from ipa_cinder_sandbox import node_network
from ipa_cinder_sandbox import polling
from ipa_cinder_sandbox import process
from ipa_cinder_sandbox import rest

LOG = logging.getLogger(__name__)

SERVICE_HOST = 'sandbox'
# ``iscsi-node`` exports through the same tgt as ``iscsi`` but names the
# portal as VM nodes reach it (node_network): Cinder hands that portal to
# Ironic, iPXE and the node's initiator.
BACKENDS = ('local', 'iscsi', 'iscsi-node')
# One cinder-volume process per backend: each is started (and, if its
# start-up lost a race for SQLite's lock, restarted) on its own.
SERVICES = ('cinder-api', 'cinder-scheduler') + tuple(
    'cinder-volume-%s' % backend for backend in BACKENDS)
MAX_RESTARTS = 3
PRIVSEP_PID_PATTERN = r'privsep daemon running as pid (\d+)'

# name: (backend, extra specs)
VOLUME_TYPES = {
    'local': ('local', {}),
    'iscsi': ('iscsi', {}),
    'multiattach': ('iscsi', {'multiattach': '<is> True'}),
    'iscsi-node': ('iscsi-node', {}),
    'local-multiattach': ('local', {'multiattach': '<is> True'}),
}


class Cinder(object):
    """Configure, start, wait for and stop the Cinder services."""

    def __init__(self, layout, procs, database, tgt):
        self.layout = layout
        self.procs = procs
        self.database = database
        self.tgt = tgt
        self.base = layout.path('cinder')
        self.conf = layout.path('etc', 'cinder.conf')
        self.client = rest.CinderClient(layout.cinder_url)
        self.restarts = {}

    def volumes_dir(self, backend):
        return os.path.join(self.base, 'volumes', backend)

    def _venv_etc(self, name):
        return os.path.join(os.path.dirname(self.layout.venv_bin), 'etc',
                            'cinder', name)

    def _default_options(self):
        """The ``[DEFAULT]`` section: noauth API, RPC, both backends."""
        return {
            'debug': 'True',
            # Cinder's tgt helper logs each target's configuration, CHAP
            # password included, at debug level: keep that logger at INFO
            # so no log of the sandbox holds a secret.
            'default_log_levels': ','.join(
                logging.get_default_log_levels()
                + ['cinder.volume.targets.tgt=INFO']),
            'auth_strategy': 'noauth',
            # A test session creates far more than the default 10 volumes
            # of one project.
            'quota_volumes': '-1',
            'quota_snapshots': '-1',
            'quota_gigabytes': '-1',
            'transport_url': self.layout.transport_url,
            'host': SERVICE_HOST,
            'my_ip': '127.0.0.1',
            'osapi_volume_listen': '127.0.0.1',
            'osapi_volume_listen_port': str(self.layout.ports['cinder']),
            'osapi_volume_workers': str(self.layout.cinder_api_workers),
            'api_paste_config': self._venv_etc('api-paste.ini'),
            'rootwrap_config': self._venv_etc('rootwrap.conf'),
            'state_path': self.base,
            'enabled_backends': ','.join(BACKENDS),
            'report_interval': '3',
            # cinder-volume sends its pools to the scheduler from a periodic
            # task; by default its first run is delayed up to 60 s.
            'periodic_interval': '5',
            'periodic_fuzzy_delay': '0',
            'scheduler_driver_init_wait_time': '3',
            'graceful_shutdown_timeout': '5',
        }

    def _backend_sections(self):
        """One section per backend of the file driver."""
        driver = 'ipa_cinder_sandbox.driver.FileVolumeDriver'
        return {
            'local': {
                'volume_driver': driver,
                'volume_backend_name': 'local',
                'sandbox_volumes_dir': self.volumes_dir('local'),
                'sandbox_export': 'local',
            },
            'iscsi': {
                'volume_driver': driver,
                'volume_backend_name': 'iscsi',
                'sandbox_volumes_dir': self.volumes_dir('iscsi'),
                'sandbox_export': 'iscsi',
                'target_helper': 'tgtadm',
                'target_protocol': 'iscsi',
                'target_ip_address': '127.0.0.1',
                'target_port': str(self.layout.ports['iscsi']),
                'use_chap_auth': 'True',
                'volumes_dir': self.tgt.volumes_dir,
            },
            'iscsi-node': {
                'volume_driver': driver,
                'volume_backend_name': 'iscsi-node',
                'sandbox_volumes_dir': self.volumes_dir('iscsi-node'),
                'sandbox_export': 'iscsi',
                'target_helper': 'tgtadm',
                'target_protocol': 'iscsi',
                'target_ip_address': node_network.SERVICE_ADDRESS,
                'target_port': str(self.layout.ports['iscsi']),
                'use_chap_auth': 'True',
                'volumes_dir': self.tgt.volumes_dir,
            },
        }

    def write_config(self):
        helper = '%s --config-file %s' % (
            self.layout.venv_tool('privsep-helper'), self.conf)
        conf = configparser.ConfigParser(interpolation=None)
        conf['DEFAULT'] = self._default_options()
        conf['database'] = {'connection': self.database.url('cinder')}
        conf['oslo_concurrency'] = {'lock_path': os.path.join(self.base,
                                                              'locks')}
        conf['oslo_messaging_notifications'] = {'driver': 'noop'}
        conf['coordination'] = {
            'backend_url': 'file://%s' % os.path.join(self.base,
                                                      'coordination')}
        conf['cinder_sys_admin'] = {'helper_command': helper}
        conf['privsep_osbrick'] = {'helper_command': helper}
        conf['backend_defaults'] = {'max_over_subscription_ratio': '20.0'}
        conf.read_dict(self._backend_sections())
        os.makedirs(os.path.dirname(self.conf), exist_ok=True)
        for backend in BACKENDS:
            os.makedirs(self.volumes_dir(backend), exist_ok=True)
        os.makedirs(os.path.join(self.base, 'locks'), exist_ok=True)
        with open(self.conf, 'w') as f:
            conf.write(f)
        for backend in BACKENDS:
            with open(self._backend_conf(backend), 'w') as f:
                f.write('[DEFAULT]\nenabled_backends = %s\n' % backend)

    def _backend_conf(self, backend):
        return self.layout.path('etc', 'cinder-volume-%s.conf' % backend)

    def _argv(self, name):
        binary = 'cinder-volume' if name.startswith('cinder-volume') else name
        argv = [sys.executable, self.layout.venv_tool(binary),
                '--config-file', self.conf]
        if binary == 'cinder-volume':
            argv += ['--config-file',
                     self._backend_conf(name[len('cinder-volume-'):])]
        return argv + ['--log-file', self.procs.log_path(name)]

    def _env(self):
        env = dict(os.environ)
        env['PATH'] = os.pathsep.join([
            self.layout.path('bin'), self.layout.venv_bin,
            '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin',
            '/sbin', '/bin'])
        env.pop('OS_CLOUD', None)
        return env

    def sync_db(self):
        """Create the schema (cinder-manage db sync)."""
        self.database.create('cinder')
        commands.run(self.layout.venv_tool('cinder-manage'), '--config-file',
                     self.conf, 'db', 'sync', env=self._env())
        self.database.tune('cinder')

    def start(self):
        """Write the configuration, sync the schema, start the services."""
        self.write_config()
        self.sync_db()
        self.restarts = {}
        for name in SERVICES:
            self.procs.start(name, self._argv(name), env=self._env())

    def _ensure_running(self, name):
        """Restart ``name`` if it exited during start-up (a few times).

        With SQLite, services registering at the same moment can lose a
        race for the database lock ("database is locked") and exit.
        """
        if self.procs.alive(name):
            return
        count = self.restarts.get(name, 0)
        if count >= MAX_RESTARTS:
            self.procs.ensure_alive(name)
        self.restarts[name] = count + 1
        LOG.warning('%s exited during start-up; restarting it (%d/%d)',
                    name, count + 1, MAX_RESTARTS)
        self.procs.start(name, self._argv(name), env=self._env())

    def _services_up(self, restart=False):
        for name in SERVICES:
            if restart:
                self._ensure_running(name)
            else:
                self.procs.ensure_alive(name)
        services = self.client.get('/os-services', microversion='3.0',
                                   timeout=5)['services']
        wanted = {('cinder-scheduler', SERVICE_HOST)} | {
            ('cinder-volume', '%s@%s' % (SERVICE_HOST, b)) for b in BACKENDS}
        ready = {(s['binary'], s['host']) for s in services
                 if s.get('updated_at') and s.get('state') == 'up'}
        return wanted <= ready

    def _pools_known(self):
        # A service that is up has not necessarily sent its capabilities
        # to the scheduler yet; until it has, volumes of its backend fail
        # with "No valid backend was found".
        for name in SERVICES:
            self._ensure_running(name)
        pools = self.client.get('/scheduler-stats/get_pools',
                                microversion='3.0', timeout=5)['pools']
        known = {p['name'].split('#')[0] for p in pools}
        return {'%s@%s' % (SERVICE_HOST, b) for b in BACKENDS} <= known

    def wait(self, timeout=120):
        """Poll until every service is up and every pool is scheduled.

        os-services at microversion 3.0 (a higher one can hang on RPC
        during start-up), then the scheduler's pools.
        """
        self.wait_services(timeout)
        self.wait_pools(timeout)

    def wait_services(self, timeout=120):
        polling.wait_until(lambda: self._services_up(restart=True), timeout,
                           'Cinder services', interval=0.5)

    def wait_pools(self, timeout=120):
        polling.wait_until(self._pools_known, timeout,
                           'Cinder scheduler pools', interval=0.5)

    def create_volume_types(self, timeout=30):
        """One type per backend plus the multiattach types.

        Retried: while the services start they all write to the database,
        and SQLite answers "database is locked" (a 500) now and then.
        """
        def create_missing():
            existing = {t['name'] for t in
                        self.client.get('/types')['volume_types']}
            for name, (backend, specs) in VOLUME_TYPES.items():
                if name in existing:
                    continue
                extra = dict(specs, volume_backend_name=backend)
                self.client.post('/types', {'volume_type': {
                    'name': name, 'extra_specs': extra}})
            return True
        polling.wait_until(create_missing, timeout, 'Cinder volume types',
                           interval=0.5)

    def privsep_pids(self):
        """PIDs of privsep daemons cinder-volume reported starting."""
        pids = set()
        for backend in BACKENDS:
            pids.update(process.pids_in_log(
                self.procs.log_path('cinder-volume-%s' % backend),
                PRIVSEP_PID_PATTERN))
        return sorted(pids)

    def stop(self):
        """Stop api, scheduler, volume, then the privsep daemons."""
        privsep = self.privsep_pids()
        self.procs.stop_many(SERVICES, timeout=20)
        for pid in privsep:
            # Only daemons still carrying our configuration on their
            # command line: never a PID that was reused since.
            if pid in process.pids_referring_to(self.layout.state_dir):
                process.stop_pid(pid, None, 'privsep daemon %d' % pid,
                                 timeout=5)
