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

"""VolumeConnections with os-brick's real LOCAL connector on loop devices.

Only a kernel iSCSI login is simulated (this kernel has no iSCSI).
"""

import os
import stat
import subprocess
import threading
import time
from unittest import mock

from os_brick.initiator.connectors import iscsi as brick_iscsi
from oslo_concurrency import processutils
from oslo_config import cfg
import pytest

from ipa_cinder.agent import hardware_manager
from ipa_cinder import exception
from ipa_cinder.host import blockdev
from ipa_cinder.host import connections
from ipa_cinder.host import iscsi as iscsi_mod
from ipa_cinder.host import registry
from tests import blockdevs

VOLUME = '1f6c2b9e-3b0e-4c59-8f6e-0d7d7a4b2c01'
VOLUME2 = '2a7d3c0f-4c1f-4d6a-9a7f-1e8e8b5c3d02'
ATTACHMENT = '3b8e4d1a-5d2a-4e7b-8b8a-2f9f9c6d4e03'
ATTACHMENT2 = '4c9f5e2b-6e3b-4f8c-9c9b-3a0a0d7e5f04'
PASSWORD = 'Secret-Chap-Pw-987654'


def local(device):
    return {'driver_volume_type': 'local', 'data': {'device_path': device}}


def iscsi():
    return {'driver_volume_type': 'iscsi',
            'data': {'target_portal': '127.0.0.1:3260',
                     'target_iqn': 'iqn.2010-10.org.openstack:volume-x',
                     'target_lun': 1, 'auth_method': 'CHAP',
                     'auth_username': 'chap-user-1',
                     'auth_password': PASSWORD}}


@pytest.fixture
def conns(state_dir):
    return connections.VolumeConnections()


def test_connect_local_records_and_is_idempotent(conns, loop_device):
    device, backing = loop_device
    first = conns.connect(VOLUME, ATTACHMENT, local(device), boot=True)
    assert first['device_path'] == device
    assert first['reused'] is False
    again = conns.connect(VOLUME, ATTACHMENT, local(device), boot=True)
    assert again['reused'] is True
    assert len(conns.list()) == 1
    assert conns.boot_connection()['volume_id'] == VOLUME


def test_second_attachment_of_same_volume_refused(conns, loop_device):
    device, _backing = loop_device
    conns.connect(VOLUME, ATTACHMENT, local(device))
    with pytest.raises(exception.VolumeConnectionError) as exc:
        conns.connect(VOLUME, ATTACHMENT2, local(device))
    assert ATTACHMENT in str(exc.value)
    assert len(conns.list()) == 1


def test_one_boot_volume(conns, loop_device, tmp_path):
    device, _backing = loop_device
    conns.connect(VOLUME, ATTACHMENT, local(device), boot=True)
    with pytest.raises(exception.VolumeConnectionError) as exc:
        conns.connect(VOLUME2, ATTACHMENT2, local(device), boot=True)
    assert 'boot volume' in str(exc.value)


def test_read_only_sets_and_clears_kernel_flag(conns, loop_device):
    device, _backing = loop_device
    conns.connect(VOLUME, ATTACHMENT, local(device), mode='ro')
    assert blockdev.is_read_only(device)
    with pytest.raises(OSError):
        fd = os.open(device, os.O_WRONLY)
        try:
            os.write(fd, b'x' * 512)
        finally:
            os.close(fd)
    conns.disconnect(volume_id=VOLUME)
    assert not blockdev.is_read_only(device)
    assert conns.list() == []


def test_disconnect_unknown_is_success(conns):
    assert conns.disconnect(volume_id=VOLUME) == []


def test_disconnect_needs_an_id(conns):
    with pytest.raises(exception.InvalidIdentifier):
        conns.disconnect()


def test_missing_device_refused_before_os_brick(conns):
    cfg.CONF.set_override('device_wait_timeout', 0.3, group='ipa_cinder')
    try:
        with pytest.raises(exception.VolumeConnectionError) as exc:
            conns.connect(VOLUME, ATTACHMENT,
                          local('/dev/ipa-cinder-absent'))
    finally:
        cfg.CONF.clear_override('device_wait_timeout', group='ipa_cinder')
    assert 'not a block device' in str(exc.value)
    assert 'waited 0.3s' in str(exc.value)
    assert VOLUME in str(exc.value)
    assert conns.list() == []


def test_device_that_appears_late_is_waited_for(conns, loop_device,
                                                tmp_path):
    device, _backing = loop_device
    link = str(tmp_path / 'late-device')
    timer = threading.Timer(0.5, os.symlink, (device, link))
    timer.start()
    try:
        result = conns.connect(VOLUME, ATTACHMENT, local(link))
    finally:
        timer.join()
    assert result['device_path'] == link


