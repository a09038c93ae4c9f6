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

"""The BMC of a VM node: real IPMI 2.0 (lanplus) on 127.0.0.1.

Ironic drives a VM node (:mod:`ipa_cinder_sandbox.vm`) through its own
``ipmitool`` power and management interfaces, as it drives a server, so
each VM gets a BMC process, the way virtualbmc serves a libvirt domain
(the sandbox runs no libvirt): pyghmi's IPMI server, bound to one VM.

- power on: the VM's qemu starts; power off: it is stopped (hard).
- power soft (chassis control "soft off"): the ACPI power button is
  pressed through qemu's QMP socket; the guest decides (iPXE ignores it,
  a Linux ramdisk powers off and qemu then exits), as on a real server.
- power reset: a hard reset in the same qemu (refused while off); power
  cycle: off, then on.
- power status: whether the qemu recorded for the VM runs.
- boot device: recorded (in memory and in ``<vm dir>/boot-device``) and
  reported back, but the VM always boots its network firmware, as a real
  boot-from-volume node boots iPXE from its NIC whatever it is told.

``python -m ipa_cinder_sandbox.bmc --spec <vm.json> --port <udp port>
--username <user> --password-file <file>`` runs one; the password is read
from the file, never taken on the command line nor logged. Each request
is logged (command names, never data). On SIGTERM or SIGINT the BMC stops
its VM and exits. :func:`start_bmc` starts one as a recorded process of
the sandbox.
"""

import argparse
import os
import signal
import sys
import uuid

from oslo_config import cfg
from oslo_log import log as logging
from pyghmi.ipmi import bmc as ipmi_bmc
from pyghmi.ipmi.private import session as ipmi_session

from ipa_cinder_sandbox import errors
from ipa_cinder_sandbox import polling
from ipa_cinder_sandbox import vm as vm_mod

LOG = logging.getLogger(__name__)

ADDRESS = '127.0.0.1'
#: IPMI completion code "command not supported in present state": what
#: virtualbmc answers when its domain cannot do what was asked.
NOT_IN_PRESENT_STATE = 0xd5
BOOT_DEVICE_FILE = 'boot-device'
DEFAULT_BOOT_DEVICE = 'network'
# Logged once the UDP socket is bound: start_bmc waits for it.
_LISTENING = 'IPMI listening on'
# (netfn, command) -> name, for the log.
_REQUESTS = {
    (0, 1): 'get chassis status', (0, 2): 'chassis control',
    (0, 8): 'set system boot options', (0, 9): 'get system boot options',
    (6, 1): 'get device id', (6, 2): 'cold reset',
    (6, 0x37): 'get system guid', (6, 0x48): 'activate payload',
    (6, 0x49): 'deactivate payload',
}
_CHASSIS_CONTROL = {0: 'power off', 1: 'power on', 2: 'power cycle',
                    3: 'hard reset', 4: 'diagnostic interrupt',
                    5: 'soft off'}


class VirtualMachineBmc(ipmi_bmc.Bmc):
    """pyghmi's IPMI server, its chassis being one VirtualMachine."""

    def __init__(self, machine, username, password, port, address=ADDRESS):
        # The GUID follows the VM's name: stable across BMC restarts.
        super().__init__({username: password}, port=port, address=address,
                         bmcuuid=uuid.uuid5(uuid.NAMESPACE_DNS,
                                            '%s.vm.ipa-cinder-sandbox'
                                            % machine.name))
        self.machine = machine
        self.address = address
        self._boot_device_path = machine.spec.path(BOOT_DEVICE_FILE)
        self.boot_device = self._read_boot_device()

    def _read_boot_device(self):
        try:
            with open(self._boot_device_path) as f:
                return f.read().strip() or DEFAULT_BOOT_DEVICE
        except FileNotFoundError:
            return DEFAULT_BOOT_DEVICE

    def handle_raw_request(self, request, session):
        netfn, command = request['netfn'], request['command']
        name = _REQUESTS.get((netfn, command),
                             'netfn 0x%02x command 0x%02x' % (netfn, command))
        if (netfn, command) == (0, 2) and request['data']:
            name += ': %s' % _CHASSIS_CONTROL.get(request['data'][0],
                                                  request['data'][0])
        # Names only: the data of a request may hold a secret.
        LOG.info('VM %s: IPMI %s from %s', self.machine.name, name,
                 getattr(session, 'sockaddr', ('?',))[0])
        super().handle_raw_request(request, session)

    def _act(self, action, what):
        """Run ``action``; an IPMI completion code."""
        try:
            action()
        except errors.SandboxError as e:
            LOG.error('VM %s: %s failed: %s', self.machine.name, what, e)
            return NOT_IN_PRESENT_STATE
        return 0

    def get_power_state(self):
        return 'on' if self.machine.is_running() else 'off'

    def power_on(self):
        if self.machine.is_running():
            return 0
        return self._act(self.machine.start, 'power on')

    def power_off(self):
        return self._act(self.machine.stop, 'power off')

    def power_shutdown(self):
        if not self.machine.is_running():
            return 0
        return self._act(self.machine.powerdown, 'soft power off')

    def power_reset(self):
        if not self.machine.is_running():
            return NOT_IN_PRESENT_STATE
        return self._act(self.machine.reset, 'reset')

    def power_cycle(self):
        return self.power_off() or self.power_on()

    def get_boot_device(self):
        return self.boot_device

    def set_boot_device(self, bootdevice):
        # Recorded and reported; the VM boots its network firmware anyway.
        self.boot_device = bootdevice
        with open(self._boot_device_path, 'w') as f:
            f.write(bootdevice + '\n')
        LOG.info('VM %s: boot device set to %s', self.machine.name,
                 bootdevice)

    def get_system_guid(self):
        return self.uuid

    def serve(self, poll_interval=0.5):
        """Answer requests until SIGTERM or SIGINT; then stop the VM."""
        stopping = []

        def on_signal(signum, _frame):
            stopping.append(signum)

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, on_signal)
        LOG.info('VM %s: %s %s:%d (UDP)', self.machine.name, _LISTENING,
                 self.address, self.port)
        try:
            while not stopping:
                ipmi_session.Session.wait_for_rsp(timeout=poll_interval)
        finally:
            self.machine.stop()
            LOG.info('VM %s: BMC stopped (signal %s), VM off',
                     self.machine.name, stopping[0] if stopping else None)


