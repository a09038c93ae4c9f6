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

"""The IPA ramdisk with ipa-cinder, as tools/ramdisk/build-ramdisk makes it.

The build script reuses the cached build whose key (a hash of the elements,
the script, constraints.txt and ipa-cinder's sources) matches, and builds
one otherwise: diskimage-builder and ironic-python-agent-builder, Debian 12
from Debian's archive, about 10-15 minutes on this machine. The tests read
the real kernel and initramfs: the archive's file list, and the few files
they need unpacked with cpio into a temporary directory.
"""

import configparser
import json
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, 'tools', 'ramdisk', 'build-ramdisk')
VENV = 'opt/ironic-python-agent'
BUILD_TIMEOUT = 45 * 60
# Decompressors by the magic bytes that start an initramfs.
DECOMPRESSORS = (
    (b'\x1f\x8b', ['gzip', '-dc']),
    (b'\x28\xb5\x2f\xfd', ['zstd', '-dcq']),
    (b'\xfd7zXZ', ['xz', '-dc']),
    (b'\x5d\x00\x00', ['xz', '-dc', '--format=lzma']),
)


def _build():
    proc = subprocess.run([BUILD, '--json'], capture_output=True, text=True,
                          timeout=BUILD_TIMEOUT)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print('\nramdisk %s (%s, built in %.0f s): kernel %.1f MiB, '
          'initramfs %.1f MiB'
          % (result['directory'], 'reused' if result['reused'] else 'new',
             result['build_seconds'], result['sizes']['kernel'] / 2**20,
             result['sizes']['initramfs'] / 2**20))
    return result


def _cpio(initramfs, args, cwd=None):
    """Run cpio on the decompressed initramfs; returns its stdout."""
    with open(initramfs, 'rb') as f:
        magic = f.read(4)
    for prefix, decompress in DECOMPRESSORS:
        if magic.startswith(prefix):
            break
    else:
        raise AssertionError('unknown initramfs compression: %r' % magic)
    with open(initramfs, 'rb') as f:
        unpack = subprocess.Popen(decompress, stdin=f,
                                  stdout=subprocess.PIPE)
        out = subprocess.run(['cpio', '--quiet'] + args, stdin=unpack.stdout,
                             capture_output=True, cwd=cwd, check=True).stdout
        # cpio stops at the first archive's trailer; the kernel goes on
        # with the next one (the bytecode): all of it must decompress.
        while unpack.stdout.read(1 << 20):
            pass
        unpack.stdout.close()
        assert unpack.wait() == 0
    return out


class Ramdisk(object):
    """The built kernel and initramfs, with the initramfs's file list."""

    # Unpacked for the tests: small text files only (no device nodes).
    UNPACK = ('*.dist-info/entry_points.txt', '*/modules.dep',
              '*/modules.builtin', 'etc/iscsi/*')

    def __init__(self, result, unpack_dir):
        self.result = result
        self.kernel = result['kernel']
        self.initramfs = result['initramfs']
        self.dir = unpack_dir
        listing = _cpio(self.initramfs, ['-t']).decode()
        self.names = {n[2:] if n.startswith('./') else n
                      for n in listing.splitlines()}
        # cpio matches a pattern against the whole name ('*' matches '/').
        _cpio(self.initramfs, ['-id', '--no-absolute-filenames']
              + list(self.UNPACK), cwd=unpack_dir)

    def site_packages(self):
        found = {m.group(0) for n in self.names
                 for m in [re.match(VENV + r'/lib/python3\.\d+/site-packages',
                                    n)] if m}
        assert len(found) == 1, found
        return found.pop()

    def dist_infos(self):
        prefix = self.site_packages() + '/'
        return {n[len(prefix):] for n in self.names
                if n.startswith(prefix) and n.endswith('.dist-info')
                and '/' not in n[len(prefix):]}

    def exists(self, *candidates):
        return any(c in self.names for c in candidates)

    def kernel_release(self):
        """The release in the bzImage header (the boot protocol's field)."""
        with open(self.kernel, 'rb') as f:
            header = f.read(0x210)
            offset = int.from_bytes(header[0x20e:0x210], 'little') + 0x200
            f.seek(offset)
            return f.read(256).split(b'\0')[0].split()[0].decode()


