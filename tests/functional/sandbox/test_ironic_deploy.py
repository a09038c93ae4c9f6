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

"""Ironic + a confined IPA: the stock ``direct`` deploy onto a loop device.

A fake-hardware node (power and boot fake, management noop) is deployed
with the sandbox's test image, served over HTTP on loopback. The agent is
started once the node waits for it, finds the node by the MAC of its port,
heartbeats to the sandbox's Ironic, and writes the image onto the loop
device named by the root device hints: the only block device it can see.
"""

import hashlib
import json
import os
import subprocess
import sys
import time

from ipa_cinder_sandbox import images

MiB = 1024 * 1024


def _image_fields(image):
    return [{'op': 'add', 'path': '/instance_info/%s' % key, 'value': value}
            for key, value in (('image_source', image['url']),
                               ('image_checksum', image['sha256']),
                               ('image_os_hash_algo', 'sha256'),
                               ('image_os_hash_value', image['sha256']),
                               ('image_disk_format', 'raw'))]


def _file_sha256(path, size, offset=0):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        f.seek(offset)
        remaining = size
        while remaining:
            chunk = f.read(min(MiB, remaining))
            if not chunk:
                break
            digest.update(chunk)
            remaining -= len(chunk)
    return digest.hexdigest()


def _read_marker(backing, image, tmp_path):
    """Read the marker file from the ext4 partition, without mounting."""
    partition = tmp_path / 'partition.img'
    with open(backing, 'rb') as src, open(partition, 'wb') as dst:
        src.seek(image['partition_offset'])
        dst.write(src.read(image['size'] - image['partition_offset']))
    result = subprocess.run(
        ['debugfs', '-R', 'cat %s' % image['marker_path'], str(partition)],
        capture_output=True, text=True, timeout=30)
    return result.stdout


def test_direct_deploy_to_loop_device_and_undeploy(sandbox, tmp_path):
    device = sandbox.create_loop_device(size_mib=64)
    backing = sandbox.loop_backing_file(device)
    node = sandbox.create_node(root_device={'name': device})
    uuid = node['uuid']
    assert node['driver_info']['deploy_forces_oob_reboot'] is True
    sandbox.ironic.patch('/v1/nodes/%s' % uuid,
                         _image_fields(sandbox.image))

    began = time.monotonic()
    sandbox.set_provision_state(uuid, 'active')
    # The command line way: wait for "wait call-back", start a confined
    # agent that may use the device the root device hints name.
    started = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), 'ipa-cinder-sandbox'),
         '--state-dir', sandbox.state_dir, 'agent', uuid],
        capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, started.stderr
    agent = json.loads(started.stdout)
    agent_ready = time.monotonic() - began
    node = sandbox.wait_node(uuid, 'active', timeout=300)
    deployed = time.monotonic() - began
    assert node['provision_state'] == 'active'
    # The real IPA, looked up by MAC, heartbeated the deploy through.
    assert node['driver_internal_info']['agent_version'].startswith('13.')

    image = sandbox.image
    # The partition, byte for byte (IPA moves the backup GPT to the end of
    # the bigger disk, so the partition table itself differs).
    first, last = images.partition_range(image['path'])
    start, length = first * 512, (last - first + 1) * 512
    assert (_file_sha256(backing, length, start)
            == _file_sha256(image['path'], length, start))
    assert _read_marker(backing, image, tmp_path) == image['marker_text']
    # The agent was never asked to power the machine off.
    with open(agent['log']) as f:
        assert 'standby.power_off' not in f.read()

    began = time.monotonic()
    sandbox.set_provision_state(uuid, 'deleted')
    sandbox.wait_node(uuid, 'available', timeout=120)
    undeployed = time.monotonic() - began
    print('\nagent up %.1fs after deploy start; active after %.1fs; '
          'undeployed in %.1fs' % (agent_ready, deployed, undeployed))
    sandbox.stop_agent(agent['name'])
    assert not sandbox.box.procs.alive(agent['name'])
    sandbox.delete_node(uuid)
    sandbox.remove_loop_device(device)
    assert not os.path.exists(backing)
