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

"""The demo's main act: a VM node deployed over iSCSI, booted from it.

A qemu virtual machine (TCG) with a kernel of its own, hence a real kernel
iSCSI initiator, is enrolled as a ``cinder-ipmi`` node (Ironic's
``ipmitool`` power through the VM's BMC, the ``ipxe`` boot interface, the
``cinder-agent`` deploy interface) with two iSCSI volume targets. Ironic
boots it into the checkout's IPA ramdisk, the conductor attaches both
volumes for the node's own initiator, the agent logs in and writes the
test OS onto the boot volume, Ironic reboots the VM into the iPXE script
it rendered, which sanboots the volume, and the test OS prints the
initiator names it booted with. Then undeploy (no cleaning boot: the act
is about deploy and boot) and the VM is removed, also on failure or
Ctrl-C.

:func:`run` returns the report (``deploy_state``, ``marker_ok``,
``initiator``, ``attachments_after``, ``timings``...).
"""

import datetime
import os
import time

from ipa_cinder.common import secrets as secrets_mod
from ipa_cinder_sandbox.demo import narration
from ipa_cinder_sandbox.demo import timeline
from ipa_cinder_sandbox.demo import vm_console
from ipa_cinder_sandbox import errors
from ipa_cinder_sandbox import node_network
from ipa_cinder_sandbox import polling

# Under TCG the ramdisk took 4 minutes to its first heartbeat on a quiet
# machine and 7.5 while another VM shared the 2 cores.
DEPLOY_TIMEOUT = 1200
BOOT_TIMEOUT = 420
UNDEPLOY_TIMEOUT = 300
# Ironic's API is asked every NODE_POLL s; the serial log read every tick.
NODE_POLL = 2.0
TICK = 1.0
NAME = 'demo-vm'


def run(handle):
    """The VM act on a running sandbox; returns its report."""
    return VMAct(handle).run()


