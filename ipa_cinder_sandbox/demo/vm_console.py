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

"""What the VM act reads and prints: serial milestones, iPXE, timings.

:class:`SerialWatch` follows a VM node's serial log from where it stood
when the watch began and picks out the moments worth telling (the
firmware chaining Ironic's ``boot.ipxe``, a kernel starting, the kernel
iSCSI initiator logging in, the agent starting, iPXE's sanboot, the test
OS's marker line). :func:`ipxe_lines` picks the lines of the iPXE script
Ironic rendered for a node that matter to a boot from volume, with every
credential masked; :func:`timing_lines` formats the act's timeline table.
None of these talk to a service.
"""

import os
import re

from ipa_cinder.common import secrets as secrets_mod
from ipa_cinder_sandbox import boot_image_initramfs

#: The test OS's line: the initiator names it booted with, its root.
MARKER = re.compile(re.escape(boot_image_initramfs.BOOTED)
                    + r' ibft_initiator=(\S+) os_initiator=(\S+) '
                    r'root=(\S+) marker=(\S+)')
FAILED = re.compile(re.escape(boot_image_initramfs.FAILED) + r'.*')

# Terminal control sequences (colours, cursor moves, resets) the firmware
# and systemd write to the console; not part of what they say.
_CONTROL = re.compile(r'\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_c]|[\r\x08]')

# (key, pattern, how it is told): the first match of a line counts.
MILESTONES = (
    ('power', re.compile(r'^\[ipa-cinder-sandbox\] \S+: (power on|reset) '
                         r'at'), 'VM %s (by its BMC)'),
    ('chain', re.compile(r'(\S+/boot\.ipxe)\.\.\. ok'), 'iPXE chained %s'),
    ('node script', re.compile(r'(pxelinux\.cfg/\S+?)\.\.\. ok'),
     'iPXE loaded the node\'s script %s'),
    ('deploy kernel', re.compile(r'/deploy_kernel\.\.\. ok'),
     'iPXE fetched the deploy kernel; the ramdisk next'),
    ('kernel', re.compile(r'\] Linux version (\S+)'),
     'kernel %s starting'),
    ('iscsi session', re.compile(r'(scsi host\d+): iSCSI Initiator over '
                                 r'TCP/IP'),
     'kernel iSCSI initiator logged in (%s)'),
    ('disk', re.compile(r'\[(sd[a-z]+)\] Attached SCSI disk'),
     'an iSCSI LUN is /dev/%s in the VM'),
    ('agent', re.compile(r'Started .*Ironic Python Agent'),
     'Ironic Python Agent started'),
    ('san hook', re.compile(r'Registered SAN device (0x[0-9a-f]+)'),
     'iPXE sanhook: SAN device %s registered'),
    ('sanboot', re.compile(r'Booting from SAN device (0x[0-9a-f]+)'),
     'iPXE sanboot from SAN device %s'),
    ('ipxe error', re.compile(r'(Could not (?:boot|describe SAN devices|'
                              r'open SAN device): .*?)(?: \(http\S*)?$'),
     'iPXE: %s'),
    ('marker', MARKER, 'test OS: %s'),
    ('failed', FAILED, 'test OS: %s'),
)


def plain(text):
    """Console ``text`` without terminal control sequences."""
    return _CONTROL.sub('', text)


def milestones(line):
    """[(key, told)] for one console line (at most one)."""
    line = plain(line)
    for key, pattern, told in MILESTONES:
        match = pattern.search(line)
        if match:
            if key in ('marker', 'failed'):
                return [(key, told % match.group(0))]
            return [(key, told % match.group(1) if match.re.groups
                     else told)]
    return []


