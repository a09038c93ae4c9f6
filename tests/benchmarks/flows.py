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

"""The deploys the benchmark times: ``cinder-agent`` and ``direct``.

Every deploy runs a real, confined IPA started once the node waits in
``wait call-back``; its time is measured from the agent's start to the
node's ``active``. A ``direct`` deploy writes the sandbox image onto a
sandbox loop device (root device hint); a ``cinder-agent`` deploy onto its
boot volume (Cinder's ``local`` backend). The agent can also run without
ipa-cinder's plugins: :class:`PluginlessAgent` hides the ``ipa_cinder``
entry points from stevedore in the agent's process only (a
``sitecustomize`` on its PYTHONPATH); the installed product is untouched.
"""

from concurrent import futures
import copy
import os
import time
import uuid

from ipa_cinder_sandbox import agents
from ipa_cinder_sandbox import device_broker
from ipa_cinder_sandbox import rest

from tests.benchmarks import logs

_SITECUSTOMIZE = '''"""Benchmark only: ipa-cinder's plug-ins are not loaded."""
from stevedore import _cache

_HIDDEN_IN = ('ironic_python_agent.hardware_managers',
              'ironic_python_agent.extensions')
_get_group_all = _cache.get_group_all


def _without_ipa_cinder(group, path=None):
    entry_points = _get_group_all(group, path=path)
    if group in _HIDDEN_IN:
        entry_points = [ep for ep in entry_points
                        if not ep.value.startswith('ipa_cinder')]
    return entry_points


_cache.get_group_all = _without_ipa_cinder
'''

#: What IPA logs for each hardware manager it loads.
CINDER_MANAGER_LINE = 'Hardware manager found: ipa_cinder'


class PluginlessAgent(agents.IronicAgent):
    """A sandbox agent that does not see ipa-cinder's entry points."""

    def _environment(self):
        env = super()._environment()
        site = os.path.join(self.workdir, 'site')
        os.makedirs(site, exist_ok=True)
        with open(os.path.join(site, 'sitecustomize.py'), 'w') as f:
            f.write(_SITECUSTOMIZE)
        env['PYTHONPATH'] = os.pathsep.join(
            [site] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep)
                      if p])
        return env


def retarget(sandbox, ironic_url):
    """A view of the sandbox handle whose nodes live in another Ironic.

    Same Cinder, HTTP server, devices and process records; its own lists
    of nodes and agents (removed by :func:`close_view`).
    """
    view = copy.copy(sandbox)
    view.ironic_url = ironic_url
    view.ironic = rest.IronicClient(ironic_url)
    view._nodes = []
    view._agents = []
    view._volumes = []
    view._devices = []
    return view


def close_view(view):
    """Stop the view's agents and delete its nodes; errors, as text."""
    failures = []
    for func, items in ((view.stop_agent, view._agents),
                        (view.delete_node, view._nodes)):
        for item in list(items):
            try:
                func(item)
            except Exception as e:  # clean as much as possible
                failures.append('%s: %s' % (item, e))
    return failures


def start_agent(target, devices=(), plugins=True):
    """A confined agent for ``target`` (a handle or a view), timed."""
    if plugins:
        return target.start_agent(devices=devices)
    name = target.name('agent-noplugin')
    workdir = target.layout.path('agent', name)
    os.makedirs(workdir, exist_ok=True)
    agent = PluginlessAgent(workdir, devices=list(devices),
                            api_url=target.ironic_url, name=name)
    target._agents.append(agent)
    agent.start()
    target.box.procs.record(name, agent.jail.proc.pid,
                            ['ironic-python-agent', workdir])
    return agent


