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

"""Rules of Cinder connection info and connectors, and volume identifiers.

Shared by the agent half, the conductor half and the command-line tool, so
that the three agree on what a usable ``connection_info`` is.

``connection_info`` is what Cinder returns in an attachment::

    {"driver_volume_type": "iscsi",
     "data": {"target_portal": "192.0.2.10:3260",
              "target_iqn": "iqn.2010-10.org.openstack:volume-...",
              "target_lun": 1,
              "auth_method": "CHAP",
              "auth_username": "...", "auth_password": "..."}}
"""

import copy
import functools
import os
import re

from oslo_utils import uuidutils

from ipa_cinder.common import secrets
from ipa_cinder import exception

# Connector keys a storage protocol needs besides "host".
_PROTOCOL_CONNECTOR_KEYS = {
    'iscsi': ('initiator',),
    'iser': ('initiator',),
    'fibre_channel': ('wwpns',),
    'nvmeof': ('nqn',),
}

VALID_MODES = ('rw', 'ro')

#: Volumes one cinder.connect_volumes command may connect, at most.
MAX_VOLUMES_PER_COMMAND = 64

#: The longest iSCSI name (RFC 3720, section 3.2.6.1).
MAX_ISCSI_NAME_LENGTH = 223
# iqn.yyyy-mm.reversed.domain[:anything], eui.<16 hex>, naa.<16 or 32 hex>;
# no white space, no control characters (the name goes into files).
# re.ASCII: with Unicode case folding, IGNORECASE lets [a-z] match the
# KELVIN SIGN, LONG S and DOTLESS I.
_ISCSI_NAME = re.compile(
    r'(iqn\.[0-9]{4}-[0-9]{2}\.[a-z0-9][-a-z0-9.]*(:[\x21-\x7e]*)?'
    r'|eui\.[0-9a-f]{16}|naa\.(?:[0-9a-f]{16}|[0-9a-f]{32}))',
    re.IGNORECASE | re.ASCII)

#: Bounds of a connection_info. Drivers nest theirs a few levels deep
#: with tens of values, and Cinder stores it in a 64 KiB TEXT column: a
#: larger one never came from Cinder. A hostile one must cost neither a
#: traceback (the recursion limit of a deep copy) nor unbounded time and
#: memory, and is refused before anything reads its text.
MAX_DEPTH = 16
MAX_VALUES = 10000
MAX_TEXT = 64 * 1024
#: The longest single string (a key or a value) of a connection_info.
MAX_STRING = 16 * 1024
#: The longest device path (PATH_MAX).
MAX_PATH = 4096

#: Protocols whose connection data IS the device: os-brick connects them
#: by returning ``data.device_path`` as it is, so this host must check
#: that it is a block device (see ipa_cinder.host.blockdev).
PATH_PROTOCOLS = ('local', 'gpfs')

# Pseudo-filesystems: nothing under them is a volume's device, and their
# magic links (/proc/<pid>/root, /proc/<pid>/fd) lead anywhere.
_PSEUDO_FILESYSTEMS = ('/proc', '/sys')

#: The longest connector host Cinder records (attached_host, 255).
MAX_HOST_LENGTH = 255

#: The largest SCSI logical unit number (64 bits).
MAX_LUN = 2 ** 64 - 1

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
    'gpfs': [('device_path',)],
    'fibre_channel': [('target_wwn', 'initiator_target_map')],
    'nvmeof': [('target_nqn',), ('target_portal', 'portals')],
    'rbd': [('name',)],
}

_STRING_FIELDS = ('target_portal', 'target_iqn', 'device_path',
                  'target_nqn', 'name', 'auth_method', 'auth_username',
                  'auth_password')
_LIST_FIELDS = ('target_portals', 'target_iqns', 'target_luns', 'portals')


@functools.cache
def known_protocols():
    """Lower-case driver_volume_type names that os-brick can connect."""
    # Imported on first use: the conductor and the Cinder client validate
    # connectors without loading os-brick's connectors.
    from os_brick.initiator import connector as brick_connector

    return tuple(sorted(
        p.lower() for p in brick_connector.get_connector_mapping()))


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
    if not isinstance(mode, str) or mode not in VALID_MODES:
        raise exception.InvalidConnectionInfo(
            'mode', 'must be one of %s, got %s'
            % (', '.join(VALID_MODES), secrets.brief(mode)), volume_id)
    return mode


