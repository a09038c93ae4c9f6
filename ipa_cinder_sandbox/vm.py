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

"""A bare-metal node that is a qemu virtual machine (TCG, no KVM).

It has a kernel of its own, hence a real kernel iSCSI initiator, which this
host lacks. A :class:`VMSpec` (JSON) describes it, so that its BMC
(:mod:`ipa_cinder_sandbox.bmc`), a process of its own, rebuilds it.

Firmware: iPXE (``ipxe.lkrn``) retrying ``dhcp`` + ``chain <boot_url>``
forever (iPXE has no power-off: whoever waits owns the timeout), whatever
boot device the BMC was told, as a real boot-from-volume node boots iPXE.
Network: user-mode with ``restrict=on``; guest forwards go from
:data:`SERVICE_ADDRESS`:<port> to 127.0.0.1:<port> through ``-cmd:``
(:data:`RELAY_SCRIPT` per connection: the ``-tcp:`` form connects once,
at start, for one connection only); host forwards bind 127.0.0.1 only.
Power: ``start``/``stop`` by PID (``vm.json``, the firmware settings, is
read again at each power-on); a guest reboot boots the firmware again, a
guest power-off ends qemu; ``powerdown`` and ``reset`` go through QMP.
Serial console: ``serial.log``, appended across power-ons; what follows the
last power-on/reset line or :data:`FIRMWARE_BANNER` is the current boot.
"""

import datetime
import json
import os
import re
import socket
import sys

from oslo_log import log as logging

from ipa_cinder_sandbox import errors
from ipa_cinder_sandbox import node_network
from ipa_cinder_sandbox import polling
from ipa_cinder_sandbox import process

LOG = logging.getLogger(__name__)

SERVICE_ADDRESS = node_network.SERVICE_ADDRESS
QEMU = 'qemu-system-x86_64'
IPXE_KERNEL = '/usr/lib/ipxe/ipxe.lkrn'
# Half the RAM must hold the unpacked ramdisk (~545 MiB): see vm-nodes.rst.
DEFAULT_MEMORY_MIB = 2048
#: SeaBIOS prints it at each firmware start: power-on, reboot, reset.
FIRMWARE_BANNER = 'SeaBIOS (version'
_MARK = '[ipa-cinder-sandbox]'
_BOUNDARY = re.compile(r'^(?:%s .*|.*%s.*)$' % (
    re.escape(_MARK), re.escape(FIRMWARE_BANNER)), re.MULTILINE)
_SERIAL_WINDOW = 4 * 1024 * 1024
_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$')
_MAC = re.compile(r'^[0-9a-f]{2}(:[0-9a-f]{2}){5}$')
# qemu's option syntax gives meaning to commas and libslirp splits a
# forward's command on blanks: paths on the command line avoid both.
_SAFE_PATH = re.compile(r'^/[A-Za-z0-9_./+-]+$')
_MAX_SOCKET_PATH = 107  # sockaddr_un.sun_path: 108 bytes with its NUL

# Run by qemu per guest connection, which is its stdin, stdout AND stderr
# (hence stderr to /dev/null): relays it to 127.0.0.1:<argv[2]>.
RELAY_SCRIPT = '''\
import os, socket, sys, threading
os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
def pump(source, sink):
    try:
        data = source.recv(262144)
        while data:
            sink.sendall(data)
            data = source.recv(262144)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        os._exit(1)
try:
    host = socket.create_connection((sys.argv[1], int(sys.argv[2])), 10)
except OSError:
    os._exit(1)
host.settimeout(None)
guest = socket.socket(fileno=0)
upstream = threading.Thread(target=pump, args=(guest, host), daemon=True)
upstream.start()
pump(host, guest)
upstream.join()
'''


def _ports(pairs, what):
    """[(int, int)] from JSON-ish pairs, each a valid TCP port."""
    result = [tuple(int(port) for port in pair) for pair in pairs or ()]
    if any(len(pair) != 2 or not all(0 < port < 65536 for port in pair)
           for pair in result):
        raise errors.SandboxError('%s %r: pairs of ports 1-65535'
                                  % (what, pairs))
    return result


