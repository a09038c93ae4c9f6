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

"""What the ``ipa-cinder`` commands do on this host, step by step.

The command classes (:mod:`~ipa_cinder.cli.connector`,
:mod:`~ipa_cinder.cli.attach`, :mod:`~ipa_cinder.cli.detach`,
:mod:`~ipa_cinder.cli.listing`) import this module (and
:mod:`~ipa_cinder.cli.attaching`, which does ``local-attach``) only when
they run: it imports os-brick, which ``--help`` and usage errors do
without.

``detach``: the attachments to remove are, in this order, the one given
with ``--attachment-id`` (an id that neither Cinder nor this host knows is
a usage error), the ones this host recorded for the volume, or the ones
Cinder has for this connector host: those whose instance is
:func:`host_instance_uuid` of (host, volume), in any status (an attach
that was killed may have left one ``reserved`` or ``attaching``), and the
completed ones Cinder's view of the volume shows for the host name. Then
unmount (only what ipa-cinder mounted), flush and disconnect, attachment
delete (404 is success). Nothing attached is a success.
"""

import os
import uuid

from oslo_log import log
from oslo_utils import uuidutils

from ipa_cinder.cli import errors
from ipa_cinder import conf as ipa_conf
from ipa_cinder import exception
from ipa_cinder.host import brick
from ipa_cinder.host import connections
from ipa_cinder.host import mounts

LOG = log.getLogger(__name__)
CONF = ipa_conf.CONF

CLIError = exception.CLIError


#: The namespace of :func:`host_instance_uuid` (a constant: the UUIDs
#: must stay the same from one release to the next).
HOST_INSTANCE_NAMESPACE = uuid.UUID('1c8e5b9a-3f0d-5e42-9a67-4b2d8c0f7e15')


def host_instance_uuid(host, volume_id):
    """The instance UUID of ``local-attach`` on ``host`` for a volume.

    ``uuid5(HOST_INSTANCE_NAMESPACE, "<host>/<volume id>")``: the same for
    every attach of that volume from that connector host, so that what an
    interrupted attach left is found again by the attachments API.
    """
    return str(uuid.uuid5(HOST_INSTANCE_NAMESPACE,
                          '%s/%s' % (host, volume_id)))


def multipath_default(multipath):
    return CONF.ipa_cinder.use_multipath if multipath is None else multipath


def connector(host, multipath=None, enforce_multipath=False):
    """This host's os-brick connector (``multipath`` None: the config)."""
    try:
        return brick.get_connector(host,
                                   multipath=multipath_default(multipath),
                                   enforce_multipath=enforce_multipath)
    except exception.NoStorageIdentity as e:
        raise CLIError(str(e), errors.EXIT_LOCAL)


# ------------------------------------------------------------ detach --

def in_cinder(client, volume_id, attachment_id):
    """Whether Cinder still has the attachment (of this volume)."""
    try:
        att = client.get_attachment(attachment_id, volume_id=volume_id)
    except exception.CinderNotFound:
        return False
    if att.get('volume_id') != volume_id:
        raise CLIError('attachment %s belongs to volume %s, not %s'
                       % (attachment_id, att.get('volume_id'), volume_id),
                       errors.EXIT_USAGE)
    return True


def _cinder_targets(client, volume, host):
    """Ids of the attachments Cinder has of ``volume`` for ``host``."""
    found = [a['id'] for a in client.list_attachments(
        volume_id=volume['id'],
        instance_uuid=host_instance_uuid(host, volume['id']))]
    # Completed attachments made with another instance (--instance-uuid):
    # the volume's view names their connector host.
    found += [a['attachment_id'] for a in volume.get('attachments') or []
              if a.get('host_name') == host
              and a.get('attachment_id') not in found]
    return found


def _detach_targets(client, conns, volume, attachment_id, host):
    """[(attachment id, whether Cinder has it)] to remove for ``volume``."""
    if attachment_id:
        known = in_cinder(client, volume['id'], attachment_id)
        if not (known or conns.registry.get(attachment_id)):
            raise CLIError(
                'attachment %s of volume %s is neither in Cinder nor '
                'recorded on this host (state directory %s): nothing to '
                'detach' % (attachment_id, volume['id'],
                            CONF.ipa_cinder.state_dir), errors.EXIT_USAGE)
        return [(attachment_id, known)]
    records = conns.registry.find(volume_id=volume['id'])
    if records:
        return [(r['attachment_id'],
                 in_cinder(client, volume['id'], r['attachment_id']))
                for r in records]
    mine = _cinder_targets(client, volume, host)
    if len(mine) > 1:
        raise CLIError('volume %s has %d attachments for host %s and none '
                       'is recorded here: choose one with --attachment-id '
                       '(%s)' % (volume['id'], len(mine), host,
                                 ', '.join(mine)), errors.EXIT_USAGE)
    return [(found, True) for found in mine]


