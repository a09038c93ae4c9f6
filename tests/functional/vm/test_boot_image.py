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

"""The test operating system boots in qemu and says what it booted from.

The image of :mod:`ipa_cinder_sandbox.boot_image` boots here as a plain
virtio disk (no iBFT): its marker line must name the disk's first
partition, no firmware initiator, and the builder's marker word. After the
deploy's own OS configuration (:mod:`ipa_cinder.agent.os_config`) wrote an
initiator name into a copy, the booted copy must report that name. The
guests run under qemu TCG (KVM hangs on this machine), keep their serial
log in the test's temporary directory and are killed after a timeout.
No sandbox services are needed.
"""

import hashlib
import os
import re
import shutil
import subprocess
import time

import pytest

from ipa_cinder.agent import os_config
from ipa_cinder_sandbox import boot_image

QEMU = shutil.which('qemu-system-x86_64')
BOOT_TIMEOUT = 120
MARKER = re.compile(
    r'^IPA-CINDER-BOOTED ibft_initiator=(?P<ibft_initiator>\S+) '
    r'os_initiator=(?P<os_initiator>\S+) root=(?P<root>\S+) '
    r'marker=(?P<marker>\S+)\s*$', re.MULTILINE)
FAILED = re.compile(r'^IPA-CINDER-BOOT-FAILED .*$', re.MULTILINE)
INITIATOR = 'iqn.2004-10.org.openstack:ipa-cinder-test-node'


@pytest.fixture(scope='module')
def image():
    """The built (or cached) image's description."""
    if os.geteuid() != 0:
        pytest.skip('building the image needs root (loop mount)')
    if QEMU is None:
        pytest.skip('qemu-system-x86_64 is not installed')
    began = time.monotonic()
    info = boot_image.build()
    print('\ntest OS image %s (%s in %.1f s, kernel %s)'
          % (info['path'], 'cached' if info['reused'] else 'built',
             time.monotonic() - began, info['kernel_release']))
    return info


def _boot(disk, log_path):
    """Boot ``disk`` until the guest powers off; returns its serial log."""
    argv = [QEMU, '-accel', 'tcg', '-m', '512', '-nographic', '-nodefaults',
            '-serial', 'file:%s' % log_path,
            '-drive', 'file=%s,if=virtio,format=raw,snapshot=on' % disk,
            '-no-reboot']
    began = time.monotonic()
    try:
        subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=BOOT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail('the guest did not power off within %d s; serial log:\n'
                    '%s' % (BOOT_TIMEOUT, _tail(log_path)))
    print('\nbooted %s in %.1f s' % (os.path.basename(disk),
                                     time.monotonic() - began))
    with open(log_path, errors='replace') as f:
        return f.read().replace('\r', '')


def _tail(log_path, lines=40):
    try:
        with open(log_path, errors='replace') as f:
            return ''.join(f.readlines()[-lines:])
    except FileNotFoundError:
        return '(no serial log)'


def _marker(log, log_path):
    """The fields of the one marker line; fails with the log's tail."""
    failed = FAILED.search(log)
    found = MARKER.findall(log)
    if failed or len(found) != 1:
        pytest.fail('no single marker line (%s); serial log:\n%s'
                    % (failed.group(0) if failed else '%d found' % len(found),
                       _tail(log_path)))
    return MARKER.search(log).groupdict()


def test_image_description(image):
    digest = hashlib.sha256()
    with open(image['path'], 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    assert digest.hexdigest() == image['sha256']
    assert os.path.getsize(image['path']) == image['size']
    assert image['disk_format'] == 'raw'
    assert re.fullmatch(r'\S+', image['marker'])
    assert 'iscsi_tcp.ko' in image['modules']
    assert 'iscsi_ibft.ko' in image['modules']


def test_second_build_comes_from_the_cache(image):
    began = time.monotonic()
    again = boot_image.build()
    assert again['reused']
    assert again['path'] == image['path']
    assert again['sha256'] == image['sha256']
    assert time.monotonic() - began < 5


def test_boots_from_a_plain_disk(image, tmp_path):
    log_path = str(tmp_path / 'serial.log')
    fields = _marker(_boot(image['path'], log_path), log_path)
    assert fields == {'ibft_initiator': '-', 'os_initiator': '-',
                      'root': '/dev/vda1', 'marker': image['marker']}


def test_reports_the_initiator_the_deploy_wrote(image, tmp_path):
    disk = str(tmp_path / 'deployed.raw')
    subprocess.run(['cp', '--sparse=always', image['path'], disk],
                   check=True)
    # The deploy step finds the root filesystem by its /etc/iscsi.
    assert os_config.find_os_root(disk) == image['partition_offset']
    result = os_config.set_initiator_name(disk, INITIATOR)
    assert result['configured'], result
    log_path = str(tmp_path / 'serial.log')
    fields = _marker(_boot(disk, log_path), log_path)
    assert fields == {'ibft_initiator': '-', 'os_initiator': INITIATOR,
                      'root': '/dev/vda1', 'marker': image['marker']}
