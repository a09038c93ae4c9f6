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

"""Errors of ipa-cinder, in one place.

Every error text names what it is about (node, volume, attachment, field)
and never carries a secret: texts that may hold connection info are masked
by :func:`ipa_cinder.common.secrets.safe_text` before they get here or on
the way in.

Hierarchy::

    IpaCinderError
      InvalidConnectionInfo (ValueError)   a connection_info/connector field
      InvalidIdentifier (ValueError)       a volume or attachment id
      NoStorageIdentity                    no initiator, NQN, WWPN nor IP
      VolumeConnectionError                os-brick connect/disconnect
        IscsiSessionError                    listing or logging out a session
      UnusableDevice (ValueError)          not a block device we can open
      DeviceTimeout                        a device that did not answer in time
      CinderError                          a Cinder API call
        InvalidInput                         refused before calling Cinder
          InvalidConnector
        CinderBadRequest  CinderForbidden  CinderNotFound  CinderConflict
        CinderUnavailable                    5xx or unreachable, retried
      AgentCommandError                    a cinder.* command of the agent
      VolumeAttachError                    a node's volume on the conductor
      CLIError                             ``ipa-cinder``, with an exit code
        PartialResult                        ... and a result to print
"""

from ipa_cinder.common import secrets


class IpaCinderError(Exception):
    """Base of every error raised by ipa-cinder."""


class InvalidConnectionInfo(IpaCinderError, ValueError):
    """A connection_info or connector that cannot be used.

    :ivar field: the field at fault (``data.target_iqn``...).
    :ivar reason: why, without any secret value.
    :ivar volume_id: the volume, when known.
    """

    def __init__(self, field, reason, volume_id=None):
        self.field = field
        self.reason = reason
        self.volume_id = volume_id
        where = 'volume %s: ' % volume_id if volume_id else ''
        super().__init__('%sinvalid connection info field "%s": %s'
                         % (where, field, reason))


class InvalidIdentifier(IpaCinderError, ValueError):
    """A volume or attachment id that is not a UUID."""


class NoStorageIdentity(IpaCinderError):
    """The host has no identity any storage protocol could use."""


class VolumeConnectionError(IpaCinderError):
    """Connecting or disconnecting a volume failed on this host.

    The message names the volume (and the attachment) and never carries a
    secret.
    """


class IscsiSessionError(VolumeConnectionError):
    """An iSCSI session of this host could not be listed or logged out.

    Sessions of no recorded connection included (a firmware/iBFT login).
    The message names the portal and the target, never a credential.

    :ivar portal: the session's portal, when one session is at fault.
    :ivar target_iqn: its target, likewise.
    """

    def __init__(self, message, portal=None, target_iqn=None):
        self.portal = portal
        self.target_iqn = target_iqn
        super().__init__(secrets.safe_text(message))


class CinderError(IpaCinderError):
    """A Cinder API call failed.

    :ivar call: the client call that failed (``create_attachment``...).
    :ivar node: node UUID or name, when known.
    :ivar volume: volume ID, when known.
    :ivar attachment: attachment ID, when known.
    :ivar status_code: HTTP status of Cinder's answer, None when there was
        none (connection error, input refused before calling Cinder).
    :ivar reason: masked explanation.
    """

    def __init__(self, reason, *, call=None, node=None, volume=None,
                 attachment=None, status_code=None):
        self.call = call
        self.node = node
        self.volume = volume
        self.attachment = attachment
        self.status_code = status_code
        self.reason = secrets.safe_text(reason)
        subject = ', '.join(
            '%s %s' % (kind, value) for kind, value in
            (('node', node), ('volume', volume), ('attachment', attachment))
            if value)
        text = 'Cinder %s failed' % call if call else 'Cinder failed'
        if subject:
            text += ' for %s' % subject
        if status_code:
            text += ' (HTTP %s)' % status_code
        super().__init__('%s: %s' % (text, self.reason))


class InvalidInput(CinderError):
    """The request was refused before reaching Cinder."""


class InvalidConnector(InvalidInput):
    """The connector misses ``host`` or a key its protocol needs."""


class CinderBadRequest(CinderError):
    """Cinder answered 400 (invalid state, invalid argument)."""


class CinderForbidden(CinderError):
    """Cinder answered 401 or 403."""


class CinderNotFound(CinderError):
    """Cinder answered 404 (or a name matched no volume)."""


class CinderConflict(CinderError):
    """Cinder answered 409."""


class CinderUnavailable(CinderError):
    """Connection errors or 5xx answers, after every allowed retry."""


#: The error of each HTTP status Cinder answers that is never retried.
CINDER_STATUS_ERRORS = {400: CinderBadRequest, 401: CinderForbidden,
                        403: CinderForbidden, 404: CinderNotFound,
                        409: CinderConflict}


class AgentCommandError(IpaCinderError):
    """The agent refused or failed a ``cinder.*`` command."""


class AgentCommandUnknown(AgentCommandError):
    """The agent has no such command (a ramdisk of an older release)."""


class AgentBusy(AgentCommandError):
    """The agent refused a command: another one of it still runs."""


class VolumeAttachError(IpaCinderError):
    """Attaching or detaching a node's volume failed on the conductor.

    The message names the node and the volume and carries no secret.
    """

    def __init__(self, node_uuid, volume_id, reason):
        self.node_uuid = node_uuid
        self.volume_id = volume_id
        where = 'node %s' % node_uuid
        if volume_id:
            where += ', volume %s' % volume_id
        super().__init__('%s: %s' % (where, secrets.safe_text(reason)))


class CLIError(IpaCinderError):
    """A failure of ``ipa-cinder`` reported with its own exit code."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


class PartialResult(CLIError):
    """A command that failed half-way but has a result worth printing."""

    def __init__(self, message, code, result):
        super().__init__(message, code)
        self.result = result


class UnusableDevice(IpaCinderError, ValueError):
    """A path that is not a block device this host can open.

    :ivar path: the path (shown masked and cut short).
    :ivar reason: why: missing, a FIFO, a regular file, cannot be opened...
    """

    def __init__(self, path, reason):
        self.path = path
        self.reason = reason
        super().__init__('%s: %s' % (secrets.brief(path), reason))


class DeviceTimeout(IpaCinderError):
    """A block device did not answer (open, ioctl, flush) in time."""

    def __init__(self, path, timeout):
        self.path = path
        self.timeout = timeout
        super().__init__('%s did not answer within %s seconds (the storage '
                         'behind it may be gone)'
                         % (secrets.brief(path), timeout))
