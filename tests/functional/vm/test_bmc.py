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

"""A real BMC process driving a real qemu (TCG), through real ipmitool.

ipmitool is called the way Ironic's ipmitool driver calls it (``-I lanplus
-H -L ADMINISTRATOR -p -U -f <password file> -R -N``). The VM's firmware
script prints a marker, then fetches twice from a loopback HTTP server
through the guest forward (one relay per connection), then idles. No
sandbox service is needed: the BMC and the VM run under a temporary
directory, on ports found free. Every wait is bounded; a failure shows the
serial console's tail.
"""

import functools
import http.server
import os
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

from ipa_cinder_sandbox import bmc as bmc_mod
from ipa_cinder_sandbox import errors
from ipa_cinder_sandbox import process
from ipa_cinder_sandbox import vm as vm_mod

USERNAME = 'admin'
PASSWORD = 'ipmi-pw-7c41e9'
MARKER = 'BMC-TEST-MARKER'
GUEST_HTTP_PORT = 8080
BOOT_SCRIPT = '''\
echo %(marker)s
dhcp
chain http://%(address)s:%(port)d/second.ipxe
'''
SECOND_SCRIPT = '''\
#!ipxe
echo CHAINED-THROUGH-THE-FORWARD
imgfetch http://%(address)s:%(port)d/second.ipxe && echo SECOND-FETCH-OK
:idle
sleep 1
goto idle
'''
IPMITOOL_TIMEOUT = 30
BOOT_TIMEOUT = 40


def _free_port(kind):
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Rig(object):
    """The BMC, its VM, and ipmitool against it."""

    def __init__(self, root, procs, spec, port, name, password_file):
        self.root = root
        self.procs = procs
        self.vm = vm_mod.VirtualMachine(spec)
        self.port = port
        self.name = name
        self.password_file = password_file

    def ipmitool(self, *command, password_file=None, check=True):
        argv = ['ipmitool', '-I', 'lanplus', '-H', '127.0.0.1',
                '-L', 'ADMINISTRATOR', '-p', str(self.port),
                '-U', USERNAME, '-f', password_file or self.password_file,
                '-R', '3', '-N', '1'] + list(command)
        result = subprocess.run(argv, capture_output=True, text=True,
                                timeout=IPMITOOL_TIMEOUT)
        if check:
            assert result.returncode == 0, (
                'ipmitool %s: %s%s\nserial console:\n%s' % (
                    ' '.join(command), result.stdout, result.stderr,
                    self.vm.serial_tail()))
        return result

    def power_status(self):
        out = self.ipmitool('power', 'status').stdout
        return re.search(r'Chassis Power is (on|off)', out).group(1)

    def bmc_log(self):
        with open(self.procs.log_path(self.name)) as f:
            return f.read()


