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
"""Parameters of the ``cinder`` agent commands, checked before they run.

IPA calls a command's validator before it starts the command (also for
asynchronous ones): every check here raises InvalidCommandParamsError
(HTTP 400) with a message naming the field, so that nothing is recorded
or connected for bad input. Values are bounded and printed shortened.
"""

import os

from ironic_python_agent import errors
from ironic_python_agent import hardware
from oslo_utils import strutils

from ipa_cinder.common import connection
from ipa_cinder.common import secrets
from ipa_cinder import exception
from ipa_cinder.host import blockdev


#: Unknown parameter names an error lists, at most.
_SHOWN_NAMES = 5


def bool_param(name, value):
    if isinstance(value, bool):
        return value
    # Strings and integers only (JSON gives nothing else that reads as a
    # boolean): bool_from_string prints anything else first, and a value
    # nested past the recursion limit cannot be printed.
    if isinstance(value, (str, int)):
        try:
            return strutils.bool_from_string(value, strict=True)
        except ValueError:
            pass
    raise errors.InvalidCommandParamsError(
        '%s must be a boolean, got %s' % (name, secrets.brief(value)))


def _unknown(command, extra):
    if extra:
        names = sorted(extra)
        shown = ', '.join(secrets.brief(n, 32) for n in names[:_SHOWN_NAMES])
        if len(names) > _SHOWN_NAMES:
            shown += ' and %d more' % (len(names) - _SHOWN_NAMES)
        raise errors.InvalidCommandParamsError(
            '%s: unknown parameter(s) %s' % (command, shown))


def no_parameters(command):
    def validate(self, **extra):
        _unknown(command, extra)
    return validate


def _check_device(info, volume_id):
    """A path protocol's device, if it exists already, must be usable.

    A path that does not exist (yet: udev may lag behind the export) is
    waited for by the command itself; anything else that is not a block
    device this host can open (a FIFO, a regular file, a directory, a
    character device, a node the agent may not open) is refused here,
    before the command starts, so nothing is recorded or connected.
    """
    if info['driver_volume_type'] not in connection.PATH_PROTOCOLS:
        return
    path = info['data']['device_path']
    if not os.path.lexists(path):
        return
    try:
        blockdev.check_block_device(path)
    except (exception.UnusableDevice, exception.DeviceTimeout) as e:
        raise errors.InvalidCommandParamsError(
            '%svolume %s: invalid connection info field '
            '"data.device_path": not a usable block device on this host: '
            '%s' % (node_prefix(), volume_id, e))


def validate_connect(self, **kwargs):
    _check_connect(None, **kwargs)


def _check_connect(where, /, volume_id=None, attachment_id=None,
                   connection_info=None, mode='rw', boot=False,
                   multipath=False, **extra):
    """One volume's parameters; ``where`` names its place in a list."""
    _unknown(where or 'cinder.connect_volume', extra)
    try:
        connection.check_uuid(volume_id, 'volume_id')
        connection.check_uuid(attachment_id, 'attachment_id')
        connection.validate_mode(mode, volume_id)
        info = connection.validate_connection_info(connection_info,
                                                   volume_id)
    except ValueError as e:
        raise errors.InvalidCommandParamsError('%s%s%s' % (
            node_prefix(), '%s: ' % where if where else '', e))
    bool_param('boot', boot)
    bool_param('multipath', multipath)
    _check_device(info, volume_id)


MAX_VOLUMES_PER_COMMAND = connection.MAX_VOLUMES_PER_COMMAND


def validate_connect_volumes(self, volumes=None, **extra):
    command = 'cinder.connect_volumes'
    _unknown(command, extra)
    if (not isinstance(volumes, list) or not volumes
            or len(volumes) > MAX_VOLUMES_PER_COMMAND):
        raise errors.InvalidCommandParamsError(
            '%s: volumes must be a list of 1 to %d volumes, got %s'
            % (command, MAX_VOLUMES_PER_COMMAND, secrets.brief(
                len(volumes) if isinstance(volumes, list) else volumes)))
    attachments = set()
    for index, item in enumerate(volumes):
        where = '%s: volumes[%d]' % (command, index)
        if not isinstance(item, dict):
            raise errors.InvalidCommandParamsError(
                '%s must be an object with volume_id, attachment_id and '
                'connection_info' % where)
        _check_connect(where, **item)
        if item['attachment_id'] in attachments:
            raise errors.InvalidCommandParamsError(
                '%s: attachment %s is listed twice'
                % (where, item['attachment_id']))
        attachments.add(item['attachment_id'])


def validate_disconnect(self, volume_id=None, attachment_id=None,
                        force=False, **extra):
    _unknown('cinder.disconnect_volume', extra)
    if volume_id is None and attachment_id is None:
        raise errors.InvalidCommandParamsError(
            'cinder.disconnect_volume needs volume_id or attachment_id')
    try:
        if volume_id is not None:
            connection.check_uuid(volume_id, 'volume_id')
        if attachment_id is not None:
            connection.check_uuid(attachment_id, 'attachment_id')
    except ValueError as e:
        raise errors.InvalidCommandParamsError(str(e))
    bool_param('force', force)


def _initiator(initiator):
    if initiator is None:
        return
    try:
        connection.validate_initiator(initiator)
    except ValueError as e:
        raise errors.InvalidCommandParamsError('%s%s' % (node_prefix(), e))


def validate_get_connector(self, multipath=False, enforce_multipath=False,
                           initiator=None, **extra):
    _unknown('cinder.get_connector', extra)
    bool_param('multipath', multipath)
    bool_param('enforce_multipath', enforce_multipath)
    _initiator(initiator)


def validate_disconnect_all(self, all_iscsi_sessions=False, **extra):
    _unknown('cinder.disconnect_all', extra)
    bool_param('all_iscsi_sessions', all_iscsi_sessions)


def validate_configure_boot(self, initiator=None, **extra):
    _unknown('cinder.configure_boot', extra)
    _initiator(initiator)


def node_uuid():
    node = hardware.get_cached_node()
    return node.get('uuid') if node else None


def node_prefix():
    node = node_uuid()
    return 'node %s: ' % node if node else ''