def test_recorded_device_gone_reconnects(conns, loop_device, state_dir):
    device, _backing = loop_device
    conns.connect(VOLUME, ATTACHMENT, local(device))
    reg = registry.ConnectionRegistry()
    rec = reg.get(ATTACHMENT)
    rec['device_path'] = '/dev/ipa-cinder-gone'
    reg.save(rec)
    again = conns.connect(VOLUME, ATTACHMENT, local(device))
    assert again['reused'] is False
    assert again['device_path'] == device


def _iscsiadm(session_exit_code, systemctl_works=False):
    """processutils.execute as iscsiadm/systemctl would answer here.

    iscsid and a kernel login cannot exist on this host: only their
    answers are simulated.
    """
    def execute(*cmd, **kwargs):
        if cmd[0] == 'systemctl':
            if systemctl_works:
                execute.started = True
                return '', ''
            raise processutils.ProcessExecutionError(
                cmd=' '.join(cmd), exit_code=1,
                stderr='System has not been booted with systemd')
        code = 0 if getattr(execute, 'started', False) else session_exit_code
        if code not in kwargs.get('check_exit_code', [0]):
            raise processutils.ProcessExecutionError(
                cmd=' '.join(cmd), exit_code=code,
                stderr='iscsiadm: can not connect to iSCSI daemon (111)!')
        return '', ''
    return execute


@pytest.mark.parametrize('which, code, starts, expected', [
    (None, 0, False, 'iscsiadm is not installed (package open-iscsi)'),
    ('/sbin/iscsiadm', 20, False,
     'iscsid is not running and could not be started'),
])
def test_iscsi_preflight_names_what_is_missing(conns, which, code, starts,
                                               expected):
    with mock.patch('shutil.which', autospec=True, return_value=which), \
            mock.patch.object(processutils, 'execute', autospec=True,
                              side_effect=_iscsiadm(code, starts)):
        with pytest.raises(exception.VolumeConnectionError) as exc:
            conns.connect(VOLUME, ATTACHMENT, iscsi())
    message = str(exc.value)
    assert expected in message and VOLUME in message
    assert 'portal 127.0.0.1:3260' in message
    assert 'target iqn.2010-10.org.openstack:volume-x' in message
    assert PASSWORD not in message and 'chap-user-1' not in message
    assert conns.list() == []


@pytest.mark.parametrize('code, starts', [(0, False), (21, False),
                                          (20, True)])
def test_iscsi_preflight_lets_the_login_load_the_module(code, starts):
    """No iscsi_tcp loaded yet is fine: iscsid loads it on the login."""
    with mock.patch('shutil.which', autospec=True,
                    return_value='/sbin/iscsiadm'), \
            mock.patch.object(processutils, 'execute', autospec=True,
                              side_effect=_iscsiadm(code, starts)):
        assert iscsi_mod.unusable_reason() is None


@pytest.mark.parametrize('exit_code, reason', [
    (24, 'refused the CHAP credentials'),
    (5, 'target or portal was not found'),
    (99, "login failed for ***'"),
])
def test_iscsi_login_failure_is_named_and_masked(conns, exit_code, reason):
    # The kernel iSCSI login is the one thing that cannot exist here:
    # simulate iscsiadm failing with the CHAP password on its command line.
    failure = processutils.ProcessExecutionError(
        cmd='iscsiadm -m node --op update -n node.session.auth.password '
            '-v %s' % PASSWORD,
        stderr='iscsiadm: login failed for %s' % PASSWORD,
        exit_code=exit_code)
    with mock.patch.object(connections.VolumeConnections, '_preflight',
                           autospec=True), \
            mock.patch.object(brick_iscsi.ISCSIConnector, 'connect_volume',
                              autospec=True, side_effect=failure):
        with pytest.raises(exception.VolumeConnectionError) as exc:
            conns.connect(VOLUME, ATTACHMENT, iscsi(), node='node-7')
    message = str(exc.value)
    assert PASSWORD not in message
    assert 'iSCSI login to portal 127.0.0.1:3260' in message
    assert reason in message
    assert 'node node-7' in message and VOLUME in message
    assert conns.list() == []


def test_disconnect_all_leaves_other_sessions_alone(conns, loop_device):
    """Without all_iscsi_sessions (deploy step 45) iscsiadm never runs."""
    device, _backing = loop_device
    conns.connect(VOLUME, ATTACHMENT, local(device))
    with mock.patch.object(processutils, 'execute', autospec=True,
                           side_effect=AssertionError('iscsiadm ran')):
        records, sessions = conns.disconnect_all()
    assert [r['volume_id'] for r in records] == [VOLUME]
    assert sessions == []
    assert conns.list() == []


