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

"""Act 1 of the demo: the agent half against a real, confined IPA alone.

No Ironic and no Cinder: a volume is a sparse file behind a loop device,
as the sandbox's Cinder ``local`` backend exports it, and the agent's
``cinder.*`` commands are called over its REST API as the conductor calls
them.
"""

import os
import uuid

from ipa_cinder.common import secrets as secrets_mod
from ipa_cinder_sandbox.demo import checksums
from ipa_cinder_sandbox.demo import narration
from ipa_cinder_sandbox import loopdev


def _write_through(agent, loop, backing):
    """Connect the loop device as a volume and write through it."""
    volume_id, attachment_id = str(uuid.uuid4()), str(uuid.uuid4())
    info = {'driver_volume_type': 'local',
            'data': {'device_path': loop}}
    result = agent.command('cinder.connect_volume', {
        'volume_id': volume_id, 'attachment_id': attachment_id,
        'connection_info': info, 'boot': True})
    narration.say('cinder.connect_volume: connected as %s',
                  result['device_path'])
    image = os.urandom(4 << 20)
    fd = os.open(result['device_path'], os.O_WRONLY)
    try:
        os.write(fd, image)
        os.fsync(fd)
    finally:
        os.close(fd)
    narration.say('4 MiB written through the device land in the volume '
                  'file: %s', checksums.sha256(image)
                  == checksums.sha256_of(backing, len(image)))
    return volume_id


def _chap_refused(agent):
    """An iSCSI volume with CHAP: refused, its password nowhere."""
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
    details = (response.json().get('command_error') or {}).get('details')
    narration.say('An iSCSI volume with CHAP is refused here (no kernel '
                  'iSCSI initiator): %s',
                  secrets_mod.mask_text(str(details))[:240])
    narration.say('The password in the reply: %s, in the agent log: %s',
                  password in response.text, password in agent.read_log())


def agent_demo(workdir):
    """The agent half against a real, confined IPA (no Ironic)."""
    from ipa_cinder_sandbox import agent_process

    narration.say('Act 1, the agent alone: a volume is a sparse file behind '
                  'a loop device, the way the sandbox\'s Cinder "local" '
                  'backend exports it')
    backing = os.path.join(workdir, 'volume.img')
    with open(backing, 'wb') as f:
        f.truncate(64 << 20)
    loop = loopdev.attach(backing)
    agent = agent_process.AgentProcess(os.path.join(workdir, 'agent'),
                                       devices=[loop])
    try:
        narration.say('Starting ironic-python-agent 13 in its jail (private '
                      '/dev with only %s, no power off, no network changes)',
                      loop)
        agent.start()
        narration.say('Agent answers on %s (%.1fs)', agent.url,
                      agent.started_in)
        narration.say('cinder.get_connector: what the conductor sends to '
                      'Cinder')
        narration.show('connector', agent.command('cinder.get_connector'))
        volume_id = _write_through(agent, loop, backing)
        _chap_refused(agent)
        agent.command('cinder.disconnect_volume', {'volume_id': volume_id})
        narration.say('cinder.disconnect_volume: connections left %d', len(
            agent.command('cinder.list_connections')['connections']))
    finally:
        agent.stop()
        loopdev.detach(loop)