def _release_device(volume, record, in_cinder, force):
    """Unmount what ipa-cinder mounted; refuse a device still held."""
    device = record.get('device_path')
    if not (device and os.path.exists(device)):
        return
    for where in mounts.mounts_of(device):
        if where != record.get('mountpoint'):
            raise CLIError(
                '%s (volume %s) is mounted at %s, which ipa-cinder did not '
                'mount: unmount it first' % (device, volume['id'], where),
                errors.EXIT_LOCAL)
        mounts.unmount(where)
    if in_cinder and not force and mounts.device_busy(device):
        raise CLIError(
            '%s (volume %s) is still in use: mounted in another mount '
            'namespace, or held by device-mapper, md or a process. Not '
            'disconnecting it; free it (lsblk, fuser -vm, grep %s '
            '/proc/*/mountinfo) or use --force'
            % (device, volume['id'], os.path.basename(device)),
            errors.EXIT_LOCAL)


def detach_one(client, conns, volume, attachment_id, in_cinder,
               force=False):
    """Unmount, disconnect and delete one attachment; returns a summary."""
    record = conns.registry.get(attachment_id) or {}
    _release_device(volume, record, in_cinder, force)
    # An attachment Cinder no longer has leaves a stale record whose device
    # is gone or is no longer this volume's: forget it even if the flush
    # fails.
    conns.disconnect(attachment_id=attachment_id,
                     force=force or not in_cinder)
    deleted = in_cinder and client.delete_attachment(
        attachment_id, volume_id=volume['id'])
    return {'attachment_id': attachment_id,
            'device_path': record.get('device_path'),
            'mountpoint': record.get('mountpoint'),
            'disconnected': bool(record), 'deleted_in_cinder': deleted}


def detach(client, volume_ref, *, host, attachment_id=None, force=False):
    """Detach a volume from this host; returns what to show."""
    conns = connections.VolumeConnections()
    try:
        volume = client.find_volume(volume_ref)
    except exception.CinderNotFound:
        # Gone from Cinder: still disconnect what this host recorded.
        if not (uuidutils.is_uuid_like(volume_ref)
                and conns.registry.find(volume_id=volume_ref)):
            raise
        volume = {'id': volume_ref, 'attachments': []}
    detached = [detach_one(client, conns, volume, target, known,
                           force=force)
                for target, known in
                _detach_targets(client, conns, volume, attachment_id, host)]
    return {'volume_id': volume['id'], 'volume_name': volume.get('name'),
            'host': host, 'already_detached': not detached,
            'detached': detached}


# -------------------------------------------------------------- list --

def _local_rows():
    """This host's record, one row per connection."""
    try:
        records = connections.VolumeConnections().list()
    except PermissionError as e:
        raise CLIError('cannot read the connection record (%s): run '
                       'ipa-cinder list as root' % e, errors.EXIT_NOT_ROOT)
    return [{'volume_id': r.get('volume_id'),
             'attachment_id': r.get('attachment_id'),
             'device_path': r.get('device_path'),
             'present': r.get('present'), 'mode': r.get('mode'),
             'mountpoint': r.get('mountpoint'),
             'driver_volume_type': r.get('driver_volume_type'),
             'connected_at': r.get('connected_at'),
             'recorded_here': True, 'in_cinder': None} for r in records]


def _cinder_rows(client, host):
    """Attachments Cinder knows for ``host`` (from the volumes' view)."""
    rows = []
    for volume in client.list_volumes():
        for att in volume.get('attachments') or []:
            if att.get('host_name') == host:
                rows.append({'volume_id': volume['id'],
                             'volume_name': volume.get('name'),
                             'volume_status': volume.get('status'),
                             'attachment_id': att.get('attachment_id'),
                             'host_name': att.get('host_name'),
                             'instance': att.get('server_id'),
                             'attached_at': att.get('attached_at'),
                             'recorded_here': False, 'in_cinder': True})
    return rows


def list_attached(make_client, host):
    """What this host has attached: its record merged with Cinder's view.

    One row per attachment: those recorded here first (``recorded_here``),
    each marked with whether Cinder has it for this host (``in_cinder``),
    then those only Cinder knows.

    :param make_client: returns the CinderClient (called once the local
        record is read, so that a usage error in the cloud configuration
        comes before any Cinder call).
    :raises: PartialResult with the local rows when Cinder cannot answer.
    """
    rows = _local_rows()
    try:
        cinder_rows = _cinder_rows(make_client(), host)
    except exception.CinderError as e:
        # The local record is worth showing when Cinder cannot be asked.
        raise exception.PartialResult(str(e), errors.EXIT_CINDER, rows)
    by_id = {r['attachment_id']: r for r in cinder_rows}
    for row in rows:
        theirs = by_id.pop(row['attachment_id'], None)
        row['in_cinder'] = theirs is not None
        for key, value in (theirs or {}).items():
            row.setdefault(key, value)
    return rows + [r for r in cinder_rows if r['attachment_id'] in by_id]
