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

"""The soak's cycles and its leak accounting.

CLI cycles: ``ipa-cinder local-attach`` of one volume, 4 KiB written at a
cycle-specific offset through the device, ``local-detach``; the data is
checked in the volume's file at the end. Deploy cycles: a boot-from-volume
deploy through Ironic with a confined agent, then the undeploy. The leak
accounting compares, before and after: Cinder attachments of the soak's
volumes and nodes, tgt targets, loop devices of the state directory and of
the volumes, open file descriptors of cinder-volume (and of each cycle's
agent while the node is active: first against last), and processes naming
the state directory.
"""

import os
import subprocess
import sys
import tempfile
import time

import psutil

from ipa_cinder_sandbox import device_broker
from ipa_cinder_sandbox import loopdev
from tests.functional.conductor import conftest as conductor_conftest
from tests.functional.faults import leaks as leaks_mod

CLI = os.path.join(os.path.dirname(sys.executable), 'ipa-cinder')
BLOCK = 4096


def _tree_fds(pid):
    """Open file descriptors of ``pid`` and its descendants."""
    try:
        root = psutil.Process(pid)
        procs = [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.num_fds()
        except psutil.NoSuchProcess:
            continue
    return total


def _cinder_volume_fds(sandbox):
    return sum(_tree_fds(rec['pid']) for rec in sandbox.box.procs.records()
               if rec['name'].startswith('cinder-volume'))


def _census(sandbox):
    """Counts that must not grow."""
    volumes = [sandbox.box.cinder.volumes_dir(b) for b in ('local', 'iscsi')]
    return {
        'Cinder attachments (all)': len(sandbox.cinder.get(
            '/attachments?all_tenants=1', microversion='3.44')[
                'attachments']),
        'tgt targets': len(sandbox.box.tgt.targets()),
        'loop devices (state dir)': len(
            [d for d, b in loopdev.list_devices().items()
             if b.startswith(sandbox.state_dir + '/')
             and not b.startswith(tuple(volumes))]),
        'loop devices (volumes)': len(
            [d for d, b in loopdev.list_devices().items()
             if b.startswith(tuple(volumes))]),
        'cinder-volume open fds': _cinder_volume_fds(sandbox),
    }


class Soak(object):
    """Runs the cycles on a sandbox handle and keeps the accounting."""

    def __init__(self, sandbox, workdir, log=print):
        self.sandbox = sandbox
        self.workdir = workdir
        self.log = log
        self.volumes = []
        self.nodes = []
        self.state_dirs = []
        self.agent_fds = []
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith('OS_')}
        self.env.update(OS_AUTH_TYPE='none', OS_ENDPOINT=sandbox.cinder_url)

    def _cli(self, *args):
        state = os.path.join(self.workdir, 'cli-state')
        if state not in self.state_dirs:
            self.state_dirs.append(state)
        argv = [CLI] + list(args) + ['--state-dir', state]
        if args[0] == 'local-attach':
            argv += ['-f', 'value', '-c', 'device_path']
        proc = subprocess.run(argv, capture_output=True, text=True,
                              env=self.env, timeout=300)
        if proc.returncode:
            raise AssertionError('ipa-cinder %s: exit %d: %s'
                                 % (' '.join(args), proc.returncode,
                                    proc.stdout + proc.stderr))
        return proc.stdout.strip()

    def cli_cycles(self, cycles):
        volume = self.sandbox.create_volume(volume_type='local')
        self.volumes.append(volume)
        payloads = {}
        for cycle in range(cycles):
            device = self._cli('local-attach', volume['id'])
            payload = os.urandom(BLOCK)
            fd = os.open(device, os.O_WRONLY)
            try:
                os.pwrite(fd, payload, cycle * BLOCK)
                os.fsync(fd)
            finally:
                os.close(fd)
            payloads[cycle * BLOCK] = payload
            self._cli('local-detach', volume['id'])
        with open(self.sandbox.volume_file(volume), 'rb') as f:
            for offset, payload in payloads.items():
                f.seek(offset)
                assert f.read(BLOCK) == payload, 'data of cycle at %d' % (
                    offset)
        self.sandbox.delete_volume(volume['id'])

    def deploy_cycles(self, cycles, image):
        deployer = conductor_conftest.Deployer(self.sandbox, image)
        volume = self.sandbox.create_volume(size=1, volume_type='local')
        self.volumes.append(volume)
        node = deployer.create_node()
        self.nodes.append(node)
        deployer.add_target(node, volume)
        try:
            for _cycle in range(cycles):
                self._deploy_once(deployer, node)
                deployer.undeploy(node)
        finally:
            self.sandbox.delete_node(node['uuid'])
        self.sandbox.delete_volume(volume['id'])

    def _deploy_once(self, deployer, node):
        sandbox = self.sandbox
        sandbox.set_provision_state(node['uuid'], 'active')
        sandbox.wait_node(node['uuid'], 'wait call-back')
        agent = sandbox.start_agent()
        self.state_dirs.append(agent.state_dir)
        broker = device_broker.DeviceBroker(agent, deployer.volume_dir())
        broker.start()
        try:
            deployer.wait(node, 'active', timeout=240)
            self.agent_fds.append(_tree_fds(agent.jail.proc.pid))
        finally:
            broker.stop()
            sandbox.stop_agent(agent)

    def run(self, cycles_cli, cycles_deploy, image):
        """Run both kinds of cycles; returns the leak table (rows)."""
        baseline = leaks_mod.process_baseline(self.sandbox)
        before = _census(self.sandbox)
        began = time.monotonic()
        if cycles_cli:
            self.cli_cycles(cycles_cli)
        cli_seconds = time.monotonic() - began
        if cycles_deploy:
            self.deploy_cycles(cycles_deploy, image)
        after = _census(self.sandbox)
        found = leaks_mod.leaks(self.sandbox, volumes=self.volumes,
                                nodes=self.nodes, state_dirs=self.state_dirs,
                                baseline=baseline)
        rows = [(name, before[name], after[name]) for name in before]
        if self.agent_fds:
            rows.append(('agent open fds (first/last cycle)',
                         self.agent_fds[0], self.agent_fds[-1]))
        rows.append(('leaked attachments of soak volumes/nodes', 0,
                     len(found['attachments'])))
        rows.append(('leaked connection records', 0, len(found['records'])))
        rows.append(('leftover processes', 0, len(found['processes'])))
        self.log('%d CLI cycles in %.0f s, %d deploy cycles in %.0f s'
                 % (cycles_cli, cli_seconds, cycles_deploy,
                    time.monotonic() - began - cli_seconds))
        return rows, found


def table(rows):
    """The leak table as text."""
    width = max(len(r[0]) for r in rows)
    lines = ['%-*s %8s %8s %8s' % (width, 'resource', 'before', 'after',
                                   'leaked')]
    for name, before, after in rows:
        lines.append('%-*s %8d %8d %8d' % (width, name, before, after,
                                           max(0, after - before)))
    return '\n'.join(lines)


def leaked(rows, fd_slack=8):
    """Rows that grew (open fds may move by ``fd_slack``)."""
    return [r for r in rows
            if r[2] - r[1] > (fd_slack if 'fds' in r[0] else 0)]


def workdir():
    return tempfile.mkdtemp(prefix='ipa-cinder-soak-')
