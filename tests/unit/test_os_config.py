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

"""The initiator name written into a real partitioned ext4 disk image."""

import subprocess

import pytest

from ipa_cinder.agent import os_config

START_SECTOR = 2048


def make_disk(path, with_iscsi=True, old_name=None):
    with open(path, 'wb') as f:
        f.truncate(32 << 20)
    subprocess.run(['sfdisk', '-q', str(path)], check=True, text=True,
                   input='label: dos\nstart=%d, type=83\n' % START_SECTOR)
    offset = START_SECTOR * 512
    subprocess.run(['mkfs.ext4', '-q', '-F', '-E', 'offset=%d' % offset,
                    str(path), '30M'], check=True)
    target = '%s?offset=%d' % (path, offset)
    requests = ['mkdir /etc']
    if with_iscsi:
        requests.append('mkdir /etc/iscsi')
    for request in requests:
        subprocess.run(['debugfs', '-w', '-R', request, target], check=True,
                       capture_output=True)
    if old_name:
        source = path.parent / 'old-name'
        source.write_text('InitiatorName=%s\n' % old_name)
        subprocess.run(['debugfs', '-w', '-R', 'write %s %s' % (
            source, os_config.INITIATOR_FILE), target], check=True,
            capture_output=True)
    return target


def read_initiator(target):
    return subprocess.run(['debugfs', '-R', 'cat %s'
                           % os_config.INITIATOR_FILE, target],
                          check=True, capture_output=True,
                          text=True).stdout


@pytest.mark.parametrize('old_name', [None, 'iqn.2000-01.org.old:node'])
def test_initiator_written(tmp_path, old_name):
    disk = tmp_path / 'disk.img'
    target = make_disk(disk, old_name=old_name)
    result = os_config.set_initiator_name(str(disk), 'iqn.2026-11.org:n1')
    assert result['configured'] is True
    assert result['offset'] == START_SECTOR * 512
    assert read_initiator(target) == 'InitiatorName=iqn.2026-11.org:n1\n'


def test_os_without_open_iscsi_is_left_alone(tmp_path):
    disk = tmp_path / 'disk.img'
    make_disk(disk, with_iscsi=False)
    result = os_config.set_initiator_name(str(disk), 'iqn.2026-11.org:n1')
    assert result['configured'] is False
    assert '/etc/iscsi' in result['reason']


def test_no_filesystem_at_all(tmp_path):
    disk = tmp_path / 'blank.img'
    with open(disk, 'wb') as f:
        f.truncate(4 << 20)
    assert os_config.set_initiator_name(str(disk), 'iqn.x')[
        'configured'] is False
