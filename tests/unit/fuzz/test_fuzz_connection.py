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

"""Fuzzing the connection_info and connector rules (common/connection.py).

For any input each rule returns a value or raises the product's own error
(InvalidConnectionInfo, InvalidIdentifier) naming the field, short, and
identical whatever secret values the input holds: nothing else, ever.
"""

from hypothesis import given
from hypothesis import strategies as st

from ipa_cinder.common import connection
from ipa_cinder import exception
from tests.unit.fuzz import strategies as fz

EXPECTED = (exception.InvalidConnectionInfo, exception.InvalidIdentifier)


def outcome(function, *args, **kwargs):
    """('ok', result) or ('error', the product's error).

    Any other exception escapes and fails the property.
    """
    try:
        return 'ok', function(*args, **kwargs)
    except EXPECTED as e:
        return 'error', e


def assert_secret_free(function, value, *args, **kwargs):
    """The answer to ``value`` does not depend on its secret values."""
    kind, result = outcome(function, value, *args, **kwargs)
    swapped_kind, swapped = outcome(function, fz.swap_secrets(value),
                                    *args, **kwargs)
    assert kind == swapped_kind
    if kind == 'error':
        assert str(result) == str(swapped)
        for secret in fz.planted_secrets(value):
            assert secret not in str(result) or secret in str(swapped)
    return kind, result


@given(info=fz.connection_infos(),
       volume_id=st.one_of(st.none(), fz.uuids))
@fz.counted
def test_connection_info(info, volume_id):
    kind, result = assert_secret_free(connection.validate_connection_info,
                                      info, volume_id)
    if kind == 'error':
        fz.assert_names_field(result, result.field)
        assert not volume_id or volume_id in str(result)
        return
    protocol = result['driver_volume_type']
    assert protocol in connection.known_protocols()
    assert isinstance(result['data'], dict)
    assert result['data'] is not info['data']
    lun = result['data'].get('target_lun')
    assert lun is None or (type(lun) is int and lun >= 0)
    assert connection.validate_connection_info(result, volume_id) == result


@given(info=st.one_of(
    fz.any_value,
    st.builds(lambda extra: {'driver_volume_type': 'local',
                             'data': {'device_path': '/dev/loop7',
                                      'extra': extra}},
              st.one_of(fz.deep_values, fz.huge_containers)),
    st.builds(lambda lun: {'driver_volume_type': 'iscsi',
                           'data': dict(fz.VALID_DATA['iscsi'],
                                        target_lun=lun)},
              st.one_of(fz.scalars, fz.deep_values)),
    st.builds(lambda path: {'driver_volume_type': 'local',
                            'data': {'device_path': path}},
              st.one_of(fz.text, fz.text.map(lambda t: '/dev/' + t)))))
@fz.counted
def test_connection_info_any_shape(info):
    kind, result = outcome(connection.validate_connection_info, info)
    if kind == 'error':
        fz.assert_names_field(result, result.field)
    else:
        lun = result['data'].get('target_lun')
        assert lun is None or (type(lun) is int and lun >= 0)
        if result['driver_volume_type'] == 'local':
            path = result['data']['device_path']
            assert path.startswith('/') and '\x00' not in path


@given(info=st.one_of(fz.connection_infos(), fz.any_value))
@fz.counted
def test_from_attachment(info):
    nested = connection.from_attachment(info)
    if not isinstance(info, dict):
        assert nested is info
        return
    assert isinstance(nested['data'], dict)
    if isinstance(info.get('data'), dict):
        assert nested is info  # already nested: returned as it is
    else:
        assert nested['driver_volume_type'] == info.get('driver_volume_type')
    assert connection.from_attachment(nested) is nested
    kind, result = outcome(connection.validate_connection_info, nested)
    if kind == 'error':
        fz.assert_names_field(result, result.field)


@given(mode=st.one_of(fz.any_value, fz.planted(st.dictionaries(
    fz.keys, fz.json_values, max_size=3))),
    volume_id=st.one_of(st.none(), fz.uuids))
@fz.counted
def test_mode(mode, volume_id):
    if isinstance(mode, dict) and fz.is_shallow(mode):
        kind, result = assert_secret_free(connection.validate_mode, mode,
                                          volume_id)
    else:
        kind, result = outcome(connection.validate_mode, mode, volume_id)
    if kind == 'ok':
        assert result in ('rw', 'ro')
    else:
        assert result.field == 'mode'
        fz.assert_names_field(result, 'mode')


@given(value=st.one_of(fz.ids, fz.planted(st.dictionaries(
    fz.keys, fz.json_values, max_size=3))),
    field=st.sampled_from(('volume_id', 'attachment_id')))
@fz.counted
def test_check_uuid(value, field):
    if isinstance(value, dict) and fz.is_shallow(value):
        kind, result = assert_secret_free(connection.check_uuid, value,
                                          field)
    else:
        kind, result = outcome(connection.check_uuid, value, field)
    if kind == 'ok':
        assert result is value and isinstance(value, str)
    else:
        assert isinstance(result, exception.InvalidIdentifier)
        fz.assert_names_field(result, field)


iscsi_names = st.one_of(
    st.from_regex(connection._ISCSI_NAME, fullmatch=True),
    st.builds(lambda head, tail: head + tail,
              st.sampled_from(('iqn.2004-10.org.openstack', 'iqn.2004-10.',
                               'iqn.1993-08.org.debian:01:', 'eui.', 'naa.',
                               'IQN.2004-10.ORG.X:')),
              fz.text),
    fz.text, fz.any_value)


def assert_iscsi_name(name):
    assert isinstance(name, str) and 0 < len(name) <= 223
    assert all('\x21' <= c <= '\x7e' for c in name), ascii(name)
    assert name[:4].lower() in ('iqn.', 'eui.', 'naa.')


@given(name=iscsi_names,
       field=st.sampled_from(('initiator', 'properties/iscsi_initiator_iqn')))
@fz.counted
def test_initiator(name, field):
    kind, result = outcome(connection.validate_initiator, name, field)
    if kind == 'ok':
        assert result is name
        assert_iscsi_name(result)
    else:
        assert result.field == field
        fz.assert_names_field(result, field)


@given(node_uuid=fz.ids,
       properties=st.one_of(
           st.none(), fz.any_value,
           st.builds(lambda name, other: dict(other, iscsi_initiator_iqn=name),
                     iscsi_names, st.dictionaries(fz.keys, fz.json_values,
                                                  max_size=3))),
       prefix=st.one_of(st.just('iqn.2004-10.org.openstack.ipa-cinder'),
                        iscsi_names))
@fz.counted
def test_node_initiator(node_uuid, properties, prefix):
    kind, result = outcome(connection.node_initiator, node_uuid, properties,
                           prefix)
    if kind == 'ok':
        assert_iscsi_name(result)
    else:
        fz.assert_names_field(result, result.field)


@given(connector=fz.connectors,
       protocol=st.one_of(st.none(), st.sampled_from(fz.PROTOCOL_NAMES),
                          fz.scalars, fz.json_values))
@fz.counted
def test_connector(connector, protocol):
    if isinstance(connector, dict) and fz.is_shallow(connector):
        kind, result = assert_secret_free(connection.validate_connector,
                                          connector, protocol)
    else:
        kind, result = outcome(connection.validate_connector, connector,
                               protocol)
    if kind == 'ok':
        assert result is connector
        assert isinstance(connector['host'], str) and connector['host']
    else:
        fz.assert_names_field(result, result.field)
        assert result.field.startswith(('connector', 'driver_volume_type'))
