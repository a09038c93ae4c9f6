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

"""The initramfs of the test operating system (:mod:`.boot_image`).

Its ``/init`` (busybox sh) loads the kernel modules a qemu guest needs,
logs in to the iSCSI target the firmware describes in the iBFT (iPXE's
``sanhook`` publishes one) with open-iscsi's ``iscsistart``, mounts the
root filesystem of the disk it found read-only, prints one marker line on
the console and powers off. Without an iBFT it mounts the first partition
of the first virtio or SCSI disk instead.

The marker line, which tests parse::

    IPA-CINDER-BOOTED ibft_initiator=<iqn|-> os_initiator=<iqn|->
        root=<device> marker=<word>   (one line)

or ``IPA-CINDER-BOOT-FAILED <reason>``. No CHAP secret is ever printed.
"""

import gzip
import os
import re
import shutil

from ipa_cinder_sandbox import commands
from ipa_cinder_sandbox import errors

BUSYBOX = '/bin/busybox'
ISCSISTART = '/sbin/iscsistart'
# What the guest loads, in this order; each with its dependencies first.
# virtio_scsi and sd_mod cover a SCSI disk, iscsi_tcp the kernel initiator,
# iscsi_ibft the firmware table (/sys/firmware/ibft). ext4 is built in.
MODULES = ('virtio_pci', 'virtio_blk', 'virtio_net', 'virtio_scsi',
           'sd_mod', 'iscsi_tcp', 'iscsi_ibft')
# After this many seconds the guest gives up, says so and powers off.
WATCHDOG_SECONDS = 120
BOOTED = 'IPA-CINDER-BOOTED'
FAILED = 'IPA-CINDER-BOOT-FAILED'

INIT = r'''#!/bin/sh
# Test OS of ipa-cinder: prove which disk this system booted from.
export PATH=/bin:/sbin LD_LIBRARY_PATH=/lib/x86_64-linux-gnu
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
IBFT=/sys/firmware/ibft

say() { echo "$*" > /dev/console; }
# A line of its own, whatever the console held before.
report() { printf '\n%s\n' "$*" > /dev/console; }
off() { sync; poweroff -f; sleep 30; }
fail() {
    # Kernel messages must not split the line a test parses.
    echo 1 > /proc/sys/kernel/printk
    report "@FAILED@ $*"
    off
}
# Lines of a log without anything that holds a CHAP secret.
scrub() {
    for f in $IBFT/initiator $IBFT/target*; do
        for s in chap-secret rev-chap-secret; do
            v=$(cat $f/$s 2>/dev/null | sed 's/[][\/.*^$]/\\&/g')
            [ -n "$v" ] && set -- -e "/$v/d" "$@"
        done
    done
    sed -e '/[Ss]ecret/d' -e '/[Pp]assword/d' "$@"
}
first() { awk 'NR == 1 { print $1 }' "$1" 2>/dev/null; }

( sleep @WATCHDOG@; fail "no root filesystem after @WATCHDOG@ s" ) &

for m in $(cat /lib/modules/load-order); do
    insmod /lib/modules/$m 2>/dev/null || say "ipa-cinder-init: no $m"
done

nic_of() {
    for n in /sys/class/net/*; do
        [ "$(cat $n/address)" = "$1" ] && { echo ${n##*/}; return 0; }
    done
    return 1
}

net_up() {
    mac=$(cat $IBFT/ethernet0/mac 2>/dev/null | tr A-F a-f)
    tries=0
    # virtio_net probes its device in the background.
    until nic=$(nic_of "$mac"); do
        tries=$((tries + 1))
        [ $tries -gt 100 ] && fail "no network interface has the iBFT" \
            "NIC's MAC $mac:" $(cat /sys/class/net/*/address)
        usleep 100000
    done
    ifconfig lo 127.0.0.1 up
    addr=$(cat $IBFT/ethernet0/ip-addr 2>/dev/null)
    mask=$(cat $IBFT/ethernet0/subnet-mask 2>/dev/null)
    gw=$(cat $IBFT/ethernet0/gateway 2>/dev/null)
    if [ -n "$addr" ] && [ "$addr" != 0.0.0.0 ]; then
        ifconfig $nic $addr netmask ${mask:-255.255.255.0} up ||
            fail "cannot give $nic the iBFT address $addr/$mask"
        # The target may be on the same subnet: no route is no failure.
        [ -n "$gw" ] && [ "$gw" != 0.0.0.0 ] && route add default gw $gw
    else
        ifconfig $nic up
        udhcpc -i $nic -n -q -t 10 -s /bin/udhcpc.script ||
            fail "no DHCP lease on $nic"
    fi
    return 0
}

iscsi_disk() {
    for b in /sys/block/sd*; do
        case "$(readlink -f $b/device)" in
            */session*) echo ${b##*/}; return 0;;
        esac
    done
    return 1
}

local_disk() {
    for b in /sys/block/vd* /sys/block/sd*; do
        [ -e "$b" ] && { echo ${b##*/}; return 0; }
    done
    return 1
}

ibft_initiator=-
if [ -d $IBFT/target0 ]; then
    ibft_initiator=$(first $IBFT/initiator/initiator-name)
    net_up
    say "ipa-cinder-init: $nic up, logging in to the iBFT target"
    { iscsistart -b 2>&1; echo $? > /tmp/iscsistart.rc; } |
        scrub > /dev/console
    rc=$(cat /tmp/iscsistart.rc)
    [ "$rc" = 0 ] || fail "iscsistart -b exited $rc"
    find_disk=iscsi_disk
else
    find_disk=local_disk
fi
: ${ibft_initiator:=-}

tries=0
until disk=$($find_disk) && [ -b /dev/${disk}1 ]; do
    tries=$((tries + 1))
    [ $tries -gt 300 ] && fail "no disk with a partition (${find_disk})"
    usleep 100000
done
root=/dev/${disk}1
mkdir -p /mnt/root
mount -t ext4 -o ro $root /mnt/root || fail "cannot mount $root"
os_initiator=$(sed -n 's/^[[:space:]]*InitiatorName=//p' \
    /mnt/root/etc/iscsi/initiatorname.iscsi 2>/dev/null | head -n 1)
os_initiator=$(echo $os_initiator)
marker=$(first /mnt/root/etc/ipa-cinder-image)
echo 1 > /proc/sys/kernel/printk
report "@BOOTED@ ibft_initiator=${ibft_initiator}" \
    "os_initiator=${os_initiator:--} root=${root} marker=${marker:--}"
umount /mnt/root
off
'''

