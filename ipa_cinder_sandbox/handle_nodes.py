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

"""The Ironic half of :class:`ipa_cinder_sandbox.handle.SandboxHandle`.

Nodes enrolled for a test (with a port for the agent's MAC and
``deploy_forces_oob_reboot``), their provision states, and the confined
agents that serve them. Several nodes are served at once by agents that
each report a MAC of their own (``create_node(mac=...)`` and
``start_agent(mac=...)``) and get, through a device broker owned by their
node (:meth:`NodeHelpers.device_broker`), only that node's volumes.
"""

import os

from oslo_log import log as logging
from oslo_utils import netutils
import requests

from ipa_cinder_sandbox import device_broker
from ipa_cinder_sandbox import errors
from ipa_cinder_sandbox import loopdev
from ipa_cinder_sandbox import polling
from ipa_cinder_sandbox import rest

LOG = logging.getLogger(__name__)


class NodeHelpers(object):
    """Ironic and agent helpers of the sandbox handle.

    Expects of the handle: ``layout``, ``box``, ``state_dir``,
    ``ironic_url``, ``ironic`` (a :class:`ipa_cinder_sandbox.rest.
    IronicClient`), ``name()``, ``_forget()``, ``_fetch_or_forget()`` and
    the ``_nodes`` and ``_agents`` it removes on close.
    """

    @staticmethod
    def agent_mac():
        """MAC of the first physical NIC: the one the agent reports."""
        for name in sorted(os.listdir('/sys/class/net')):
            if os.path.exists('/sys/class/net/%s/device' % name):
                with open('/sys/class/net/%s/address' % name) as f:
                    return f.read().strip()
        raise errors.SandboxError('no physical network interface found: '
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
        """Poll the node until ``provision_state``; fail fast on errors.

        Polled here rather than with openstacksdk's baremetal waiter: that
        one looks every 2 s, fixed, where a deploy step lasts about a
        second, and callers want the node as Ironic's API shows it. An API
        error is polled again; a failed state ends the wait at once.
        """
        def reached():
            current = self.get_node(node)
            state = current['provision_state']
            if state == provision_state:
                return current
            if state.endswith('failed') or state == 'error':
                raise errors.SandboxError(
                    'node %s went to %s: %s' % (node, state,
                                                current.get('last_error')))
            return None
        return polling.wait_until(
            reached, timeout, 'node %s %s' % (node, provision_state),
            interval=0.5,
            retry_on=(errors.APIError, requests.RequestException))

    def delete_node(self, node):
        """Delete a node, undeploying or aborting first if needed."""
        current = self._fetch_or_forget(self.get_node, self._nodes, node)
        if current is None:
            return
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

    def start_agent(self, devices=(), name=None, with_ironic=True,
                    mac=None, hostname=None, start_timeout=60, **kwargs):
        """A confined IPA that may see only ``devices``.

        :param with_ironic: look itself up in the sandbox's Ironic (by the
            MAC of :meth:`agent_mac`, or ``mac``) and heartbeat to it;
            False runs it with no Ironic (commands need its token).
        :param mac: a MAC of the agent's own, for a node created with
            ``create_node(mac=...)``: agents with different MACs serve
            different nodes at the same time. The agent then also gets a
            host name of its own (its name) unless ``hostname`` says
            otherwise.
        :param hostname: the agent's host name (the connector's ``host``
            when it has no node); by default this machine's, without
            ``mac``.
        :param start_timeout: seconds to wait for its API (many agents
            starting at once on a busy machine need more than the default).
        :returns: the started ``AgentProcess``; stopped on close.
        """
        # Imported here: only the agent needs the confinement code.
        from ipa_cinder_sandbox import agents

        name = name or self.name('agent')
        if mac is not None:
            if not netutils.is_valid_mac(mac):
                raise errors.SandboxError('%r is not a MAC address' % mac)
            hostname = hostname or name
        workdir = self.layout.path('agent', name)
        os.makedirs(workdir, exist_ok=True)
        for device in devices:
            self._check_own_device(device)
        agent = agents.IronicAgent(
            workdir, devices=list(devices),
            api_url=self.ironic_url if with_ironic else None,
            name=name, mac=mac, hostname=hostname, **kwargs)
        self._agents.append(agent)
        try:
            agent.start(timeout=start_timeout)
        except Exception:
            self._forget(self._agents, agent)
            raise
        # Recorded, so that ``down`` stops it even if this process dies.
        self.box.procs.record(name, agent.jail.proc.pid,
                              ['ironic-python-agent', workdir])
        return agent

    def device_broker(self, agent, owner=None, backend='local'):
        """A device broker (not started) for ``agent``.

        :param owner: the UUID of the agent's node: only volumes attached
            to it are granted; None grants every export of ``backend``.
        """
        return device_broker.DeviceBroker(
            agent, self.box.cinder.volumes_dir(backend), owner=owner,
            # A client of its own: the broker asks from its own thread.
            cinder=rest.CinderClient(self.cinder_url) if owner else None)

    def _check_own_device(self, device):
        """Refuse any device whose backing file the sandbox did not make."""
        backing = loopdev.list_devices().get(device, '')
        if not backing.startswith(self.state_dir + '/'):
            raise errors.SandboxError(
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
                raise errors.SandboxError(
                    'node %s has no root device hint "name": say which '
                    'sandbox device its agent may use' % node)
            devices = [hints['name']]
        return self.start_agent(devices=devices,
                                name='agent-%s' % current['uuid'][:8])
