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

"""Validation of Cinder connection info and connectors, and secret masking.

Shared by the agent half, the conductor half and the command-line tool, so
that the three agree on what a usable ``connection_info`` is and on what
must never be shown.

``connection_info`` is what Cinder returns in an attachment::

    {"driver_volume_type": "iscsi",
     "data": {"target_portal": "192.0.2.10:3260",
              "target_iqn": "iqn.2010-10.org.openstack:volume-...",
              "target_lun": 1,
              "auth_method": "CHAP",
              "auth_username": "...", "auth_password": "..."}}
"""

import copy
import re

from os_brick.initiator import connector as brick_connector
from oslo_utils import strutils

MASK = '***'

# Keys whose values are secret wherever they appear: oslo.utils masks keys
# containing "password", "secret" and "token"; user names of CHAP and
# friends (auth_username, discovery_auth_username, chap_username...) are
# half of a credential and masked too.
_USER_KEY = re.compile(r'(user_?name|^user$|_user$)', re.IGNORECASE)

# ``key=value`` / ``'key': 'value'`` secrets in free text, beyond the
# password patterns oslo.utils knows.
_KEY_VALUE_TEXT = re.compile(
    r'''(['"]?[a-z_]*(?:user(?:_?name)?|password|passwd|secret|token)'''
    r'''['"]?\s*[:=]\s*)(['"]?)[^'",}\s]+''',
    re.IGNORECASE)

# Connector keys a storage protocol needs besides "host".
_PROTOCOL_CONNECTOR_KEYS = {
    'iscsi': ('initiator',),
    'iser': ('initiator',),
    'fibre_channel': ('wwpns',),
    'nvmeof': ('nqn',),
}

VALID_MODES = ('rw', 'ro')

# What each protocol needs in connection_info["data"] for os-brick to
# connect it. A tuple lists alternatives: one of them is enough.
_REQUIRED_DATA = {
    'iscsi': [('target_portal', 'target_portals'),
              ('target_iqn', 'target_iqns'),
              ('target_lun', 'target_luns')],
    'iser': [('target_portal', 'target_portals'),
             ('target_iqn', 'target_iqns'),
             ('target_lun', 'target_luns')],
    'local': [('device_path',)],
    'fibre_channel': [('target_wwn', 'initiator_target_map')],
    'nvmeof': [('target_nqn',), ('target_portal', 'portals')],
    'rbd': [('name',)],
}

_STRING_FIELDS = ('target_portal', 'target_iqn', 'device_path',
                  'target_nqn', 'name', 'auth_method', 'auth_username',
                  'auth_password')
_LIST_FIELDS = ('target_portals', 'target_iqns', 'target_luns', 'portals')


class InvalidConnectionInfo(ValueError):
    """A connection_info or connector that cannot be used.

    The message names the volume (when known) and the field at fault and
    never carries a secret value.
    """

    def __init__(self, field, reason, volume_id=None):
        self.field = field
        self.reason = reason
        self.volume_id = volume_id
        where = 'volume %s: ' % volume_id if volume_id else ''
        super().__init__('%sinvalid connection info field "%s": %s'
                         % (where, field, reason))


def is_secret_key(key):
    """Whether the value stored under ``key`` must never be shown."""
    if not isinstance(key, str):
        return False
    if _USER_KEY.search(key):
        return True
    # mask_dict_password decides by the same key list; ask it rather than
    # keeping a second copy of that list here.
    return strutils.mask_dict_password({key: 'x'}, MASK)[key] == MASK


