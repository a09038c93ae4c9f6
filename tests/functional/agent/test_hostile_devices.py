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

"""Device paths that are no volume, sent to the real confined agent.

A protocol whose connection data is a path (``local``, ``gpfs``) took any
existing path as the volume's device: ``/etc/passwd`` became the install
device, and a FIFO blocked the agent for good (every later command got
409 "Agent is busy"). Each path here must be refused at once with a 4xx
naming ``data.device_path``; the agent answers the next command at once,
and nothing is recorded or connected. Unknown parameters of every command
get a 400 naming them.

Every path is the agent's own (its work directory, its private /dev,
/proc and /sys) or a device node no driver answers: nothing here names a
disk of the machine.
"""

import os
import stat
import time
import uuid

import pytest

from tests import blockdevs

#: A refusal, and the next command, take less than this (seconds).
AT_ONCE = 10


@pytest.fixture(scope='module')
def hostile(agent):
    """{kind: path}, each visible to the agent and none a usable device."""
    base = os.path.join(agent.workdir, 'hostile')
    os.makedirs(base, exist_ok=True)
    paths = {'fifo': os.path.join(base, 'fifo'),
             'regular file': os.path.join(base, 'regular'),
             'directory': base,
             'proc': '/proc/self/status',
             'sys': '/sys/kernel',
             'character device': '/dev/null',
             'unopenable block device': os.path.join(base, 'no-driver'),
             'etc': '/etc/passwd'}
    if not os.path.exists(paths['fifo']):
        os.mkfifo(paths['fifo'])
    with open(paths['regular file'], 'w') as f:
        f.write('not a volume\n' * 100)
    if not os.path.exists(paths['unopenable block device']):
        os.mknod(paths['unopenable block device'], 0o600 | stat.S_IFBLK,
                 os.makedev(blockdevs.unregistered_block_major(), 0))
    return paths


def _answers_at_once(agent):
    started = time.monotonic()
    listed = agent.command('cinder.list_connections', timeout=AT_ONCE)
    assert time.monotonic() - started < AT_ONCE
    return listed['connections']


def _records(agent):
    records = os.path.join(agent.state_dir, 'connections')
    if not os.path.isdir(records):
        return []
    return [n for n in os.listdir(records) if not n.startswith('.')]


@pytest.mark.parametrize('protocol', ['gpfs', 'local'])
@pytest.mark.parametrize('mode', ['ro', 'rw'])
@pytest.mark.parametrize('kind', [
    'fifo', 'regular file', 'directory', 'proc', 'sys', 'character device',
    'unopenable block device', 'etc'])
def test_device_path_refused_at_once(agent, hostile, protocol, mode, kind):
    started = time.monotonic()
    response = agent.post_command('cinder.connect_volume', {
        'volume_id': str(uuid.uuid4()), 'attachment_id': str(uuid.uuid4()),
        'connection_info': {'driver_volume_type': protocol,
                            'data': {'device_path': hostile[kind]}},
        'mode': mode, 'boot': True}, timeout=60)
    assert time.monotonic() - started < AT_ONCE
    assert 400 <= response.status_code < 500, response.text[:500]
    assert 'data.device_path' in response.text
    assert 'Traceback' not in response.text
    assert _answers_at_once(agent) == []
    assert _records(agent) == []


@pytest.mark.parametrize('command', [
    'cinder.get_connector', 'cinder.list_connections',
    'cinder.disconnect_all', 'cinder.configure_boot',
    'cinder.connect_volume', 'cinder.disconnect_volume'])
def test_unknown_parameter_refused(agent, command):
    response = agent.post_command(command, {
        'volume_id': str(uuid.uuid4()), 'colour': 'blue'}, timeout=60)
    assert response.status_code == 400, response.text[:500]
    assert 'colour' in response.text
    assert ' - 500 (' not in agent.read_log()
    assert _answers_at_once(agent) == []


def test_loop_device_still_accepted(agent, loops):
    """The refusals above refuse nothing that is a volume's device."""
    volume, attachment = str(uuid.uuid4()), str(uuid.uuid4())
    result = agent.command('cinder.connect_volume', {
        'volume_id': volume, 'attachment_id': attachment,
        'connection_info': {'driver_volume_type': 'gpfs',
                            'data': {'device_path': loops[0].path}},
        'mode': 'ro'})
    assert result['device_path'] == loops[0].path
    agent.command('cinder.disconnect_volume', {'volume_id': volume})
    assert _answers_at_once(agent) == []
