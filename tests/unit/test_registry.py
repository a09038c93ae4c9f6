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

import os
import stat

import pytest

from ipa_cinder import exception
from ipa_cinder.host import registry

VOLUME = '0e0bb0a4-7e7b-4c4e-9d55-1f5b5d0b0a01'
ATTACHMENT = '7c0a3a55-3f5a-4f0e-8e0c-2c2b8f8e6a02'


def record(**extra):
    rec = {'volume_id': VOLUME, 'attachment_id': ATTACHMENT,
           'device_path': '/dev/loop9', 'connected_at': '2026-01-01',
           'connection_info': {'driver_volume_type': 'iscsi',
                               'data': {'auth_password': 'hunter2-long'}}}
    rec.update(extra)
    return rec


def test_save_get_list_remove(state_dir):
    reg = registry.ConnectionRegistry()
    assert reg.list() == []
    reg.save(record())
    assert reg.get(ATTACHMENT)['device_path'] == '/dev/loop9'
    assert [r['attachment_id'] for r in reg.list()] == [ATTACHMENT]
    assert reg.find(volume_id=VOLUME)[0]['attachment_id'] == ATTACHMENT
    assert reg.find(volume_id=ATTACHMENT) == []
    reg.remove(ATTACHMENT)
    reg.remove(ATTACHMENT)  # twice is fine
    assert reg.get(ATTACHMENT) is None


def test_survives_a_new_instance(state_dir):
    registry.ConnectionRegistry().save(record())
    assert registry.ConnectionRegistry().get(ATTACHMENT) is not None


def test_secrets_never_on_disk_and_root_only(state_dir):
    reg = registry.ConnectionRegistry()
    reg.save(record())
    path = os.path.join(state_dir, 'connections', ATTACHMENT + '.json')
    with open(path) as f:
        assert 'hunter2-long' not in f.read()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700


@pytest.mark.parametrize('bad', ['../../etc/passwd', 'abc', None, 42])
def test_ids_must_be_uuids(state_dir, bad):
    reg = registry.ConnectionRegistry()
    with pytest.raises(exception.InvalidIdentifier):
        reg.save(record(attachment_id=bad))
    with pytest.raises(exception.InvalidIdentifier):
        reg.get(bad)


def test_unreadable_record_skipped(state_dir):
    reg = registry.ConnectionRegistry()
    reg.save(record())
    with open(os.path.join(reg.path, 'broken.json'), 'w') as f:
        f.write('{not json')
    assert [r['attachment_id'] for r in reg.list()] == [ATTACHMENT]