class VMAct(object):
    """A VM node's boot-from-volume deploy, narrated as it happens."""

    def __init__(self, handle):
        self.handle = handle
        self.report = {'deploy_state': None, 'marker_ok': False,
                       'initiator': None, 'attachments_after': None,
                       'timings': {}}
        #: (provision state, time) as the node entered each.
        self.states = []
        #: The deploy's steps and Cinder calls, from Ironic's log.
        self.steps = []
        self.node = None
        self.machine = None
        self.image = None
        self.serial = None
        self._began = time.monotonic()
        self._seen = (None, None)
        self._last_poll = 0.0
        self._volumes = []

    def _since(self):
        return time.monotonic() - self._began

    def say(self, message, *args):
        narration.say(message, *args)

    def run(self):
        """Enroll, deploy, boot, undeploy; the VM is removed in any case."""
        try:
            self._prepare()
            self._deploy()
            self._show_deployed()
            self._boot()
            self._undeploy()
        except Exception as e:
            self._explain(e)
            raise
        finally:
            self._remove()
        self._print_timings()
        return self.report

    # Ramdisk, test OS, volumes, node

    def _prepare(self):
        from ipa_cinder_sandbox import boot_image

        handle = self.handle
        self.say('Act 3, a VM node: the IPA ramdisk of this checkout (built '
                 'in 5-10 min when its inputs changed, else reused)')
        clock = time.monotonic()
        ramdisk = handle.vm_ramdisk()
        self.say('Ramdisk %s in %.1fs: kernel %d MiB, initramfs %d MiB (%s)',
                 'reused' if ramdisk.get('reused') else 'built',
                 time.monotonic() - clock,
                 os.path.getsize(ramdisk['kernel']) >> 20,
                 os.path.getsize(ramdisk['initramfs']) >> 20,
                 ramdisk['directory'])
        clock = time.monotonic()
        image = boot_image.build()
        name = os.path.basename(image['path'])
        link = handle.layout.path('images', name)
        if not os.path.lexists(link):
            os.symlink(image['path'], link)
        # The URL as the VM reaches the image server.
        image['url'] = '%s/%s' % (node_network.url(handle.layout, 'http'),
                                  name)
        self.image = image
        self.say('Test OS %s in %.1fs: %s, %d MiB, kernel %s, sha256 %s...; '
                 'booted, it prints marker "%s"', 'reused' if
                 image.get('reused') else 'built', time.monotonic() - clock,
                 image['url'], image['size'] >> 20,
                 image.get('kernel_release', '?'), image['sha256'][:12],
                 image['marker'])
        self._volumes_and_node()

    def _volumes_and_node(self):
        handle = self.handle
        for role in ('boot', 'data'):
            volume = handle.create_volume(size=1, volume_type='iscsi-node',
                                          name='%s-%s' % (NAME, role))
            self._volumes.append(volume['id'])
        self.say('Two 1 GiB volumes on the "iscsi-node" type (tgt, CHAP, '
                 'portal %s as a VM sees it): boot %s, data %s',
                 node_network.iscsi_portal(handle.layout), *self._volumes)
        node, self.machine = handle.create_vm_node(
            name=NAME,
            instance_info={'image_source': self.image['url'],
                           'image_os_hash_algo': 'sha256',
                           'image_os_hash_value': self.image['sha256'],
                           'image_disk_format': 'raw'},
            properties={'capabilities': 'boot_mode:bios,iscsi_boot:true'})
        self.node = node
        self.report['node'] = node['uuid']
        for index, volume_id in enumerate(self._volumes):
            handle.ironic.post('/v1/volume/targets', {
                'node_uuid': node['uuid'], 'volume_type': 'iscsi',
                'boot_index': index, 'volume_id': volume_id})
        spec = self.machine.spec
        self.say('Node %s (%s): driver %s, power %s through the VM\'s BMC '
                 'on udp 127.0.0.1:%s, boot %s, deploy %s; VM %s, %d MiB, '
                 'mac %s, off; volume targets boot_index 0 (boot) and 1 '
                 '(data), capabilities boot_mode:bios,iscsi_boot:true',
                 node['uuid'], node['name'], node['driver'],
                 node['power_interface'], node['driver_info'].get(
                     'ipmi_port'), node['boot_interface'],
                 node['deploy_interface'], spec.name, spec.memory_mib,
                 spec.mac)

    # Watching the node and its console

    def _tick(self, until):
        """Tell new console milestones and state changes; ``until()``."""
        for _key, _when, told, _line in self.serial.poll():
            self.say('  console  +%6.1fs  %s', self._since(), told)
        if time.monotonic() - self._last_poll >= NODE_POLL:
            self._last_poll = time.monotonic()
            self._poll_node()
        return until()

    def _poll_node(self):
        node = self.handle.get_node(self.node['uuid'])
        state = node['provision_state']
        step = (node.get('deploy_step') or {}).get('step')
        if state != self._seen[0]:
            self.states.append((state, time.monotonic()))
            self.say('  node     +%6.1fs  provision state %s -> %s',
                     self._since(), self._seen[0], state)
        if step and step != self._seen[1]:
            self.say('  node     +%6.1fs  deploy step %s', self._since(),
                     step)
        self._seen = (state, step)
        if state.endswith('failed') or state == 'error':
            raise errors.SandboxError('node %s went to %s: %s' % (
                node['uuid'], state, node.get('last_error')))

    def _watch(self, until, timeout, what):
        self._last_poll = 0.0
        return polling.wait_until(lambda: self._tick(until), timeout, what,
                                  interval=TICK, retry_on=())

    def _state_is(self, state):
        return lambda: self._seen[0] == state

    # Deploy, what it made, the boot, the undeploy

    def _deploy(self):
        handle, uuid = self.handle, self.node['uuid']
        self.serial = vm_console.SerialWatch(self.machine.serial_log,
                                             time.monotonic)
        self._logs = (timeline.LogWindow(os.path.join(
            handle.state_dir, 'log', 'ironic.log')),
            timeline.LogWindow(os.path.join(handle.state_dir, 'log',
                                            'cinder-api.log')),
            datetime.datetime.now())
        self._began = time.monotonic()
        self._seen = (self.node['provision_state'], None)
        self.say('Deploying: baremetal node deploy %s (times below: since '
                 'this request; the console is read every %.0fs, Ironic '
                 'asked every %.0fs)', uuid, TICK, NODE_POLL)
        handle.set_provision_state(uuid, 'active')
        self._watch(self._state_is('active'), DEPLOY_TIMEOUT,
                    'deploy of node %s' % uuid)
        self.report['deploy_state'] = 'active'
        self.report['deploy_seconds'] = round(self._since(), 1)
        self.say('Node %s is active after %.1fs', uuid, self._since())
        ironic_log, cinder_log, began = self._logs
        self.steps = timeline.parse_ironic_log(ironic_log.read(), uuid,
                                               began)
        timeline.print_timeline(self.steps, timeline.parse_cinder_api_log(
            cinder_log.read()))

    def _show_deployed(self):
        """The node's initiator, its attachments, the boot portal, iPXE."""
        handle, uuid = self.handle, self.node['uuid']
        connectors = handle.ironic.get(
            '/v1/volume/connectors?node=%s&detail=True' % uuid)['connectors']
        names = [c['connector_id'] for c in connectors if c['type'] == 'iqn']
        self.report['initiator'] = names[0] if names else None
        self.say('The node\'s initiator, its iqn volume connector in Ironic '
                 '(the agent reported it, cinder_attach_volumes recorded '
                 'it): %s', self.report['initiator'])
        self.report['attachments'] = []
        for role, volume_id in zip(('boot', 'data'), self._volumes):
            for found in self.attachments(volume_id):
                self.report['attachments'].append(
                    {'volume': volume_id, 'id': found['id'],
                     'status': found['status'],
                     'instance': found.get('instance')})
                self.say('  Cinder: %s volume %s, attachment %s %s, mode %s, '
                         'instance %s (%s)', role, volume_id, found['id'],
                         found['status'], found.get('attach_mode'),
                         found.get('instance'), 'the node' if found.get(
                             'instance') == uuid else 'NOT the node')
        targets = handle.ironic.get('/v1/volume/targets?node=%s&detail=True'
                                    % uuid)['targets']
        boot = [t for t in targets if t['boot_index'] == 0][0]
        portal = boot['properties'].get('target_portal')
        self.report['portal'] = portal
        self.say('Boot target portal %s: %s', portal, (
            'the address the VM reaches tgt\'s 127.0.0.1:%d at'
            % handle.layout.ports['iscsi']) if portal == (
                node_network.iscsi_portal(handle.layout))
            else 'NOT what the VM reaches')
        self._show_ipxe()

    def _show_ipxe(self):
        """The iPXE script Ironic wrote for the node's MAC, CHAP masked."""
        images = self.handle.layout.path('images')
        candidates = [
            os.path.join(images, 'pxelinux.cfg',
                         self.machine.spec.mac.replace(':', '-')),
            os.path.join(images, self.node['uuid'], 'config')]
        found = [path for path in candidates if os.path.exists(path)]
        if not found:
            self.say('No iPXE script found at %s', ' or '.join(candidates))
            return
        with open(found[0]) as f:
            script = f.read()
        # Where Cinder keeps the credentials: masked wherever they appear.
        secrets = set()
        for volume_id in self._volumes:
            secrets.update(self.handle.export_chap(volume_id))
        lines = vm_console.ipxe_lines(script, secrets)
        self.report['ipxe'] = lines
        if ':boot_iscsi' not in lines:
            self.say('This script has no :boot_iscsi section: the VM will '
                     'not find its volume')
        narration.show_lines('%s, written by Ironic\'s ipxe boot interface '
                             '(prepare_instance_boot), CHAP masked'
                             % os.path.relpath(found[0], images), lines)

    def _boot(self):
        """The reboot into Ironic's iPXE script, up to the marker line."""
        self.say('Ironic powered the VM off and on through its BMC '
                 '(tear_down_agent, boot_instance): its firmware chains '
                 'boot.ipxe again, and the node\'s script now says sanboot')
        self._watch(lambda: (self.serial.last('marker')
                             or self.serial.last('failed')), BOOT_TIMEOUT,
                    'the test OS marker on the console of %s' % NAME)
        event = self.serial.last('marker')
        if event is None:
            self.say('The test OS did not boot: %s',
                     self.serial.last('failed')[3])
            return
        ibft, os_initiator, root, marker = vm_console.MARKER.search(
            event[3]).groups()
        initiator = self.report['initiator']
        self.report.update(ibft_initiator=ibft, os_initiator=os_initiator,
                           root=root, marker=marker, marker_ok=(
                               ibft == os_initiator == initiator
                               and marker == self.image['marker']))
        self.say('The test OS booted from the volume (root %s, marker "%s"): '
                 'the initiator iPXE published in the iBFT is %s, the one '
                 'cinder_configure_boot wrote into the OS is %s', root,
                 marker, ibft, os_initiator)
        self.say('%s', 'Both are the node\'s initiator and the marker is the '
                 'image\'s: the node booted its own volume' if
                 self.report['marker_ok'] else 'MISMATCH: the node\'s '
                 'initiator is %s, the image\'s marker "%s"' % (
                     initiator, self.image['marker']))

    def _undeploy(self):
        handle, uuid = self.handle, self.node['uuid']
        # No cleaning boot: this act is about deploy and boot.
        handle.ironic.patch('/v1/nodes/%s' % uuid, [
            {'op': 'replace', 'path': '/automated_clean', 'value': False}])
        clock = time.monotonic()
        self.say('Undeploying: baremetal node undeploy %s (automated_clean '
                 'set to false first: no cleaning boot)', uuid)
        handle.set_provision_state(uuid, 'deleted')
        self._watch(self._state_is('available'), UNDEPLOY_TIMEOUT,
                    'undeploy of node %s' % uuid)
        self.report['timings']['undeploy'] = round(
            time.monotonic() - clock, 1)
        left = sum(len(self.attachments(v)) for v in self._volumes)
        self.report['attachments_after'] = left
        self.say('Node available after %.1fs; Cinder has %d attachment(s) '
                 'of the two volumes left', self.report['timings'][
                     'undeploy'], left)

    def attachments(self, volume_id):
        return self.handle.cinder.get(
            '/attachments/detail?all_tenants=1&volume_id=%s' % volume_id,
            microversion='3.44')['attachments']

    # Failure, removal, the table

    def _explain(self, error):
        """What the node and the VM's console say, for a failure."""
        self.say('The VM act failed: %s', secrets_mod.mask_text(str(error)))
        if self.machine is None:
            return
        try:
            node = self.handle.get_node(self.node['uuid'])
            self.say('Node %s: provision state %s, power %s, last error %s',
                     node['uuid'], node['provision_state'],
                     node['power_state'], secrets_mod.mask_text(
                         str(node.get('last_error'))))
        except Exception as e:  # the console tail is still worth showing
            self.say('Ironic did not answer about the node: %s', e)
        narration.show_lines('last lines of the VM\'s console', [
            vm_console.plain(line) for line in
            self.machine.serial_tail(25).splitlines()])

    def _remove(self):
        """The VM (and its node) and the volumes, whatever happened."""
        handle = self.handle
        if self.machine is not None:
            clock = time.monotonic()
            try:
                handle.remove_vm(self.machine)
                self.say('VM %s removed (node deleted, BMC and qemu stopped) '
                         'in %.1fs', NAME, time.monotonic() - clock)
            except Exception as e:  # the volumes still go
                self.say('Removing VM %s failed: %s', NAME,
                         secrets_mod.mask_text(str(e)))
        for volume_id in self._volumes:
            try:
                handle.delete_volume(volume_id)
            except Exception as e:  # the sandbox's teardown retries
                self.say('Deleting volume %s failed: %s', volume_id, e)

    def _print_timings(self):
        timings = vm_console.phase_timings(
            self.states, self.steps, self.serial.events,
            self.report['timings'].get('undeploy'))
        self.report['timings'].update(
            {phase: None if seconds is None else round(seconds, 1)
             for phase, seconds in timings})
        narration.show_lines('the VM act\'s timeline',
                             vm_console.timing_lines(timings))
