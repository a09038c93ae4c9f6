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

"""Boot-from-volume deploys through the sandbox's real Ironic and Cinder."""

import contextlib
import hashlib
import os
import subprocess
import threading
import time

import pytest

from ipa_cinder_sandbox import device_broker

OLD_INITIATOR = 'iqn.2000-01.org.example:image-default'


def build_os_image(path):
    """A small whole-disk image of an "OS" that uses open-iscsi.

    One ext4 partition with /etc/iscsi/initiatorname.iscsi holding a name
    that the deploy must replace with the node's.
    """
    with open(path, 'wb') as f:
        f.truncate(24 << 20)
    subprocess.run(['sfdisk', '-q', path], check=True, text=True,
                   input='label: dos\nstart=2048, type=83\n')
    root = path + '.root'
    os.makedirs(os.path.join(root, 'etc', 'iscsi'), exist_ok=True)
    with open(os.path.join(root, 'etc', 'iscsi', 'initiatorname.iscsi'),
              'w') as f:
        f.write('InitiatorName=%s\n' % OLD_INITIATOR)
    subprocess.run(['mke2fs', '-q', '-F', '-t', 'ext4', '-d', root, '-E',
                    'offset=%d' % (2048 * 512), path, '%dk' % (22 * 1024)],
                   check=True)
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        digest.update(f.read())
    return {'path': path, 'name': os.path.basename(path),
            'size': os.path.getsize(path), 'sha256': digest.hexdigest(),
            'offset': 2048 * 512}


@pytest.fixture(scope='session')
def os_image(sandbox):
    image = build_os_image(sandbox.layout.path('images', 'bfv-os.raw'))
    image['url'] = '%s/%s' % (sandbox.http_url, image['name'])
    return image


