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

"""VM nodes of :class:`ipa_cinder_sandbox.handle.SandboxHandle`.

A VM node is a qemu virtual machine (:mod:`ipa_cinder_sandbox.vm`) with
its own kernel, hence a real iSCSI initiator, enrolled in the sandbox's
Ironic as a ``cinder-ipmi`` node: ``ipmitool`` power and management
against the VM's own IPMI BMC (:mod:`ipa_cinder_sandbox.bmc`, the way
virtualbmc serves libvirt domains), Ironic's real ``ipxe`` boot
interface (the VM's firmware chains Ironic's ``boot.ipxe`` as a DHCP
server would make it), the ``cinder-agent`` deploy interface and the
checkout's IPA ramdisk. The VM reaches only Ironic's API, the HTTP server
and tgt's portal (:mod:`ipa_cinder_sandbox.node_network`); the conductor
reaches its agent through a forward on 127.0.0.1.
"""

import os
import secrets

from oslo_log import log as logging

from ipa_cinder_sandbox import bmc
from ipa_cinder_sandbox import errors
from ipa_cinder_sandbox import node_network
from ipa_cinder_sandbox import ramdisk as ramdisk_mod
from ipa_cinder_sandbox import vm as vm_mod

LOG = logging.getLogger(__name__)

BMC_USER = 'admin'
# The VM's "local disk": what cleaning may erase (never a volume).
SCRATCH_DISK_MIB = 64


class VMNodeHelpers(object):
    """VM nodes: enrolment, their VMs and BMCs, removal.

    Expects of the handle: ``layout``, ``box``, ``ironic``, ``name()``,
    ``create_node()``, ``delete_node()`` and a ``_vms`` list (emptied by
    :meth:`remove_vm` on close).
    """

    def vm_ramdisk(self):
        """The ramdisk VM nodes boot (cached build of this checkout)."""
        if getattr(self, '_ramdisk', None) is None:
            self._ramdisk = ramdisk_mod.find_or_build()
            self._ramdisk['urls'] = {
                what: '%s/%s' % (self.layout.http_url, name)
                for what, name in ramdisk_mod.publish(
                    self._ramdisk, self.layout.path('images')).items()}
        return self._ramdisk

    def _free_vm_slot(self):
        used = {vm.slot for vm in self._vms}
        for slot in range(node_network.MAX_VMS):
            if slot not in used:
                return slot
        raise errors.SandboxError('all %d VM node slots are in use'
                                  % node_network.MAX_VMS)

    def create_vm_node(self, name=None, memory_mib=None, **fields):
        """An ``available`` cinder-ipmi node backed by a new VM.

        The VM is off; Ironic powers it on through its BMC. Extra
        ``fields`` go to the node (``instance_info``, ``properties``...).
        :returns: (node, VirtualMachine)
        """
        name = name or self.name('vm')
        slot = self._free_vm_slot()
        port = node_network.vm_port(self.layout, slot)
        spec = vm_mod.VMSpec(
            name, self.layout.path('agent', 'vms', name),
            mac='52:54:00:%02x:%02x:%02x' % (
                (self.layout.port_base >> 8) & 0xff,
                self.layout.port_base & 0xff, slot),
            guest_forwards=node_network.guest_forwards(self.layout),
            host_forwards=[(port, node_network.AGENT_GUEST_PORT)],
            disk_mib=SCRATCH_DISK_MIB,
            boot_url='%s/boot.ipxe' % node_network.url(self.layout, 'http'),
            **({'memory_mib': memory_mib} if memory_mib else {}))
        machine = vm_mod.VirtualMachine(spec)
        machine.slot = slot
        password = secrets.token_urlsafe(12)
        machine.bmc_name = bmc.start_bmc(self.box.procs, spec, port,
                                         (BMC_USER, password))
        self._vms.append(machine)
        node = self.create_node(
            name=name, mac=spec.mac, driver='cinder-ipmi',
            boot_interface='ipxe', power_interface='ipmitool',
            management_interface='ipmitool',
            deploy_interface=fields.pop('deploy_interface', 'cinder-agent'),
            driver_info=self._vm_driver_info(port, password), **fields)
        machine.node_uuid = node['uuid']
        return node, machine

    def _vm_driver_info(self, port, password):
        ramdisk = self.vm_ramdisk()
        return {
            'ipmi_address': '127.0.0.1', 'ipmi_port': port,
            'ipmi_username': BMC_USER, 'ipmi_password': password,
            'deploy_kernel': ramdisk['urls']['kernel'],
            'deploy_ramdisk': ramdisk['urls']['initramfs'],
            # The conductor reaches the agent through the VM's forward.
            # The journal (the agent's log, the services' output) goes to
            # the serial console too: the VM's log shows what the ramdisk
            # did, and a test can search all of it.
            'kernel_append_params': (
                'console=ttyS0 systemd.journald.forward_to_console=1 '
                'ipa-advertise-host=127.0.0.1 ipa-advertise-port=%d' % port),
        }

    def set_vm_firmware(self, machine, script=None):
        """What the VM's firmware runs from its next power-on.

        By default it chains Ironic's ``boot.ipxe`` (as a DHCP server
        would make it); ``script`` (iPXE commands) models firmware set up
        otherwise, e.g. an iSCSI boot configured in the NIC's ROM.
        """
        settings = machine.spec.to_dict()
        settings.update(boot_script=script, boot_url=None if script else (
            '%s/boot.ipxe' % node_network.url(self.layout, 'http')))
        machine.spec = vm_mod.VMSpec.from_dict(settings)
        machine.spec.save()

    def vm_of(self, node_uuid):
        for machine in self._vms:
            if getattr(machine, 'node_uuid', None) == node_uuid:
                return machine
        raise errors.SandboxError('node %s has no VM' % node_uuid)

    def remove_vm(self, machine):
        """Delete the VM's node if it still exists, stop BMC and VM."""
        try:
            if getattr(machine, 'node_uuid', None) in self._nodes:
                # Removal, not a test of cleaning: no ramdisk boot.
                self.ironic.patch('/v1/nodes/%s' % machine.node_uuid, [
                    {'op': 'replace', 'path': '/automated_clean',
                     'value': False}])
                self.delete_node(machine.node_uuid)
        finally:
            self.box.procs.stop(machine.bmc_name, timeout=30)
            if machine.is_running():
                LOG.warning('VM %s outlived its BMC: stopping it',
                            machine.spec.name)
                machine.stop()
            self._forget(self._vms, machine)

    def vm_diagnostics(self, machine, lines=60):
        """The VM's serial tail and its BMC's log tail, for a failure."""
        return '--- serial console of %s ---\n%s\n--- BMC ---\n%s' % (
            machine.spec.name, machine.serial_tail(lines),
            self.box.procs.log_tail(machine.bmc_name, 15))


def scratch_disk_path(machine):
    return os.path.join(machine.spec.directory, 'disk.raw')
