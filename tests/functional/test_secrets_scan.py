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

"""Where the CHAP credentials of an iSCSI volume end up after a full run.

An iSCSI attach through Ironic (it cannot connect here: there is no kernel
iSCSI, so the deploy fails and rolls back), ``ipa-cinder`` runs against the
same volume, and the undeploy. Then every file under the sandbox's state
directory, every CLI output and every Ironic API answer seen during the run
(nodes, ports, volume targets, volume connectors) is searched for the real
CHAP user name and password, read from Cinder's database.

The sandbox's Ironic runs with noauth, where every caller is an admin: its
answers are a superset of what a non-admin would see, so a secret absent
from them is absent from a non-admin's view too.

Allowed: Ironic's database and an iPXE script (iPXE needs the credentials
to log in), and the stores the credentials come from and must live in:
Cinder's database and tgt's target definitions (Cinder's TgtAdm writes
them for tgtd). Cinder's own services, at debug level, log the user name
(never the password) of the connection info they return: the user name
only is accepted in the cinder-* logs. The test prints every place it
looked.
"""

import itertools
import os
import secrets as random_secrets
import stat
import threading
import uuid

import pytest

from tests.functional.conductor import conftest as conductor_conftest
from tests.functional import test_cli

# Bigger files are volume contents and disk images, not output.
_MAX_SCANNED = 64 << 20


class _ApiRecorder(threading.Thread):
    """Keeps every distinct Ironic answer about the node while it runs."""

    def __init__(self, sandbox, node):
        super().__init__(daemon=True)
        self.sandbox = sandbox
        self.node = node['uuid']
        self.answers = {}
        self.done = threading.Event()

    def paths(self):
        return ['/v1/nodes/%s' % self.node, '/v1/nodes?detail=True',
                '/v1/ports?node=%s&detail=True' % self.node,
                '/v1/volume/targets?node=%s&detail=True' % self.node,
                '/v1/volume/connectors?node=%s&detail=True' % self.node,
                '/v1/nodes/%s/states' % self.node]

    def snapshot(self):
        for path in self.paths():
            response = self.sandbox.ironic.raw('GET', path)
            self.answers.setdefault(path, set()).add(response.text)

    def run(self):
        while not self.done.wait(0.3):
            try:
                self.snapshot()
            except Exception:  # Ironic restarting: look again later
                continue

    def stop(self):
        self.done.set()
        self.join(30)
        self.snapshot()


def _allowed(sandbox, path, head):
    ironic_db = sandbox.layout.path('ironic', 'ironic.sqlite')
    if path.startswith(ironic_db):
        return "Ironic's database"
    if head.startswith(b'#!ipxe'):
        return 'iPXE script'
    if path.startswith(sandbox.layout.path('mariadb') + '/') or (
            path.startswith(sandbox.layout.path('cinder') + '/')
            and 'sqlite' in path):
        return "Cinder's database"
    if path.startswith(sandbox.box.tgt.volumes_dir + '/'):
        return "tgt's target definition"
    return None


def _cinder_log(sandbox, path):
    name = os.path.basename(path)
    return (os.path.dirname(path) == sandbox.layout.path('log')
            and name.startswith('cinder-') and name.endswith('.log'))


def _scan_files(sandbox, needles, roots):
    """{path: verdict} for every regular file under ``roots``."""
    looked = {}
    for root, dirs, files in itertools.chain.from_iterable(
            os.walk(r) for r in roots):
        # FUSE exports and mounted volumes are volume contents.
        dirs[:] = [d for d in dirs
                   if not os.path.ismount(os.path.join(root, d))]
        for name in files:
            path = os.path.join(root, name)
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(info.st_mode):
                continue
            if info.st_size > _MAX_SCANNED:
                looked[path] = 'skipped (%d MiB of data)' % (
                    info.st_size >> 20)
                continue
            with open(path, 'rb') as f:
                data = f.read()
            found = [n for n in needles if n.encode() in data]
            if not found:
                looked[path] = 'clean'
                continue
            allowed = _allowed(sandbox, path, data[:16])
            if allowed is None and found == [needles[0]] and (
                    _cinder_log(sandbox, path)):
                allowed = ("Cinder's own debug log (user name only: "
                           "cinder-volume logs the connection info it "
                           "returns with the password masked)")
            looked[path] = ('allowed: %s' % allowed if allowed
                            else 'LEAK: %s' % ', '.join(
                                'password' if n == needles[1] else 'user'
                                for n in found))
    return looked


@pytest.fixture
def image(sandbox):
    image = conductor_conftest.build_os_image(
        sandbox.layout.path('images', 'secrets-os.raw'))
    image['url'] = '%s/%s' % (sandbox.http_url, image['name'])
    return image


