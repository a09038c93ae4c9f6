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

"""A bootable test operating system, as a raw disk image.

Virtual-machine tests deploy it onto a Cinder volume and boot a qemu guest
from that volume: the guest prints on its serial console which iSCSI
initiator it booted with and which disk it mounted (the line is described
in :mod:`.boot_image_initramfs`). It is built from Debian packages only,
nothing is installed on this machine:

- the kernel of ``linux-image-cloud-amd64`` (``apt-get download`` +
  ``dpkg-deb -x``), whose virtio, SCSI and iSCSI drivers are modules;
- an initramfs of ``busybox-static``, ``iscsistart`` (open-iscsi) and
  those modules;
- an MBR with one bootable Linux partition (syslinux's ``mbr.bin``), an
  ext4 filesystem made with ``mke2fs -d`` at the partition's offset (this
  kernel cannot see partitions), and ``extlinux`` installed through a loop
  device over that offset.

The root filesystem holds what the deploy's OS configuration
(:mod:`ipa_cinder.agent.os_config`) looks for: an empty ``/etc/iscsi`` for
``initiatorname.iscsi``, plus ``/etc/os-release`` and the builder's marker
word in ``/etc/ipa-cinder-image``. Builds are cached by a key of their
inputs (package versions and the source of the two modules); building
needs root for the loop device and the mount.
"""

import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import time

from oslo_log import log as logging

from ipa_cinder.host import mounts
from ipa_cinder_sandbox import boot_image_initramfs as initramfs
from ipa_cinder_sandbox import commands
from ipa_cinder_sandbox import errors
from ipa_cinder_sandbox import loopdev

LOG = logging.getLogger(__name__)

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CACHE_DIR = os.path.join(CHECKOUT, '.cache', 'boot-image')
KERNEL_METAPACKAGE = 'linux-image-cloud-amd64'
# Packages whose files go into the image (the kernel aside).
TOOL_PACKAGES = ('busybox-static', 'syslinux-common', 'extlinux',
                 'open-iscsi')
MBR = '/usr/lib/syslinux/mbr/mbr.bin'
APT_LISTS = '/var/lib/apt/lists'
IMAGE_NAME = 'ipa-cinder-test-os.raw'
INFO_NAME = 'image.json'
IMAGE_SIZE_MIB = 64
SECTOR = 512
PARTITION_START = 2048
MARKER_PATH = '/etc/ipa-cinder-image'
ROOT_LABEL = 'ipa-cinder-root'
# Field of the boot sector that holds the partition's first sector: the
# loop device extlinux installs through starts at the partition, so it
# cannot know.
HIDDEN_SECTORS_OFFSET = 0x1c
KERNEL_ARGS = 'console=ttyS0 panic=5 loglevel=6'
EXTLINUX_CONF = '''SERIAL 0 115200
DEFAULT ipa-cinder
PROMPT 0
TIMEOUT 0
LABEL ipa-cinder
  LINUX /boot/vmlinuz
  INITRD /boot/initrd.img
  APPEND %s
''' % KERNEL_ARGS


def _apt_lists_state():
    """A fingerprint of apt's package lists: it changes on apt-get update."""
    state = []
    for name in sorted(os.listdir(APT_LISTS)):
        if 'Packages' in name:
            st = os.stat(os.path.join(APT_LISTS, name))
            state.append([name, st.st_size, st.st_mtime_ns])
    return hashlib.sha256(json.dumps(state).encode()).hexdigest()[:16]


def kernel_package(cache_dir):
    """(name, version) of the kernel package the metapackage depends on.

    apt-cache takes seconds here (no package cache): the answer is kept in
    ``cache_dir`` for as long as apt's lists stay the same.
    """
    memo = os.path.join(cache_dir, 'kernel-%s.json' % _apt_lists_state())
    try:
        with open(memo) as f:
            return tuple(json.load(f))
    except (FileNotFoundError, ValueError):
        pass
    out = commands.run('apt-cache', 'show', '--no-all-versions',
                       KERNEL_METAPACKAGE, check=False).stdout
    found = re.search(r'^Depends:.*?(linux-image-[^\s,]+) \(= ([^)]+)\)',
                      out, re.MULTILINE)
    if not found:
        raise errors.SandboxError('no kernel package found for %s: run '
                                  'apt-get update' % KERNEL_METAPACKAGE)
    answer = found.groups()
    with open(memo + '.%d' % os.getpid(), 'w') as f:
        json.dump(answer, f)
    os.replace(f.name, memo)
    return answer


