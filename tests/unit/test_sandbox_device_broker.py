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

"""The device broker's decisions: which loop device goes to which agent.

The loop device table (losetup, root) and the Cinder client are set by
each test; the functional test ``test_agent_identity`` runs the broker
against the sandbox's real Cinder and jails.
"""

from unittest import mock

import pytest

from ipa_cinder_sandbox import device_broker
from ipa_cinder_sandbox import errors

VOLUMES = '/state/volumes/local'
OWNER = '7c1e4d8a-33b2-4d8e-9a55-0f3b4a9e1c01'
OTHER = '9d2f5e9b-44c3-4e9f-8b66-1a4c5b0f2d12'
MINE = '11111111-2222-4333-8444-555555555555'
THEIRS = '66666666-7777-4888-9999-aaaaaaaaaaaa'


def _file(volume_id):
    return '%s/volume-%s' % (VOLUMES, volume_id)


class _Agent(object):
    name = 'agent-test'

    def __init__(self):
        self.devices = set()
        self.refuse = False

    def grant_device(self, path):
        if self.refuse:
            raise errors.JailError('the jail is not running')
        self.devices.add(path)

    def revoke_device(self, path):
        self.devices.discard(path)


def _cinder(owners):
    """A client whose attachment list answers from {volume: instance}."""
    def get(path, microversion=None):
        assert microversion == '3.44'
        assert path.startswith('/attachments/detail?all_tenants=1&')
        volume_id = path.rsplit('volume_id=', 1)[1]
        owner = owners.get(volume_id)
        return {'attachments': [{'volume_id': volume_id, 'instance': owner}]
                if owner else []}
    return mock.Mock(get=mock.Mock(side_effect=get))


@pytest.fixture
def loops():
    table = {}
    with mock.patch.object(device_broker.loopdev, 'list_devices',
                           autospec=True, side_effect=lambda: dict(table)):
        yield table


def test_volume_of_a_backing_file():
    assert device_broker.volume_id_of(_file(MINE), VOLUMES) == MINE
    assert device_broker.volume_id_of(_file(MINE), VOLUMES + '/') == MINE
    for other in ('%s/snapshots/snapshot-%s' % (VOLUMES, MINE),
                  '/elsewhere/volume-%s' % MINE,
                  '%s/volume-not-a-uuid' % VOLUMES,
                  '%s/image-%s' % (VOLUMES, MINE)):
        assert device_broker.volume_id_of(other, VOLUMES) is None, other


def test_attached_to():
    assert device_broker.attached_to(
        [{'instance': OTHER}, {'instance': OWNER}], OWNER)
    assert not device_broker.attached_to([{'instance': OTHER}], OWNER)
    assert not device_broker.attached_to([{'instance': None}], OWNER)
    assert not device_broker.attached_to([], OWNER)


def test_an_owner_needs_a_cinder_client():
    with pytest.raises(ValueError):
        device_broker.DeviceBroker(_Agent(), VOLUMES, owner=OWNER)


def test_without_owner_every_export_is_granted_and_nothing_asked(loops):
    agent = _Agent()
    broker = device_broker.DeviceBroker(agent, VOLUMES)
    loops.update({'/dev/loop1': _file(MINE), '/dev/loop2': _file(THEIRS),
                  '/dev/loop3': '/home/someone/disk.img'})
    broker.sync()
    assert agent.devices == broker.granted == {'/dev/loop1', '/dev/loop2'}
    assert broker.queries == 0
    del loops['/dev/loop2']
    broker.sync()
    assert agent.devices == broker.granted == {'/dev/loop1'}


def test_owner_gets_its_volume_only_and_cinder_is_asked_once(loops):
    agent = _Agent()
    cinder = _cinder({MINE: OWNER, THEIRS: OTHER})
    broker = device_broker.DeviceBroker(agent, VOLUMES, owner=OWNER,
                                        cinder=cinder)
    loops.update({'/dev/loop1': _file(MINE), '/dev/loop2': _file(THEIRS)})
    for _ in range(5):
        broker.sync()
    assert agent.devices == broker.granted == {'/dev/loop1'}
    assert broker.denied == {'/dev/loop2'}
    assert broker.queries == cinder.get.call_count == 2


def test_a_file_that_is_no_volume_is_refused_without_asking(loops):
    cinder = _cinder({})
    broker = device_broker.DeviceBroker(_Agent(), VOLUMES, owner=OWNER,
                                        cinder=cinder)
    loops['/dev/loop4'] = '%s/snapshots/snapshot-%s' % (VOLUMES, MINE)
    broker.sync()
    assert broker.denied == {'/dev/loop4'}
    assert broker.granted == set()
    cinder.get.assert_not_called()