def _http_server(directory):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=directory)
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope='module')
def rig(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip('VM nodes run as root, as the sandbox does')
    for program in ('qemu-system-x86_64', 'ipmitool'):
        if not shutil.which(program):
            pytest.skip('%s is not installed (bindep, profile sandbox)'
                        % program)
    if not os.path.exists(vm_mod.IPXE_KERNEL):
        pytest.skip('%s is missing (package ipxe)' % vm_mod.IPXE_KERNEL)
    root = str(tmp_path_factory.mktemp('vm'))
    www = os.path.join(root, 'www')
    os.makedirs(www)
    server = _http_server(www)
    values = {'marker': MARKER, 'address': vm_mod.SERVICE_ADDRESS,
              'port': GUEST_HTTP_PORT}
    with open(os.path.join(www, 'second.ipxe'), 'w') as f:
        f.write(SECOND_SCRIPT % values)
    spec = vm_mod.VMSpec(
        'bmc-test', os.path.join(root, 'vms', 'bmc-test'),
        '52:54:00:5a:0b:01', memory_mib=256, disk_mib=64,
        guest_forwards=[(GUEST_HTTP_PORT, server.server_address[1])],
        host_forwards=[(_free_port(socket.SOCK_STREAM), 9999)],
        boot_script=BOOT_SCRIPT % values)
    password_file = os.path.join(root, 'ipmi-password')
    with open(password_file, 'w') as f:
        f.write(PASSWORD)
    procs = process.ProcessTable(os.path.join(root, 'run'),
                                 os.path.join(root, 'log'))
    port = _free_port(socket.SOCK_DGRAM)
    name = bmc_mod.start_bmc(procs, spec, port, (USERNAME, PASSWORD))
    try:
        yield Rig(root, procs, spec, port, name, password_file)
    finally:
        procs.stop(name)
        vm_mod.VirtualMachine(spec).stop()
        server.shutdown()


def test_power_on_boots_the_firmware(rig):
    rig.ipmitool('power', 'off')
    assert rig.power_status() == 'off'
    rig.ipmitool('power', 'on')
    assert rig.power_status() == 'on'
    assert rig.vm.is_running()
    rig.vm.wait_for_serial(MARKER, BOOT_TIMEOUT)
    # "power on" while on changes nothing.
    pid = rig.vm.pid
    rig.ipmitool('power', 'on')
    assert rig.vm.pid == pid


def test_guest_reaches_loopback_through_its_forwards(rig):
    rig.ipmitool('power', 'on')
    rig.vm.wait_for_serial('SECOND-FETCH-OK', BOOT_TIMEOUT)
    # The agent's port is forwarded on loopback only.
    host_port = rig.vm.spec.host_forwards[0][0]
    listening = subprocess.run(['ss', '-Hltnp'], capture_output=True,
                               text=True, timeout=30).stdout.splitlines()
    mine = [line for line in listening
            if 'pid=%d,' % rig.vm.pid in line]
    assert [line.split()[3] for line in mine] == [
        '127.0.0.1:%d' % host_port], listening


def test_boot_device_is_recorded(rig):
    rig.ipmitool('chassis', 'bootdev', 'pxe')
    out = rig.ipmitool('chassis', 'bootparam', 'get', '5').stdout
    assert 'Force PXE' in out, out
    with open(rig.vm.spec.path(bmc_mod.BOOT_DEVICE_FILE)) as f:
        assert f.read().strip() == 'network'
    # Ironic's UEFI form: raw "set system boot options", persistent disk.
    rig.ipmitool('raw', '0x00', '0x08', '0x03', '0x08')
    rig.ipmitool('raw', '0x00', '0x08', '0x05', '0xe0', '0x08', '0x00',
                 '0x00', '0x00')
    out = rig.ipmitool('chassis', 'bootparam', 'get', '5').stdout
    assert 'Force Boot from default Hard-Drive' in out, out
    rig.ipmitool('chassis', 'bootdev', 'pxe')


def test_reset_boots_again_in_the_same_qemu(rig):
    rig.ipmitool('power', 'on')
    rig.vm.wait_for_serial(MARKER, BOOT_TIMEOUT)
    pid = rig.vm.pid
    with open(rig.vm.serial_log, errors='replace') as f:
        boots = f.read().count(vm_mod.FIRMWARE_BANNER)
    rig.ipmitool('power', 'reset')
    rig.vm.wait_for_serial(MARKER, BOOT_TIMEOUT)
    with open(rig.vm.serial_log, errors='replace') as f:
        log = f.read()
    assert log.count(vm_mod.FIRMWARE_BANNER) == boots + 1
    # The reset is marked, and the current boot is the one after it.
    assert 0 < log.rfind('bmc-test: reset at') < log.rfind(
        vm_mod.FIRMWARE_BANNER)
    assert rig.vm.serial_tail(500).count(MARKER) == 1
    assert rig.vm.pid == pid
    assert rig.power_status() == 'on'


def test_power_off_leaves_no_qemu(rig):
    rig.ipmitool('power', 'on')
    pid = rig.vm.pid
    rig.ipmitool('power', 'off')
    assert rig.power_status() == 'off'
    assert not process.is_alive(pid)
    # Nor a relay, nor anything else running from the VM's directory
    # but the BMC (its spec is there).
    bmc_pid = rig.procs.get(rig.name)['pid']
    assert set(process.pids_referring_to(rig.vm.spec.directory)) == {
        bmc_pid}
    assert not os.path.exists(rig.vm.spec.path('qemu.pid'))
    # A reset needs power; a power-off while off is fine.
    assert rig.ipmitool('power', 'reset', check=False).returncode != 0
    rig.ipmitool('power', 'off')


def test_qemu_ending_by_itself_reads_as_off(rig):
    # What a guest power-off does: qemu exits on its own (iPXE cannot
    # power off, so qemu is told to quit through its monitor).
    rig.ipmitool('power', 'on')
    pid = rig.vm.pid
    try:
        rig.vm.qmp('quit')
    except (errors.SandboxError, OSError):
        pass  # qemu may close the monitor before it answers
    deadline = time.monotonic() + 20
    while rig.power_status() != 'off':
        assert time.monotonic() < deadline, 'qemu %d still runs' % pid
        time.sleep(0.2)
    assert not process.is_alive(pid)
    # It powers on again from there.
    rig.ipmitool('power', 'on')
    rig.vm.wait_for_serial(MARKER, BOOT_TIMEOUT)
    assert rig.vm.pid != pid


def test_wrong_password_is_refused(rig):
    wrong = os.path.join(rig.root, 'wrong-password')
    with open(wrong, 'w') as f:
        f.write('not-' + PASSWORD)
    result = rig.ipmitool('power', 'status', password_file=wrong,
                          check=False)
    assert result.returncode != 0


def test_password_is_neither_on_the_command_line_nor_logged(rig):
    record = rig.procs.get(rig.name)
    command_line = process.command_line(record['pid'])
    assert '--password-file' in command_line
    assert PASSWORD not in command_line
    log = rig.bmc_log()
    assert 'IPMI chassis control: power on' in log
    assert PASSWORD not in log


def test_stopping_the_bmc_stops_its_vm(rig):
    rig.ipmitool('power', 'on')
    pid = rig.vm.pid
    bmc_pid = rig.procs.get(rig.name)['pid']
    assert rig.procs.stop(rig.name)
    assert not process.is_alive(bmc_pid)
    assert not process.is_alive(pid)
    assert not rig.vm.is_running()
    assert process.pids_referring_to(rig.root) == []
    assert 'BMC stopped' in rig.bmc_log()
