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

"""Fuzzing the Cinder client's input checks (common/cinder_client.py).

A bad connector or mode is refused with InvalidInput before any request:
Cinder answers 500 to a connector without ``host`` (or an iSCSI one
without ``initiator``) and leaves a reserved attachment behind. The
client is given a real keystoneauth adapter whose session refuses to send
anything: a request made for input that should have been refused fails
the property, and input that passes reaches that session and nothing else.
"""

from hypothesis import given
from hypothesis import strategies as st

from ipa_cinder.common import cinder_client
from ipa_cinder import exception
from tests.unit.fuzz import strategies as fz

VOLUME = fz.VOLUME
NODE = fz.NODE
RequestSent = fz.RequestSent
CLIENT, SESSION = fz.refusing_cinder_client()

# Not fz.any_value: a mode nested deeper than the recursion limit is a
# known failure of the client (see test_deep_mode below).
modes = st.one_of(st.none(), st.sampled_from(('rw', 'ro', 'RW', 'r', '')),
                  fz.json_values, fz.huge_containers,
                  fz.planted(st.dictionaries(fz.keys, fz.json_values,
                                             max_size=3)))
protocols = st.one_of(st.none(), st.sampled_from(fz.PROTOCOL_NAMES),
                      fz.text)


def attempt(function, *args, **kwargs):
    """'refused' (InvalidInput, nothing sent) or 'sent'."""
    SESSION.requests.clear()
    try:
        function(*args, **kwargs)
    except exception.InvalidInput as e:
        assert not SESSION.requests, SESSION.requests
        assert 'create_attachment' in str(e)
        return 'refused', str(e)
    except RequestSent:
        return 'sent', None
    raise AssertionError('neither refused nor sent')


@given(connector=fz.connectors, mode=modes, protocol=protocols)
@fz.counted
def test_create_attachment(connector, mode, protocol):
    kind, text = attempt(CLIENT.create_attachment, VOLUME, connector,
                         instance_uuid=NODE, mode=mode, protocol=protocol)
    if kind == 'sent':
        assert mode in (None, 'rw', 'ro')
        assert isinstance(connector['host'], str) and connector['host']
        return
    assert VOLUME in text and NODE in text
    if fz.is_shallow(connector) and fz.is_shallow(mode):
        _kind, swapped = attempt(CLIENT.create_attachment, VOLUME,
                                 fz.swap_secrets(connector),
                                 instance_uuid=NODE,
                                 mode=fz.swap_secrets(mode),
                                 protocol=protocol)
        assert swapped == text


@given(connector=fz.connectors, protocol=protocols)
@fz.counted
def test_validate_connector(connector, protocol):
    try:
        cinder_client.validate_connector(connector, protocol, node=NODE,
                                         volume=VOLUME)
    except exception.InvalidConnector as e:
        assert 'connector' in str(e) or 'driver_volume_type' in str(e)
        assert len(str(e)) <= fz.MAX_MESSAGE_LENGTH
    else:
        assert isinstance(connector['host'], str) and connector['host']


def test_deep_mode():
    """A mode nested past the recursion limit is refused, not a crash."""
    deep = fz.nest('rw', 3000, 'list')
    outcome, message = attempt(CLIENT.create_attachment, VOLUME,
                               {'host': 'node-1'}, instance_uuid=NODE,
                               mode=deep)
    assert outcome == 'refused'
    assert 'mode must be one of rw, ro, not' in message
