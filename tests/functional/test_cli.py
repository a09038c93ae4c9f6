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

"""The ``ipa-cinder`` command, run as a real process, against the sandbox.

Real Cinder 29 (file driver: ``local`` exports are loop devices of this
host, ``iscsi`` exports are tgt targets with CHAP), real os-brick. Each
test records its connections in its own temporary state directory, given
with the global option ``--state-dir`` after the command (and before it
in test_global_options_before_the_command).
"""

import json
import os
import subprocess
import sys
import time
import uuid

import pytest
import yaml

from ipa_cinder_sandbox import loopdev

CLI = os.path.join(os.path.dirname(sys.executable), 'ipa-cinder')
MiB = 1024 * 1024


class Runner(object):
    """Runs ``ipa-cinder`` with the sandbox's Cinder (auth type none)."""

    def __init__(self, sandbox, tmp_path):
        self.sandbox = sandbox
        self.tmp_path = tmp_path
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith('OS_')}
        self.env.update(OS_AUTH_TYPE='none', OS_ENDPOINT=sandbox.cinder_url)

    def state(self, name='state'):
        return str(self.tmp_path / name)

    def raw(self, argv, env=None):
        """Run ``ipa-cinder argv``; returns the finished process."""
        return subprocess.run([CLI] + list(argv), capture_output=True,
                              text=True, env=env or self.env,
                              cwd=str(self.tmp_path), timeout=180)

    def run(self, *args, state='state', fmt='json', env=None):
        """Run a command; returns (exit code, parsed stdout, all text)."""
        proc = self.raw(list(args) + ['--state-dir', self.state(state),
                                      '--format', fmt], env=env)
        parsed = None
        if fmt in ('json', 'yaml') and proc.stdout.strip():
            parsed = (json.loads if fmt == 'json' else yaml.safe_load)(
                proc.stdout)
        return proc.returncode, parsed, proc.stdout + proc.stderr

    def ok(self, *args, **kwargs):
        code, parsed, text = self.run(*args, **kwargs)
        assert code == 0, text
        return parsed


@pytest.fixture
def cli(sandbox, tmp_path):
    if not os.path.exists(CLI):
        pytest.skip('ipa-cinder is not installed in this virtualenv')
    return Runner(sandbox, tmp_path)


def _attachments(sandbox, volume_id):
    return sandbox.cinder.get(
        '/attachments/detail?all_tenants=1&volume_id=%s' % volume_id,
        microversion='3.44')['attachments']


def _records(cli, state='state'):
    path = os.path.join(cli.state(state), 'connections')
    if not os.path.isdir(path):
        return []
    return [n for n in os.listdir(path) if n.endswith('.json')]


def _recorded(rows):
    """The rows of ``ipa-cinder list`` recorded on this host."""
    return [r for r in rows if r['recorded_here']]


def test_get_connector(cli):
    code, connector, text = cli.run('get-connector', '--host', 'cli-host-1')
    assert code == 0, text
    # Only the result: no library warnings, no os-brick chatter.
    assert json.loads(text) == connector
    assert connector['host'] == 'cli-host-1'
    assert connector['initiator']
    assert connector['multipath'] is False
    for off in (['--multipath', 'false'], ['--multipath=no'],
                ['--no-multipath']):
        connector = cli.ok('get-connector', '--host', 'cli-host-1', *off)
        assert connector['multipath'] is False
    # Other formats, one field.
    proc = cli.raw(['get-connector', '--host', 'cli-host-2', '-f', 'value',
                    '-c', 'host'])
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        0, 'cli-host-2\n', '')
    code, connector, text = cli.run('get-connector', '--host', 'cli-host-3',
                                    '-c', 'host', '-c', 'initiator',
                                    fmt='yaml')
    assert code == 0, text
    assert set(connector) == {'host', 'initiator'}
    assert connector['host'] == 'cli-host-3'