def _check_shape(connection_info, volume_id):
    """Bounded depth, number of values and text; walked without recursion."""
    stack = [(connection_info, 1)]
    values = text = 0
    while stack:
        item, depth = stack.pop()
        values += 1
        if isinstance(item, dict):
            text += sum(len(k) for k in item if isinstance(k, str))
            children = list(item.values())
        elif isinstance(item, (list, tuple)):
            children = list(item)
        else:
            text += len(item) if isinstance(item, str) else 0
            children = []
        longest = _longest_string(item, children)
        if longest > MAX_STRING:
            reason = 'holds a string of %d characters (at most %d)' % (
                longest, MAX_STRING)
        elif children and depth >= MAX_DEPTH:
            reason = 'nested deeper than %d levels' % MAX_DEPTH
        elif values + len(stack) + len(children) > MAX_VALUES:
            reason = 'holds more than %d values' % MAX_VALUES
        elif text > MAX_TEXT:
            reason = 'holds more than %d characters' % MAX_TEXT
        else:
            stack.extend((child, depth + 1) for child in children)
            continue
        raise exception.InvalidConnectionInfo('connection_info', reason,
                                              volume_id)


def _longest_string(item, children):
    """The longest string among ``item`` and its keys (not its children)."""
    longest = len(item) if isinstance(item, str) else 0
    if isinstance(item, dict):
        longest = max([longest] + [len(k) for k in item
                                   if isinstance(k, str)])
    return longest


def validate_connection_info(connection_info, volume_id=None):
    """Check that ``connection_info`` can be handed to os-brick.

    :param connection_info: the attachment's connection info.
    :param volume_id: the volume, named in errors.
    :returns: a normalized deep copy: ``driver_volume_type`` lower-cased,
        ``target_lun`` an int.
    :raises: InvalidConnectionInfo naming the field at fault.
    """
    if not isinstance(connection_info, dict):
        raise exception.InvalidConnectionInfo(
            'connection_info', 'must be an object, got %s'
            % type(connection_info).__name__, volume_id)
    _check_shape(connection_info, volume_id)
    protocol = connection_info.get('driver_volume_type')
    if not isinstance(protocol, str) or not protocol:
        raise exception.InvalidConnectionInfo(
            'driver_volume_type', 'missing or not a string', volume_id)
    protocol = protocol.lower()
    if protocol not in known_protocols():
        raise exception.InvalidConnectionInfo(
            'driver_volume_type', 'unknown type %s; os-brick knows: %s'
            % (secrets.brief(protocol), ', '.join(known_protocols())),
            volume_id)
    data = connection_info.get('data')
    if not isinstance(data, dict):
        raise exception.InvalidConnectionInfo(
            'data', 'missing or not an object', volume_id)

    _check_data(protocol, data, volume_id)
    normalized = copy.deepcopy(connection_info)
    normalized['driver_volume_type'] = protocol
    _normalize_data(protocol, normalized['data'], volume_id)
    return normalized