def inputs(cache_dir):
    """What a build depends on: package versions and this code."""
    versions = {}
    for package in TOOL_PACKAGES:
        result = commands.run('dpkg-query', '-W', '-f', '${Version}',
                              package, check=False)
        if result.exit_code or not result.stdout:
            raise errors.SandboxError('package %s is not installed (see '
                                      'bindep.txt)' % package)
        versions[package] = result.stdout
    name, version = kernel_package(cache_dir)
    versions[name] = version
    code = hashlib.sha256()
    for module in (__file__, initramfs.__file__):
        with open(module.replace('.pyc', '.py'), 'rb') as f:
            code.update(f.read())
    return {'packages': versions, 'code': code.hexdigest()}


def cache_key(build_inputs):
    """A short key naming the build of ``build_inputs``."""
    text = json.dumps(build_inputs, sort_keys=True).encode()
    return hashlib.sha256(text).hexdigest()[:16]


def _fetch_kernel(work, package):
    """Download and unpack ``package``; returns (vmlinuz, modules dir)."""
    download = os.path.join(work, 'deb')
    os.makedirs(download)
    # Root downloads straight into a directory apt's own user cannot read.
    commands.run('apt-get', 'download', '-q', '-o',
                 'APT::Sandbox::User=root', package, cwd=download)
    debs = [n for n in os.listdir(download) if n.endswith('.deb')]
    if len(debs) != 1:
        raise errors.SandboxError('apt-get download %s left %s'
                                  % (package, debs))
    unpacked = os.path.join(work, 'kernel')
    commands.run('dpkg-deb', '-x', os.path.join(download, debs[0]),
                 unpacked)
    releases = os.listdir(os.path.join(unpacked, 'lib', 'modules'))
    if len(releases) != 1:
        raise errors.SandboxError('%s ships modules of %s'
                                  % (package, releases))
    release = releases[0]
    vmlinuz = os.path.join(unpacked, 'boot', 'vmlinuz-%s' % release)
    return vmlinuz, os.path.join(unpacked, 'lib', 'modules', release)


def _write(root, path, text):
    target = os.path.join(root, path.lstrip('/'))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, 'w') as f:
        f.write(text)


def _root_tree(root, marker):
    """The files of the root filesystem, the kernel and initramfs aside."""
    os.makedirs(os.path.join(root, 'etc', 'iscsi'))
    os.makedirs(os.path.join(root, 'boot', 'extlinux'))
    _write(root, '/boot/extlinux/extlinux.conf', EXTLINUX_CONF)
    _write(root, MARKER_PATH, marker + '\n')
    _write(root, '/etc/os-release',
           'NAME="ipa-cinder test OS"\nID=ipa-cinder-test\n'
           'PRETTY_NAME="ipa-cinder test OS (%s)"\nVERSION_ID=%s\n'
           % (marker, marker.rsplit('-', 1)[-1]))
    _write(root, '/etc/hostname', 'ipa-cinder-test-os\n')
    _write(root, '/etc/fstab', 'LABEL=%s / ext4 ro 0 1\n' % ROOT_LABEL)


