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

"""Bring the whole sandbox up and down, in order, timed.

``up`` first cleans whatever a previous (maybe crashed) run left, then
starts the broker, database and tgtd, then Cinder, Ironic (one combined
process, or ironic-api and N conductors: :mod:`ironic_cluster`) and the HTTP
server, waits for each by polling it, creates the volume types and builds
the test image. Any failure tears down what was started before re-raising.
``down`` stops everything by PID and removes loop devices, tgt targets and
mounts.
"""

import os
import shutil
import signal
import time

from oslo_log import log as logging

from ipa_cinder_sandbox import cinder_services
from ipa_cinder_sandbox import cleanup
from ipa_cinder_sandbox import database as database_mod
from ipa_cinder_sandbox import errors
from ipa_cinder_sandbox import images
from ipa_cinder_sandbox import ironic_cluster
from ipa_cinder_sandbox import layout as layout_mod
from ipa_cinder_sandbox import process
from ipa_cinder_sandbox import rabbitmq
from ipa_cinder_sandbox import tgt as tgt_mod

LOG = logging.getLogger(__name__)


class Sandbox(object):
    """One sandbox, described by its :class:`Layout`."""

    def __init__(self, layout):
        self.layout = layout
        self.procs = process.ProcessTable(layout.path('run'),
                                          layout.path('log'))
        self.rabbit = rabbitmq.RabbitMQ(layout, self.procs)
        self.database = database_mod.get_database(layout, self.procs)
        self.tgt = tgt_mod.Tgt(layout, self.procs)
        self.cinder = cinder_services.Cinder(layout, self.procs,
                                             self.database, self.tgt)
        # One combined ironic, or ironic-api + N conductors (layout).
        self.ironic = ironic_cluster.get_ironic(layout, self.procs,
                                                self.database)
        self.http = images.HTTPServer(layout, self.procs)
        self.timings = {}

    @classmethod
    def from_state_dir(cls, state_dir=None, port_base=None,
                       database='sqlite', conductors=1):
        """The sandbox recorded in ``state_dir``, or a new description."""
        layout, _data = layout_mod.Layout.load(state_dir)
        if layout is None:
            layout = layout_mod.Layout(state_dir, port_base, database,
                                       conductors)
        return cls(layout)

    def _timed(self, name, func, *args):
        start = time.monotonic()
        result = func(*args)
        self.timings[name] = round(time.monotonic() - start, 2)
        return result

    def _prepare_state_dir(self):
        os.makedirs(self.layout.state_dir, exist_ok=True)
        for sub in layout_mod.RUN_DIRS:
            path = self.layout.path(sub)
            if os.path.isdir(path):
                shutil.rmtree(path)
        for sub in ('etc', 'run', 'log', 'bin', 'devices'):
            os.makedirs(self.layout.path(sub), exist_ok=True)

    def up(self):
        """Start everything; returns the description saved in sandbox.json.

        :raises SandboxError: after tearing down what was started.
        """
        began = time.monotonic()
        self.timings = {}
        previous, _data = layout_mod.Layout.load(self.layout.state_dir)
        if (previous is not None
                and previous.to_dict() != self.layout.to_dict()):
            # Another configuration ran here last: clean with its ports.
            self._timed('clean_previous', Sandbox(previous).down)
        self._timed('clean', self.down)
        self._prepare_state_dir()
        for port_name in ('rabbit', 'rabbit_dist', 'epmd', 'iscsi',
                          'cinder', 'ironic', 'http') + (
                ('mariadb',) if self.layout.database == 'mariadb' else ()):
            process.check_port_free(self.layout.ports[port_name])
        self.database.url('cinder')  # fails early if a driver is missing
        self.layout.save({'running': False, 'starting': True})
        try:
            self._start_all()
        except BaseException:
            LOG.error('Sandbox start-up failed; tearing down what started')
            self.down()
            raise
        self.timings['total'] = round(time.monotonic() - began, 2)
        return self.layout.save({'running': True, 'timings': self.timings,
                                 'image': self.image})

    def _start_all(self):
        started = time.monotonic()
        self.rabbit.start()
        self.database.start()
        self.tgt.start()
        self.http.start()
        self._timed('image', self._build_image)
        self.database.wait()
        self.tgt.wait()
        self.http.wait()
        # The conductors' RPC goes through the broker: with several, it
        # must be up first; the combined process does not use it.
        broker_first = self.layout.conductors > 1
        if broker_first:
            self.rabbit.wait()
        self.ironic.start()
        if not broker_first:
            self.rabbit.wait()
        self.timings['rabbitmq'] = round(time.monotonic() - started, 2)
        self.cinder.start()
        self.ironic.wait()
        self.timings['ironic'] = round(time.monotonic() - started, 2)
        self.cinder.wait_services()
        self.timings['cinder_services'] = round(time.monotonic() - started,
                                                2)
        self.cinder.wait_pools()
        self.timings['cinder'] = round(time.monotonic() - started, 2)
        self.cinder.create_volume_types()

    def _build_image(self):
        self.image = images.build_image(self.layout.path('images'))
        self.image['url'] = self.http.url(self.image['name'])

    def down(self):
        """Stop everything this state directory started; clean the rest.

        :returns: what the final sweep found (mounts, processes, loop
            devices); empty lists mean the ordered stop got everything.
        """
        began = time.monotonic()
        problems = []
        steps = [self.ironic.stop, self.cinder.stop, self.http.stop,
                 lambda: cleanup.unmount_all_under(self.layout.state_dir),
                 self._stop_recorded_agents, self.tgt.stop,
                 self.rabbit.stop, self.database.stop]
        for step in steps:
            try:
                step()
            except Exception as e:  # keep going: stop all we can
                LOG.exception('Sandbox stop step failed')
                problems.append(str(e))
        swept = cleanup.clean(self.layout.state_dir)
        # Whatever else is still recorded (a process of a later version or
        # a helper) goes too.
        for rec in self.procs.records():
            try:
                self.procs.stop(rec['name'])
            except errors.SandboxError as e:
                problems.append(str(e))
        if os.path.exists(self.layout.info_file):
            self.layout.save({'running': False})
        self.timings['down'] = round(time.monotonic() - began, 2)
        if problems:
            raise errors.SandboxError('sandbox stop incomplete: %s'
                                      % '; '.join(problems))
        return swept

    def _stop_recorded_agents(self):
        """Agents started through the sandbox are recorded as agent-*."""
        for rec in self.procs.records():
            if rec['name'].startswith('agent'):
                self.stop_agent(rec['name'])

    def stop_agent(self, name):
        """Stop a recorded agent by PID and remove its device cgroup.

        Stopping the jail's launcher makes the kernel kill everything in
        the agent's PID namespace.
        """
        rec = self.procs.get(name)
        if rec and process.is_alive(rec['pid'], rec['start_time']):
            # The launcher (unshare) does not forward SIGTERM: ask the
            # jail's init, its child, to end the agent.
            for child in process.children(rec['pid']):
                try:
                    os.kill(child, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        self.procs.stop(name, timeout=15)
        # Imported here: the confinement code is only needed for agents.
        from ipa_cinder_sandbox.jail import devices as jail_devices
        jail_devices.remove_cgroup(jail_devices.cgroup_path(name))

    def status(self):
        """{name: {pid, running}} for each recorded process."""
        result = {}
        for rec in self.procs.records():
            result[rec['name']] = {
                'pid': rec['pid'],
                'running': process.is_alive(rec['pid'], rec['start_time'])}
        return result

    def services(self):
        """{service: answers?}: one quick readiness poll of each API."""
        checks = {
            'cinder': lambda: self.cinder._services_up(),
            'ironic': lambda: bool(self.ironic.client.get(
                '/v1/drivers', timeout=3)['drivers']),
            'http': lambda: process.port_open(self.layout.ports['http']),
            'tgtd': lambda: process.port_open(self.layout.ports['iscsi']),
            'rabbitmq': lambda: process.port_open(
                self.layout.ports['rabbit']),
        }
        result = {}
        for name, check in checks.items():
            try:
                result[name] = bool(check())
            except Exception:  # a stopped service fails in many ways
                result[name] = False
        return result
