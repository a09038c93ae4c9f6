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

"""The conductor's re-check of attached volumes before the boot is set up.

The functional fault suite resets a real volume to ``error`` during the
image write; here the decisions, with Cinder's answers given.
"""

from unittest import mock

import pytest

from ipa_cinder.conductor import volume_checks
from ipa_cinder import exception

NODE = mock.Mock(uuid='0b5b1a9e-5e2f-4c34-9a0e-8f1f3c2d7e10',
                 driver_internal_info={'boot_from_volume': 'target-boot'})
VOLUME = '3f9d2c1b-8a7e-4d6c-b5a4-9e8f7d6c5b4a'
DATA = '5a6b7c8d-1e2f-4a3b-8c4d-5e6f7a8b9c0d'
RECORDED = {VOLUME: {'attachment_id': 'att-boot', 'target': 'target-boot'},
            DATA: {'attachment_id': 'att-data', 'target': 'target-data'}}


def _cinder(answer, attachments=('att-boot', 'att-data')):
    cinder = mock.Mock()
    if isinstance(answer, Exception):
        cinder.get_volume.side_effect = answer
    else:
        cinder.get_volume.return_value = {'id': VOLUME, 'status': answer}
    cinder.list_attachments.return_value = [{'id': a} for a in attachments]
    return cinder


@pytest.mark.parametrize('status', ['in-use', 'attaching', 'reserved'])
def test_attached_volumes_pass_with_two_requests(status):
    cinder = _cinder(status)
    volume_checks.check_still_attached(NODE, cinder, RECORDED)
    # One listing for every volume, one read of the boot volume only.
    cinder.list_attachments.assert_called_once_with(instance_uuid=NODE.uuid)
    cinder.get_volume.assert_called_once_with(VOLUME)


@pytest.mark.parametrize('status', ['error', 'available', 'deleting',
                                    'detaching', None])
def test_boot_volume_no_longer_attached_fails_naming_it(status):
    with pytest.raises(exception.VolumeAttachError) as e:
        volume_checks.check_still_attached(NODE, _cinder(status), RECORDED)
    assert NODE.uuid in str(e.value) and VOLUME in str(e.value)
    assert 'the volume is %s' % status in str(e.value)


@pytest.mark.parametrize('gone', ['att-boot', 'att-data'])
def test_attachment_gone_fails_naming_volume_and_attachment(gone):
    left = {'att-boot', 'att-data'} - {gone}
    cinder = _cinder('in-use', attachments=left)
    with pytest.raises(exception.VolumeAttachError) as e:
        volume_checks.check_still_attached(NODE, cinder, RECORDED)
    volume = VOLUME if gone == 'att-boot' else DATA
    assert NODE.uuid in str(e.value) and volume in str(e.value)
    assert 'its attachment %s is gone from Cinder' % gone in str(e.value)


def test_volume_gone_fails_naming_it():
    gone = exception.CinderError('Cinder get_volume failed (HTTP 404): '
                                 'Volume could not be found')
    with pytest.raises(exception.VolumeAttachError) as e:
        volume_checks.check_still_attached(NODE, _cinder(gone), RECORDED)
    assert 'cannot be read from Cinder any more' in str(e.value)
    assert 'HTTP 404' in str(e.value) and VOLUME in str(e.value)


def test_listing_failure_fails_naming_the_node():
    cinder = _cinder('in-use')
    cinder.list_attachments.side_effect = exception.CinderError(
        'Cinder list_attachments failed (HTTP 503)')
    with pytest.raises(exception.VolumeAttachError) as e:
        volume_checks.check_still_attached(NODE, cinder, RECORDED)
    assert NODE.uuid in str(e.value) and 'HTTP 503' in str(e.value)


def test_nothing_recorded_asks_nothing():
    cinder = _cinder('in-use')
    volume_checks.check_still_attached(NODE, cinder, {})
    assert not cinder.method_calls