# busybox udhcpc hands the lease to a script; this one applies it.
UDHCPC_SCRIPT = r'''#!/bin/sh
case "$1" in
    bound|renew)
        ifconfig $interface $ip netmask ${subnet:-255.255.255.0} up
        for r in $router; do route add default gw $r; break; done;;
esac
exit 0
'''


def init_script():
    """The text of ``/init``."""
    return (INIT.replace('@FAILED@', FAILED).replace('@BOOTED@', BOOTED)
            .replace('@WATCHDOG@', str(WATCHDOG_SECONDS)))


def load_order(modules_dir, wanted=MODULES):
    """Module files (relative to ``modules_dir``) in an order insmod takes.

    Dependencies come from the ``modules.dep`` that ``busybox depmod``
    writes into ``modules_dir``; each module follows everything it needs.
    """
    commands.run(BUSYBOX, 'depmod', '-b', os.path.dirname(os.path.dirname(
        os.path.dirname(modules_dir))), os.path.basename(modules_dir))
    deps = {}
    with open(os.path.join(modules_dir, 'modules.dep')) as f:
        for line in f:
            path, _sep, needs = line.partition(':')
            deps[path.strip()] = needs.split()
    by_name = {re.sub(r'\.ko(\..*)?$', '', os.path.basename(p))
               .replace('-', '_'): p for p in deps}
    order = []

    def add(path, trail):
        if path in order:
            return
        if path in trail:
            raise errors.SandboxError('module dependency cycle: %s'
                                      % ' -> '.join(trail + [path]))
        # modules.dep lists every module needed, the direct ones first.
        for dep in reversed(deps.get(path, [])):
            add(dep, trail + [path])
        order.append(path)

    for name in wanted:
        if name not in by_name:
            raise errors.SandboxError('kernel module %s is not in %s'
                                      % (name, modules_dir))
        add(by_name[name], [])
    return order


def _copy_program(program, root):
    """Copy a dynamically linked ``program`` and the libraries ldd names."""
    out = commands.run('ldd', program).stdout
    files = [program] + re.findall(r'(/\S+) \(0x', out)
    for path in files:
        target = os.path.join(root, path.lstrip('/'))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.realpath(path), target)
    return files


def _write(root, path, text, mode=0o644):
    target = os.path.join(root, path.lstrip('/'))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, 'w') as f:
        f.write(text)
    os.chmod(target, mode)


def populate(root, modules_dir):
    """Lay out the initramfs tree in ``root``; returns the modules loaded.

    :param modules_dir: ``lib/modules/<release>`` of the unpacked kernel.
    """
    for name in ('bin', 'sbin', 'proc', 'sys', 'dev', 'tmp', 'mnt', 'run',
                 'etc/iscsi', 'lib/modules'):
        os.makedirs(os.path.join(root, name), exist_ok=True)
    shutil.copy2(BUSYBOX, os.path.join(root, 'bin', 'busybox'))
    os.symlink('busybox', os.path.join(root, 'bin', 'sh'))
    _copy_program(ISCSISTART, root)
    order = load_order(modules_dir)
    for path in order:
        shutil.copy2(os.path.join(modules_dir, path),
                     os.path.join(root, 'lib', 'modules',
                                  os.path.basename(path)))
    _write(root, '/lib/modules/load-order',
           ''.join(os.path.basename(p) + '\n' for p in order))
    _write(root, '/init', init_script(), 0o755)
    _write(root, '/bin/udhcpc.script', UDHCPC_SCRIPT, 0o755)
    return [os.path.basename(p) for p in order]


def pack(root, archive):
    """Write ``root`` as a gzip-compressed newc cpio archive."""
    names = []
    for top, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            names.append(os.path.relpath(os.path.join(top, name), root))
    raw = archive + '.cpio'
    commands.run('cpio', '--create', '--format=newc', '--owner=0:0',
                 '--quiet', '--file=%s' % raw, cwd=root,
                 stdin=''.join(n + '\n' for n in names))
    try:
        with open(raw, 'rb') as src, gzip.open(archive, 'wb', 6) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    finally:
        os.unlink(raw)