def mask(value):
    """Return a deep copy of ``value`` with every secret masked.

    Works on dicts (connection_info, connector, records), lists and
    strings (``password=...`` style text is masked by oslo.utils).
    """
    if isinstance(value, dict):
        return {k: (MASK if is_secret_key(k) and v not in (None, '')
                    else mask(v))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(mask(v) for v in value)
    if isinstance(value, str):
        return mask_text(value)
    return value


def mask_text(text):
    """Mask ``key=value`` / ``'key': 'value'`` secrets in free text."""
    text = strutils.mask_password(text, MASK)
    return _KEY_VALUE_TEXT.sub(r'\1\2' + MASK, text)


def secret_values(value):
    """Every secret string found in ``value`` (recursively).

    Used to scrub log records: a secret that slipped into any text (an
    os-brick or IPA log line, a traceback) is replaced by the mask.
    """
    found = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if is_secret_key(k) and isinstance(v, str) and v:
                found.add(v)
            else:
                found |= secret_values(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            found |= secret_values(v)
    return found


def known_protocols():
    """Lower-case driver_volume_type names that os-brick can connect."""
    return sorted(p.lower() for p in brick_connector.get_connector_mapping())


def from_attachment(connection_info):
    """The usual nested form of an attachment's ``connection_info``.

    Cinder's attachments API returns it flat (the driver's data keys next
    to ``driver_volume_type``); os-brick and this project use the nested
    form ``{"driver_volume_type": ..., "data": {...}}``. Nested input is
    returned as it is.
    """
    if not isinstance(connection_info, dict):
        return connection_info
    if isinstance(connection_info.get('data'), dict):
        return connection_info
    data = {k: v for k, v in connection_info.items()
            if k != 'driver_volume_type'}
    return {'driver_volume_type': connection_info.get('driver_volume_type'),
            'data': data}


def validate_mode(mode, volume_id=None):
    if mode not in VALID_MODES:
        raise InvalidConnectionInfo(
            'mode', 'must be one of %s, got %r'
            % (', '.join(VALID_MODES), mask(mode)), volume_id)
    return mode


def validate_connection_info(connection_info, volume_id=None):
    """Check that ``connection_info`` can be handed to os-brick.

    :param connection_info: the attachment's connection info.
    :param volume_id: the volume, named in errors.
    :returns: a normalized deep copy: ``driver_volume_type`` lower-cased,
        ``target_lun`` an int.
    :raises: InvalidConnectionInfo naming the field at fault.
    """
    if not isinstance(connection_info, dict):
        raise InvalidConnectionInfo(
            'connection_info', 'must be an object, got %s'
            % type(connection_info).__name__, volume_id)
    protocol = connection_info.get('driver_volume_type')
    if not isinstance(protocol, str) or not protocol:
        raise InvalidConnectionInfo(
            'driver_volume_type', 'missing or not a string', volume_id)
    protocol = protocol.lower()
    if protocol not in known_protocols():
        raise InvalidConnectionInfo(
            'driver_volume_type', 'unknown type %r; os-brick knows: %s'
            % (protocol, ', '.join(known_protocols())), volume_id)
    data = connection_info.get('data')
    if not isinstance(data, dict):
        raise InvalidConnectionInfo(
            'data', 'missing or not an object', volume_id)

    for alternatives in _REQUIRED_DATA.get(protocol, ()):
        if not any(data.get(name) not in (None, '', [])
                   for name in alternatives):
            raise InvalidConnectionInfo(
                'data.' + alternatives[0],
                'required for %s volumes%s' % (
                    protocol,
                    ' (or data.%s)' % ', data.'.join(alternatives[1:])
                    if len(alternatives) > 1 else ''),
                volume_id)

    for names, kind, label in ((_STRING_FIELDS, str, 'a string'),
                               (_LIST_FIELDS, list, 'a list')):
        for name in names:
            value = data.get(name)
            if value is not None and not isinstance(value, kind):
                raise InvalidConnectionInfo(
                    'data.' + name, 'must be %s, got %s'
                    % (label, type(value).__name__), volume_id)

    normalized = copy.deepcopy(connection_info)
    normalized['driver_volume_type'] = protocol
    ndata = normalized['data']
    if 'target_lun' in ndata and ndata['target_lun'] is not None:
        lun = ndata['target_lun']
        if isinstance(lun, bool) or not isinstance(lun, (int, str)):
            raise InvalidConnectionInfo(
                'data.target_lun', 'must be an integer, got %s'
                % type(lun).__name__, volume_id)
        try:
            ndata['target_lun'] = int(lun)
        except ValueError:
            raise InvalidConnectionInfo(
                'data.target_lun', 'must be an integer, got %r' % lun,
                volume_id)
    if protocol == 'local' and not ndata['device_path'].startswith('/'):
        raise InvalidConnectionInfo(
            'data.device_path', 'must be an absolute path, got %r'
            % ndata['device_path'], volume_id)
    if (str(ndata.get('auth_method', '')).upper() == 'CHAP'
            and not (ndata.get('auth_username')
                     and ndata.get('auth_password'))):
        raise InvalidConnectionInfo(
            'data.auth_username', 'CHAP needs both a user name and a '
            'password', volume_id)
    return normalized


def validate_connector(connector, protocol=None):
    """Check a connector before it is sent to Cinder.

    Cinder takes a lock on ``connector["host"]`` (its drivers key exports
    on it) and answers 500, leaving a reserved attachment behind, when an
    iSCSI connector has no initiator: both are refused here instead, as is
    a connector missing what its protocol needs.

    :param connector: the connector (from os-brick get_connector_properties).
    :param protocol: the driver_volume_type the volume will use, if known.
    :raises: InvalidConnectionInfo naming the missing field.
    """
    if not isinstance(connector, dict) or not connector:
        raise InvalidConnectionInfo(
            'connector', 'must be a non-empty object, got %s'
            % type(connector).__name__)
    if not isinstance(connector.get('host'), str) or not connector['host']:
        raise InvalidConnectionInfo('connector.host', 'missing')
    for key in _PROTOCOL_CONNECTOR_KEYS.get((protocol or '').lower(), ()):
        if not connector.get(key):
            raise InvalidConnectionInfo(
                'connector.' + key, 'required for %s volumes (the node\'s '
                'identity for that protocol)' % protocol)
    return connector