def test_attach_write_detach_data_persisted(cli, sandbox):
    volume = sandbox.create_volume(volume_type='local')
    # By name.
    attached = cli.ok('local-attach', volume['name'])
    assert attached['volume_id'] == volume['id']
    assert attached['attach_mode'] == 'rw'
    device = attached['device_path']
    assert device in loopdev.devices_of(sandbox.volume_file(volume))
    assert sandbox.get_volume(volume['id'])['status'] == 'in-use'

    listed = cli.ok('list')
    assert [r['attachment_id'] for r in _recorded(listed)] == [
        attached['attachment_id']]
    assert _recorded(listed)[0]['present'] is True
    assert _recorded(listed)[0]['in_cinder'] is True
    # Cinder's view is merged into the row.
    assert _recorded(listed)[0]['volume_status'] == 'in-use'
    mine = [r for r in listed if r['volume_id'] == volume['id']]
    assert [r['attachment_id'] for r in mine] == [attached['attachment_id']]

    # Attaching again is idempotent: same attachment, no second one.
    again = cli.ok('local-attach', volume['id'])
    assert again['reused'] is True
    assert again['attachment_id'] == attached['attachment_id']
    assert len(_attachments(sandbox, volume['id'])) == 1

    payload = os.urandom(4096)
    fd = os.open(device, os.O_WRONLY)
    try:
        os.pwrite(fd, payload, 3 * MiB)
    finally:
        os.close(fd)

    detached = cli.ok('local-detach', volume['id'])
    assert [d['attachment_id'] for d in detached['detached']] == [
        attached['attachment_id']]
    assert detached['detached'][0]['deleted_in_cinder'] is True
    sandbox.wait_volume(volume['id'], 'available')
    assert _attachments(sandbox, volume['id']) == []
    assert _records(cli) == []
    with open(sandbox.volume_file(volume), 'rb') as f:
        f.seek(3 * MiB)
        assert f.read(4096) == payload

    # Detaching what is already detached is a success.
    detached = cli.ok('local-detach', volume['name'])
    assert detached['already_detached'] is True
    sandbox.delete_volume(volume['id'])


def test_read_only_attach_refuses_writes(cli, sandbox):
    volume = sandbox.create_volume(volume_type='local')
    attached = cli.ok('local-attach', volume['id'], '--mode', 'ro')
    assert attached['mode'] == 'ro'
    assert attached['attach_mode'] == 'ro'
    with pytest.raises(OSError):
        fd = os.open(attached['device_path'], os.O_WRONLY)
        try:
            os.write(fd, b'x' * 512)
            os.fsync(fd)
        finally:
            os.close(fd)
    cli.ok('local-detach', volume['id'])
    assert _attachments(sandbox, volume['id']) == []
    sandbox.delete_volume(volume['id'])


def _detach_mounted(cli, volume_id, timeout=180):
    """local-detach of a volume that was mounted.

    Any process on this machine that creates a mount namespace while the
    volume is mounted (another test suite's confined agent, for one) keeps
    the filesystem alive after our unmount, and local-detach then rightly
    refuses to disconnect a device still in use: wait for it to let go.
    """
    deadline = time.monotonic() + timeout
    while True:
        code, result, text = cli.run('local-detach', volume_id)
        if code == 0:
            return result
        assert code == 4 and 'still in use' in text, text
        assert time.monotonic() < deadline, text
        time.sleep(2)


def _debugfs_cat(path, name):
    return subprocess.run(['debugfs', '-R', 'cat /%s' % name, path],
                          check=True, capture_output=True, text=True).stdout


