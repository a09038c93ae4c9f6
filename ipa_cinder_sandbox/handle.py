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
sandbox's state directory, so ``down`` removes it even after a crash.
"""

import fcntl
import itertools
import os
import time

from keystoneauth1 import adapter as ks_adapter
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from oslo_log import log as logging

from ipa_cinder_sandbox import cleanup
from ipa_cinder_sandbox import layout as layout_mod
from ipa_cinder_sandbox import loopdev
from ipa_cinder_sandbox import process
from ipa_cinder_sandbox import rest
from ipa_cinder_sandbox import sandbox as sandbox_mod

LOG = logging.getLogger(__name__)

#: Initiator name the test connectors use (a name, no kernel initiator).
TEST_INITIATOR = 'iqn.2004-10.org.openstack.ipa-cinder:sandbox-tests'


class SandboxHandle(object):
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
        self._counter = itertools.count(1)

    # Life cycle

    @classmethod
    def start(cls, state_dir, port_base, database='sqlite', reuse=False):
        """Bring a sandbox up, or with ``reuse`` use a running one."""
        if reuse:
            layout, info = layout_mod.Layout.load(state_dir)
            if layout is not None and info.get('running'):
                box = sandbox_mod.Sandbox(layout)
                if box.procs.alive('cinder-api') and box.procs.alive(
                        'ironic'):
                    return cls(box, info, reused=True)
        layout = layout_mod.Layout(state_dir, port_base, database)
        box = sandbox_mod.Sandbox(layout)
        began = time.monotonic()
        info = box.up()
        handle = cls(box, info)
        handle.startup_seconds = time.monotonic() - began
        return handle

    @classmethod
    def start_exclusive(cls, state_dir, port_base, database='sqlite',
                        attempts=5, step=20):
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
                                   database=database)
            except process.SandboxError as e:
                lock.close()
                if 'in use' not in str(e):
                    raise
                last_error = e
                continue
            handle._lock = lock
            return handle
        raise process.SandboxError('no free sandbox slot after %d attempts: '
                                   '%s' % (attempts, last_error))

    def close(self):
        """Remove what this handle created; ``down`` unless reused."""
        errors = []
        for func, items in ((self.stop_agent, self._agents),
                            (self.delete_node, self._nodes),
                            (self.delete_volume, self._volumes),
                            (self.remove_loop_device, self._devices)):
            for item in list(items):
                try:
                    func(item)
                except Exception as e:  # clean as much as possible
                    LOG.warning('Cleaning %s failed: %s', item, e)
                    errors.append(e)
        try:
            if not self.reused:
                self.box.down()
        finally:
            lock = getattr(self, '_lock', None)
            if lock is not None:
                lock.close()
                self._lock = None
        return errors

    def leftovers(self):
        """What of this sandbox still exists (all empty after ``down``)."""
        return {
            'processes': cleanup.leftover_pids(self.state_dir) + [
                rec['pid'] for rec in self.box.procs.records()
                if process.is_alive(rec['pid'], rec['start_time'])],
            'loop_devices': loopdev.devices_under(self.state_dir),
            'mounts': cleanup.mounts_under(self.state_dir),
            'tgt_targets': sorted(self.box.tgt.targets().values()),
        }

    def name(self, prefix):
        """A unique name for a test resource."""
        return '%s-%d-%d' % (prefix, os.getpid(), next(self._counter))

    # Cinder

    def cinder_session(self, user=layout_mod.USER_ID,
                       project=layout_mod.PROJECT_ID):
        """A keystoneauth session for Cinder under noauth.

        It sends ``X-Auth-Token: <user>:<project>`` and uses the sandbox's
        Cinder endpoint whatever the service type asked for.
        """
        auth = token_endpoint.Token(self.cinder_url,
                                    '%s:%s' % (user, project))
        return ks_session.Session(auth=auth)

    def cinder_adapter(self, service_role=False, **kwargs):
        """A keystoneauth adapter of block-storage v3 on that session.

        :param service_role: add ``X-Service-Roles: service`` to every
            request (a service request, as with a service token).
        """
        headers = {'X-Service-Roles': 'service'} if service_role else {}
        return ks_adapter.Adapter(
            self.cinder_session(**kwargs), service_type='block-storage',
            endpoint_override=self.cinder_url, additional_headers=headers)

    def connector(self, host, **extra):
        """An os-brick style connector for ``host`` (always with host)."""
        connector = {'host': host, 'initiator': TEST_INITIATOR,
                     'ip': '127.0.0.1', 'platform': 'x86_64',
                     'os_type': 'linux', 'multipath': False,
                     'do_local_attach': False}
        connector.update(extra)
        return connector

    def create_volume(self, size=1, volume_type='local', name=None,
                      timeout=60, **fields):
        """Create a volume and wait until it is available; returns it.

        A 500 (SQLite's "database is locked" under concurrent writes) is
        retried once, unless the volume was created all the same.
        """
        body = dict(fields, size=size, volume_type=volume_type,
                    name=name or self.name('volume'))
        try:
            volume = self.cinder.post('/volumes', {'volume': body},
                                      microversion='3.0')['volume']
        except rest.APIError as e:
            if e.status != 500:
                raise
            LOG.warning('Volume create failed (%s); retrying', e)
            found = self.cinder.get('/volumes?name=%s' % body['name'],
                                    microversion='3.0')['volumes']
            volume = found[0] if found else self.cinder.post(
                '/volumes', {'volume': body}, microversion='3.0')['volume']
        self._volumes.append(volume['id'])
        return self.wait_volume(volume['id'], 'available', timeout)

    def get_volume(self, volume_id):
        return self.cinder.get('/volumes/%s' % volume_id,
                               microversion='3.54')['volume']

    def wait_volume(self, volume_id, status, timeout=60):
        """Poll the volume until ``status``; raise if it goes to error."""
        def reached():
            volume = self.get_volume(volume_id)
            if volume['status'].startswith('error'):
                raise process.SandboxError('volume %s went to %s'
                                           % (volume_id, volume['status']))
            return volume if volume['status'] == status else None
        return process.wait_until(reached, timeout, 'volume %s %s'
                                  % (volume_id, status))

    def delete_volume(self, volume_id, timeout=60):
        """Delete (attachments first, as a service) and wait until gone."""
        try:
            volume = self.get_volume(volume_id)
        except rest.APIError as e:
            if e.status == 404:
                self._forget(self._volumes, volume_id)
                return
            raise
        for attachment in volume.get('attachments', []):
            self.cinder.delete('/attachments/%s'
                               % attachment['attachment_id'],
                               microversion='3.44', service=True,
                               expect=(200, 204, 404))
        if volume['status'] not in ('available', 'error', 'deleting'):
            self.wait_volume(volume_id, 'available', timeout)
        self.cinder.delete('/volumes/%s' % volume_id,
                           expect=(202, 204, 404))
        process.wait_until(
            lambda: self.cinder.raw(
                'GET', '/volumes/%s' % volume_id).status_code == 404,
            timeout, 'deletion of volume %s' % volume_id)
        self._forget(self._volumes, volume_id)

    def volume_file(self, volume):
        """The sparse file holding ``volume`` (its backend's directory)."""
        backend = volume['os-vol-host-attr:host'].split('@')[1].split('#')[0]
        return os.path.join(self.box.cinder.volumes_dir(backend),
                            'volume-%s' % volume['id'])

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

    # Ironic and the agent

    @staticmethod
    def agent_mac():
        """MAC of the first physical NIC: the one the agent reports."""
        for name in sorted(os.listdir('/sys/class/net')):
            if os.path.exists('/sys/class/net/%s/device' % name):
                with open('/sys/class/net/%s/address' % name) as f:
                    return f.read().strip()
        raise process.SandboxError('no physical network interface found: '
                                   'the agent could not be looked up')

    def create_node(self, name=None, mac=None, root_device=None,
                    deploy_interface='direct', driver='fake-hardware',
                    management_interface='noop', **fields):
        """An ``available`` node with a port for the agent's MAC.

        ``deploy_forces_oob_reboot`` is always set, so the agent is never
        asked to power the machine off. Legacy BIOS boot mode unless
        ``properties`` says otherwise: no bootloader is installed and no
        firmware boot entry is written for a whole-disk image.
        """
        driver_info = dict(fields.pop('driver_info', {}),
                           deploy_forces_oob_reboot=True)
        properties = dict(fields.pop('properties', {}))
        properties.setdefault('capabilities', 'boot_mode:bios')
        if root_device:
            properties['root_device'] = root_device
        body = dict(fields, name=name or self.name('node'), driver=driver,
                    deploy_interface=deploy_interface,
                    management_interface=management_interface,
                    driver_info=driver_info, properties=properties)
        node = self.ironic.post('/v1/nodes', body)
        self._nodes.append(node['uuid'])
        self.ironic.post('/v1/ports', {'node_uuid': node['uuid'],
                                       'address': mac or self.agent_mac()})
        self.set_provision_state(node['uuid'], 'manage')
        self.wait_node(node['uuid'], 'manageable')
        self.set_provision_state(node['uuid'], 'provide')
        return self.wait_node(node['uuid'], 'available')

    def get_node(self, node):
        return self.ironic.get('/v1/nodes/%s' % node)

    def set_provision_state(self, node, target, **body):
        body['target'] = target
        self.ironic.put('/v1/nodes/%s/states/provision' % node, body)

    def wait_node(self, node, provision_state, timeout=120):
        """Poll the node until ``provision_state``; fail fast on errors."""
        def reached():
            current = self.get_node(node)
            state = current['provision_state']
            if state == provision_state:
                return current
            if state.endswith('failed') or state == 'error':
                raise process.SandboxError(
                    'node %s went to %s: %s' % (node, state,
                                                current.get('last_error')))
            return None
        return process.wait_until(reached, timeout, 'node %s %s'
                                  % (node, provision_state), interval=0.5)

    def delete_node(self, node):
        """Delete a node, undeploying or aborting first if needed."""
        try:
            current = self.get_node(node)
        except rest.APIError as e:
            if e.status == 404:
                self._forget(self._nodes, node)
                return
            raise
        state = current['provision_state']
        if state in ('wait call-back', 'deploy failed', 'active'):
            self.set_provision_state(node, 'deleted')
            self.wait_node(node, 'available', timeout=120)
        if current.get('maintenance') is False and state not in (
                'available', 'manageable', 'enroll', 'wait call-back',
                'deploy failed', 'active'):
            self.ironic.put('/v1/nodes/%s/maintenance' % node, {})
        self.ironic.delete('/v1/nodes/%s' % node, expect=(204, 404))
        self._forget(self._nodes, node)

    def start_agent(self, devices=(), name=None, with_ironic=True, **kwargs):
        """A confined IPA that may see only ``devices``.

        :param with_ironic: look itself up in the sandbox's Ironic (by the
            MAC of :meth:`agent_mac`) and heartbeat to it; False runs it
            with no Ironic (commands need its token).
        :returns: the started ``AgentProcess``; stopped on close.
        """
        # Imported here: only the agent needs the confinement code.
        from ipa_cinder_sandbox import agents

        name = name or self.name('agent')
        workdir = self.layout.path('agent', name)
        os.makedirs(workdir, exist_ok=True)
        for device in devices:
            self._check_own_device(device)
        agent = agents.IronicAgent(
            workdir, devices=list(devices),
            api_url=self.ironic_url if with_ironic else None,
            name=name, **kwargs)
        self._agents.append(agent)
        try:
            agent.start()
        except Exception:
            self._forget(self._agents, agent)
            raise
        # Recorded, so that ``down`` stops it even if this process dies.
        self.box.procs.record(name, agent.jail.proc.pid,
                              ['ironic-python-agent', workdir])
        return agent

    def _check_own_device(self, device):
        """Refuse any device whose backing file the sandbox did not make."""
        backing = loopdev.list_devices().get(device, '')
        if not backing.startswith(self.state_dir + '/'):
            raise process.SandboxError(
                'refusing to give %s to the agent: not a loop device over '
                'a file of %s' % (device, self.state_dir))

    def stop_agent(self, agent):
        """Stop an agent from :meth:`start_agent` (or one named so)."""
        if isinstance(agent, str):
            self.box.stop_agent(agent)
            return
        agent.stop()
        self.box.stop_agent(agent.name)
        self._forget(self._agents, agent)

    def start_agent_for_node(self, node, devices=None, timeout=120):
        """Wait for ``node`` to wait for its agent, then start one.

        :param devices: devices to grant; by default the one the node's
            root device hints name (it must be a sandbox loop device).
        """
        current = self.wait_node(node, 'wait call-back', timeout=timeout)
        if devices is None:
            hints = (current['instance_info'].get('root_device')
                     or current['properties'].get('root_device') or {})
            if not hints.get('name'):
                raise process.SandboxError(
                    'node %s has no root device hint "name": say which '
                    'sandbox device its agent may use' % node)
            devices = [hints['name']]
        return self.start_agent(devices=devices,
                                name='agent-%s' % current['uuid'][:8])

    @staticmethod
    def _forget(items, item):
        if item in items:
            items.remove(item)
