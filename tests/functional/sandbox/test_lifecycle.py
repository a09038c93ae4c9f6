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

"""The sandbox's own life cycle: the CLI, and cleaning after a crash."""

import json
import os
import re
import subprocess
import sys
import time

from ipa_cinder.host import mounts
from ipa_cinder_sandbox import cleanup
from ipa_cinder_sandbox import layout as layout_mod
from ipa_cinder_sandbox import loopdev
from ipa_cinder_sandbox import process
from ipa_cinder_sandbox import sandbox as sandbox_mod


def _cli(*args):
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), 'ipa-cinder-sandbox')]
        + list(args), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_cli_status_and_env(sandbox):
    status = json.loads(_cli('--state-dir', sandbox.state_dir, 'status'))
    assert status['running'] is True
    assert status['cinder_url'] == sandbox.cinder_url
    for name in ('rabbitmq', 'epmd', 'tgtd', 'cinder-api',
                 'cinder-scheduler', 'cinder-volume-local',
                 'cinder-volume-iscsi', 'ironic', 'http'):
        assert status['processes'][name]['running'], name
    assert all(status['services'].values()), status['services']

    env = _cli('--state-dir', sandbox.state_dir, 'env')
    assert 'export OS_ENDPOINT=%s' % sandbox.ironic_url in env
    assert 'export CINDER_ENDPOINT=%s' % sandbox.cinder_url in env


def test_everything_binds_loopback_only(sandbox):
    listening = subprocess.run(['ss', '-Hltnp'], capture_output=True,
                               text=True).stdout.splitlines()
    pids = {rec['pid'] for rec in sandbox.box.procs.records()}
    for line in listening:
        owners = {int(p) for p in re.findall(r'pid=(\d+)', line)}
        if owners & pids:
            local = line.split()[3]
            assert local.startswith(('127.0.0.1:', '[::1]:')), line


def test_down_after_a_crash_cleans_what_was_left(tmp_path):
    """What a killed sandbox leaves is found again from its state dir."""
    state = tmp_path / 'crashed'
    layout = layout_mod.Layout(str(state), port_base=18790)
    box = sandbox_mod.Sandbox(layout)
    os.makedirs(layout.path('devices'))
    # tgtd with a target, as Cinder's TgtAdm leaves it.
    box.tgt.start()
    box.tgt.wait()
    backing = layout.path('devices', 'disk')
    with open(backing, 'wb') as f:
        f.truncate(8 << 20)
    subprocess.run(['tgtadm', '-C', str(layout.ports['tgt_control']),
                    '--lld', 'iscsi', '--op', 'new', '--mode', 'target',
                    '--tid', '1', '-T', 'iqn.2010-10.org.example:crashed'],
                   check=True)
    assert box.tgt.targets()
    # A loop device, a mount and a stray process naming the state dir.
    device = loopdev.attach(backing)
    mountpoint = layout.path('mnt')
    os.makedirs(mountpoint)
    subprocess.run(['mount', '-t', 'tmpfs', 'sandbox-test', mountpoint],
                   check=True)
    stray = subprocess.Popen([sys.executable, '-c',
                              'import time; time.sleep(300)',
                              layout.path('stray')])
    tgtd = box.procs.get('tgtd')['pid']

    began = time.monotonic()
    # A new object, as after a crash: it knows only the state directory.
    swept = sandbox_mod.Sandbox(layout).down()
    print('\ncleaned a crashed sandbox in %.2fs: %s'
          % (time.monotonic() - began, swept))
    stray.wait(timeout=10)
    assert not process.is_alive(tgtd)
    assert loopdev.devices_under(str(state)) == []
    # Not "device not in list_devices()": the background suites attach loop
    # devices at the same time and may already have been given the name.
    assert loopdev.devices_of(backing) == [], device
    assert mounts.mounts_under(str(state)) == []
    assert cleanup.leftover_pids(str(state)) == []