def test_mountpoint_mount_and_unmount(cli, sandbox, tmp_path):
    volume = sandbox.create_volume(volume_type='local')
    # An ext4 filesystem written straight into the volume's file.
    subprocess.run(['mkfs.ext4', '-q', '-F', sandbox.volume_file(volume)],
                   check=True, capture_output=True)
    mnt = str(tmp_path / 'mnt')
    attached = cli.ok('local-attach', volume['id'], '--mountpoint', mnt)
    assert attached['mountpoint'] == mnt
    assert os.path.ismount(mnt)
    with open(os.path.join(mnt, 'hello'), 'w') as f:
        f.write('written through ipa-cinder')
    listed = cli.ok('list')
    assert _recorded(listed)[0]['mountpoint'] == mnt
    _detach_mounted(cli, volume['id'])
    assert not os.path.ismount(mnt)
    assert _attachments(sandbox, volume['id']) == []
    assert _debugfs_cat(sandbox.volume_file(volume), 'hello') == \
        'written through ipa-cinder'
    sandbox.delete_volume(volume['id'])


def test_read_only_mount(cli, sandbox, tmp_path):
    # Another volume (not the same filesystem mounted again: a process
    # that unshared its mount namespace meanwhile could still hold it).
    volume = sandbox.create_volume(volume_type='local')
    source = tmp_path / 'source'
    source.mkdir()
    (source / 'hello').write_text('read me')
    subprocess.run(['mkfs.ext4', '-q', '-F', '-d', str(source),
                    sandbox.volume_file(volume)],
                   check=True, capture_output=True)
    mnt = str(tmp_path / 'mnt')
    cli.ok('local-attach', volume['id'], '--mountpoint', mnt, '--mode', 'ro')
    with open(os.path.join(mnt, 'hello')) as f:
        assert f.read() == 'read me'
    with pytest.raises(OSError):
        open(os.path.join(mnt, 'other'), 'w').close()
    _detach_mounted(cli, volume['id'])
    assert not os.path.ismount(mnt)
    assert _attachments(sandbox, volume['id']) == []
    sandbox.delete_volume(volume['id'])


def test_detach_refuses_a_device_still_in_use(cli, sandbox):
    volume = sandbox.create_volume(volume_type='local')
    attached = cli.ok('local-attach', volume['id'])
    # What a mount in another namespace or device-mapper would do.
    fd = os.open(attached['device_path'], os.O_RDONLY | os.O_EXCL)
    try:
        code, result, text = cli.run('local-detach', volume['id'])
        assert code == 4, text
        assert 'still in use' in result['error']['message']
        assert [a['id'] for a in _attachments(sandbox, volume['id'])] == [
            attached['attachment_id']]
        assert _records(cli) == ['%s.json' % attached['attachment_id']]
    finally:
        os.close(fd)
    cli.ok('local-detach', volume['id'])
    assert _attachments(sandbox, volume['id']) == []
    sandbox.delete_volume(volume['id'])


def test_failure_after_connect_leaves_nothing(cli, sandbox, tmp_path):
    # A blank volume cannot be mounted: the failure comes after create,
    # connect and complete, and everything is undone.
    volume = sandbox.create_volume(volume_type='local')
    mnt = str(tmp_path / 'mnt')
    code, result, text = cli.run('local-attach', volume['id'],
                                 '--mountpoint', mnt)
    assert code == 4, text
    assert result['error']['kind'] == 'local'
    assert _attachments(sandbox, volume['id']) == []
    assert _records(cli) == []
    assert not os.path.ismount(mnt)
    sandbox.wait_volume(volume['id'], 'available')
    assert loopdev.devices_of(sandbox.volume_file(volume)) == []
    sandbox.delete_volume(volume['id'])


def test_iscsi_fails_cleanly_without_secrets(cli, sandbox):
    volume = sandbox.create_volume(volume_type='iscsi')
    # Learn the volume's CHAP credentials (the same for every attachment
    # of the volume), then give the volume back.
    probe = sandbox.cinder.post('/attachments', {'attachment': {
        'volume_uuid': volume['id'],
        'connector': sandbox.connector('probe-host')}},
        microversion='3.54')['attachment']
    user = probe['connection_info']['auth_username']
    password = probe['connection_info']['auth_password']
    sandbox.cinder.delete('/attachments/%s' % probe['id'],
                          microversion='3.44', service=True)
    sandbox.wait_volume(volume['id'], 'available')

    for fmt in ('json', 'table'):
        code, _result, text = cli.run('local-attach', volume['id'],
                                      '--debug', '--instance-uuid',
                                      str(uuid.uuid4()), fmt=fmt)
        assert code == 4, text
        assert 'iSCSI' in text
        assert password not in text
        assert user not in text
        assert _attachments(sandbox, volume['id']) == []
        assert _records(cli) == []
    assert sandbox.get_volume(volume['id'])['status'] == 'available'
    sandbox.delete_volume(volume['id'])


