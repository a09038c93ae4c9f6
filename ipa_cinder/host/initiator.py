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

"""open-iscsi's initiator name on this host.

A ramdisk image serves many nodes, so the name it was built with (if any)
is nobody's: the agent writes the node's own name before it reports the
connector, and restarts a running iscsid, which reads the name only when
it starts. Only the agent writes it; the CLI reads what the host has.

A ramdisk that never reported a connector (cleaning) has no name at all,
and Debian's iscsid refuses to start without one, so iscsiadm cannot log
out of the session the firmware opened (iBFT) and IPA's start-up logged
in to again with ``iscsistart``, which needs no iscsid. For that case
:func:`ensure_for_sessions` writes the firmware's own name: the one that
session logged in with.
"""

import os

from oslo_concurrency import processutils
from oslo_log import log

from ipa_cinder.common import connection
from ipa_cinder import conf as ipa_conf

LOG = log.getLogger(__name__)
CONF = ipa_conf.CONF

_KEY = 'InitiatorName='
#: The initiator name iSCSI boot firmware published (kernel iscsi_ibft).
FIRMWARE_NAME = '/sys/firmware/ibft/initiator/initiator-name'
# A name file is a line or two: anything longer is not one.
_MAX_FILE_SIZE = 4096


def read(path=None):
    """The name in the initiator file, or None (missing or unreadable)."""
    path = path or CONF.ipa_cinder.initiator_file
    try:
        with open(path) as f:
            text = f.read(_MAX_FILE_SIZE)
    except OSError:
        return None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(_KEY):
            return line[len(_KEY):].strip() or None
    return None


def _write(path, name):
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    tmp = path + '.tmp'
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, ('%s%s\n' % (_KEY, name)).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def _restart_iscsid():
    """Make a running iscsid read the new name (it reads it at start)."""
    try:
        processutils.execute('systemctl', 'try-restart', 'iscsid.service',
                             attempts=1)
    except (processutils.ProcessExecutionError, OSError) as e:
        LOG.warning('Could not restart iscsid after setting the initiator '
                    'name (%s); an iscsid started later reads the new '
                    'name', e)


def ensure(name, path=None):
    """Make ``name`` this host's initiator name.

    :returns: True when the file changed (and iscsid was restarted).
    :raises: InvalidConnectionInfo for a name that is not an iSCSI name;
        OSError when the file cannot be written.
    """
    connection.validate_initiator(name)
    path = path or CONF.ipa_cinder.initiator_file
    if read(path) == name:
        return False
    _write(path, name)
    LOG.info('Initiator name of this node set to %s (%s)', name, path)
    _restart_iscsid()
    return True


def firmware_name(path=None):
    """The initiator name in the firmware's iBFT, or None."""
    path = path or FIRMWARE_NAME
    try:
        with open(path) as f:
            name = f.read(_MAX_FILE_SIZE).strip()
    except OSError:
        return None
    try:
        connection.validate_initiator(name)
    except Exception as e:  # a broken table is no name to use
        LOG.warning('Ignoring the iBFT initiator name: %s', e)
        return None
    return name


def _start_iscsid():
    """Start iscsid now that it has a name (it failed at boot without)."""
    for argv in (('systemctl', 'reset-failed', 'iscsid.service',
                  'iscsid.socket'),
                 ('systemctl', 'start', 'iscsid.socket', 'iscsid.service')):
        try:
            processutils.execute(*argv, attempts=1)
        except (processutils.ProcessExecutionError, OSError) as e:
            LOG.warning('Could not run %s (%s); iscsiadm starts iscsid '
                        'through its socket if it can', ' '.join(argv), e)
            return


def ensure_for_sessions(path=None):
    """An initiator name for iscsid, if this host has none yet.

    :returns: the name now in the file, or None when there is none (no
        file and no iBFT name): iscsiadm then reports why it cannot work.
    """
    path = path or CONF.ipa_cinder.initiator_file
    current = read(path)
    if current:
        return current
    name = firmware_name()
    if name is None:
        return None
    _write(path, name)
    LOG.info('This host had no initiator name: set the firmware\'s (iBFT) '
             'name %s so that iscsid can run (%s)', name, path)
    _start_iscsid()
    return name