def _install_boot(path, offset, size, boot_files):
    """Copy the kernel and initramfs in, install extlinux.

    The files are written through a mount: ``mke2fs -d`` would leave holes
    where they hold zeros, and extlinux cannot read a file with holes.

    :param boot_files: {name in /boot: file to copy}.
    """
    device = commands.run(loopdev.LOSETUP, '--find', '--show', '--offset',
                          offset, '--sizelimit', size,
                          path).stdout.strip()
    try:
        with tempfile.TemporaryDirectory() as mountpoint:
            mounts.mount(device, mountpoint)
            try:
                for name, source in sorted(boot_files.items()):
                    shutil.copyfile(source, os.path.join(
                        mountpoint, 'boot', name))
                commands.run('extlinux', '--install',
                             os.path.join(mountpoint, 'boot', 'extlinux'))
            finally:
                mounts.unmount(mountpoint)
    finally:
        loopdev.detach(device)
    with open(path, 'r+b') as f:
        f.seek(offset + HIDDEN_SECTORS_OFFSET)
        f.write((offset // SECTOR).to_bytes(4, 'little'))


def _make_disk(path, root, boot_files):
    """A raw disk: MBR, one bootable partition, ext4 of ``root``."""
    with open(path, 'wb') as f:
        f.truncate(IMAGE_SIZE_MIB << 20)
    commands.run('sfdisk', '--quiet', '--no-reread', '--no-tell-kernel',
                 path, stdin='label: dos\nstart=%d, type=83, bootable\n'
                 % PARTITION_START)
    with open(MBR, 'rb') as src, open(path, 'r+b') as dst:
        dst.write(src.read(440))
    offset = PARTITION_START * SECTOR
    size = (IMAGE_SIZE_MIB << 20) - offset
    # No 64bit feature: a 63 MiB filesystem needs none, and extlinux reads
    # the classic layout best.
    commands.run('mke2fs', '-q', '-F', '-t', 'ext4', '-b', '4096', '-O',
                 '^64bit', '-L', ROOT_LABEL, '-d', root, '-E',
                 'offset=%d' % offset, path,
                 '%dk' % (size // 1024))
    _install_boot(path, offset, size, boot_files)
    return offset


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _build_into(directory, key, build_inputs):
    """Build the image in the empty ``directory``; returns its info."""
    began = time.monotonic()
    marker = 'ipa-cinder-test-os-%s' % key
    package, version = [(n, v) for n, v in build_inputs['packages'].items()
                        if n.startswith('linux-image-')][0]
    with tempfile.TemporaryDirectory(dir=directory) as work:
        vmlinuz, modules_dir = _fetch_kernel(work, package)
        tree = os.path.join(work, 'initramfs')
        modules = initramfs.populate(tree, modules_dir)
        initrd = os.path.join(work, 'initrd.img')
        initramfs.pack(tree, initrd)
        root = os.path.join(work, 'root')
        _root_tree(root, marker)
        path = os.path.join(directory, IMAGE_NAME)
        offset = _make_disk(path, root, {'vmlinuz': vmlinuz,
                                         'initrd.img': initrd})
    return {
        'path': path, 'name': IMAGE_NAME, 'disk_format': 'raw',
        'size': os.path.getsize(path), 'sha256': _sha256(path),
        'marker': marker, 'marker_path': MARKER_PATH, 'key': key,
        'kernel_release': os.path.basename(modules_dir),
        'kernel_package': '%s=%s' % (package, version),
        'kernel_args': KERNEL_ARGS, 'modules': modules,
        'partition_offset': offset, 'root_label': ROOT_LABEL,
        'inputs': build_inputs,
        'build_seconds': round(time.monotonic() - began, 1),
    }


def _cached(directory):
    try:
        with open(os.path.join(directory, INFO_NAME)) as f:
            info = json.load(f)
    except (FileNotFoundError, ValueError):
        return None
    return info if os.path.exists(info['path']) else None


def build(cache_dir=None):
    """The test OS image, built once per set of inputs.

    :param cache_dir: where builds are kept (default:
        ``<checkout>/.cache/boot-image``); each in ``<cache_dir>/<key>/``.
    :returns: dict with ``path`` (raw image), ``size``, ``sha256``,
        ``marker`` (the word the booted OS prints), ``kernel_release``,
        ``kernel_package``, ``modules``, ``partition_offset``, ``key``,
        ``build_seconds`` and ``reused`` (True when taken from the cache).
    """
    cache_dir = os.path.abspath(cache_dir or DEFAULT_CACHE_DIR)
    os.makedirs(cache_dir, exist_ok=True)
    build_inputs = inputs(cache_dir)
    key = cache_key(build_inputs)
    directory = os.path.join(cache_dir, key)
    # Two test sessions may ask at once: one builds, the other waits.
    with open(os.path.join(cache_dir, '%s.lock' % key), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        info = _cached(directory)
        if info is not None:
            info['reused'] = True
            return info
        partial = directory + '.partial'
        shutil.rmtree(partial, ignore_errors=True)
        os.makedirs(partial)
        try:
            info = _build_into(partial, key, build_inputs)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        with open(os.path.join(partial, INFO_NAME), 'w') as f:
            json.dump(dict(info, path=os.path.join(directory, IMAGE_NAME)),
                      f, indent=2, sort_keys=True)
        # A directory without its description is a build that broke off.
        shutil.rmtree(directory, ignore_errors=True)
        os.replace(partial, directory)
    info['path'] = os.path.join(directory, IMAGE_NAME)
    info['reused'] = False
    LOG.info('Built the test OS image %s in %.1f s', info['path'],
             info['build_seconds'])
    return info
