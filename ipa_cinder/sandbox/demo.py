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
"""``make demo``: what ipa-cinder does, shown with real services.

Run as root: ``python -m ipa_cinder.sandbox.demo``. It narrates each step
and cleans up everything it created, also when a step fails.

The agent part: a real ironic-python-agent with this plugin, confined (see
:mod:`ipa_cinder.sandbox.jail`), is asked for its storage connector, then
connects a volume exactly as the conductor will ask it to during a
deploy; data written to the device it returns lands in the volume.
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

from ipa_cinder.sandbox import agent_process

_T0 = time.monotonic()


def say(message, *args):
    print('[%6.2fs] %s' % (time.monotonic() - _T0, message % args),
          flush=True)


def show(title, value):
    text = json.dumps(value, indent=2, sort_keys=True)
    print('          %s:\n%s' % (title, '\n'.join(
        '            ' + line for line in text.splitlines())), flush=True)


def _sha256_of(path, size):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        remaining = size
        while remaining:
            chunk = f.read(min(remaining, 1 << 20))
            if not chunk:
                break
            digest.update(chunk)
            remaining -= len(chunk)
    return digest.hexdigest()


def agent_demo(workdir):
    """The agent half against a real, confined IPA (no Ironic)."""
    say('Agent half: a volume is a sparse file behind a loop device, '
        'the way the sandbox\'s Cinder "local" backend exports it')
    backing = os.path.join(workdir, 'volume.img')
    with open(backing, 'wb') as f:
        f.truncate(64 << 20)
    loop = subprocess.run(['losetup', '--find', '--show', backing],
                          check=True, capture_output=True,
                          text=True).stdout.strip()
    say('Volume file %s is exported as %s', backing, loop)
    agent = agent_process.AgentProcess(os.path.join(workdir, 'agent'),
                                       devices=[loop])
    try:
        say('Starting ironic-python-agent 13 in its jail (private /dev '
            'with only %s, no power off, no network changes)', loop)
        agent.start()
        say('Agent answers on %s (%.1fs)', agent.url, agent.started_in)

        say('cinder.get_connector: what the conductor sends to Cinder')
        show('connector', agent.command('cinder.get_connector'))

        volume_id, attachment_id = str(uuid.uuid4()), str(uuid.uuid4())
        info = {'driver_volume_type': 'local',
                'data': {'device_path': loop}}
        say('cinder.connect_volume volume %s as the boot volume', volume_id)
        result = agent.command('cinder.connect_volume', {
            'volume_id': volume_id, 'attachment_id': attachment_id,
            'connection_info': info, 'boot': True})
        show('connection', result)

        say('Writing a 16 MiB "image" through %s, as IPA\'s write_image '
            'does once the hardware manager names it the install device',
            result['device_path'])
        image = os.urandom(16 << 20)
        fd = os.open(result['device_path'], os.O_WRONLY)
        try:
            os.write(fd, image)
            os.fsync(fd)
        finally:
            os.close(fd)
        say('sha256 of the image         %s',
            hashlib.sha256(image).hexdigest())
        say('sha256 read from the volume %s',
            _sha256_of(backing, len(image)))

        say('Restarting the agent: connections are recorded on disk')
        agent.restart()
        listed = agent.command('cinder.list_connections')['connections']
        say('After the restart the agent still lists %d connection(s): %s',
            len(listed), ', '.join('%s on %s' % (c['volume_id'],
                                                 c['device_path'])
                                   for c in listed))
        again = agent.command('cinder.connect_volume', {
            'volume_id': volume_id, 'attachment_id': attachment_id,
            'connection_info': info, 'boot': True})
        say('Connecting the same attachment again reuses it: reused=%s',
            again['reused'])

        say('An iSCSI volume with CHAP cannot be connected on this '
            'kernel (no iSCSI initiator); the error is clear and the '
            'password appears nowhere')
        password = 'demo-chap-%s' % uuid.uuid4().hex[:10]
        response = agent.post_command('cinder.connect_volume', {
            'volume_id': str(uuid.uuid4()),
            'attachment_id': str(uuid.uuid4()),
            'connection_info': {
                'driver_volume_type': 'iscsi',
                'data': {'target_portal': '127.0.0.1:3260',
                         'target_iqn': 'iqn.2010-10.org.openstack:demo',
                         'target_lun': 1, 'auth_method': 'CHAP',
                         'auth_username': 'demo-user',
                         'auth_password': password}}})
        body = response.json()
        say('error: %s', (body.get('command_error') or {}).get('details'))
        say('password in the reply: %s, in the agent log: %s',
            password in response.text, password in agent.read_log())

        say('cinder.disconnect_volume: flush, os-brick disconnect, forget')
        agent.command('cinder.disconnect_volume', {'volume_id': volume_id})
        say('Connections left: %d',
            len(agent.command('cinder.list_connections')['connections']))
    finally:
        agent.stop()
        subprocess.run(['losetup', '--detach', loop], check=False)
        say('Agent stopped, %s detached. Agent log: %s', loop,
            agent.log_path)


def main():
    if os.geteuid() != 0:
        sys.exit('The demo needs root: it creates loop devices and '
                 'namespaces.')
    base = os.path.join(os.getcwd(), '.sandbox')
    os.makedirs(base, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix='demo-', dir=base)
    agent_demo(workdir)
    say('Done.')


if __name__ == '__main__':
    main()
