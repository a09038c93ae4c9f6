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

"""Safety: the sandbox's agent cannot harm the machine it runs on.

The agent (real IPA, confined, with the sandbox's lsblk view) is asked to
erase disks, to write an image onto the disk holding this machine's root
filesystem, and to power off. Erasing touches only the loop device the
sandbox granted; the write finds no such device; power-off is refused. The
host's root disk is fingerprinted before and after (read only: its first
KiB and its filesystem identity) and must not change.
"""

import hashlib
import os
import re
import shutil
import subprocess
import uuid

import pytest

from ipa_cinder_sandbox import errors

MiB = 1024 * 1024


def _host_root_disk():
    """(filesystem device, whole disk) holding "/", found, never named."""
    st = os.stat('/')
    sys_dev = '/sys/dev/block/%d:%d' % (os.major(st.st_dev),
                                        os.minor(st.st_dev))
    if not os.path.exists(sys_dev):
        pytest.skip('the root filesystem is not on a block device')
    real = os.path.realpath(sys_dev)
    fs_dev = '/dev/' + os.path.basename(real)
    if os.path.exists(os.path.join(real, 'partition')):
        disk = '/dev/' + os.path.basename(os.path.dirname(real))
    else:
        disk = fs_dev
    return fs_dev, disk


def _root_mount():
    """Source, options and super options of the "/" mount."""
    with open('/proc/self/mountinfo') as f:
        for line in f:
            fields = line.split()
            if fields[4] == '/':
                tail = fields[fields.index('-') + 1:]
                return fields[5], tail
    return None


def _fingerprint(fs_dev, disk):
    """Read-only identity of the host's root disk and filesystem.

    Where the machine forbids even root to read its disk directly (as some
    virtual machines do), the raw part is replaced by that fact: the agent
    could not have written it either.
    """
    try:
        with open(disk, 'rb') as f:
            head = hashlib.sha256(f.read(1024)).hexdigest()
        probe = subprocess.run(['blkid', '-p', '-o', 'export', fs_dev],
                               capture_output=True, text=True, timeout=30)
        identity = sorted(
            line for line in probe.stdout.splitlines()
            if line.split('=')[0] in ('UUID', 'TYPE', 'PTUUID', 'PTTYPE',
                                      'LABEL'))
    except PermissionError:
        head, identity = 'raw access refused by this machine', []
    errors = '/sys/fs/ext4/%s/errors_count' % os.path.basename(fs_dev)
    if os.path.exists(errors):
        with open(errors) as f:
            identity.append('ext4 errors=%s' % f.read().strip())
    return head, identity, _root_mount()


def _node(**properties):
    return {'uuid': str(uuid.uuid4()), 'properties': properties,
            'instance_info': {}, 'driver_info': {},
            'driver_internal_info': {'agent_erase_devices_iterations': 1,
                                     'agent_erase_devices_zeroize': False}}


@pytest.fixture(scope='module')
def confined_agent(sandbox):
    device = sandbox.create_loop_device(size_mib=32)
    # Something to erase: the sandbox's partitioned test image.
    shutil.copyfile(sandbox.image['path'],
                    sandbox.loop_backing_file(device))
    agent = sandbox.start_agent(devices=[device], with_ironic=False)
    yield agent, device
    sandbox.stop_agent(agent)
    sandbox.remove_loop_device(device)


def test_agent_sees_only_the_sandbox_device(confined_agent):
    agent, device = confined_agent
    fs_dev, disk = _host_root_disk()
    root = '/proc/%d/root' % agent.jail.inner_pid()
    assert os.path.exists(root + device)
    assert not os.path.exists(root + disk)
    assert not os.path.exists(root + fs_dev)


def test_erase_touches_only_the_granted_device(confined_agent, sandbox):
    agent, device = confined_agent
    fs_dev, disk = _host_root_disk()
    before = _fingerprint(fs_dev, disk)
    backing = sandbox.loop_backing_file(device)
    with open(backing, 'rb') as f:
        assert f.read(MiB) != bytes(MiB)

    erased = []
    for step in ('erase_devices_metadata', 'erase_devices'):
        try:
            result = agent.command('clean.execute_clean_step', {
                'step': {'step': step, 'interface': 'deploy',
                         'priority': 10},
                'node': _node(), 'ports': []}, timeout=300)
        except errors.CommandFailed as e:
            # Failing is harmless too, as long as the only device the step
            # reached for is the sandbox's.
            named = set(re.findall(r'/dev/(?:loop\d+|[a-z]+\d*)',
                                   str(e.body)))
            assert named <= {device}, e.body
            print('\n%s failed harmlessly: %s' % (step, e.message[:200]))
        else:
            assert result['clean_step']['step'] == step
            erased.append(step)

    if erased:
        # The agent really erased the sandbox's device...
        with open(backing, 'rb') as f:
            assert b'EFI PART' not in f.read(MiB)
    # ...and the host's disk is as it was.
    assert _fingerprint(fs_dev, disk) == before


def test_write_onto_the_host_disk_finds_no_device(confined_agent, sandbox):
    agent, _device = confined_agent
    fs_dev, disk = _host_root_disk()
    before = _fingerprint(fs_dev, disk)
    image = sandbox.image
    with pytest.raises(errors.CommandFailed) as failure:
        agent.command('deploy.execute_deploy_step', {
            'step': {'step': 'write_image', 'interface': 'deploy',
                     'priority': 80,
                     'args': {'image_info': {
                         'id': image['name'], 'urls': [image['url']],
                         'disk_format': 'raw', 'os_hash_algo': 'sha256',
                         'os_hash_value': image['sha256'],
                         'checksum': image['sha256'],
                         'stream_raw_images': True}}},
            'node': _node(root_device={'name': disk}), 'ports': []},
            timeout=120)
    assert 'DeviceNotFound' in str(failure.value.body)
    assert _fingerprint(fs_dev, disk) == before


def test_power_off_fails_harmlessly(confined_agent):
    agent, _device = confined_agent
    response = agent.post_command('standby.power_off', {}, timeout=120)
    body = response.json()
    assert body.get('command_status') != 'SUCCEEDED'
    assert 'refused by the ipa-cinder sandbox' in agent.read_log()
    # The agent, and this machine, are still here.
    assert agent.command('cinder.list_connections') == {'connections': []}


def _as_nobody():
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)


def test_state_directory_is_roots_only(sandbox):
    """No other user may read the sandbox's logs or databases.

    The logs hold CHAP user names, Ironic's database the boot targets'
    CHAP passwords.
    """
    state = os.stat(sandbox.state_dir)
    assert state.st_uid == 0
    assert oct(state.st_mode & 0o777) == oct(0o700)
    info = os.stat(os.path.join(sandbox.state_dir, 'sandbox.json'))
    assert oct(info.st_mode & 0o777) == oct(0o600)
    secret_holders = [os.path.join(sandbox.state_dir, 'log', name)
                      for name in os.listdir(os.path.join(
                          sandbox.state_dir, 'log'))
                      if name.endswith('.log')]
    for root, _dirs, files in os.walk(os.path.join(sandbox.state_dir,
                                                   'ironic')):
        secret_holders += [os.path.join(root, n) for n in files]
    assert secret_holders
    for path in secret_holders + [sandbox.state_dir]:
        probe = subprocess.run(['cat', path] if os.path.isfile(path)
                               else ['ls', path], capture_output=True,
                               preexec_fn=_as_nobody, timeout=30)
        assert probe.returncode != 0, path
        assert b'Permission denied' in probe.stderr, probe.stderr