def _check_data(protocol, data, volume_id):
    """Required keys of the protocol present, known keys of the right type."""
    for alternatives in _REQUIRED_DATA.get(protocol, ()):
        if not any(data.get(name) not in (None, '', [])
                   for name in alternatives):
            raise exception.InvalidConnectionInfo(
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
                raise exception.InvalidConnectionInfo(
                    'data.' + name, 'must be %s, got %s'
                    % (label, type(value).__name__), volume_id)


def _lun(lun, volume_id):
    """A LUN as an int: an int or a string of ASCII digits, 0 to 2^64-1."""
    if isinstance(lun, str):
        digits = lun.strip()
        # Not int() alone: it takes "1_0", "-1" and non-ASCII digits.
        if digits.isascii() and digits.isdigit() and len(digits) <= 20:
            lun = int(digits)
    if isinstance(lun, bool) or not isinstance(lun, int) or not (
            0 <= lun <= MAX_LUN):
        raise exception.InvalidConnectionInfo(
            'data.target_lun', 'must be an integer from 0 to %d, got %s'
            % (MAX_LUN, secrets.brief(lun)), volume_id)
    return lun


def _normalize_data(protocol, ndata, volume_id):
    """Make ``target_lun`` an int; check paths and CHAP (in place)."""
    if 'target_lun' in ndata and ndata['target_lun'] is not None:
        ndata['target_lun'] = _lun(ndata['target_lun'], volume_id)
    if protocol in PATH_PROTOCOLS:
        check_device_path(ndata.get('device_path'), volume_id)
    if (str(ndata.get('auth_method', '')).upper() == 'CHAP'
            and not (ndata.get('auth_username')
                     and ndata.get('auth_password'))):
        raise exception.InvalidConnectionInfo(
            'data.auth_username', 'CHAP needs both a user name and a '
            'password', volume_id)


def is_pseudo_path(path):
    """Whether absolute ``path`` is (under) /proc or /sys, as written."""
    normal = os.path.normpath('/' + path.lstrip('/'))
    return any(normal == top or normal.startswith(top + '/')
               for top in _PSEUDO_FILESYSTEMS)


def check_device_path(path, volume_id=None, field='data.device_path'):
    """Refuse a device path that cannot name a block device.

    Only what the text tells: absolute, no NUL character, at most
    PATH_MAX, not under /proc or /sys. Whether the path IS a block device
    that this host can open is for the host to check
    (ipa_cinder.host.blockdev.check_block_device).

    :raises: InvalidConnectionInfo naming the field.
    """
    if not isinstance(path, str) or not path:
        reason = 'must be a non-empty string, got %s' % type(path).__name__
    elif len(path) > MAX_PATH:
        reason = 'longer than %d characters' % MAX_PATH
    elif not path.startswith('/') or '\x00' in path:
        reason = ('must be an absolute path without NUL characters, got %s'
                  % secrets.brief(path))
    elif is_pseudo_path(path):
        reason = ('%s is under /proc or /sys, which hold no volume\'s '
                  'device' % secrets.brief(path))
    else:
        return path
    raise exception.InvalidConnectionInfo(field, reason, volume_id)


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
        raise exception.InvalidConnectionInfo(
            'connector', 'must be a non-empty object, got %s'
            % type(connector).__name__)
    if not isinstance(connector.get('host'), str) or not connector['host']:
        raise exception.InvalidConnectionInfo('connector.host', 'missing')
    if len(connector['host']) > MAX_HOST_LENGTH:
        raise exception.InvalidConnectionInfo(
            'connector.host', 'longer than %d characters' % MAX_HOST_LENGTH)
    if protocol is not None and not isinstance(protocol, str):
        raise exception.InvalidConnectionInfo(
            'driver_volume_type', 'must be a string, got %s'
            % type(protocol).__name__)
    for key in _PROTOCOL_CONNECTOR_KEYS.get((protocol or '').lower(), ()):
        if not connector.get(key):
            raise exception.InvalidConnectionInfo(
                'connector.' + key, 'required for %s volumes (the node\'s '
                'identity for that protocol)' % protocol)
    return connector


def check_uuid(value, field):
    """Refuse anything but a UUID (volume and attachment ids name files).

    :raises: InvalidIdentifier naming the field.
    """
    if not isinstance(value, str) or not uuidutils.is_uuid_like(value):
        raise exception.InvalidIdentifier(
            '%s must be a UUID, got %s' % (field, secrets.brief(value)))
    return value


def validate_initiator(initiator, field='initiator'):
    """Check an iSCSI initiator name (iqn., eui. or naa. form).

    :raises: InvalidConnectionInfo naming the field.
    :returns: the name.
    """
    if not isinstance(initiator, str) or not initiator:
        raise exception.InvalidConnectionInfo(
            field, 'must be a non-empty string, got %s'
            % type(initiator).__name__)
    if len(initiator) > MAX_ISCSI_NAME_LENGTH:
        raise exception.InvalidConnectionInfo(
            field, 'longer than %d characters' % MAX_ISCSI_NAME_LENGTH)
    if not _ISCSI_NAME.fullmatch(initiator):
        raise exception.InvalidConnectionInfo(
            field, 'not an iSCSI name (iqn.YYYY-MM.domain[:id], eui. or '
            'naa. form): %s' % secrets.brief(initiator, MAX_ISCSI_NAME_LENGTH))
    return initiator


#: The node property an operator sets to choose a node's initiator name.
INITIATOR_PROPERTY = 'iscsi_initiator_iqn'


def node_initiator(node_uuid, properties=None, prefix=None):
    """The iSCSI initiator name of a node that has no connector yet.

    The operator's choice (``properties/iscsi_initiator_iqn``) if any,
    else ``<prefix>:<node UUID>``: stable across deploys, unique per node.

    :raises: InvalidConnectionInfo when the operator's name is not one.
    """
    if properties is not None and not isinstance(properties, dict):
        raise exception.InvalidConnectionInfo(
            'properties', 'must be an object, got %s'
            % type(properties).__name__)
    chosen = (properties or {}).get(INITIATOR_PROPERTY)
    if chosen:
        return validate_initiator(chosen,
                                  'properties/%s' % INITIATOR_PROPERTY)
    if not isinstance(prefix, str) or not isinstance(node_uuid, str):
        raise exception.InvalidConnectionInfo(
            'initiator_iqn_prefix', 'needs a string prefix and node UUID, '
            'got %s and %s' % (type(prefix).__name__,
                               type(node_uuid).__name__))
    return validate_initiator('%s:%s' % (prefix, node_uuid),
                              'initiator_iqn_prefix')