def test_chap_secret_only_where_it_must_be(sandbox, image, tmp_path):
    deployer = conductor_conftest.Deployer(sandbox, image)
    volume = sandbox.create_volume(size=1, volume_type='iscsi')
    node = deployer.create_node()
    deployer.add_target(node, volume, volume_type='iscsi')
    recorder = _ApiRecorder(sandbox, node)
    recorder.start()
    outputs = {}
    try:
        failed, agent = deployer.deploy(node, expect='deploy failed')
        assert volume['id'] in failed['last_error']
        cli = test_cli.Runner(sandbox, tmp_path)
        for fmt in ('json', 'table', 'value'):
            code, _parsed, text = cli.run('local-attach', volume['id'],
                                          '--debug', fmt=fmt)
            assert code == 4, text
            outputs['local-attach --debug -f %s' % fmt] = text
        for args in (('list',), ('get-connector',),
                     ('local-detach', volume['id'])):
            code, _parsed, text = cli.run(*args)
            outputs[' '.join(args)] = text
        deployer.undeploy(node)
    finally:
        recorder.stop()
        sandbox.delete_node(node['uuid'])
    user, password = sandbox.export_chap(volume['id'])
    needles = [user, password]

    # The scan itself finds a planted secret.
    canary = os.path.join(sandbox.state_dir, 'log', 'secrets-canary.log')
    with open(canary, 'w') as f:
        f.write('planted %s\n' % password)
    try:
        assert _scan_files(sandbox, needles, [sandbox.state_dir])[
            canary].startswith('LEAK')
    finally:
        os.unlink(canary)

    # The state directory (services, agents) and the CLI's own files.
    looked = _scan_files(sandbox, needles, [sandbox.state_dir,
                                            str(tmp_path)])
    for path, texts in sorted(recorder.answers.items()):
        found = [n for n in needles for t in texts if n in t]
        looked['Ironic API GET %s (%d answers)' % (path, len(texts))] = (
            'LEAK' if found else 'clean')
    for name, text in sorted(outputs.items()):
        found = [n for n in needles if n in text]
        looked['CLI ipa-cinder %s' % name] = 'LEAK' if found else 'clean'
    assert agent.log_path in looked and looked[agent.log_path] == 'clean'
    print('\nCHAP secret search (%d places):' % len(looked))
    for place, verdict in sorted(looked.items()):
        print('  %s: %s' % (verdict, place))
    leaks = {p: v for p, v in looked.items() if v.startswith('LEAK')}
    assert not leaks, leaks
    sandbox.delete_volume(volume['id'])


# CHAP values with every character that ended text masking early (quotes,
# spaces, commas, braces, backslashes) and non-ASCII ones, user names
# included. Random hex throughout: any 8 characters of one are found in no
# log line by chance.


def _hostile_value(shape):
    parts = [random_secrets.token_hex(2) for _ in range(5)]
    return shape % tuple(parts)


HOSTILE_SHAPES = {
    'auth_username': ("us'%s er,%s{%s}\\%s\u00e9%s", 'u %s"%s"%s %s:%s'),
    'auth_password': ("Pw'%s\" ,}{%s\\%s\u00fc%s=%s", "%s', '%s\\n%s %s}%s"),
}


@pytest.fixture
def confined_agent(tmp_path):
    """A real confined agent (no Ironic) with one loop device of its own."""
    from ipa_cinder_sandbox import agent_process
    from ipa_cinder_sandbox import loopdev
    if os.geteuid() != 0:
        pytest.skip('the agent needs root')
    backing = str(tmp_path / 'volume.img')
    with open(backing, 'wb') as f:
        f.truncate(8 << 20)
    device = loopdev.attach(backing)
    agent = agent_process.AgentProcess(str(tmp_path / 'agent'),
                                       devices=[device])
    try:
        agent.start()
        yield agent, device
    finally:
        agent.stop()
        loopdev.detach(device)


def _windows(value, size=8):
    return {value[i:i + size] for i in range(len(value) - size + 1)}


def test_hostile_chap_values_never_logged(confined_agent):
    """Connect, list, disconnect and a failed iSCSI login, then grep.

    IPA logs every command's arguments (debug is on), os-brick traces the
    connector's call and result, ipa-cinder logs the connection: no 8
    characters in a row of any CHAP value may reach the agent's log or an
    answer.
    """
    agent, device = confined_agent
    values = [_hostile_value(shape) for shapes in HOSTILE_SHAPES.values()
              for shape in shapes]
    answers = []
    for user, password in ((values[0], values[2]), (values[1], values[3])):
        chap = {'auth_method': 'CHAP', 'auth_username': user,
                'auth_password': password}
        volume, attachment = str(uuid.uuid4()), str(uuid.uuid4())
        local = {'driver_volume_type': 'local',
                 'data': dict(chap, device_path=device)}
        answers.append(agent.post_command('cinder.connect_volume', {
            'volume_id': volume, 'attachment_id': attachment,
            'connection_info': local}).text)
        answers.append(agent.post_command('cinder.list_connections').text)
        answers.append(agent.post_command('cinder.disconnect_volume', {
            'volume_id': volume}).text)
        iscsi = {'driver_volume_type': 'iscsi', 'data': dict(
            chap, target_portal='127.0.0.1:9', target_lun=1,
            target_iqn='iqn.2010-10.org.openstack:volume-' + volume)}
        answers.append(agent.post_command('cinder.connect_volume', {
            'volume_id': volume, 'attachment_id': attachment,
            'connection_info': iscsi}).text)
        # Refused parameters echo nothing of them either.
        answers.append(agent.post_command('cinder.connect_volume', {
            'volume_id': volume, 'attachment_id': attachment,
            'connection_info': iscsi, 'mode': password}).text)
    log = agent.read_log()
    assert 'Executing command: cinder.connect_volume' in log
    assert '==> connect_volume: call' in log
    assert agent.command('cinder.list_connections') == {'connections': []}
    leaks = {}
    for value in values:
        forms = {value} | {repr(value)[1:-1], value.encode(
            'unicode_escape').decode()}
        for form in forms:
            for window in _windows(form):
                for name, text in [('agent log', log)] + [
                        ('answer %d' % i, a) for i, a in enumerate(answers)]:
                    if window in text:
                        leaks.setdefault(name, set()).add(window)
    print('\nhostile CHAP values searched in the agent log (%d lines) '
          'and %d answers' % (len(log.splitlines()), len(answers)))
    assert not leaks, leaks