def test_multiattach_detach_picks_this_hosts_attachment(cli, sandbox):
    volume = sandbox.create_volume(volume_type='local-multiattach')
    first = cli.ok('local-attach', volume['id'], '--host', 'cli-host-a',
                   state='a')
    second = cli.ok('local-attach', volume['id'], '--host', 'cli-host-b',
                    '--mode', 'ro', state='b')
    assert first['attachment_id'] != second['attachment_id']
    ids = {a['id'] for a in _attachments(sandbox, volume['id'])}
    assert ids == {first['attachment_id'], second['attachment_id']}

    # No local record here: the attachment is found by the connector host.
    detached = cli.ok('local-detach', volume['id'], '--host', 'cli-host-a',
                      state='empty')
    assert [d['attachment_id'] for d in detached['detached']] == [
        first['attachment_id']]
    assert [a['id'] for a in _attachments(sandbox, volume['id'])] == [
        second['attachment_id']]
    assert sandbox.get_volume(volume['id'])['status'] == 'in-use'

    # From the local record.
    detached = cli.ok('local-detach', volume['id'], '--host', 'cli-host-b',
                      state='b')
    assert [d['attachment_id'] for d in detached['detached']] == [
        second['attachment_id']]
    assert _attachments(sandbox, volume['id']) == []
    assert _records(cli, 'b') == []
    # Host a's record outlived its attachment: forget it.
    cli.ok('local-detach', volume['id'], '--host', 'cli-host-a',
           '--attachment-id', first['attachment_id'], state='a')
    assert _records(cli, 'a') == []
    sandbox.wait_volume(volume['id'], 'available')
    sandbox.delete_volume(volume['id'])


def test_missing_volume_and_clouds_yaml(cli, sandbox, tmp_path):
    code, result, text = cli.run('local-attach', 'no-such-volume')
    assert code == 3, text
    assert result['error']['kind'] == 'cinder'

    clouds = tmp_path / 'clouds.yaml'
    clouds.write_text(
        'clouds:\n  sandbox:\n    auth_type: none\n'
        '    block_storage_endpoint_override: %s\n' % sandbox.cinder_url)
    env = {k: v for k, v in cli.env.items() if not k.startswith('OS_')}
    env.update(OS_CLIENT_CONFIG_FILE=str(clouds), OS_CLOUD='sandbox')
    code, result, text = cli.run('list', env=env)
    assert code == 0, text
    assert _recorded(result) == []


def test_stale_record_replaced_second_rw_attach_refused(cli, sandbox):
    volume = sandbox.create_volume(volume_type='local')
    first = cli.ok('local-attach', volume['id'])
    # Another host cannot attach a plain volume that is in use: Cinder's
    # refusal is exit code 3 and leaves only the first attachment.
    code, result, text = cli.run('local-attach', volume['id'], '--host',
                                 'cli-other-host', state='other')
    assert code == 3, text
    assert result['error']['kind'] == 'cinder'
    assert [a['id'] for a in _attachments(sandbox, volume['id'])] == [
        first['attachment_id']]
    assert _records(cli, 'other') == []

    # The attachment is deleted behind the tool's back: the record is
    # stale, and attaching again makes a new attachment.
    sandbox.cinder.delete('/attachments/%s' % first['attachment_id'],
                          microversion='3.44', service=True)
    sandbox.wait_volume(volume['id'], 'available')
    second = cli.ok('local-attach', volume['id'])
    assert second['reused'] is False
    assert second['attachment_id'] != first['attachment_id']
    assert [a['id'] for a in _attachments(sandbox, volume['id'])] == [
        second['attachment_id']]
    assert _records(cli) == ['%s.json' % second['attachment_id']]
    cli.ok('local-detach', volume['id'])
    assert _attachments(sandbox, volume['id']) == []
    sandbox.delete_volume(volume['id'])