def test_a_reused_loop_number_is_taken_back_and_decided_again(loops):
    agent = _Agent()
    cinder = _cinder({MINE: OWNER, THEIRS: OTHER})
    broker = device_broker.DeviceBroker(agent, VOLUMES, owner=OWNER,
                                        cinder=cinder)
    loops['/dev/loop1'] = _file(MINE)
    broker.sync()
    assert agent.devices == {'/dev/loop1'}
    # Detached and attached again for the other node's volume between two
    # looks: same device, another backing file.
    loops['/dev/loop1'] = _file(THEIRS)
    broker.sync()
    assert agent.devices == broker.granted == set()
    assert broker.denied == {'/dev/loop1'}
    # And back to a volume of the owner: granted again.
    loops['/dev/loop1'] = _file(MINE)
    broker.sync()
    assert agent.devices == {'/dev/loop1'}
    assert broker.denied == set()
    assert cinder.get.call_count == 3


def test_a_cinder_error_is_not_remembered(loops):
    agent = _Agent()
    cinder = _cinder({MINE: OWNER})
    answer = cinder.get.side_effect
    cinder.get.side_effect = errors.APIError('GET', '/attachments', 500,
                                             'database is locked')
    broker = device_broker.DeviceBroker(agent, VOLUMES, owner=OWNER,
                                        cinder=cinder)
    loops['/dev/loop1'] = _file(MINE)
    broker.sync()
    assert agent.devices == set() and broker.denied == set()
    cinder.get.side_effect = answer
    broker.sync()
    assert agent.devices == {'/dev/loop1'}


def test_a_failed_grant_is_retried_without_asking_again(loops):
    agent = _Agent()
    agent.refuse = True
    cinder = _cinder({MINE: OWNER})
    broker = device_broker.DeviceBroker(agent, VOLUMES, owner=OWNER,
                                        cinder=cinder)
    loops['/dev/loop1'] = _file(MINE)
    broker.sync()
    assert broker.granted == set()
    agent.refuse = False
    broker.sync()
    assert agent.devices == broker.granted == {'/dev/loop1'}
    assert cinder.get.call_count == 1


def test_a_vanished_device_is_revoked_and_forgotten(loops):
    agent = _Agent()
    cinder = _cinder({MINE: OWNER, THEIRS: OTHER})
    broker = device_broker.DeviceBroker(agent, VOLUMES, owner=OWNER,
                                        cinder=cinder)
    loops.update({'/dev/loop1': _file(MINE), '/dev/loop2': _file(THEIRS)})
    broker.sync()
    loops.clear()
    broker.sync()
    assert agent.devices == broker.granted == broker.denied == set()


def test_fleet_broker_hands_each_device_to_its_nodes_agent(loops):
    cinder = _cinder({MINE: OWNER, THEIRS: OTHER})
    broker = device_broker.FleetBroker(VOLUMES, cinder)
    mine, theirs = _Agent(), _Agent()
    broker.add(OWNER, mine)
    loops.update({'/dev/loop3': _file(MINE), '/dev/loop4': _file(THEIRS)})
    broker.sync()
    assert mine.devices == {'/dev/loop3'}
    # The other node's agent joins later: it gets what was decided, and
    # Cinder is not asked again.
    broker.add(OTHER, theirs)
    broker.sync()
    broker.sync()
    assert theirs.devices == {'/dev/loop4'}
    assert mine.devices == {'/dev/loop3'}
    assert broker.queries == 2
    assert broker.granted_to(OWNER) == {'/dev/loop3'}


def test_fleet_broker_takes_back_a_reused_loop_number(loops):
    cinder = _cinder({MINE: OWNER, THEIRS: OTHER})
    broker = device_broker.FleetBroker(VOLUMES, cinder)
    mine, theirs = _Agent(), _Agent()
    broker.add(OWNER, mine)
    broker.add(OTHER, theirs)
    loops['/dev/loop3'] = _file(MINE)
    broker.sync()
    # Detached, and the number now serves the other node's volume.
    loops['/dev/loop3'] = _file(THEIRS)
    broker.sync()
    assert mine.devices == set()
    assert theirs.devices == {'/dev/loop3'}
    del loops['/dev/loop3']
    broker.sync()
    assert theirs.devices == set()
    assert broker.granted_to(OTHER) == set()
