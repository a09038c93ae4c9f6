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

"""A VM node: deployed over kernel iSCSI, then booted from its volume.

The node is a qemu virtual machine with its own kernel (this host's has
no iSCSI initiator), enrolled as ``cinder-ipmi`` with Ironic's real
``ipmitool`` power (the VM's IPMI BMC) and ``ipxe`` boot interfaces. It
boots the checkout's IPA ramdisk, the conductor attaches an iSCSI boot
volume and a data volume (CHAP, tgt) for the node's own initiator, IPA's
os-brick logs in with the guest kernel's initiator and writes the test OS
onto the boot volume. Ironic then reboots the VM with the iPXE script it
rendered, which sanboots the volume; the test OS prints the initiator name
it booted with (from the iBFT iPXE published, and from the file the deploy
wrote into it). Undeploy leaves nothing. Then the node is cleaned with its
boot volume still attached (what an undeploy that lost Cinder leaves) and
its firmware logged in to that volume (an iSCSI boot set up in the NIC's
ROM: an iBFT session that IPA's start-up logs in to again): the cinder
clean step must log out that session and delete the attachment before
the erase step, which wipes the VM's scratch disk and never the volume;
no CHAP secret may appear on the console (the ramdisk's journal is
forwarded to it).

Every failure prints the VM's serial console, its BMC's log and Ironic's
view of the node.
"""

import contextlib
import os
import re
import subprocess
import time

import pytest

from ipa_cinder.common import connection
from ipa_cinder_sandbox import boot_image
from ipa_cinder_sandbox.demo import checksums
from ipa_cinder_sandbox import node_network

# Under TCG the ramdisk takes about 3 minutes to its first heartbeat on
# an idle machine; CI shares 2 cores with other work.
DEPLOY_TIMEOUT = 1200
BOOT_TIMEOUT = 420
CLEAN_TIMEOUT = 1200
MARKER = re.compile(r'IPA-CINDER-BOOTED ibft_initiator=(\S+) '
                    r'os_initiator=(\S+) root=(\S+) marker=(\S+)')
FAILED = re.compile(r'IPA-CINDER-BOOT-FAILED.*')
SCRATCH_SIGNATURE = b'ipa-cinder scratch disk: cleaning erases this\n'

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason='VM nodes need root (qemu, tgt)')


def _sha256_file(path, size=None):
    return checksums.sha256_of(
        path, os.path.getsize(path) if size is None else size)


def _debugfs_cat(path, offset, name):
    """A file of the ext4 filesystem at ``offset`` of image ``path``."""
    proc = subprocess.run(
        ['debugfs', '-R', 'cat %s' % name, '%s?offset=%d' % (path, offset)],
        capture_output=True, timeout=60)
    return proc.stdout


class Flow(object):
    """The node, its VM and the sandbox, with diagnostics on failure."""

    def __init__(self, sandbox, node, machine):
        self.sandbox = sandbox
        self.node = node
        self.uuid = node['uuid']
        self.machine = machine
        self.timeline = []

    def diagnostics(self):
        node = self.sandbox.get_node(self.uuid)
        return ('node %s: provision %s, power %s, last_error %s\n%s\n'
                '--- ironic log ---\n%s' % (
                    self.uuid, node['provision_state'], node['power_state'],
                    node['last_error'],
                    self.sandbox.vm_diagnostics(self.machine),
                    self.sandbox.box.procs.log_tail('ironic', 30)))

    @contextlib.contextmanager
    def explained(self, phase):
        began = time.monotonic()
        try:
            yield
        except Exception as e:
            raise AssertionError('%s failed: %s\n%s'
                                 % (phase, e, self.diagnostics())) from e
        self.timeline.append((phase, time.monotonic() - began))

    def wait_state(self, expect, timeout, passing=()):
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            node = self.sandbox.get_node(self.uuid)
            state = node['provision_state']
            if not seen or seen[-1][0] != state:
                seen.append((state, time.monotonic()))
            if state == expect:
                return node, seen
            if state.endswith('failed') or state == 'error':
                raise AssertionError('node went to %s: %s'
                                     % (state, node['last_error']))
            time.sleep(2)
        raise AssertionError('node not %s after %d s (states: %s)'
                             % (expect, timeout, [s for s, _ in seen]))


@pytest.fixture(scope='module')
def test_os(sandbox):
    image = boot_image.build()
    name = os.path.basename(image['path'])
    link = sandbox.layout.path('images', name)
    if not os.path.lexists(link):
        os.symlink(image['path'], link)
    # What the node downloads; the conductor checks it through the proxy.
    image['url'] = '%s/%s' % (node_network.url(sandbox.layout, 'http'), name)
    return image