def test_connected_device_and_partitions_detected(conns, loop_device):
    device, _backing = loop_device
    conns.connect(VOLUME, ATTACHMENT, local(device))
    assert conns.is_connected_device(device)
    assert conns.is_connected_device(device + 'p1')
    assert not conns.is_connected_device(device + '0')  # loop10 vs loop1
    assert not conns.is_connected_device('/dev/loop-unrelated')


class TestHardwareManager(object):

    def test_install_device_is_boot_volume(self, conns, loop_device):
        device, _backing = loop_device
        manager = hardware_manager.CinderHardwareManager()
        from ironic_python_agent import errors
        with pytest.raises(errors.IncompatibleHardwareMethodError):
            manager.get_os_install_device()
        conns.connect(VOLUME, ATTACHMENT, local(device), boot=False)
        with pytest.raises(errors.IncompatibleHardwareMethodError):
            manager.get_os_install_device()
        conns.disconnect(volume_id=VOLUME)
        conns.connect(VOLUME, ATTACHMENT, local(device), boot=True)
        assert manager.get_os_install_device() == device

    def test_install_device_that_no_longer_holds_the_volume(
            self, conns, loop_device, tmp_path):
        """Never an install device that is not the boot volume any more.

        Falling back to the generic manager would write the image onto a
        local disk: the error names the volume and the device instead.
        """
        from ironic_python_agent import errors
        device, _backing = loop_device
        manager = hardware_manager.CinderHardwareManager()
        conns.connect(VOLUME, ATTACHMENT, local(device), boot=True)
        other = tmp_path / 'other.img'
        with open(other, 'wb') as f:
            f.truncate(4 << 20)
        subprocess.run(['losetup', '--detach', device], check=True)
        subprocess.run(['losetup', device, str(other)], check=True)
        with pytest.raises(errors.DeviceNotFound) as exc:
            manager.get_os_install_device()
        assert VOLUME in str(exc.value) and device in str(exc.value)

    def test_reports_no_deploy_step(self):
        """Deploys of other interfaces never run anything of this plugin."""
        manager = hardware_manager.CinderHardwareManager()
        assert manager.get_deploy_steps({'uuid': 'n'}, []) == []

    def test_connected_volumes_filtered_from_listings(self, conns,
                                                      loop_device):
        from ironic_python_agent import errors
        from ironic_python_agent import hardware
        device, _backing = loop_device
        manager = hardware_manager.CinderHardwareManager()
        volume = hardware.BlockDevice(device, 'vol', 4 << 20, False)
        other = hardware.BlockDevice('/dev/loop-other', 'x', 1, False)
        with pytest.raises(errors.IncompatibleHardwareMethodError):
            manager.filter_device(volume)
        conns.connect(VOLUME, ATTACHMENT, local(device))
        assert manager.filter_device(volume) is None
        with pytest.raises(errors.IncompatibleHardwareMethodError):
            manager.filter_device(other)

    def test_support_level(self):
        from ironic_python_agent import hardware
        manager = hardware_manager.CinderHardwareManager()
        assert (manager.evaluate_hardware_support()
                == hardware.HardwareSupport.SERVICE_PROVIDER)


def test_reused_device_is_not_touched_on_disconnect(conns, loop_device,
                                                    tmp_path):
    """A loop device detached and reused for another file is not ours."""
    device, backing = loop_device
    conns.connect(VOLUME, ATTACHMENT, local(device), mode='ro')
    assert conns.list()[0]['present'] is True
    other = tmp_path / 'other.img'
    with open(other, 'wb') as f:
        f.truncate(4 << 20)
    subprocess.run(['losetup', '--detach', device], check=True)
    subprocess.run(['losetup', device, str(other)], check=True)
    assert conns.list()[0]['present'] is False
    # Its read-only flag is not cleared, nothing is flushed: the record
    # alone goes.
    blockdev.set_read_only(device, True)
    conns.disconnect(volume_id=VOLUME)
    assert blockdev.is_read_only(device)
    blockdev.set_read_only(device, False)
    assert conns.list() == []


# Hostile device paths (issue 15): a protocol whose connection data is a
# path took any existing path as the volume's device, and a FIFO blocked
# the agent for good.


