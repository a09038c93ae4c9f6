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

"""``local-attach`` refuses at once a volume this host has no identity for.

Only the decision is tested here (no Cinder): which connectors lack an
identity, and what the error says once the volume's protocol is known.
The functional test (tests/functional/faults/test_cli_faults_more.py)
runs it against the sandbox's Cinder with a host that has no initiator.
"""

import pytest

from ipa_cinder.cli import errors
from ipa_cinder.cli import protocols
from ipa_cinder import exception

VOLUME = {'id': '1f6c2b9e-3b0e-4c59-8f6e-0d7d7a4b2c01',
          protocols.POOL_FIELD: 'host@iscsi#iscsi'}
FULL = {'host': 'h', 'initiator': 'iqn.2004-10.com.example:h',
        'wwpns': ['500143802426baf4'], 'nqn': 'nqn.2014-08.org.example:h'}


def test_a_connector_with_every_identity_needs_no_lookup():
    assert not protocols.lacks_identity(FULL)
    # No lookup at all: the client is never used.
    assert protocols.check_connector(None, VOLUME, FULL) is None


@pytest.mark.parametrize('key', ['initiator', 'wwpns', 'nqn'])
def test_a_missing_identity_is_noticed(key):
    connector = dict(FULL, **{key: None})
    assert protocols.lacks_identity(connector)


def test_no_pool_in_the_volume_means_no_early_check():
    # A caller without the admin view: the create goes ahead as before.
    volume = {'id': VOLUME['id']}
    assert protocols.volume_protocol(None, volume) is None
    assert protocols.check_connector(None, volume, {'host': 'h'}) is None


@pytest.mark.parametrize('protocol,key,words', [
    ('iscsi', 'initiator', ('iSCSI', 'initiator name',
                            '/etc/iscsi/initiatorname.iscsi')),
    ('iser', 'initiator', ('iSER', 'initiator name')),
    ('fibre_channel', 'wwpns', ('Fibre Channel', 'WWPNs')),
    ('nvmeof', 'nqn', ('NVMe-oF', 'NQN', '/etc/nvme/hostnqn')),
])
def test_missing_identity_is_a_configuration_error(monkeypatch, protocol, key,
                                                   words):
    monkeypatch.setattr(protocols, 'volume_protocol',
                        lambda client, volume: protocol)
    connector = dict(FULL, **{key: ''})
    with pytest.raises(exception.CLIError) as caught:
        protocols.check_connector(None, VOLUME, connector)
    assert caught.value.code == errors.EXIT_USAGE
    text = str(caught.value)
    assert VOLUME['id'] in text and '"%s"' % key in text
    assert 'Nothing was created' in text
    for word in words:
        assert word in text, text


@pytest.mark.parametrize('protocol', ['local', None, 'rbd'])
def test_protocols_without_identity_go_ahead(monkeypatch, protocol):
    monkeypatch.setattr(protocols, 'volume_protocol',
                        lambda client, volume: protocol)
    assert protocols.check_connector(None, VOLUME, {'host': 'h'}) == protocol


def test_the_identity_the_volume_needs_is_there(monkeypatch):
    monkeypatch.setattr(protocols, 'volume_protocol',
                        lambda client, volume: 'iscsi')
    connector = dict(FULL, wwpns=None, nqn=None)
    assert protocols.check_connector(None, VOLUME, connector) == 'iscsi'