@pytest.fixture
def flow(sandbox, test_os):
    node, machine = sandbox.create_vm_node(
        instance_info={'image_source': test_os['url'],
                       'image_os_hash_algo': 'sha256',
                       'image_os_hash_value': test_os['sha256'],
                       'image_disk_format': 'raw'},
        properties={'capabilities': 'boot_mode:bios,iscsi_boot:true'})
    try:
        yield Flow(sandbox, node, machine)
    finally:
        sandbox.remove_vm(machine)
        assert not machine.is_running()


def _targets(sandbox, node, volumes):
    for index, volume in enumerate(volumes):
        sandbox.ironic.post('/v1/volume/targets', {
            'node_uuid': node['uuid'], 'volume_type': 'iscsi',
            'boot_index': index, 'volume_id': volume['id']})


def _node_initiator(sandbox, node):
    connectors = sandbox.ironic.get(
        '/v1/volume/connectors?node=%s&detail=True'
        % node['uuid'])['connectors']
    names = [c['connector_id'] for c in connectors if c['type'] == 'iqn']
    assert len(names) == 1, connectors
    return names[0]


def _acl_initiators(sandbox, volume_id):
    """Initiators tgt lets in to ``volume_id``'s target."""
    show = sandbox.box.tgt.show()
    found, inside = set(), False
    for line in show.splitlines():
        if line.startswith('Target '):
            inside = volume_id in line
        elif inside and re.match(r'\s+iqn\.', line):
            found.add(line.strip())
    return found


def _deploy_and_check(sandbox, flow, test_os, boot, data):
    """Deploy; check attachments, ACLs, portal and the written image."""
    with flow.explained('deploy'):
        sandbox.set_provision_state(flow.uuid, 'active')
        active, states = flow.wait_state('active', DEPLOY_TIMEOUT)
    waited = [t for s, t in states if s == 'wait call-back']
    after = [t for s, t in states if s == 'deploying' and waited
             and t > waited[0]]
    if waited and after:
        flow.timeline.append(('ramdisk boot to first heartbeat',
                              after[0] - waited[0]))
    initiator = _node_initiator(sandbox, flow.node)
    info = active['driver_internal_info']
    assert sorted(info['cinder_attachments']) == sorted([boot['id'],
                                                         data['id']])
    for volume in (boot, data):
        assert [(a['status'], a['instance']) for a in _attachments(
            sandbox, volume)] == [('attached', flow.uuid)]
        assert _acl_initiators(sandbox, volume['id']) == {initiator}
    targets = sandbox.ironic.get('/v1/volume/targets?node=%s&detail=True'
                                 % flow.uuid)['targets']
    boot_target = [t for t in targets if t['boot_index'] == 0][0]
    assert boot_target['properties']['target_portal'] == \
        node_network.iscsi_portal(sandbox.layout)

    # The image is on the boot volume: the boot area as written, the
    # kernel and marker files intact, the initiator name set by the deploy.
    volume_file = sandbox.volume_file(sandbox.get_volume(boot['id']))
    offset = test_os['partition_offset']
    assert _sha256_file(volume_file, offset) == \
        _sha256_file(test_os['path'], offset)
    for name in ('/boot/vmlinuz', boot_image.MARKER_PATH):
        assert _debugfs_cat(volume_file, offset, name) == \
            _debugfs_cat(test_os['path'], offset, name), name
    assert ('InitiatorName=%s' % initiator).encode() in _debugfs_cat(
        volume_file, offset, '/etc/iscsi/initiatorname.iscsi')
    return initiator, info['cinder_connector'], volume_file


def _attachments(sandbox, volume):
    return sandbox.cinder.get('/attachments/detail?volume_id=%s'
                              % volume['id'], microversion='3.44')[
        'attachments']


def _leftover_attachment(sandbox, flow, volume, connector):
    """An attachment of the node that undeploy did not delete.

    Created as the conductor creates them (the node's connector, the node
    as instance) and completed: what an undeploy that lost Cinder leaves.
    """
    attachment = sandbox.attach_completed(volume['id'], flow.uuid, connector)
    return connection.from_attachment(attachment['connection_info'])


def _firmware_iscsi_boot(info, initiator, http_url):
    """iPXE commands of a NIC ROM set up to boot from ``info``'s LUN.

    It logs in to the volume (publishing the session in an iBFT, as iSCSI
    boot firmware does) and then network-boots what Ironic serves: the
    ramdisk starts with the firmware's session, which IPA logs in to again
    at start-up (``iscsistart -b``).
    """
    data = info['data']
    host, port = data['target_portal'].rsplit(':', 1)
    return '\n'.join([
        ':retry', 'dhcp || goto wait',
        'set initiator-iqn %s' % initiator,
        'set username %s' % data['auth_username'],
        'set password %s' % data['auth_password'],
        'sanhook --drive 0x80 iscsi:%s::%s:%s:%s || goto wait' % (
            host, port, data.get('target_lun', 0), data['target_iqn']),
        'chain %s/boot.ipxe || goto wait' % http_url,
        ':wait', 'echo firmware iSCSI boot failed', 'sleep 5', 'goto retry'])


