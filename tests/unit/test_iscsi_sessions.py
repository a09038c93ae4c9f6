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

"""iSCSI sessions no record knows (firmware/iBFT logins), on this host.

This kernel has no iSCSI, so what only a kernel iSCSI login makes is
simulated: iscsiadm's output and exit codes, and a sysfs tree under
tmp_path (``iscsi_sessions.SYSFS_ROOT`` points at it). The session's
disks are real loop devices this test owns (``DEV_ROOT`` links their
kernel names to them), so the flush before a logout is the real one.
"""

import os
import subprocess
import time
from unittest import mock

from ironic_python_agent import errors
from ironic_python_agent import hardware
from oslo_concurrency import processutils
import pytest

from ipa_cinder.agent import extension
from ipa_cinder.agent import hardware_manager
from ipa_cinder import exception
from ipa_cinder.host import blockdev
from ipa_cinder.host import iscsi_sessions

IQN1 = 'iqn.2010-10.org.openstack:volume-1f6c2b9e'
IQN2 = 'iqn.2010-10.org.openstack:volume-2a7d3c0f'
PASSWORD = 'Chap-Secret-Pw-4711'
TWO_SESSIONS = (
    'tcp: [1] 192.0.2.10:3260,1 %s (non-flash)\n'
    'tcp: [2] [2001:db8::7]:3260,1 %s (non-flash)\n' % (IQN1, IQN2))

# Where each kernel device of the fake sysfs lives: session 1 has a disk
# with a partition, session 2 a disk under a multipath map, vda is local.
SCSI1 = 'devices/platform/host2/session1/target2:0:0/2:0:0:1/block'
SCSI2 = 'devices/platform/host3/session2/target3:0:0/3:0:0:1/block'
DEVICES = {
    'sda': SCSI1 + '/sda',
    'sda1': SCSI1 + '/sda/sda1',
    'sdb': SCSI2 + '/sdb',
    'dm-0': 'devices/virtual/block/dm-0',
    'vda': 'devices/pci0000:00/0000:00:04.0/virtio1/block/vda',
}


def _link(path, target):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(os.path.relpath(target, os.path.dirname(path)), path)


def add_session(sysfs, sid, iqn):
    session = os.path.join(sysfs, 'devices', 'platform', 'host%d' % (sid + 1),
                           'session%d' % sid, 'iscsi_session',
                           'session%d' % sid)
    os.makedirs(session, exist_ok=True)
    with open(os.path.join(session, 'targetname'), 'w') as f:
        f.write(iqn + '\n')
    _link(os.path.join(sysfs, 'class', 'iscsi_session', 'session%d' % sid),
          session)


@pytest.fixture
def sysfs(tmp_path, monkeypatch):
    """A sysfs tree; its root's own path holds a "sessionN" component."""
    root = str(tmp_path / 'session7' / 'sys')
    for name, where in DEVICES.items():
        real = os.path.join(root, where)
        os.makedirs(real)
        if name == 'sda1':
            open(os.path.join(real, 'partition'), 'w').close()
        _link(os.path.join(root, 'class', 'block', name), real)
    _link(os.path.join(root, 'class', 'block', 'dm-0', 'slaves', 'sdb'),
          os.path.join(root, SCSI2, 'sdb'))
    add_session(root, 1, IQN1)
    add_session(root, 2, IQN2)
    monkeypatch.setattr(iscsi_sessions, 'SYSFS_ROOT', root)
    monkeypatch.setattr(iscsi_sessions, 'SETTLE_TIMEOUT', 0.5)
    return root


@pytest.fixture
def disks(tmp_path, monkeypatch, loop_device):
    """DEV_ROOT: the session's kernel names, as links to a loop device."""
    device, _backing = loop_device
    dev = tmp_path / 'dev'
    dev.mkdir()
    for name in ('sda', 'sda1', 'sdb', 'dm-0'):
        os.symlink(device, str(dev / name))
    monkeypatch.setattr(iscsi_sessions, 'DEV_ROOT', str(dev))
    return device


