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

"""A VM node's spec, its qemu command line and its serial log.

No qemu runs here: the command line is checked as built, and the serial
log is a file written by the test (tests/functional/vm boots real VMs).
"""

import json
import os

import pytest

from ipa_cinder_sandbox import errors
from ipa_cinder_sandbox import vm

PYTHON = '/opt/venv/bin/python3'


def _spec(tmp_path, **overrides):
    fields = dict(name='node-0', directory=str(tmp_path / 'vms' / 'node-0'),
                  mac='52:54:00:12:34:56', guest_forwards=[(6385, 18707),
                                                           (8080, 18708)],
                  host_forwards=[(18710, 9999)], disk_mib=2048,
                  boot_url='http://10.0.2.100:8080/boot.ipxe')
    fields.update(overrides)
    return vm.VMSpec(**fields)


def _option(argv, flag):
    """The values following each occurrence of ``flag`` in ``argv``."""
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == flag]


def test_argv_runs_tcg_with_the_network_firmware(tmp_path):
    spec = _spec(tmp_path)
    argv = spec.qemu_argv(PYTHON)
    assert argv[0] == 'qemu-system-x86_64'
    assert _option(argv, '-accel') == ['tcg']
    assert '-enable-kvm' not in argv
    assert _option(argv, '-m') == [str(vm.DEFAULT_MEMORY_MIB)]
    assert _option(argv, '-smp') == ['1']
    assert '-nodefaults' in argv
    assert _option(argv, '-kernel') == [vm.IPXE_KERNEL]
    assert _option(argv, '-initrd') == [spec.path('firmware.ipxe')]
    assert _option(argv, '-pidfile') == [spec.path('qemu.pid')]
    # A guest power-off ends qemu; a guest reboot does not.
    assert '-no-reboot' not in argv
    assert _option(argv, '-action') == ['reboot=reset,shutdown=poweroff']
    assert _option(argv, '-device') == [
        'virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56']
    assert _option(argv, '-drive') == [
        'file=%s,format=raw,if=virtio,discard=unmap' % spec.path('disk.raw')]
    assert _option(argv, '-serial') == ['chardev:serial0']
    assert _option(argv, '-chardev') == [
        'file,id=serial0,path=%s,append=on' % spec.path('serial.log')]


def test_network_is_restricted_to_loopback_forwards(tmp_path):
    spec = _spec(tmp_path)
    netdev, = _option(spec.qemu_argv(PYTHON), '-netdev')
    options = netdev.split(',')
    assert options[:3] == ['user', 'id=net0', 'restrict=on']
    guest = [o for o in options if o.startswith('guestfwd=')]
    host = [o for o in options if o.startswith('hostfwd=')]
    assert len(guest) + len(host) + 3 == len(options)
    relay = '%s -I -S %s 127.0.0.1' % (PYTHON, spec.path('relay.py'))
    assert guest == [
        'guestfwd=tcp:10.0.2.100:6385-cmd:%s 18707' % relay,
        'guestfwd=tcp:10.0.2.100:8080-cmd:%s 18708' % relay]
    assert host == ['hostfwd=tcp:127.0.0.1:18710-:9999']
    assert vm.SERVICE_ADDRESS == '10.0.2.100'


def test_argv_without_disk_and_without_forwards(tmp_path):
    spec = _spec(tmp_path, disk_mib=None, guest_forwards=(),
                 host_forwards=(), memory_mib=256)
    argv = spec.qemu_argv(PYTHON)
    assert _option(argv, '-drive') == []
    assert _option(argv, '-netdev') == ['user,id=net0,restrict=on']
    assert _option(argv, '-m') == ['256']


def test_argv_holds_no_secret(tmp_path):
    spec = _spec(tmp_path)
    text = ' '.join(spec.qemu_argv(PYTHON)) + json.dumps(spec.to_dict())
    # The test's own directory is named after the test.
    text = text.replace(str(tmp_path), '<tmp>')
    for word in ('password', 'secret', 'chap', '%40', 'iscsi://'):
        assert word not in text.lower()


def test_firmware_chains_and_retries(tmp_path):
    script = _spec(tmp_path).firmware_script()
    lines = script.splitlines()
    assert lines[0] == '#!ipxe'
    assert 'dhcp || goto wait' in lines
    assert 'chain http://10.0.2.100:8080/boot.ipxe || goto wait' in lines
    assert lines[-1] == 'goto retry'
    assert ':retry' in lines and ':wait' in lines