class VMSpec(object):
    """What a VM node is: JSON-serialisable, so a BMC can rebuild it.

    ``name`` (letters, digits, ``_.-``); ``directory`` (absolute, under the
    sandbox's state dir: serial log, pidfile, firmware, scratch disk);
    ``mac`` (the Ironic port's; never ``fa:...``, IPA ignores those);
    ``memory_mib``, ``cpus``; ``guest_forwards`` [(guest_port, host_port)]:
    :data:`SERVICE_ADDRESS`:guest_port in the guest reaches
    127.0.0.1:host_port; ``host_forwards`` [(host_port, guest_port)]:
    127.0.0.1:host_port reaches the guest (the agent's API); ``disk_mib``:
    a sparse raw virtio scratch disk ("local disk") or None; ``boot_url``
    (what the firmware chains to) or ``boot_script`` (iPXE commands).
    """

    FIELDS = ('name', 'directory', 'mac', 'memory_mib', 'cpus',
              'guest_forwards', 'host_forwards', 'disk_mib', 'boot_url',
              'boot_script')

    def __init__(self, name, directory, mac, memory_mib=DEFAULT_MEMORY_MIB,
                 cpus=1, guest_forwards=(), host_forwards=(), disk_mib=None,
                 boot_url=None, boot_script=None):
        self.name = name
        self.directory = directory
        self.mac = (mac or '').lower()
        self.memory_mib = int(memory_mib)
        self.cpus = int(cpus)
        self.guest_forwards = _ports(guest_forwards, 'guest forward')
        self.host_forwards = _ports(host_forwards, 'host forward')
        self.disk_mib = int(disk_mib) if disk_mib else None
        self.boot_url = boot_url
        self.boot_script = boot_script
        self._validate()

    def _validate(self):
        checks = (
            (_NAME.match(self.name or ''), 'letters, digits, _.- in name'),
            (_SAFE_PATH.match(self.directory or ''),
             'an absolute directory of letters, digits, _./+-'),
            (len(self.path('qmp.sock')) <= _MAX_SOCKET_PATH,
             'a directory short enough for a unix socket in it'),
            (_MAC.match(self.mac) and not self.mac.startswith('fa:')
             and not int(self.mac[:2], 16) & 1,
             'a unicast mac not beginning fa: (IPA ignores those)'),
            (bool(self.boot_url) != bool(self.boot_script),
             'one of boot_url and boot_script'),
            (self.memory_mib >= 64 and self.cpus >= 1,
             'memory_mib >= 64 and cpus >= 1'))
        for passed, needed in checks:
            if not passed:
                raise errors.SandboxError('VM spec %s (%s, mac %s): needs %s'
                                          % (self.name, self.directory,
                                             self.mac, needed))

    def path(self, filename):
        """The path of ``filename`` in the VM's directory."""
        return os.path.join(self.directory, filename)

    def to_dict(self):
        return {field: getattr(self, field) for field in self.FIELDS}

    @classmethod
    def from_dict(cls, data):
        return cls(**data)

    def save(self, path=None):
        """Write the spec as JSON (default ``<directory>/vm.json``)."""
        path = path or self.path('vm.json')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            json.dump(self.to_dict(), f, indent=2, sort_keys=True)
        return path

    @classmethod
    def load(cls, path):
        with open(path) as f:
            return cls.from_dict(json.load(f))

    def firmware_script(self):
        """The iPXE script the VM's firmware runs."""
        if self.boot_script:
            return '#!ipxe\n%s\n' % self.boot_script.strip()
        # Retried: a failed boot must not leave the node at a prompt.
        return ('#!ipxe\n:retry\ndhcp || goto wait\nchain %s || goto wait\n'
                ':wait\necho ipa-cinder-sandbox: network boot failed\n'
                'sleep 5\ngoto retry\n' % self.boot_url)

    def _netdev(self, relay_python):
        options = ['user', 'id=net0', 'restrict=on']
        for guest_port, host_port in self.guest_forwards:
            options.append('guestfwd=tcp:%s:%d-cmd:%s -I -S %s %s %d' % (
                SERVICE_ADDRESS, guest_port, relay_python,
                self.path('relay.py'), '127.0.0.1', host_port))
        for host_port, guest_port in self.host_forwards:
            options.append('hostfwd=tcp:127.0.0.1:%d-:%d'
                           % (host_port, guest_port))
        return ','.join(options)

    def qemu_argv(self, relay_python=None):
        """The qemu command line of this VM (it holds no secret)."""
        relay_python = relay_python or sys.executable
        if not _SAFE_PATH.match(relay_python):
            raise errors.SandboxError('python %r: its path cannot be used '
                                      'in a qemu forward' % relay_python)
        # A guest reboot boots the firmware again; a guest power-off ends
        # qemu: the VM then reads as off.
        argv = [QEMU, '-name', self.name, '-accel', 'tcg', '-machine', 'q35',
                '-m', str(self.memory_mib), '-smp', str(self.cpus),
                '-nodefaults', '-nographic', '-display', 'none',
                '-action', 'reboot=reset,shutdown=poweroff',
                '-chardev', 'file,id=serial0,path=%s,append=on'
                % self.path('serial.log'), '-serial', 'chardev:serial0',
                '-qmp', 'unix:%s,server=on,wait=off' % self.path('qmp.sock'),
                '-pidfile', self.path('qemu.pid'),
                '-netdev', self._netdev(relay_python),
                '-device', 'virtio-net-pci,netdev=net0,mac=%s' % self.mac,
                '-kernel', IPXE_KERNEL, '-initrd', self.path('firmware.ipxe')]
        if self.disk_mib:
            argv += ['-drive', 'file=%s,format=raw,if=virtio,discard=unmap'
                     % self.path('disk.raw')]
        return argv