def test_two_attachments_of_one_host_need_an_id(cli, sandbox):
    volume = sandbox.create_volume(volume_type='local-multiattach')
    first = cli.ok('local-attach', volume['id'], '--host', 'cli-host-x',
                   state='a')
    second = cli.ok('local-attach', volume['id'], '--host', 'cli-host-x',
                    state='b')
    # Nothing recorded here and two attachments for the host: no guess.
    code, result, text = cli.run('local-detach', volume['id'], '--host',
                                 'cli-host-x', state='empty')
    assert code == 2, text
    assert first['attachment_id'] in result['error']['message']
    assert second['attachment_id'] in result['error']['message']
    assert len(_attachments(sandbox, volume['id'])) == 2
    detached = cli.ok('local-detach', volume['id'], '--host', 'cli-host-x',
                      '--attachment-id', second['attachment_id'],
                      state='empty')
    assert detached['detached'][0]['deleted_in_cinder'] is True
    assert [a['id'] for a in _attachments(sandbox, volume['id'])] == [
        first['attachment_id']]
    cli.ok('local-detach', volume['id'], '--host', 'cli-host-x', state='a')
    cli.ok('local-detach', volume['id'], '--host', 'cli-host-x', state='b')
    assert _attachments(sandbox, volume['id']) == []
    assert _records(cli, 'a') == _records(cli, 'b') == []
    sandbox.wait_volume(volume['id'], 'available')
    sandbox.delete_volume(volume['id'])


def test_global_options_before_the_command(cli, sandbox):
    volume = sandbox.create_volume(volume_type='local')
    state = cli.state('before')
    proc = cli.raw(['--state-dir', state, '--host', 'cli-host-before',
                    'local-attach', volume['id'], '-f', 'json'])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    attached = json.loads(proc.stdout)
    assert attached['host'] == 'cli-host-before'
    assert _records(cli, 'before') == ['%s.json' % attached['attachment_id']]
    [cinder_view] = _attachments(sandbox, volume['id'])
    assert cinder_view['id'] == attached['attachment_id']
    # Mixed: some before, some after the command.
    proc = cli.raw(['--host', 'cli-host-before', 'local-detach',
                    volume['id'], '--state-dir', state, '-f', 'json'])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)['detached'][0]['deleted_in_cinder']
    assert _attachments(sandbox, volume['id']) == []
    assert _records(cli, 'before') == []
    sandbox.wait_volume(volume['id'], 'available')
    sandbox.delete_volume(volume['id'])


def test_output_formats_and_columns(cli, sandbox):
    volume = sandbox.create_volume(volume_type='local')
    # Just the device path: what a script wants.
    code, _result, text = cli.run('local-attach', volume['id'],
                                  '-c', 'device_path', fmt='value')
    assert code == 0, text
    device = text.strip()
    assert device in loopdev.devices_of(sandbox.volume_file(volume))

    # Attached already: the same attachment, shown for a shell.
    code, _result, text = cli.run('local-attach', volume['id'], fmt='shell')
    assert code == 0, text
    assert 'device_path="%s"' % device in text.splitlines()
    assert 'reused="True"' in text.splitlines()

    code, rows, text = cli.run('list', '--long', fmt='yaml')
    assert code == 0, text
    [row] = _recorded(rows)
    assert row['device_path'] == device
    assert row['driver_volume_type'] == 'local'
    assert row['connected_at']

    code, _result, text = cli.run('list', '-c', 'attachment_id',
                                  '-c', 'present', fmt='csv')
    assert code == 0, text
    assert text.splitlines()[0] == '"attachment_id","present"'
    assert text.splitlines()[1].endswith(',True')

    code, _result, text = cli.run('list', fmt='table')
    assert code == 0, text
    assert device in text
    assert 'recorded_here' in text

    # An unknown column is refused before anything is done.
    code, result, text = cli.run('local-detach', volume['id'],
                                 '-c', 'no_such_column')
    assert code == 2, text
    assert result['error']['kind'] == 'usage'
    assert len(_attachments(sandbox, volume['id'])) == 1

    code, detached, text = cli.run('local-detach', volume['id'], fmt='yaml')
    assert code == 0, text
    assert detached['detached'][0]['device_path'] == device
    assert _attachments(sandbox, volume['id']) == []
    sandbox.wait_volume(volume['id'], 'available')
    sandbox.delete_volume(volume['id'])