def read_password(path):
    """The password in ``path`` (one line; its newline is not part of it)."""
    with open(path) as f:
        password = f.read().rstrip('\n')
    if not password:
        raise errors.SandboxError('BMC password file %s is empty' % path)
    return password


def start_bmc(procs, spec, port, credentials, timeout=20):
    """Start the BMC of ``spec``'s VM as the recorded process ``bmc-<name>``.

    The spec goes to ``<vm dir>/vm.json`` and the password to
    ``<vm dir>/bmc-password`` (mode 0600), which the BMC reads. Stop the
    BMC with ``procs.stop(<returned name>)``: it stops its VM first.

    :param procs: the sandbox's :class:`~ipa_cinder_sandbox.process.
        ProcessTable`.
    :param spec: a :class:`~ipa_cinder_sandbox.vm.VMSpec`.
    :param port: the UDP port on 127.0.0.1 it answers IPMI on.
    :param credentials: (username, password) Ironic will use.
    :returns: the BMC's name in ``procs``.
    :raises SandboxError: if it does not listen within ``timeout`` s.
    """
    username, password = credentials
    spec_path = spec.save()
    password_path = spec.path('bmc-password')
    fd = os.open(password_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(password)
    name = 'bmc-%s' % spec.name
    log_path = procs.log_path(name)
    try:
        log_start = os.path.getsize(log_path)
    except FileNotFoundError:
        log_start = 0
    procs.start(name, [sys.executable, '-m', 'ipa_cinder_sandbox.bmc',
                       '--spec', spec_path, '--port', str(port),
                       '--username', username,
                       '--password-file', password_path])

    def listening():
        with open(log_path, errors='replace') as f:
            f.seek(log_start)
            return _LISTENING in f.read()

    polling.wait_until(listening, timeout, 'BMC of VM %s' % spec.name,
                       on_tick=lambda: procs.ensure_alive(name))
    return name


def _setup_logging():
    conf = cfg.ConfigOpts()
    logging.register_options(conf)
    conf([], project='ipa-cinder-sandbox', default_config_files=[])
    conf.set_override('use_stderr', True)
    logging.setup(conf, 'ipa-cinder-sandbox-bmc')


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='An IPMI BMC on 127.0.0.1 for one sandbox VM node.')
    parser.add_argument('--spec', required=True,
                        help='the VM spec (JSON), see ipa_cinder_sandbox.vm')
    parser.add_argument('--port', type=int, required=True,
                        help='UDP port on 127.0.0.1')
    parser.add_argument('--username', required=True)
    parser.add_argument('--password-file', required=True,
                        help='file holding the password (never on the '
                             'command line)')
    args = parser.parse_args(argv)
    _setup_logging()
    machine = vm_mod.VirtualMachine(vm_mod.VMSpec.load(args.spec))
    server = VirtualMachineBmc(machine, args.username,
                               read_password(args.password_file), args.port)
    server.serve()


if __name__ == '__main__':
    main()