@pytest.fixture
def hostile_paths(tmp_path):
    """{kind: path} of everything that is not a usable block device."""
    if os.geteuid() != 0:
        pytest.skip('device nodes need root')
    fifo = str(tmp_path / 'fifo')
    os.mkfifo(fifo)
    regular = tmp_path / 'regular'
    regular.write_text('not a volume')
    unopenable = str(tmp_path / 'no-driver')
    os.mknod(unopenable, 0o600 | stat.S_IFBLK,
             os.makedev(blockdevs.unregistered_block_major(), 0))
    link = str(tmp_path / 'link-to-proc')
    os.symlink('/proc/self/status', link)
    return {'a FIFO': fifo, 'a regular file': str(regular),
            'a directory': str(tmp_path), 'a character device': '/dev/null',
            'cannot be opened': unopenable, '/proc': link,
            'No such file': str(tmp_path / 'absent')}


def test_check_block_device_refuses_everything_else(hostile_paths):
    for kind, path in hostile_paths.items():
        with pytest.raises(exception.UnusableDevice) as exc:
            blockdev.check_block_device(path)
        assert kind in str(exc.value), (path, str(exc.value))


def test_check_block_device_accepts_a_loop_device(loop_device):
    device, _backing = loop_device
    assert stat.S_ISBLK(blockdev.check_block_device(device).st_mode)


def _in_time(function, *args, timeout=20, **kwargs):
    """Run ``function``; fail (instead of hanging) if it does not return."""
    outcome = {}

    def run():
        try:
            outcome['value'] = function(*args, **kwargs)
        except Exception as e:
            outcome['error'] = e
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout)
    assert not worker.is_alive(), '%s blocked' % function.__name__
    return outcome


@pytest.mark.parametrize('protocol', ['gpfs', 'local'])
@pytest.mark.parametrize('mode', ['rw', 'ro'])
def test_path_protocols_refuse_what_is_no_block_device(
        conns, hostile_paths, protocol, mode):
    cfg.CONF.set_override('device_wait_timeout', 0.2, group='ipa_cinder')
    try:
        for kind, path in hostile_paths.items():
            info = {'driver_volume_type': protocol,
                    'data': {'device_path': path}}
            outcome = _in_time(conns.connect, VOLUME, ATTACHMENT, info,
                               mode=mode, boot=True)
            error = outcome.get('error')
            assert isinstance(error, exception.VolumeConnectionError), (
                kind, outcome)
            assert 'data.device_path' in str(error) and kind in str(error)
            assert conns.list() == []
    finally:
        cfg.CONF.clear_override('device_wait_timeout', group='ipa_cinder')


def test_pseudo_filesystems_refused_as_text(conns):
    for path in ('/proc/self/fd/0', '/sys/kernel', '//proc/1/root/dev/x',
                 '/dev/../sys/block'):
        with pytest.raises(exception.InvalidConnectionInfo) as exc:
            conns.connect(VOLUME, ATTACHMENT, {
                'driver_volume_type': 'gpfs', 'data': {'device_path': path}})
        assert exc.value.field == 'data.device_path'


def test_path_returned_by_os_brick_is_checked(conns, hostile_paths):
    """Whatever the protocol, os-brick's answer must be a block device."""
    fake = mock.Mock()
    fake.connect_volume.return_value = {'type': 'x',
                                        'path': hostile_paths['a FIFO']}
    with mock.patch.object(connections.brick, 'make_connector',
                           autospec=True, return_value=fake), \
            mock.patch.object(iscsi_mod, 'unusable_reason', autospec=True,
                              return_value=None):
        outcome = _in_time(conns.connect, VOLUME, ATTACHMENT, iscsi(),
                           mode='ro')
    assert isinstance(outcome.get('error'), exception.VolumeConnectionError)
    assert 'not a usable block device' in str(outcome['error'])
    # Undone through os-brick, nothing recorded, no secret in the text.
    fake.disconnect_volume.assert_called_once()
    assert conns.list() == []
    assert PASSWORD not in str(outcome['error'])


def test_a_device_that_never_answers_times_out(loop_device):
    device, _backing = loop_device
    release = threading.Event()
    with mock.patch.object(blockdev, 'QUERY_TIMEOUT', 0.3):
        started = time.monotonic()
        with pytest.raises(exception.DeviceTimeout) as exc:
            blockdev._with_device(device, lambda fd: release.wait(30),
                                  blockdev.QUERY_TIMEOUT)
    assert time.monotonic() - started < 5
    assert device in str(exc.value)
    release.set()


def test_disconnect_of_a_path_swapped_for_a_fifo(conns, loop_device,
                                                 tmp_path):
    """A recorded device replaced by a FIFO: forgotten, never opened."""
    device, _backing = loop_device
    link = str(tmp_path / 'device')
    os.symlink(device, link)
    conns.connect(VOLUME, ATTACHMENT, local(link))
    os.unlink(link)
    os.mkfifo(link)
    outcome = _in_time(conns.disconnect, volume_id=VOLUME)
    assert 'error' not in outcome, outcome
    assert conns.list() == []
