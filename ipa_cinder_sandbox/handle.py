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

"""A handle on a running sandbox, for tests, demos and scripts.

:class:`SandboxHandle` is what the functional tests' ``sandbox`` fixture
returns: the endpoints, REST clients, a keystoneauth session for Cinder
under noauth, and helpers that create (and on close, remove) volumes, loop
devices, nodes and confined agents. Everything it creates lives under the
sandbox's state directory, so ``down`` removes it even after a crash. Its
Cinder helpers are in :mod:`ipa_cinder_sandbox.handle_volumes`, its Ironic
and agent helpers in :mod:`ipa_cinder_sandbox.handle_nodes`, its VM nodes
in :mod:`ipa_cinder_sandbox.handle_vm_nodes`.
"""

import fcntl
import itertools
import os
import time

from oslo_log import log as logging

from ipa_cinder.host import mounts
from ipa_cinder_sandbox import cleanup
from ipa_cinder_sandbox import errors
from ipa_cinder_sandbox import handle_nodes
from ipa_cinder_sandbox import handle_vm_nodes
from ipa_cinder_sandbox import handle_volumes
from ipa_cinder_sandbox import layout as layout_mod
from ipa_cinder_sandbox import loopdev
from ipa_cinder_sandbox import process
from ipa_cinder_sandbox import rest
from ipa_cinder_sandbox import sandbox as sandbox_mod

LOG = logging.getLogger(__name__)


class SandboxHandle(handle_volumes.VolumeHelpers,
                    handle_nodes.NodeHelpers,
                    handle_vm_nodes.VMNodeHelpers):
    """A running sandbox and what tests need to use it."""

    def __init__(self, box, info, reused=False):
        self.box = box
        self.layout = box.layout
        self.info = info
        self.reused = reused
        self.state_dir = self.layout.state_dir
        self.ports = dict(self.layout.ports)
        self.project_id = layout_mod.PROJECT_ID
        self.cinder_url = self.layout.cinder_url
        self.ironic_url = self.layout.ironic_url
        self.http_url = self.layout.http_url
        self.image = info.get('image', {})
        self.timings = info.get('timings', {})
        self.startup_seconds = self.timings.get('total', 0.0)
        self.cinder = rest.CinderClient(self.cinder_url)
        self.ironic = rest.IronicClient(self.ironic_url)
        self._volumes = []
        self._devices = []
        self._nodes = []
        self._agents = []
        self._vms = []
        self._counter = itertools.count(1)

    # Life cycle

    @classmethod
    def start(cls, state_dir, port_base, database='sqlite', reuse=False,
              conductors=1, cinder_api_workers=1):
        """Bring a sandbox up, or with ``reuse`` use a running one.

        :param conductors: 1 for the combined ironic process, N >= 2 for
            ironic-api and N conductors (needs ``database='mariadb'``).
            A reused sandbox must run the same number.
        :param cinder_api_workers: cinder-api processes (Cinder's default
            is one per CPU; 1 keeps test sandboxes small).
        """
        if reuse:
            layout, info = layout_mod.Layout.load(state_dir)
            if (layout is not None and info.get('running')
                    and layout.conductors == conductors):
                box = sandbox_mod.Sandbox(layout)
                if all(box.procs.alive(name) for name in
                       ['cinder-api'] + box.ironic.process_names()):
                    return cls(box, info, reused=True)
        layout = layout_mod.Layout(state_dir, port_base, database,
                                   conductors, cinder_api_workers)
        box = sandbox_mod.Sandbox(layout)
        began = time.monotonic()
        info = box.up()
        handle = cls(box, info)
        handle.startup_seconds = time.monotonic() - began
        return handle

    @classmethod
    def start_exclusive(cls, state_dir, port_base, database='sqlite',
                        attempts=5, step=20, conductors=1):
        """Start a sandbox no other test session uses at the same time.

        Holds an exclusive lock on ``<state_dir>.lock`` until close. If
        another session holds it, or the ports are taken, the next
        candidate is tried: ``<state_dir>-N`` with the ports ``N * step``
        higher.
        """
        last_error = None
        for number in range(attempts):
            candidate = (state_dir if number == 0
                         else '%s-%d' % (state_dir, number))
            os.makedirs(os.path.dirname(os.path.abspath(candidate)),
                        exist_ok=True)
            lock = open(candidate + '.lock', 'a')
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                LOG.info('%s is in use by another session', candidate)
                continue
            try:
                handle = cls.start(candidate, port_base + number * step,
                                   database=database, conductors=conductors)
            except errors.PortInUse as e:
                lock.close()
                last_error = e
                continue
            handle._lock = lock
            return handle
        raise errors.SandboxError('no free sandbox slot after %d attempts: '
                                  '%s' % (attempts, last_error))

    def close(self):
        """Remove what this handle created; ``down`` unless reused."""
        failures = []
        for func, items in ((self.stop_agent, self._agents),
                            (self.remove_vm, self._vms),
                            (self.delete_node, self._nodes),
                            (self.delete_volume, self._volumes),
                            (self.remove_loop_device, self._devices)):
            for item in list(items):
                try:
                    func(item)
                except Exception as e:  # clean as much as possible
                    LOG.warning('Cleaning %s failed: %s', item, e)
                    failures.append(e)
        try:
            if not self.reused:
                self.box.down()
        finally:
            lock = getattr(self, '_lock', None)
            if lock is not None:
                lock.close()
                self._lock = None
        return failures

    def leftovers(self):
        """What of this sandbox still exists (all empty after ``down``)."""
        return {
            'processes': cleanup.leftover_pids(self.state_dir) + [
                rec['pid'] for rec in self.box.procs.records()
                if process.is_alive(rec['pid'], rec['start_time'])],
            'loop_devices': loopdev.devices_under(self.state_dir),
            'mounts': mounts.mounts_under(self.state_dir),
            'tgt_targets': sorted(self.box.tgt.targets().values()),
        }

    def name(self, prefix):
        """A unique name for a test resource."""
        return '%s-%d-%d' % (prefix, os.getpid(), next(self._counter))

    # Block devices the agent may use

    def create_loop_device(self, size_mib=64, name=None):
        """A loop device over a new sparse file of the state directory."""
        directory = self.layout.path('devices')
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, name or self.name('disk'))
        with open(path, 'wb') as f:
            f.truncate(size_mib * 1024 * 1024)
        device = loopdev.attach(path)
        self._devices.append(device)
        return device

    def remove_loop_device(self, device):
        """Detach a device made by :meth:`create_loop_device`."""
        backing = loopdev.list_devices().get(device, '')
        if backing.startswith(self.layout.path('devices') + '/'):
            loopdev.detach(device)
            os.unlink(backing)
        self._forget(self._devices, device)

    def loop_backing_file(self, device):
        return loopdev.list_devices().get(device)

    @staticmethod
    def _forget(items, item):
        if item in items:
            items.remove(item)

    def _fetch_or_forget(self, fetch, items, item):
        """``fetch(item)``; None, and ``item`` forgotten, if it is gone."""
        try:
            return fetch(item)
        except errors.APIError as e:
            if e.status != 404:
                raise
        self._forget(items, item)
        return None