class Deployer(object):
    """Runs and times deploys against the sandbox (or a view of it)."""

    def __init__(self, sandbox, timeout, log):
        self.sandbox = sandbox
        self.timeout = timeout
        self.log = log
        self.image = sandbox.image
        self.image_url = '%s/%s' % (sandbox.http_url, self.image['name'])

    def instance_info(self):
        return {'image_source': self.image_url,
                'image_checksum': self.image['sha256'],
                'image_os_hash_algo': 'sha256',
                'image_os_hash_value': self.image['sha256'],
                'image_disk_format': 'raw'}

    def deploy(self, target, node_uuid, devices=(), plugins=True,
               broker=False):
        """Deploy a node; returns its timings and the agent's figures."""
        target.set_provision_state(node_uuid, 'active')
        target.wait_node(node_uuid, 'wait call-back', timeout=self.timeout)
        began = time.monotonic()
        began_wall = time.time()
        agent = start_agent(target, devices, plugins)
        agent_up = time.monotonic() - began
        watcher = None
        if broker:
            watcher = device_broker.DeviceBroker(
                agent, target.box.cinder.volumes_dir('local'))
            watcher.start()
        try:
            target.wait_node(node_uuid, 'active', timeout=self.timeout)
            seconds = time.monotonic() - began
            active_wall = began_wall + seconds
        finally:
            if watcher is not None:
                watcher.stop()
            text = agent.read_log()
            target.stop_agent(agent)
        written = logs.image_write(text)
        phases = logs.image_stream_phases(text)
        heartbeat = logs.first_heartbeat(text)
        # The agent's start-up (a fixed cost of the ramdisk, the same for
        # every deploy interface) ends at its first heartbeat.
        heartbeat_to_active = None
        if heartbeat is not None:
            heartbeat_to_active = active_wall - heartbeat.timestamp()
            if not 0 < heartbeat_to_active <= seconds:
                heartbeat_to_active = None
        return {'agent_start_to_active': round(seconds, 2),
                'heartbeat_to_active': None if heartbeat_to_active is None
                else round(heartbeat_to_active, 2),
                'agent_up_seconds': round(agent_up, 2),
                'cinder_plugin_loaded': CINDER_MANAGER_LINE in text,
                'image_write': None if written is None else {
                    'device': written[0], 'seconds': round(written[1], 3),
                    'bytes': written[2],
                    'mib_per_s': round(written[2] / 1048576.0 / written[1],
                                       1) if written[1] else None,
                    'setup_seconds': phases and round(phases[0], 3),
                    'stream_mib_per_s': round(
                        written[2] / 1048576.0 / phases[1], 1)
                    if phases and phases[1] > 0 else None}}

    def run_direct(self, target=None, plugins=True, size_mib=1024):
        """A stock ``direct`` deploy + undeploy onto a new loop device."""
        target = target or self.sandbox
        device = self.sandbox.create_loop_device(size_mib=size_mib)
        try:
            node = target.create_node(root_device={'name': device},
                                      instance_info=self.instance_info())
            self.log('direct deploy of node %s onto %s (%s plug-ins)'
                     % (node['uuid'], device,
                        'with' if plugins else 'without'))
            result = self.deploy(target, node['uuid'], devices=[device],
                                 plugins=plugins)
            began = time.monotonic()
            target.set_provision_state(node['uuid'], 'deleted')
            target.wait_node(node['uuid'], 'available', timeout=self.timeout)
            result['undeploy_seconds'] = round(time.monotonic() - began, 2)
            target.delete_node(node['uuid'])
        finally:
            self.sandbox.remove_loop_device(device)
        result.update(kind='direct', plugins=plugins)
        self.log('direct (%s plug-ins): %.1f s agent start to active'
                 % ('with' if plugins else 'without',
                    result['agent_start_to_active']))
        return result

    # cinder-agent

    def _volume(self, attempts=4):
        # Set-up, not measured: SQLite may answer "database is locked"
        # (HTTP 500) while cinder-volume deletes the previous round's.
        for attempt in range(attempts):
            try:
                return self.sandbox.create_volume(size=1,
                                                  volume_type='local')
            except rest.APIError as e:
                if e.status != 500 or attempt + 1 == attempts:
                    raise
                self.log('volume create: HTTP 500, retrying')
                time.sleep(2)

    def volumes(self, count):
        return [self._volume() for _ in range(count)]

    def cinder_alone(self, count):
        """Cinder's own time for the step's writes of ``count`` volumes.

        The anchor of the attach step: what ``cinder_attach_volumes``
        asks of Cinder per volume (an attachment created WITH a connector,
        3.54, then completed, 3.44), sent straight to Cinder for
        ``count`` fresh volumes at once (one thread and one HTTP session
        each, as the step's workers), without Ironic or an agent. Its
        seconds, 1 volume against 4, show how much of the step's growth
        is Cinder's.
        """
        volumes = self.volumes(count)
        # Attachments need an instance: a node that does not exist.
        instance = str(uuid.uuid4())
        connector = self.sandbox.connector(instance)

        def attach(volume):
            cinder = rest.CinderClient(self.sandbox.cinder_url)
            attachment = cinder.post('/attachments', {'attachment': {
                'volume_uuid': volume['id'], 'instance_uuid': instance,
                'connector': connector, 'mode': 'rw'}},
                microversion='3.54')['attachment']
            cinder.post('/attachments/%s/action' % attachment['id'],
                        {'os-complete': None}, microversion='3.44',
                        expect=(200, 204))
            return attachment['id']

        try:
            began = time.monotonic()
            with futures.ThreadPoolExecutor(max_workers=count) as pool:
                made = list(pool.map(attach, volumes))
            seconds = time.monotonic() - began
            for attachment_id in made:
                # As a service, as the conductor deletes: Cinder then does
                # not tell Nova about the (made-up) instance.
                self.sandbox.cinder.delete('/attachments/%s' % attachment_id,
                                           microversion='3.44', service=True,
                                           expect=(200, 204))
        finally:
            for volume in volumes:
                self.sandbox.delete_volume(volume['id'])
        self.log('Cinder alone, %d volume(s): %.3f s' % (count, seconds))
        return {'kind': 'cinder-alone', 'volumes': count,
                'seconds': round(seconds, 3)}

    def _attachments(self, node_uuid):
        return self.sandbox.cinder.get(
            '/attachments/detail?all_tenants=1&instance_id=%s' % node_uuid,
            microversion='3.44')['attachments']

    def _bfv_node(self, target, volumes):
        node = target.create_node(
            deploy_interface='cinder-agent',
            instance_info=self.instance_info(),
            properties={'capabilities': 'iscsi_boot:true'})
        for index, volume in enumerate(volumes):
            target.ironic.post('/v1/volume/targets', {
                'node_uuid': node['uuid'], 'volume_type': 'local',
                'boot_index': index, 'volume_id': volume['id'],
                'properties': {}})
        return node

    def run_cinder_agent(self, count, target=None, cinder_log=None,
                         ironic_log=None):
        """One ``cinder-agent`` deploy + undeploy with ``count`` volumes.

        With the log paths, the Cinder requests of the attach (deploy)
        and detach (undeploy) and the attach step's window are measured.
        """
        target = target or self.sandbox
        volumes = self.volumes(count)
        node = self._bfv_node(target, volumes)
        uuid = node['uuid']
        windows = {}
        try:
            self.log('cinder-agent deploy of node %s with %d volume(s)'
                     % (uuid, count))
            windows['cinder'] = _window(cinder_log)
            windows['ironic'] = _window(ironic_log)
            result = self.deploy(target, uuid, broker=True)
            attach = _close(windows['cinder'])
            ironic_text = _close(windows['ironic'])
            attachments = self._attachments(uuid)
            windows['cinder'] = _window(cinder_log)
            began = time.monotonic()
            target.set_provision_state(uuid, 'deleted')
            target.wait_node(uuid, 'available', timeout=self.timeout)
            result['undeploy_seconds'] = round(time.monotonic() - began, 2)
            detach = _close(windows['cinder'])
            left = self._attachments(uuid)
        finally:
            target.delete_node(uuid)
            for volume in volumes:
                self.sandbox.delete_volume(volume['id'])
        result.update(kind='cinder-agent', volumes=count,
                      attachments_after_deploy=len(attachments),
                      attachments_after_undeploy=len(left))
        if cinder_log:
            result['attach'] = logs.summarize_requests(
                logs.cinder_requests(attach))
            result['detach'] = logs.summarize_requests(
                logs.cinder_requests(detach))
        if ironic_log:
            result.update(step_figures(ironic_text, uuid))
        self.log('cinder-agent, %d volume(s): %.1f s agent start to active, '
                 'attach step %s s' % (count, result['agent_start_to_active'],
                                       result.get('step_seconds')))
        return result


def _window(path):
    return logs.LogWindow(path).start() if path else None


def _close(window):
    return window.stop().text() if window else ''


def step_figures(ironic_text, node_uuid):
    """The attach step's duration and what it spent on, from ironic.log."""
    window = logs.step_window(ironic_text, node_uuid)
    if not window:
        return {'step_seconds': None}
    calls = logs.conductor_calls(ironic_text, window)
    commands = logs.agent_commands(ironic_text, node_uuid, window)
    return {
        'step_seconds': round((window[1] - window[0]).total_seconds(), 3),
        'agent_commands': commands,
        'agent_seconds': round(sum(t for _n, t in commands.values()), 3),
        'conductor_cinder_calls': len(calls),
        'conductor_cinder_seconds': round(
            sum(c['seconds'] for c in calls), 3)}