class FakeIscsiadm(object):
    """iscsiadm as a kernel with sessions would answer (sysfs follows)."""

    def __init__(self, sysfs, listing=TWO_SESSIONS, fail=None, events=None):
        self.sysfs = sysfs
        self.listing = listing
        self.fail = fail or {}
        self.events = events if events is not None else []

    def __call__(self, *cmd, **kwargs):
        assert cmd[0] == 'iscsiadm' and kwargs.get('timeout')
        if cmd[1:] == ('-m', 'session'):
            if self.listing:
                return self.listing, ''
            if 21 in kwargs.get('check_exit_code', [0]):
                return '', 'iscsiadm: No active sessions.\n'
            raise processutils.ProcessExecutionError(
                exit_code=21, stderr='iscsiadm: No active sessions.')
        assert cmd[1:3] == ('-m', 'session') and cmd[3] == '-r'
        sid = int(cmd[4])
        self.events.append(('logout', sid))
        if sid in self.fail:
            raise processutils.ProcessExecutionError(
                exit_code=self.fail[sid], cmd=' '.join(cmd),
                stderr='iscsiadm: Could not logout of [sid: %d, target: x, '
                       'portal: y] password=%s' % (sid, PASSWORD))
        os.unlink(os.path.join(self.sysfs, 'class', 'iscsi_session',
                               'session%d' % sid))
        return 'Logout of [sid: %d] successful.' % sid, ''


@pytest.fixture
def iscsiadm(sysfs, monkeypatch):
    fake = FakeIscsiadm(sysfs)
    monkeypatch.setattr(processutils, 'execute', fake)
    monkeypatch.setattr(iscsi_sessions.shutil, 'which',
                        lambda name: '/usr/sbin/' + name)
    return fake


# Parsing

def test_parse_ipv4_ipv6_and_old_format():
    text = TWO_SESSIONS + 'iser: [12] 198.51.100.1:3261,2 %s\n' % IQN1
    sessions = iscsi_sessions.parse_sessions(text)
    assert [(s.sid, s.transport, s.portal, s.tpgt, s.target_iqn, s.flash)
            for s in sessions] == [
        (1, 'tcp', '192.0.2.10:3260', 1, IQN1, False),
        (2, 'tcp', '[2001:db8::7]:3260', 1, IQN2, False),
        (12, 'iser', '198.51.100.1:3261', 2, IQN1, False)]
    flash = iscsi_sessions.parse_sessions(
        'qla4xxx: [3] 192.0.2.1:3260,1 %s (flash)' % IQN1)
    assert flash[0].flash is True


@pytest.mark.parametrize('garbage', [
    '', '\n\n', 'iscsiadm: No active sessions.',
    'tcp: [1] 192.0.2.10:3260 %s' % IQN1,            # no tpgt
    'tcp: [x] 192.0.2.10:3260,1 %s' % IQN1,          # no number
    'tcp: [1] 192.0.2.10:3260,1 %s trailing' % IQN1,
    'tcp: [1] 192.0.2.10:3260,1 %s (flashy)' % IQN1,
    'tcp: [1] ' + 'a' * 5000 + ',1 ' + IQN1,
    'tcp: [1] 192.0.2.10:3260,1 ' + 'q' * 300,
    '\x00\xff tcp: [1]', 'tcp: [99999999999] 1.2.3.4:1,1 iqn.x',
])
def test_parse_skips_what_is_no_session(garbage):
    assert iscsi_sessions.parse_sessions(garbage) == []


def test_parse_is_bounded_and_linear():
    # A hostile listing: long lines that almost match, then many sessions.
    near_miss = ('tcp: [1] ' + 'a' * 300 + ',1 ' + 'b' * 255
                 + ' (non-flas' + ' ' * 300)
    assert len(near_miss) < iscsi_sessions.MAX_LINE
    lines = [near_miss] * 200 + [
        'tcp: [%d] 192.0.2.1:3260,1 %s' % (i, IQN1) for i in range(3000)]
    started = time.monotonic()
    sessions = iscsi_sessions.parse_sessions('\n'.join(lines))
    assert time.monotonic() - started < 2
    assert len(sessions) == iscsi_sessions.MAX_SESSIONS
    # The same session twice counts once.
    assert len(iscsi_sessions.parse_sessions(TWO_SESSIONS * 3)) == 2