def _qmp_reply(reader, what):
    """The next reply on a QMP stream, events skipped (EOF: an error)."""
    while True:
        reply = json.loads(reader.readline() or b'""')
        if not isinstance(reply, dict) or 'error' in reply:
            raise errors.SandboxError('QMP %s failed: %s' % (what, reply))
        if 'return' in reply or 'QMP' in reply:
            return reply.get('return', reply)


class VirtualMachine(object):
    """A VM node, powered on and off by PID (never by name)."""

    def __init__(self, spec):
        self.spec = spec
        self.name = spec.name
        self.serial_log = spec.path('serial.log')
        self._table = process.ProcessTable(spec.path('run'),
                                           spec.directory)

    def _record(self):
        return self._table.get('qemu')

    def is_running(self):
        """True if the qemu recorded for this VM runs (PID + start time)."""
        record = self._record()
        if not record:
            return False
        try:
            # Reap it if it is our child and ended (a guest power-off).
            os.waitpid(record['pid'], os.WNOHANG)
        except ChildProcessError:
            pass
        return process.is_alive(record['pid'], record['start_time'])

    @property
    def pid(self):
        """The PID of the running qemu, or None."""
        return self.is_running() and self._record()['pid'] or None

    def _write_files(self):
        if os.path.exists(self.spec.path('vm.json')):
            self.spec = VMSpec.load(self.spec.path('vm.json'))
        os.makedirs(self.spec.directory, exist_ok=True)
        for filename, text in (('firmware.ipxe', self.spec.firmware_script()),
                               ('relay.py', RELAY_SCRIPT)):
            with open(self.spec.path(filename), 'w') as f:
                f.write(text)
        disk = self.spec.path('disk.raw')
        if self.spec.disk_mib and not os.path.exists(disk):
            # Sparse: it costs nothing until the guest writes.
            with open(disk, 'wb') as f:
                f.truncate(self.spec.disk_mib * 1024 * 1024)

    def _mark_serial(self, event):
        """Start a new boot in the serial log (qemu appends after it)."""
        with open(self.serial_log, 'a') as f:
            f.write('\n%s %s: %s at %s\n' % (
                _MARK, self.name, event,
                datetime.datetime.now(datetime.timezone.utc).isoformat()))

    def start(self, timeout=30):
        """Power on: start qemu, wait until it runs the guest.

        :raises SandboxError: if it runs already or fails to start.
        """
        if self.is_running():
            raise errors.SandboxError('VM %s is already running (pid %d)'
                                      % (self.name, self._record()['pid']))
        # Leftovers of a VM that powered itself off.
        self._cleanup()
        self._write_files()
        self._mark_serial('power on')
        self._table.start('qemu', self.spec.qemu_argv())
        LOG.info('VM %s powered on (pid %d)', self.name,
                 self._record()['pid'])
        try:
            polling.wait_until(
                lambda: self.qmp('query-status')['status'] == 'running',
                timeout, 'VM %s' % self.name, interval=0.1,
                on_tick=lambda: self._table.ensure_alive('qemu'),
                retry_on=(OSError, ValueError, errors.SandboxError))
        except errors.SandboxError:
            self.stop()
            raise

    def stop(self, timeout=10):
        """Power off: SIGTERM, SIGKILL after ``timeout`` s; True if on.

        The relays qemu ran are in its process group and go with it.
        """
        stopped = self._table.stop('qemu', timeout=timeout)
        if stopped:
            LOG.info('VM %s powered off', self.name)
        self._cleanup()
        return stopped

    def _cleanup(self):
        """Forget a qemu that is gone: its record, pidfile and socket."""
        if self._record() and not self.is_running():
            self._table.stop('qemu', timeout=5)
        for filename in ('qemu.pid', 'qmp.sock'):
            try:
                os.unlink(self.spec.path(filename))
            except FileNotFoundError:
                pass

    def qmp(self, command, timeout=10):
        """Run one QMP ``command`` (no arguments); returns its ``return``."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(self.spec.path('qmp.sock'))
            with sock.makefile('rb') as reader:
                _qmp_reply(reader, 'greeting')
                for name in ('qmp_capabilities', command):
                    sock.sendall(json.dumps({'execute': name}).encode()
                                 + b'\n')
                    result = _qmp_reply(reader, name)
        return result

    def _qmp_while_on(self, command, event=None):
        if not self.is_running():
            raise errors.SandboxError('VM %s is off: no %s'
                                      % (self.name, command))
        if event:
            self._mark_serial(event)
        self.qmp(command)
        LOG.info('VM %s: %s', self.name, command)

    def powerdown(self):
        """Press the ACPI power button; the guest decides what to do."""
        self._qmp_while_on('system_powerdown')

    def reset(self):
        """Hard reset: the firmware boots again, power stays on."""
        self._qmp_while_on('system_reset', event='reset')

    def _current_boot(self):
        """The serial output of the current boot ('' before any)."""
        try:
            with open(self.serial_log, 'rb') as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - _SERIAL_WINDOW))
                text = f.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return ''
        text = text.replace('\r', '')
        starts = [match.start() for match in _BOUNDARY.finditer(text)]
        return text[starts[-1]:] if starts else text

    def serial_tail(self, lines=40):
        """The last ``lines`` lines of the current boot's serial output."""
        return '\n'.join(self._current_boot().splitlines()[-lines:])

    def wait_for_serial(self, pattern, timeout):
        """The re.Match of ``pattern`` in the current boot's output.

        :raises SandboxError: (with the log's tail) after ``timeout`` s or
            as soon as the VM is off.
        """
        regex = re.compile(pattern)

        def found():
            match = regex.search(self._current_boot())
            if match is None and not self.is_running():
                raise errors.SandboxError('VM %s is off' % self.name)
            return match

        try:
            return polling.wait_until(found, timeout, '%r on the serial '
                                      'console of VM %s' % (regex.pattern,
                                                            self.name),
                                      interval=0.2, retry_on=())
        except errors.SandboxError as e:
            raise errors.SandboxError('%s; last lines of %s:\n%s' % (
                e, self.serial_log, self.serial_tail(25)))