def test_firmware_script_given_as_is(tmp_path):
    spec = _spec(tmp_path, boot_url=None,
                 boot_script='echo MARKER\n:loop\nsleep 1\ngoto loop\n')
    assert spec.firmware_script() == (
        '#!ipxe\necho MARKER\n:loop\nsleep 1\ngoto loop\n')


def test_spec_round_trip(tmp_path):
    spec = _spec(tmp_path, memory_mib=512, cpus=2)
    path = spec.save()
    assert path == spec.path('vm.json')
    with open(path) as f:
        data = json.load(f)
    assert data['guest_forwards'] == [[6385, 18707], [8080, 18708]]
    again = vm.VMSpec.load(path)
    assert again.to_dict() == spec.to_dict()
    assert again.qemu_argv(PYTHON) == spec.qemu_argv(PYTHON)
    other = str(tmp_path / 'elsewhere.json')
    assert spec.save(other) == other
    assert vm.VMSpec.load(other).to_dict() == spec.to_dict()


@pytest.mark.parametrize('overrides, needed', [
    ({'mac': 'fa:16:3e:00:00:01'}, 'not beginning fa:'),
    ({'mac': '01:00:5e:00:00:01'}, 'unicast'),
    ({'mac': '52:54:00:12:34'}, 'unicast'),
    ({'name': 'bad name'}, 'name'),
    ({'directory': 'relative/dir'}, 'absolute'),
    ({'directory': '/tmp/a,b'}, 'absolute'),
    ({'directory': '/tmp/a b'}, 'absolute'),
    ({'directory': '/' + 'd' * 120}, 'unix socket'),
    ({'boot_script': 'echo x'}, 'one of boot_url and boot_script'),
    ({'boot_url': None}, 'one of boot_url and boot_script'),
    ({'memory_mib': 16}, 'memory_mib'),
    ({'guest_forwards': [(0, 80)]}, 'ports 1-65535'),
    ({'host_forwards': [(70000, 9999)]}, 'ports 1-65535'),
    ({'host_forwards': [(1, 2, 3)]}, 'ports 1-65535'),
])
def test_spec_refuses_bad_fields(tmp_path, overrides, needed):
    with pytest.raises(errors.SandboxError) as failure:
        _spec(tmp_path, **overrides)
    assert needed in str(failure.value)


def test_python_path_unusable_in_a_forward_is_refused(tmp_path):
    with pytest.raises(errors.SandboxError):
        _spec(tmp_path).qemu_argv('/opt/my venv/bin/python')


def test_serial_tail_reads_the_current_boot_only(tmp_path):
    spec = _spec(tmp_path)
    machine = vm.VirtualMachine(spec)
    assert machine.serial_tail() == ''
    os.makedirs(spec.directory)
    with open(machine.serial_log, 'w') as f:
        f.write('\n[ipa-cinder-sandbox] node-0: power on at t0\r\n'
                'SeaBIOS (version 1.16)\r\nfirst boot\r\n'
                # A guest reboot: the firmware starts again.
                '\x1bc\x1b[2JSeaBIOS (version 1.16)\r\nsecond boot\r\n'
                'partial line')
    assert machine.serial_tail() == (
        '\x1bc\x1b[2JSeaBIOS (version 1.16)\nsecond boot\npartial line')
    assert machine.serial_tail(1) == 'partial line'
    with open(machine.serial_log, 'a') as f:
        f.write('\n[ipa-cinder-sandbox] node-0: power on at t1\n')
    assert machine.serial_tail() == (
        '[ipa-cinder-sandbox] node-0: power on at t1')
    with pytest.raises(errors.SandboxError) as failure:
        machine.wait_for_serial('second boot', 5)
    # Not running: no waiting, and the error shows the tail.
    assert 'is off' in str(failure.value)
    assert 'power on at t1' in str(failure.value)


def test_a_vm_that_never_ran_is_off(tmp_path):
    machine = vm.VirtualMachine(_spec(tmp_path))
    assert machine.is_running() is False
    assert machine.pid is None
    assert machine.stop() is False
    with pytest.raises(errors.SandboxError):
        machine.reset()
    with pytest.raises(errors.SandboxError):
        machine.powerdown()
