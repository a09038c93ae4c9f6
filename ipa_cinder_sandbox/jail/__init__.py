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
"""Confinement for an ironic-python-agent that runs on a machine that is
not a bare-metal node.

IPA runs as root and believes the machine it runs on is a node it may
power off, disconnect from the network and erase. The sandbox and the
functional tests run a real IPA on the developer's (or CI's) machine, so
it runs in a jail that makes those actions impossible, not merely
unlikely. Each layer alone would stop the dangerous actions; together
they leave no path:

1. Devices cgroup (v1 ``devices`` controller, when the kernel has it): the
   agent may open only the character devices every process needs and the
   block devices granted to it. The host's disks are denied by the kernel
   whatever path reaches them.
2. Mount namespace: a private ``/dev`` holding only the granted devices;
   every other mount of the host read-only except the directories the
   agent must write (its state and log directories); ``poweroff``,
   ``reboot``, ``shutdown``, ``halt`` and ``systemctl`` replaced by a
   command that refuses; ``/proc/sys`` read-only.
3. PID, IPC and UTS namespaces: the agent sees and signals only its own
   processes, and cannot rename the host. When the agent ends, the kernel
   kills whatever it left behind.
4. Capabilities: the bounding set loses CAP_SYS_BOOT (power off),
   CAP_NET_ADMIN (links, routes), CAP_MKNOD, CAP_SYS_MODULE, CAP_SYS_RAWIO,
   CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH and more. CAP_SYS_ADMIN stays, for
   the block device ioctls the agent needs (read-only flag, flush,
   partition scans) on the devices it was granted.
5. seccomp: mount, umount, setns, unshare, pivot_root, mknod, reboot,
   kexec, module loading, bpf, swapon, ptrace and a few more fail with
   EPERM, so CAP_SYS_ADMIN cannot be used to undo layers 1-2.

Usage (as root), with :class:`ipa_cinder_sandbox.jail.host.Jail`::

    jail = Jail('agent-1', workdir, devices=['/dev/loop5'],
                writable=[state_dir])
    proc = jail.start(['ironic-python-agent', '--config-file', conf])
    jail.grant_device('/dev/loop6')     # a device created later
    jail.stop()

``python -m ipa_cinder_sandbox.jail`` is the launcher the Jail runs; it is
not meant to be called by hand.

The modules, by layer: :mod:`.devices` (1, and the device nodes),
:mod:`.filesystem` (2), :mod:`.__main__` (3: the launcher and the jail's
init), :mod:`.lockdown` (4 and 5); :mod:`.host` is the ``Jail`` that the
sandbox drives from outside. This package imports none of them: the
launcher, which runs twice per agent start, loads only what it uses.
"""