class SerialWatch(object):
    """The milestones a VM's serial log gains from now on.

    :param path: the VM's serial log (it may not exist yet).
    :param clock: a function returning the current time in seconds.
    """

    def __init__(self, path, clock):
        self.path = path
        self.clock = clock
        self.offset = os.path.getsize(path) if os.path.exists(path) else 0
        self._partial = ''
        #: (key, when, told, line) of every milestone seen, in order.
        self.events = []

    def poll(self):
        """The milestones of the lines completed since the last poll."""
        if not os.path.exists(self.path):
            return []
        with open(self.path, 'rb') as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        lines = (self._partial + data.decode('utf-8', 'replace')).split('\n')
        self._partial = lines.pop()
        now, found = self.clock(), []
        for line in lines:
            for key, told in milestones(line):
                event = (key, now, told, plain(line).strip())
                self.events.append(event)
                found.append(event)
        return found

    def last(self, key):
        """The last event of ``key`` seen, or None."""
        for event in reversed(self.events):
            if event[0] == key:
                return event
        return None


def _masked_set(line):
    """A ``set <name> <value>`` line with a credential's value masked."""
    match = re.match(r'^(\s*set\s+)(\S+)(\s+)(\S.*)$', line)
    if match and secrets_mod.is_secret_key(match.group(2)):
        return ''.join(match.group(1, 2, 3)) + secrets_mod.MASK
    return line


def ipxe_lines(script, secrets=()):
    """What of Ironic's per-node iPXE script boots the volume, masked.

    The first ``goto`` (``boot_iscsi`` once the node is deployed from a
    volume) and the ``:boot_iscsi`` section up to its retry label; CHAP
    user names and passwords (``set username``/``set password`` and
    their reverse forms) masked, and so is any of ``secrets`` found
    elsewhere.
    """
    lines = [line.rstrip() for line in script.splitlines()]
    chosen = [line for line in lines if line.startswith('goto ')][:1]
    if ':boot_iscsi' in lines:
        section = lines[lines.index(':boot_iscsi'):]
        end = (section.index(':fail_iscsi_retry')
               if ':fail_iscsi_retry' in section else len(section))
        chosen += [line for line in section[:end] if line.strip()]
    masked = []
    for line in chosen:
        line = _masked_set(line)
        for secret in sorted(secrets, key=len, reverse=True):
            line = line.replace(secret, secrets_mod.MASK)
        masked.append(secrets_mod.mask_text(line))
    return masked


def phase_timings(states, steps, events, undeploy_seconds):
    """[(phase, seconds or None)]: the act's timeline table.

    :param states: [(provision state, time)] as the node entered them.
    :param steps: the deploy's events from Ironic's log
        (:func:`ipa_cinder_sandbox.demo.timeline.parse_ironic_log`).
    :param events: the console milestones (:attr:`SerialWatch.events`).
    :param undeploy_seconds: the undeploy's duration, or None.
    """
    waited = [when for state, when in states if state == 'wait call-back']
    heartbeat = [when for state, when in states
                 if state == 'deploying' and waited and when > waited[0]]
    ramdisk = heartbeat[0] - waited[0] if heartbeat else None
    step_seconds = {event['name']: event['seconds'] for event in steps
                    if event['kind'] == 'step'}
    reboot = None
    for index, event in enumerate(events):
        if event[0] == 'marker':
            powered = [e[1] for e in events[:index] if e[0] == 'power']
            reboot = event[1] - powered[-1] if powered else None
            break
    return [('ramdisk boot to first heartbeat', ramdisk),
            ('attach', step_seconds.get('cinder_attach_volumes')),
            ('image write', step_seconds.get('write_image')),
            ('configure boot', step_seconds.get('cinder_configure_boot')),
            ('reboot to marker', reboot),
            ('undeploy', undeploy_seconds)]


def timing_lines(timings):
    """The timeline table: one ``phase  seconds`` line per phase.

    :param timings: [(phase, seconds or None)] in order; None is a phase
        that did not happen or could not be measured.
    """
    width = max([len(phase) for phase, _ in timings] + [5])
    lines = ['%-*s  %8s' % (width, 'phase', 'seconds')]
    for phase, seconds in timings:
        lines.append('%-*s  %8s' % (width, phase, '-' if seconds is None
                                    else '%.1f' % seconds))
    return lines