def test_list_sessions_none_and_some(iscsiadm):
    assert [s.sid for s in iscsi_sessions.list_sessions()] == [1, 2]
    iscsiadm.listing = ''
    assert iscsi_sessions.list_sessions() == []


def test_list_without_iscsiadm(sysfs, monkeypatch):
    monkeypatch.setattr(iscsi_sessions.shutil, 'which', lambda name: None)
    with pytest.raises(exception.IscsiSessionError) as exc:
        iscsi_sessions.list_sessions()
    assert 'not installed' in str(exc.value) and IQN1 in str(exc.value)
    for sid in (1, 2):
        os.unlink(os.path.join(sysfs, 'class', 'iscsi_session',
                               'session%d' % sid))
    assert iscsi_sessions.list_sessions() == []


# Disks of sessions (sysfs)

def test_devices_map_to_their_session(sysfs):
    assert iscsi_sessions.session_of_device('sda') == 1
    assert iscsi_sessions.session_of_device('/dev/sda1') == 1
    assert iscsi_sessions.session_of_device('sdb') == 2
    assert iscsi_sessions.session_of_device('dm-0') == 2
    # The root's own "session7" directory is no session of the host.
    for name in ('vda', 'sdz', '/dev/loop0', '..', '../../etc', '',
                 'a' * 100, None, 7, '-sda'):
        assert iscsi_sessions.session_of_device(name) is None
    assert iscsi_sessions.session_devices() == {
        1: ['sda1', 'sda'], 2: ['dm-0', 'sdb']}


def test_hostile_sysfs_is_bounded(sysfs):
    block = os.path.join(sysfs, 'class', 'block')
    # A link loop and two maps over each other.
    os.symlink('loopy', os.path.join(block, 'loopy'))
    for name, other in (('dm-1', 'dm-2'), ('dm-2', 'dm-1')):
        os.makedirs(os.path.join(block, name, 'slaves'))
        os.symlink('../../' + other,
                   os.path.join(block, name, 'slaves', other))
    # A link out of sysfs into a path that reads like a session.
    outside = os.path.join(os.path.dirname(sysfs), 'x', 'session5', 'y')
    os.makedirs(outside)
    os.symlink(outside, os.path.join(block, 'sdq'))
    for name in ('loopy', 'dm-1', 'dm-2', 'sdq'):
        assert iscsi_sessions.session_of_device(name) is None
    assert set(iscsi_sessions.session_devices()) == {1, 2}


# Logging out

def test_logout_all_flushes_everything_first(iscsiadm, disks, sysfs):
    events = iscsiadm.events
    real_flush = blockdev.flush

    def flush(path):
        events.append(('flush', os.path.basename(path)))
        real_flush(path)

    with mock.patch.object(blockdev, 'flush', side_effect=flush,
                           autospec=True):
        result = iscsi_sessions.logout_all()
    assert result == [
        {'target_iqn': IQN1, 'portal': '192.0.2.10:3260'},
        {'target_iqn': IQN2, 'portal': '[2001:db8::7]:3260'}]
    assert events == [('flush', 'sda1'), ('flush', 'sda'),
                      ('flush', 'dm-0'), ('flush', 'sdb'),
                      ('logout', 1), ('logout', 2)]
    assert os.listdir(os.path.join(sysfs, 'class', 'iscsi_session')) == []


def test_logout_failure_names_portal_and_target_not_secrets(
        iscsiadm, disks):
    iscsiadm.fail = {2: 8}
    with pytest.raises(exception.IscsiSessionError) as exc:
        iscsi_sessions.logout_all()
    text = str(exc.value)
    assert 'session 2' in text and IQN2 in text and '2001:db8::7' in text
    assert 'timed out' in text
    assert 'session 1' not in text
    assert iscsiadm.events[-2:] == [('logout', 1), ('logout', 2)]
    # An exit code with no known meaning shows iscsiadm's words, masked.
    iscsiadm.fail = {1: 7}
    errors_seen = []
    iscsi_sessions.logout_all(errors=errors_seen)
    assert len(errors_seen) == 1 and 'exit code 7' in errors_seen[0]
    assert 'Could not logout of [sid: 1' in errors_seen[0]
    assert PASSWORD not in errors_seen[0] and 'password' in errors_seen[0]