@pytest.fixture(scope='module')
def ramdisk(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip('building the ramdisk needs root (debootstrap, chroot)')
    return Ramdisk(_build(), str(tmp_path_factory.mktemp('initramfs')))


def test_build_is_cached_by_its_key(ramdisk):
    assert os.path.basename(ramdisk.result['directory']) == \
        ramdisk.result['key']
    key = subprocess.run([BUILD, '--key'], capture_output=True, text=True,
                         check=True, timeout=120).stdout.strip()
    if key != ramdisk.result['key']:
        pytest.skip('the checkout changed while the ramdisk was built')
    assert subprocess.run([BUILD, '--check'], timeout=120).returncode == 0


def test_agent_venv_has_ipa_and_ipa_cinder(ramdisk):
    infos = ramdisk.dist_infos()
    assert any(re.match(r'ironic_python_agent-13\.', i) for i in infos), infos
    cinder = [i for i in infos if i.startswith('ipa_cinder-')]
    assert len(cinder) == 1, infos
    entry_points = configparser.ConfigParser()
    entry_points.read(os.path.join(ramdisk.dir, ramdisk.site_packages(),
                                   cinder[0], 'entry_points.txt'))
    assert (entry_points['ironic_python_agent.hardware_managers']['cinder']
            == 'ipa_cinder.agent.hardware_manager:CinderHardwareManager')
    assert (entry_points['ironic_python_agent.extensions']['cinder']
            == 'ipa_cinder.agent.extension:CinderExtension')


def test_no_conductor_in_the_ramdisk(ramdisk):
    site = ramdisk.site_packages() + '/'
    assert not any(re.match(r'ironic-\d', i) for i in ramdisk.dist_infos())
    assert site + 'ironic' not in ramdisk.names
    assert site + 'ironic/__init__.py' not in ramdisk.names


def test_iscsi_initiator_tools_present(ramdisk):
    # os-brick logs in with iscsiadm/iscsid; cinder_configure_boot finds
    # the written OS with sfdisk and edits it with debugfs.
    for tool in ('iscsiadm', 'iscsid', 'sfdisk', 'debugfs'):
        assert ramdisk.exists('usr/sbin/' + tool, 'sbin/' + tool), tool


def test_firmware_iscsi_sessions_are_visible(ramdisk):
    # iscsi_ibft loaded at boot: IPA's start-up logs in to the target the
    # firmware booted or hooked, and cleaning can disconnect it.
    assert ramdisk.exists('etc/modules-load.d/ipa-cinder-ibft.conf')
    assert ramdisk.exists('usr/sbin/iscsistart', 'sbin/iscsistart')


def test_no_initiator_name_baked_in(ramdisk):
    assert not ramdisk.exists('etc/iscsi/initiatorname.iscsi')
    iscsi_dir = os.path.join(ramdisk.dir, 'etc', 'iscsi')
    for top, dirs, files in os.walk(iscsi_dir):
        for name in files:
            with open(os.path.join(top, name), 'rb') as f:
                assert not re.search(rb'^\s*InitiatorName\s*=', f.read(),
                                     re.M), name


def test_kernel_modules_match_the_kernel(ramdisk):
    release = ramdisk.kernel_release()
    assert 'cloud' in release, release
    modules = None
    for base in ('usr/lib/modules', 'lib/modules'):
        if ramdisk.exists('%s/%s/modules.dep' % (base, release)):
            modules = '%s/%s' % (base, release)
    assert modules, 'no modules for kernel %s' % release
    available = ''
    for index in ('modules.dep', 'modules.builtin'):
        with open(os.path.join(ramdisk.dir, modules, index)) as f:
            available += f.read()
    # A module (modules.dep) or built into the kernel (modules.builtin).
    for module in ('iscsi_tcp', 'iscsi_ibft', 'virtio_net', 'virtio_blk',
                   'virtio_pci',
                   'ext4'):
        assert re.search(r'/%s\.ko(\.\w+)?(:|$)' % module, available,
                         re.M), module
    releases = {m.group(2) for n in ramdisk.names
                for m in [re.match(r'(usr/)?lib/modules/([^/]+)/', n)] if m}
    assert releases == {release}, 'modules of other kernels: %s' % releases


def test_agent_starts_at_boot(ramdisk):
    assert ramdisk.exists('init')
    assert ramdisk.exists(
        'usr/lib/systemd/system/ironic-python-agent.service')
    assert ramdisk.exists(
        'etc/systemd/system/multi-user.target.wants/'
        'ironic-python-agent.service')
    # IPA dies at start without udevadm.
    assert ramdisk.exists('usr/bin/udevadm', 'bin/udevadm')