def test_vm_node_deploys_over_iscsi_boots_its_volume_and_cleans(
        sandbox, flow, test_os):
    boot = sandbox.create_volume(size=1, volume_type='iscsi-node')
    data = sandbox.create_volume(size=1, volume_type='iscsi-node')
    _targets(sandbox, flow.node, [boot, data])
    scratch = flow.machine.spec.path('disk.raw')
    with open(scratch, 'ab') as f:
        f.truncate(flow.machine.spec.disk_mib << 20)
    with open(scratch, 'r+b') as f:
        f.write(SCRATCH_SIGNATURE)

    initiator, connector, volume_file = _deploy_and_check(
        sandbox, flow, test_os, boot, data)

    # Ironic reboots the VM into the iPXE script it rendered: sanboot.
    with flow.explained('sanboot to the test OS marker'):
        found = flow.machine.wait_for_serial(
            '%s|%s' % (MARKER.pattern, FAILED.pattern), BOOT_TIMEOUT)
        match = MARKER.search(found.group(0))
        assert match, found.group(0)
    ibft, os_initiator, _root, marker = match.groups()
    assert ibft == initiator
    assert os_initiator == initiator
    assert marker == test_os['marker']

    with flow.explained('undeploy'):
        sandbox.set_provision_state(flow.uuid, 'deleted')
        flow.wait_state('available', 300)
    for volume in (boot, data):
        assert _attachments(sandbox, volume) == []
        assert sandbox.get_volume(volume['id'])['status'] == 'available'
        assert not [iqn for iqn in sandbox.box.tgt.targets().values()
                    if volume['id'] in iqn]
    booted_sha = _sha256_file(volume_file)

    # Cleaning with the boot volume still attached (an undeploy that lost
    # Cinder): the cinder step must delete the attachment (and log out any
    # iSCSI session the ramdisk has) before the erase step runs.
    # And the VM's firmware logs in to that volume before it network-boots
    # the cleaning ramdisk (an iSCSI boot set up in the NIC's ROM): the
    # ramdisk starts with a session no agent record knows.
    leftover = _leftover_attachment(sandbox, flow, boot, connector)
    sandbox.set_vm_firmware(flow.machine, _firmware_iscsi_boot(
        leftover, initiator, node_network.url(sandbox.layout, 'http')))
    with flow.explained('cleaning with a firmware session and a leftover '
                        'attachment'):
        sandbox.ironic.patch('/v1/nodes/%s' % flow.uuid, [
            {'op': 'replace', 'path': '/automated_clean', 'value': True}])
        sandbox.set_provision_state(flow.uuid, 'manage')
        flow.wait_state('manageable', 120)
        sandbox.set_provision_state(flow.uuid, 'provide')
        flow.wait_state('available', CLEAN_TIMEOUT)
    assert _attachments(sandbox, boot) == []
    assert sandbox.get_volume(boot['id'])['status'] == 'available'
    assert not [iqn for iqn in sandbox.box.tgt.targets().values()
                if boot['id'] in iqn]
    # The erase step ran (on the scratch disk), after the cinder step;
    # the volume is untouched.
    with open(scratch, 'rb') as f:
        assert f.read(len(SCRATCH_SIGNATURE)) != SCRATCH_SIGNATURE
    assert _sha256_file(volume_file) == booted_sha
    log = sandbox.box.procs.log_tail('ironic', 100000)
    detach = log.find("Executing {'step': 'cinder_detach_volumes'")
    erase = log.find("Executing {'step': 'erase_devices_metadata'")
    assert 0 <= detach < erase, (detach, erase)
    assert re.search(r'cinder\.disconnect_all for node %s returned result '
                     r'.*sessions_logged_out' % flow.uuid, log[detach:erase])
    # The firmware's session was the one logged out, before the erase.
    assert re.search(r'Node %s: agent logged out of iSCSI portal \S+, target '
                     r'%s ' % (flow.uuid, re.escape(leftover['data'][
                         'target_iqn'])), log[detach:erase]), log[detach:erase]
    console = flow.machine.serial_tail(100000)
    assert re.search(r'Registered SAN device 0x80', console)
    # The ramdisk's journal goes to the console. IPA logged the firmware's
    # iSCSI record at start-up (``iscsistart -f``), masked by the agent's
    # log filter; the element's start-up script never prints it (whether
    # it found the iBFT depends on how far udev got with the NIC).
    assert 'init-ibft-interfaces.sh' in console
    assert 'node.session.auth.password = ***' in console
    for secret in (leftover['data']['auth_username'],
                   leftover['data']['auth_password']):
        assert secret not in console
    for phase, seconds in flow.timeline:
        print('\n%-40s %6.1f s' % (phase, seconds))