def test_unflushable_device_keeps_its_session(iscsiadm, disks):
    with mock.patch.object(blockdev, 'flush', autospec=True, side_effect=(
            exception.DeviceTimeout('/dev/sda1', 300), None, None, None)):
        with pytest.raises(exception.IscsiSessionError) as exc:
            iscsi_sessions.logout_all()
    assert 'cannot flush' in str(exc.value) and IQN1 in str(exc.value)
    assert iscsiadm.events == [('logout', 2)]


def test_forced_logout_despite_flush_failure(iscsiadm, disks):
    with mock.patch.object(blockdev, 'flush', autospec=True,
                           side_effect=OSError(5, 'I/O error')):
        assert len(iscsi_sessions.logout_all(force=True)) == 2
    assert iscsiadm.events == [('logout', 1), ('logout', 2)]


def test_mounted_disk_is_not_logged_out(iscsiadm, disks, tmp_path):
    subprocess.run(['mkfs.ext4', '-q', disks], check=True)
    point = tmp_path / 'mnt'
    point.mkdir()
    subprocess.run(['mount', disks, str(point)], check=True)
    try:
        with pytest.raises(exception.IscsiSessionError) as exc:
            iscsi_sessions.logout_all()
    finally:
        subprocess.run(['umount', str(point)], check=True)
    assert 'is mounted at %s' % point in str(exc.value)
    assert iscsiadm.events == []


def test_session_that_stays_in_the_kernel_is_an_error(iscsiadm, sysfs,
                                                      monkeypatch):
    monkeypatch.setattr(iscsi_sessions, 'DEV_ROOT', str(sysfs) + '/none')
    add_session(sysfs, 9, 'iqn.2004-04.example:unlisted')
    original = iscsiadm.__call__

    def logout_without_effect(*cmd, **kwargs):
        if '-u' in cmd:
            iscsiadm.events.append(('logout', int(cmd[4])))
            return '', ''
        return original(*cmd, **kwargs)

    monkeypatch.setattr(processutils, 'execute', logout_without_effect)
    errors_seen = []
    assert len(iscsi_sessions.logout_all(errors=errors_seen)) == 2
    text = '; '.join(errors_seen)
    assert 'still in sysfs' in text and IQN1 in text
    assert 'session 9' in text and 'iqn.2004-04.example:unlisted' in text


def test_iscsid_unreachable_fails_every_session(iscsiadm, disks,
                                                monkeypatch):
    from ipa_cinder.host import iscsi
    monkeypatch.setattr(iscsi, 'unusable_reason',
                        lambda: 'iscsid is not running and could not be '
                                'started')
    with pytest.raises(exception.IscsiSessionError) as exc:
        iscsi_sessions.logout_all()
    assert IQN1 in str(exc.value) and IQN2 in str(exc.value)
    assert 'iscsid' in str(exc.value)
    assert iscsiadm.events == []


def test_nothing_to_log_out(iscsiadm, sysfs):
    iscsiadm.listing = ''
    for sid in (1, 2):
        os.unlink(os.path.join(sysfs, 'class', 'iscsi_session',
                               'session%d' % sid))
    assert iscsi_sessions.logout_all() == []


# The agent

def test_disconnect_all_parameter_validated():
    agent = extension.CinderExtension.__new__(extension.CinderExtension)
    for bad in ('perhaps', [True], {'x': 1}, 2.5, 'password=' + PASSWORD):
        with pytest.raises(errors.InvalidCommandParamsError) as exc:
            extension.CinderExtension.disconnect_all(
                agent, all_iscsi_sessions=bad)
        assert 'all_iscsi_sessions must be a boolean' in exc.value.details
        assert PASSWORD not in exc.value.details
    extension.params.validate_disconnect_all(agent, all_iscsi_sessions='true')
    extension.params.validate_disconnect_all(agent)


