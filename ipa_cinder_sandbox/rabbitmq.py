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

"""A private RabbitMQ broker for Cinder's RPC.

Its own Erlang port mapper, node name, ports, mnesia directory, logs and
HOME (for the Erlang cookie), all under the state directory; the system's
broker, if any, is not touched.
"""

import os

from oslo_log import log as logging

from ipa_cinder_sandbox import errors
from ipa_cinder_sandbox import polling
from ipa_cinder_sandbox import process

LOG = logging.getLogger(__name__)

RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server'
EPMD = '/usr/bin/epmd'
NODE_NAME = 'ipa-cinder-sandbox@localhost'


class RabbitMQ(object):
    """Start and stop the sandbox's broker."""

    def __init__(self, layout, procs):
        self.layout = layout
        self.procs = procs
        self.base = layout.path('rabbitmq')

    def _env(self):
        ports = self.layout.ports
        env = {
            'PATH': '/usr/lib/rabbitmq/bin:/usr/sbin:/usr/bin:/sbin:/bin',
            'HOME': os.path.join(self.base, 'home'),
            'LANG': 'C.UTF-8',
            'RABBITMQ_NODENAME': NODE_NAME,
            'RABBITMQ_NODE_IP_ADDRESS': '127.0.0.1',
            'RABBITMQ_NODE_PORT': str(ports['rabbit']),
            'RABBITMQ_DIST_PORT': str(ports['rabbit_dist']),
            'ERL_EPMD_ADDRESS': '127.0.0.1',
            'ERL_EPMD_PORT': str(ports['epmd']),
            'RABBITMQ_MNESIA_BASE': os.path.join(self.base, 'mnesia'),
            'RABBITMQ_LOG_BASE': self.layout.path('log', 'rabbitmq'),
            'RABBITMQ_CONFIG_FILE': os.path.join(self.base, 'rabbitmq'),
            'RABBITMQ_ENABLED_PLUGINS_FILE': os.path.join(
                self.base, 'enabled_plugins'),
            'RABBITMQ_PID_FILE': os.path.join(self.base, 'beam.pid'),
            'RABBITMQ_LOGS': '-',
            # Erlang distribution listens on every address unless told.
            'RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS':
                '-kernel inet_dist_use_interface {127,0,0,1}',
        }
        return env

    def start(self):
        """Start epmd and the broker (not waiting for them)."""
        if not os.path.exists(RABBITMQ_SERVER):
            raise errors.SandboxError(
                '%s is missing: install the rabbitmq-server package '
                '(make system-deps)' % RABBITMQ_SERVER)
        for sub in ('home', 'mnesia'):
            os.makedirs(os.path.join(self.base, sub), exist_ok=True)
        os.makedirs(self.layout.path('log', 'rabbitmq'), exist_ok=True)
        with open(os.path.join(self.base, 'rabbitmq.conf'), 'w') as f:
            f.write('listeners.tcp.1 = 127.0.0.1:%d\n'
                    'loopback_users.guest = true\n'
                    'log.console = true\n'
                    'log.file = false\n' % self.layout.ports['rabbit'])
        with open(os.path.join(self.base, 'enabled_plugins'), 'w') as f:
            f.write('[].\n')
        env = self._env()
        # Our own port mapper, in the foreground, so that it is ours to stop
        # (the broker would otherwise start a daemon that re-parents to 1).
        self.procs.start('epmd', [EPMD, '-address', '127.0.0.1', '-port',
                                  str(self.layout.ports['epmd'])], env=env)
        polling.wait_until(
            lambda: process.port_open(self.layout.ports['epmd']), 10,
            'epmd', on_tick=lambda: self.procs.ensure_alive('epmd'))
        self.procs.start('rabbitmq', [RABBITMQ_SERVER], env=env,
                         cwd=self.base)

    def wait(self, timeout=60):
        """Wait until the broker accepts AMQP connections."""
        polling.wait_until(
            lambda: process.port_open(self.layout.ports['rabbit']), timeout,
            'RabbitMQ', on_tick=lambda: self.procs.ensure_alive('rabbitmq'))
        self._record_beam()

    def _record_beam(self):
        """Record the Erlang VM, which the start script runs as a child."""
        pid = polling.wait_until(self._beam_pid, 10, 'RabbitMQ pid file')
        self.procs.record('rabbitmq-beam', pid, ['beam.smp'])

    def _beam_pid(self):
        with open(os.path.join(self.base, 'beam.pid')) as f:
            return int(f.read().strip())

    def stop(self):
        """Stop the VM, its start script, then epmd."""
        self.procs.stop('rabbitmq-beam', timeout=30)
        self.procs.stop('rabbitmq', timeout=10)
        self.procs.stop('epmd', timeout=5)
