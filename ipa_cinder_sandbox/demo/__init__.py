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
"""``make demo``: boot-from-volume deploys with real services, narrated.

Run as root: ``python -m ipa_cinder_sandbox.demo``. It

1. (act 1, a few seconds) asks a real, confined ironic-python-agent with
   this plugin for its connector and connects a volume by hand;
2. brings the sandbox up under ``.sandbox-demo`` (ports from 18600):
   RabbitMQ, tgtd, Cinder 29, Ironic 39, an image server;
3. (act 2, about half a minute) creates a boot volume on Cinder's
   ``local`` backend, enrolls a fake-hardware node with the
   ``cinder-agent`` deploy interface, a boot volume target and the
   sandbox's test image, and deploys it with a real IPA; prints the
   timeline (each deploy step, each Cinder call), the attachment, the
   volume's status, the image's checksum on the volume and the boot
   configuration Ironic's iPXE boot interface reads; undeploys, shows the
   volume available with no attachment left; renders, with Ironic's own
   code, the iPXE sanboot script for an iSCSI boot volume (CHAP masked);
4. (act 3, the main act, 5-10 minutes under TCG; ``--skip-vm`` skips it)
   deploys a qemu VM node (``cinder-ipmi``: ipmitool power through the
   VM's BMC, ipxe boot) over kernel iSCSI onto two ``iscsi-node``
   volumes with the checkout's IPA ramdisk, narrating each provision
   state and the VM's console milestones; shows the node's initiator, the
   attachments, the boot portal as the VM sees it and the iPXE script
   Ironic wrote for the node (CHAP masked); watches the VM sanboot its
   volume into the test OS, whose console line carries the initiator
   names it booted with; undeploys without cleaning, removes the VM and
   prints the act's timeline table (:mod:`.vm_act`, :mod:`.vm_console`);
5. tears the sandbox down, also on failure or Ctrl-C.


:func:`run` is act 2's core and :func:`ipa_cinder_sandbox.demo.vm_act.run`
act 3's: each takes a running
:class:`ipa_cinder_sandbox.handle.SandboxHandle` and returns what it
showed, so the functional tests run act 2 against their own sandbox. The
pieces: :mod:`.narration` (what is printed), :mod:`.agent_act` (act 1),
:mod:`.deploy` and :mod:`.report` (act 2's deploy and what it shows),
:mod:`.timeline` (Ironic's and Cinder's logs), :mod:`.ipxe` (Ironic's iPXE
script), :mod:`.vm_act` and :mod:`.vm_console` (act 3: the VM node, its
console milestones, its iPXE script, its timings), :mod:`.__main__` (the
command line and the sandbox's life).
"""

from ipa_cinder_sandbox.demo import deploy


def run(handle, narrate=True):
    """The demo's core on a running sandbox; returns what it showed."""
    return deploy.Demo(handle, narrate=narrate).run()