def test_agent_command_reports_sessions(iscsiadm, disks, state_dir):
    agent = extension.CinderExtension.__new__(extension.CinderExtension)
    agent.connections = extension.connections.VolumeConnections()
    command = extension.CinderExtension.disconnect_all.__wrapped__
    assert command(agent) == {'disconnected': [], 'sessions_logged_out': []}
    assert iscsiadm.events == []
    result = command(agent, all_iscsi_sessions=True)
    assert result['sessions_logged_out'][0] == {
        'target_iqn': IQN1, 'portal': '192.0.2.10:3260'}
    assert len(result['sessions_logged_out']) == 2


def test_agent_command_failure_names_target(iscsiadm, disks, state_dir):
    iscsiadm.fail = {1: 24}
    agent = extension.CinderExtension.__new__(extension.CinderExtension)
    agent.connections = extension.connections.VolumeConnections()
    command = extension.CinderExtension.disconnect_all.__wrapped__
    with pytest.raises(errors.CommandExecutionError) as exc:
        command(agent, all_iscsi_sessions=True)
    assert IQN1 in exc.value.details and '192.0.2.10:3260' in (
        exc.value.details)
    assert PASSWORD not in exc.value.details


# The hardware manager

def test_filter_device_hides_every_session_disk(sysfs, state_dir):
    manager = hardware_manager.CinderHardwareManager()
    for name in ('/dev/sda', '/dev/sda1', '/dev/sdb', '/dev/dm-0'):
        device = hardware.BlockDevice(name, 'disk', 1 << 30, False)
        assert manager.filter_device(device) is None
    for name in ('/dev/vda', '/dev/sdz'):
        with pytest.raises(errors.IncompatibleHardwareMethodError):
            manager.filter_device(
                hardware.BlockDevice(name, 'disk', 1 << 30, False))
    with pytest.raises(errors.IncompatibleHardwareMethodError):
        manager.filter_device(object())


# VolumeConnections.disconnect_all

def test_records_first_then_every_session(iscsiadm, disks, state_dir):
    conns = extension.connections.VolumeConnections()
    volume = '1f6c2b9e-3b0e-4c59-8f6e-0d7d7a4b2c01'
    attachment = '3b8e4d1a-5d2a-4e7b-8b8a-2f9f9c6d4e03'
    conns.connect(volume, attachment, {'driver_volume_type': 'local',
                                       'data': {'device_path': disks}})
    events = iscsiadm.events
    real = conns._disconnect_record

    def disconnect_record(record, force=False):
        events.append(('record', record['volume_id']))
        return real(record, force=force)

    with mock.patch.object(conns, '_disconnect_record', autospec=True,
                           side_effect=disconnect_record):
        records, sessions = conns.disconnect_all(all_iscsi_sessions=True)
    assert [r['volume_id'] for r in records] == [volume]
    assert [s['target_iqn'] for s in sessions] == [IQN1, IQN2]
    assert events == [('record', volume), ('logout', 1), ('logout', 2)]
    assert conns.list() == []


def test_record_and_session_failures_reported_together(iscsiadm, disks,
                                                       state_dir):
    iscsiadm.fail = {2: 20}
    conns = extension.connections.VolumeConnections()
    with mock.patch.object(conns.registry, 'list', autospec=True,
                           return_value=[{'volume_id': 'v-1',
                                          'attachment_id': 'a-1'}]), \
            mock.patch.object(conns, '_disconnect_record', autospec=True,
                              side_effect=exception.VolumeConnectionError(
                                  'volume v-1: gone wrong')):
        with pytest.raises(exception.VolumeConnectionError) as exc:
            conns.disconnect_all(all_iscsi_sessions=True)
    assert 'volume v-1: gone wrong' in str(exc.value)
    assert IQN2 in str(exc.value) and 'iscsid' in str(exc.value)
    # Session 1 was logged out all the same.
    assert iscsiadm.events == [('logout', 1), ('logout', 2)]
