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

"""Ironic as it runs at scale: ``ironic-api`` plus N ``ironic-conductor``.

The processes share the sandbox's MariaDB (database ``ironic``) and talk
over its RabbitMQ (``rpc_transport = oslo``). Every option of the combined
process (:class:`ipa_cinder_sandbox.ironic_service.Ironic`) is kept; the
cluster adds the transport, the database and the liveness options below,
and gives each conductor a second ``--config-file`` carrying only its
``[DEFAULT] host`` (``conductor-1`` ...). The API serves on the port of
the combined process, so clients see no difference.

What decides where a node goes and when a dead conductor's nodes move, as
read in Ironic 39:

* Liveness: each conductor's keepalive thread touches its row of the
  ``conductors`` table every ``[conductor] heartbeat_interval``. A
  conductor counts as active while it is ``online`` and that row is
  younger than ``[conductor] heartbeat_timeout``
  (``db.sqlalchemy.api._filter_active_conductors``); ``GET /v1/conductors``
  computes ``alive`` the same way with the API's own options. A SIGKILLed
  conductor stays ``online`` in the table: only the age of its row tells.
  With SQLite neither the filter nor the refresh happens, hence MariaDB.
* Hash ring: the API (the node's ``conductor`` field, the RPC topic of
  every call) and every conductor (the nodes its periodic tasks look at)
  each cache a ring of the active conductors, rebuilt once older than
  ``[DEFAULT] hash_ring_reset_interval``. A dead conductor's nodes map to
  the survivors after at most ``heartbeat_timeout`` +
  ``hash_ring_reset_interval`` seconds.
* Nodes a dead conductor held locked: ``_check_orphan_nodes`` (what older
  releases called ``_check_deploying_status``) runs every
  ``[conductor] check_provision_state_interval`` on each conductor, frees
  the reservations of offline conductors, fails a node left in
  ``deploying`` (``deploy failed``) or ``cleaning`` (``clean failed``,
  maintenance) and drops a pending power target.
* ``wait call-back`` needs no take-over: the agent's next heartbeat
  reaches the API, which casts it to whichever conductor the ring names
  now. If the agent stops heartbeating, ``_check_deploy_timeouts`` (same
  interval, ``deploy_callback_timeout``) fails the deploy.
* ``active`` nodes: ``_sync_local_state`` takes over every
  ``[conductor] sync_local_state_interval`` the nodes whose
  ``conductor_affinity`` is another conductor (it prepares their boot).
* A conductor started again under the same host name updates its old row
  (``ConductorAlreadyRegistered`` -> ``update_existing``) and clears the
  reservations and power targets it still held, then rejoins the rings.
"""

import configparser
import os
import signal
import sys

from oslo_log import log as logging

from ipa_cinder_sandbox import commands
from ipa_cinder_sandbox import errors
from ipa_cinder_sandbox import ironic_service
from ipa_cinder_sandbox import polling

LOG = logging.getLogger(__name__)

#: The API microversion that shows conductors and a node's conductor.
CONDUCTORS_MICROVERSION = '1.49'

#: Liveness options fit for tests: a killed conductor's nodes move to the
#: survivors in about 15 s (heartbeat_timeout + hash_ring_reset_interval),
#: and the orphan check frees its locks within 5 s more.
CLUSTER_OPTIONS = {
    'DEFAULT': {'hash_ring_reset_interval': '5'},
    'conductor': {'heartbeat_interval': '2',
                  'heartbeat_timeout': '10',
                  'check_provision_state_interval': '5',
                  'sync_local_state_interval': '10'},
    # One API worker: the machine has two cores for everything.
    'api': {'api_workers': '1'},
}


def conductor_host(number):
    """The ``[DEFAULT] host`` of conductor ``number`` (from 1)."""
    return 'conductor-%d' % number