@pytest.mark.parametrize('name', ['db-{prod}-1', '{0}{}', 'p-%s-%(x)s-100%',
                                  'données-ü-雪'])
def test_volume_names_are_not_format_strings(cli, sandbox, name):
    volume = sandbox.create_volume(volume_type='local', name=name)
    attached = cli.ok('local-attach', name, '--host', 'cli-{host}-%s')
    assert (attached['volume_id'], attached['volume_name']) == (
        volume['id'], name)
    assert attached['host'] == 'cli-{host}-%s'
    listed = cli.ok('list', '--host', 'cli-{host}-%s')
    assert [r['attachment_id'] for r in _recorded(listed)] == [
        attached['attachment_id']]
    detached = cli.ok('local-detach', name, '--host', 'cli-{host}-%s')
    assert detached['volume_name'] == name
    assert detached['detached'][0]['deleted_in_cinder'] is True
    # A missing name with braces is a plain "not found".
    code, result, text = cli.run('local-attach', name + '-{missing}')
    assert code == 3, text
    assert name + '-{missing}' in result['error']['message']
    sandbox.wait_volume(volume['id'], 'available')
    sandbox.delete_volume(volume['id'])


def test_unknown_attachment_id_is_an_error(cli, sandbox):
    volume = sandbox.create_volume(volume_type='local')
    unknown = str(uuid.uuid4())
    code, result, text = cli.run('local-detach', volume['id'],
                                 '--attachment-id', unknown)
    assert code == 2, text
    assert unknown in result['error']['message']
    assert 'neither in Cinder nor recorded' in result['error']['message']
    # One this host recorded and Cinder lost is gone for this host: fine.
    attached = cli.ok('local-attach', volume['id'])
    sandbox.cinder.delete('/attachments/%s' % attached['attachment_id'],
                          microversion='3.44', service=True)
    detached = cli.ok('local-detach', volume['id'], '--attachment-id',
                      attached['attachment_id'])
    assert detached['detached'][0]['deleted_in_cinder'] is False
    assert _records(cli) == []
    sandbox.wait_volume(volume['id'], 'available')
    sandbox.delete_volume(volume['id'])


def test_bad_configuration_values_exit_2(cli, sandbox, tmp_path):
    conf = tmp_path / 'bad.conf'
    conf.write_text('[ipa_cinder]\ncinder_retry_attempts = many\n')
    code, result, text = cli.run('local-attach', 'whatever',
                                 '--config-file', str(conf))
    assert code == 2, text
    assert str(conf) in result['error']['message']
    assert '[ipa_cinder] cinder_retry_attempts' in result['error']['message']
    clouds = tmp_path / 'clouds.yaml'
    clouds.write_text('clouds: [\n  sandbox: {\n')
    env = {k: v for k, v in cli.env.items() if not k.startswith('OS_')}
    env.update(OS_CLIENT_CONFIG_FILE=str(clouds), OS_CLOUD='sandbox')
    code, _result, text = cli.run('list', env=env)
    assert code == 2, text
    assert '%s is not valid YAML' % clouds in text