class Deployer(object):
    """Drives one node through Ironic with a real, confined agent."""

    def __init__(self, sandbox, image):
        self.sandbox = sandbox
        self.image = image
        self.timeline = []
        self.nodes = []

    def volume_dir(self, backend='local'):
        return self.sandbox.box.cinder.volumes_dir(backend)

    def create_node(self, with_image=True, **fields):
        instance_info = {}
        if with_image:
            instance_info = {
                'image_source': self.image['url'],
                'image_os_hash_algo': 'sha256',
                'image_os_hash_value': self.image['sha256'],
                'image_disk_format': 'raw'}
        properties = dict(fields.pop('properties', {}))
        properties.setdefault('capabilities', 'iscsi_boot:true')
        node = self.sandbox.create_node(deploy_interface='cinder-agent',
                                        instance_info=instance_info,
                                        properties=properties, **fields)
        self.nodes.append(node['uuid'])
        return node

    def add_target(self, node, volume, boot_index=0, volume_type='local',
                   **properties):
        return self.sandbox.ironic.post('/v1/volume/targets', {
            'node_uuid': node['uuid'], 'volume_type': volume_type,
            'boot_index': boot_index, 'volume_id': volume['id'],
            'properties': properties})

    def deploy(self, node, expect='active', timeout=240,
               cinder_down_for=None, agent_conf=None):
        """Deploy and wait for ``expect`` (or 'deploy failed').

        :param cinder_down_for: stop cinder-api when the agent starts and
            start it again after this many seconds.
        :param agent_conf: more agent options, ``{section: {opt: value}}``.
        """
        began = time.monotonic()
        self.sandbox.set_provision_state(node['uuid'], 'active')
        self.sandbox.wait_node(node['uuid'], 'wait call-back')
        restart = None
        if cinder_down_for:
            restart = self.stop_cinder_api(cinder_down_for)
        agent = self.sandbox.start_agent(extra_conf=agent_conf)
        broker = device_broker.DeviceBroker(agent, self.volume_dir())
        broker.start()
        try:
            result = self.wait(node, expect, timeout)
        finally:
            broker.stop()
            self.sandbox.stop_agent(agent)
            if restart is not None:
                restart.join()
        self.timeline.append(('deploy %s' % node['uuid'],
                              time.monotonic() - began))
        return result, agent

    @contextlib.contextmanager
    def running_agent(self, **kwargs):
        """A confined agent with its device broker, stopped at the end."""
        agent = self.sandbox.start_agent(**kwargs)
        broker = device_broker.DeviceBroker(agent, self.volume_dir())
        broker.start()
        try:
            yield agent
        finally:
            broker.stop()
            self.sandbox.stop_agent(agent)

    def remove_created(self, volumes_before):
        """Delete this deployer's nodes and the volumes made since."""
        for node in self.nodes:
            self.sandbox.delete_node(node)
        for volume_id in [v for v in self.sandbox._volumes
                          if v not in volumes_before]:
            self.sandbox.delete_volume(volume_id)
        for name, seconds in self.timeline:
            print('%s: %.1fs' % (name, seconds))

    def stop_cinder_api(self, seconds):
        """Stop cinder-api now, start it again ``seconds`` later."""
        procs = self.sandbox.box.procs
        record = procs.get('cinder-api')
        procs.stop('cinder-api', timeout=20)

        def start():
            time.sleep(seconds)
            procs.start('cinder-api', record['argv'],
                        env=self.sandbox.box.cinder._env())
            self.sandbox.box.cinder.wait()

        thread = threading.Thread(target=start, daemon=True)
        thread.start()
        return thread

    def release_port(self, node):
        """Give the node's port a MAC nobody has, freeing the real one."""
        ports = self.sandbox.ironic.get('/v1/ports?node=%s'
                                        % node['uuid'])['ports']
        self.sandbox.ironic.put('/v1/nodes/%s/maintenance' % node['uuid'],
                                {'reason': 'port moved by the test'})
        for port in ports:
            self.sandbox.ironic.patch('/v1/ports/%s' % port['uuid'], [
                {'op': 'replace', 'path': '/address',
                 'value': '02:00:00:%02x:%02x:%02x' % tuple(
                     os.urandom(3))}])
        self.sandbox.ironic.delete('/v1/nodes/%s/maintenance'
                                   % node['uuid'], expect=(202, 204))

    def clean(self, node, steps, agent_name, timeout=240):
        """Manually clean a manageable node with ``steps``."""
        began = time.monotonic()
        self.sandbox.set_provision_state(node['uuid'], 'clean',
                                         clean_steps=steps)
        self.sandbox.wait_node(node['uuid'], 'clean wait')
        agent = self.sandbox.start_agent(name=agent_name)
        broker = device_broker.DeviceBroker(agent, self.volume_dir())
        broker.start()
        try:
            result = self.wait(node, 'manageable', timeout)
        finally:
            broker.stop()
            self.sandbox.stop_agent(agent)
        self.timeline.append(('clean %s' % node['uuid'],
                              time.monotonic() - began))
        return result, agent

    def wait(self, node, expect, timeout=240):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = self.sandbox.get_node(node['uuid'])
            state = current['provision_state']
            if state == expect:
                return current
            if expect != 'deploy failed' and state in ('deploy failed',
                                                       'error'):
                raise AssertionError('node went to %s: %s'
                                     % (state, current['last_error']))
            time.sleep(0.5)
        raise AssertionError('node %s not %s after %ss (now %s)'
                             % (node['uuid'], expect, timeout, state))

    def wait_for(self, node, predicate, timeout=180):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = self.sandbox.get_node(node['uuid'])
            if predicate(current):
                return current
            time.sleep(0.2)
        raise AssertionError('node %s: condition not met after %ss'
                             % (node['uuid'], timeout))

    def restart_ironic(self):
        """Stop the Ironic process and start it again on the same DB."""
        self.sandbox.box.ironic.restart()

    def undeploy(self, node):
        self.sandbox.set_provision_state(node['uuid'], 'deleted')
        return self.wait(node, 'available', timeout=120)

    def attachments(self, volume_id=None, node=None):
        query = []
        if volume_id:
            query.append('volume_id=%s' % volume_id)
        if node:
            query.append('instance_id=%s' % node['uuid'])
        path = '/attachments/detail?all_tenants=1'
        if query:
            path += '&' + '&'.join(query)
        return self.sandbox.cinder.get(path, microversion='3.44')[
            'attachments']

    def volume_bytes(self, volume, size):
        with open(self.sandbox.volume_file(volume), 'rb') as f:
            return f.read(size)


@pytest.fixture
def deployer(sandbox, os_image):
    deployer = Deployer(sandbox, os_image)
    before = set(sandbox._volumes)
    yield deployer
    # The agent is looked up by this machine's MAC: one node at a time.
    deployer.remove_created(before)