class IronicCluster(ironic_service.Ironic):
    """Configure, start, wait for and stop ironic-api and its conductors.

    :param database: the sandbox's MariaDB
        (:class:`ipa_cinder_sandbox.database.MariaDB`).
    """

    name = 'ironic-api'

    def __init__(self, layout, procs, database):
        super().__init__(layout, procs)
        self.database = database
        self.count = layout.conductors

    # Configuration

    def config(self):
        conf = super().config()
        conf['DEFAULT']['rpc_transport'] = 'oslo'
        conf['DEFAULT']['transport_url'] = self.layout.transport_url
        conf['DEFAULT']['host'] = 'ironic-api'
        conf['database']['connection'] = self.database.url('ironic')
        for section, options in CLUSTER_OPTIONS.items():
            conf[section].update(options)
        return conf

    def conductor_conf(self, number):
        return self.layout.path('etc', 'ironic-%s.conf'
                                % conductor_host(number))

    def write_config(self):
        """ironic.conf for all, plus each conductor's own host file."""
        super().write_config()
        for number in self.numbers():
            own = configparser.ConfigParser(interpolation=None)
            own['DEFAULT'] = {'host': conductor_host(number)}
            ironic_service.write_config_file(own, self.conductor_conf(number))

    # Names

    def numbers(self):
        return range(1, self.count + 1)

    def conductor_names(self):
        """Process names of the conductors: ironic-conductor-1..N."""
        return ['ironic-%s' % conductor_host(n) for n in self.numbers()]

    def process_names(self):
        return [self.name] + self.conductor_names()

    def _number(self, name):
        if name not in self.conductor_names():
            raise errors.SandboxError('%s is not one of the conductors %s'
                                      % (name, self.conductor_names()))
        return int(name.rsplit('-', 1)[1])

    def host_of(self, name):
        """The conductor host name (``conductor-N``) of a process name."""
        return conductor_host(self._number(name))

    # Processes

    def argv(self):
        return [sys.executable, self.layout.venv_tool('ironic-api'),
                '--config-file', self.conf,
                '--log-file', self.procs.log_path(self.name)]

    def conductor_argv(self, name):
        return [sys.executable, self.layout.venv_tool('ironic-conductor'),
                '--config-file', self.conf,
                '--config-file', self.conductor_conf(self._number(name)),
                '--log-file', self.procs.log_path(name)]

    def start(self):
        """Configure, create the schema, start the conductors, the API."""
        self.write_config()
        self.database.create('ironic')
        commands.run(self.layout.venv_tool('ironic-dbsync'), '--config-file',
                     self.conf, 'create_schema')
        for name in self.conductor_names():
            self.start_conductor(name)
        self.procs.start(self.name, self.argv(), env=self.environment())

    def start_conductor(self, name):
        """Start conductor process ``name`` (not waiting for it)."""
        self.procs.start(name, self.conductor_argv(name),
                         env=self.environment())

    def wait(self, timeout=90):
        """Until the API answers and lists every conductor alive."""
        self.wait_alive(self.conductor_names(), timeout)

    def wait_alive(self, names, timeout=60):
        """Until ``GET /v1/conductors`` shows conductors ``names`` alive.

        The API and these conductors must keep running meanwhile.
        """
        hosts = {self.host_of(name) for name in names}

        def running():
            for name in [self.name] + list(names):
                self.procs.ensure_alive(name)

        def alive():
            states = self.conductors()
            return all(states.get(host) for host in hosts)
        polling.wait_until(alive, timeout, 'Ironic conductors %s alive'
                           % ', '.join(sorted(hosts)), interval=0.5,
                           on_tick=running)

    def stop(self):
        """The API first (no new work), then every conductor at once."""
        self.procs.stop(self.name, timeout=20)
        self.procs.stop_many(self.conductor_names(), timeout=20)

    def restart(self, argv=None):
        """Stop and start the API and every conductor (same database)."""
        if argv is not None:
            raise errors.SandboxError('the Ironic cluster restarts with its '
                                      'own command lines only')
        self.stop()
        for name in self.conductor_names():
            self.start_conductor(name)
        self.procs.start(self.name, self.argv(), env=self.environment())
        self.wait()

    # What tests ask of a cluster

    def kill_conductor(self, name, timeout=30):
        """SIGKILL conductor ``name`` and its workers, as a crash would.

        The conductor's record is dropped; :meth:`start_conductor` starts
        it again under the same host name.
        """
        rec = self.procs.get(name)
        if rec is None or not self.procs.alive(name):
            raise errors.SandboxError('%s is not running' % name)
        # It leads its own session (process group): its forked worker
        # goes with it, and nothing gets the chance to deregister.
        os.killpg(rec['pid'], signal.SIGKILL)
        polling.wait_until(lambda: _reaped(rec['pid'], self.procs, name),
                           timeout, '%s to exit after SIGKILL' % name)
        self.procs.stop(name)
        LOG.info('Killed %s (pid %d)', name, rec['pid'])

    def conductors(self):
        """{host: alive} as ``GET /v1/conductors`` shows it now."""
        body = self.client.get('/v1/conductors',
                               microversion=CONDUCTORS_MICROVERSION,
                               timeout=10)
        return {c['hostname']: c['alive'] for c in body['conductors']}

    def conductor_of(self, node):
        """The conductor host that holds ``node`` now, per the API."""
        body = self.client.get('/v1/nodes/%s?fields=conductor' % node,
                               microversion=CONDUCTORS_MICROVERSION,
                               timeout=10)
        return body['conductor']

    def log_tail(self, name, lines=15):
        """The last lines of the API's or a conductor's log."""
        if name not in self.process_names():
            raise errors.SandboxError('%s is not a process of the cluster %s'
                                      % (name, self.process_names()))
        return self.procs.log_tail(name, lines)


def _reaped(pid, procs, name):
    """Reap ``pid`` if this process started it; True once it is gone."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    return not procs.alive(name)


def get_ironic(layout, procs, database):
    """The combined Ironic, or the cluster when the layout asks for it."""
    if layout.conductors > 1:
        return IronicCluster(layout, procs, database)
    return ironic_service.Ironic(layout, procs)
