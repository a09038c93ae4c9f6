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

"""The commands of ``ipa-cinder``: what each one does, step by step.

``local-attach``: attachment create WITH this host's connector and the
mode (microversion 3.54), os-brick connect through
:class:`~ipa_cinder.agent.connections.VolumeConnections` (validation,
kernel read-only flag for ``ro``, record on disk), attachment complete,
optional mount. Any failure after the create (connect, complete, mount,
Ctrl-C) disconnects and deletes the attachment: nothing leaks.

``local-detach``: the attachments to remove are, in this order, the one
given with ``--attachment-id``, the ones this host recorded for the
volume, or the one Cinder shows for this connector host; unmount (only
what ipa-cinder mounted), flush and disconnect, attachment delete (404 is
success). Nothing attached is a success.
"""

import os
import socket

from oslo_concurrency import processutils
from oslo_log import log
from oslo_utils import uuidutils

from ipa_cinder.cli import output as cli_output
from ipa_cinder.cli import shell as cli
from ipa_cinder.common import connection
from ipa_cinder.common import secrets
from ipa_cinder import conf as ipa_conf
from ipa_cinder import exception
from ipa_cinder.host import brick
from ipa_cinder.host import connections
from ipa_cinder.host import mounts

LOG = log.getLogger(__name__)
CONF = ipa_conf.CONF

CLIError = exception.CLIError


def require_root(command):
    if os.geteuid() != 0:
        raise CLIError(
            'ipa-cinder %s must run as root: it connects block devices '
            'through os-brick and records them in %s. Run it with sudo.'
            % (command, CONF.ipa_cinder.state_dir), cli.EXIT_NOT_ROOT)


def connector_host(args):
    return args.host or socket.gethostname()


def get_connector(args, multipath=None):
    if multipath is None:
        multipath = (CONF.ipa_cinder.use_multipath if args.multipath is None
                     else args.multipath)
    try:
        return brick.get_connector(connector_host(args), multipath=multipath,
                                   enforce_multipath=args.enforce_multipath)
    except exception.NoStorageIdentity as e:
        raise CLIError(str(e), cli.EXIT_LOCAL)


# ---------------------------------------------------------- commands --

def cmd_get_connector(args):
    require_root('get-connector')
    return get_connector(args)


def _attach_result(volume, attachment_id, record, attachment=None,
                   host=None):
    result = {
        'volume_id': volume['id'], 'volume_name': volume.get('name'),
        'attachment_id': attachment_id, 'host': host,
        'device_path': record.get('device_path'), 'mode': record.get('mode'),
        'mountpoint': record.get('mountpoint'),
        'driver_volume_type': record.get('driver_volume_type'),
        'reused': bool(record.get('reused')),
        'connection_info': record.get('connection_info'),
    }
    if attachment is not None:
        result['attach_mode'] = attachment.get('attach_mode')
        # Cinder's copy (the record on disk is masked): shown with
        # --show-secrets, masked otherwise.
        result['connection_info'] = attachment.get('connection_info')
    return result


def _existing_attach(conns, volume, args, host):
    """The result for a volume already attached here, or an error."""
    record = conns.registry.find(volume_id=volume['id'])[0]
    present = bool(record.get('device_path')) and os.path.exists(
        record['device_path'])
    if (present and record.get('mode') == args.mode
            and args.mountpoint in (None, record.get('mountpoint'))):
        record['reused'] = True
        return _attach_result(volume, record['attachment_id'], record,
                              host=host)
    raise CLIError(
        'volume %s is already attached to this host through attachment %s '
        '(device %s%s, mode %s, mountpoint %s); run ipa-cinder local-detach '
        'first' % (volume['id'], record.get('attachment_id'),
                   record.get('device_path'), '' if present else ' is gone',
                   record.get('mode'), record.get('mountpoint')),
        cli.EXIT_LOCAL)


def cmd_local_attach(args):
    require_root('local-attach')
    if args.mountpoint and not os.path.isabs(args.mountpoint):
        raise CLIError('--mountpoint must be an absolute path', cli.EXIT_USAGE)
    client = cli.cinder_client(args)
    conns = connections.VolumeConnections()
    volume = client.find_volume(args.volume)
    host = connector_host(args)
    for record in conns.registry.find(volume_id=volume['id']):
        if not _in_cinder(client, volume['id'], record['attachment_id']):
            # Deleted behind our back: the device is gone, or is now
            # another volume's. Forget it and attach afresh.
            LOG.warning('Attachment %s of volume %s is recorded here but '
                        'Cinder no longer has it: forgetting it',
                        record['attachment_id'], volume['id'])
            _detach_one(client, conns, volume, record['attachment_id'],
                        in_cinder=False)
    if conns.registry.find(volume_id=volume['id']):
        return _existing_attach(conns, volume, args, host)
    if args.mountpoint and os.path.ismount(args.mountpoint):
        raise CLIError('%s is already a mount point' % args.mountpoint,
                       cli.EXIT_LOCAL)
    multipath = (CONF.ipa_cinder.use_multipath if args.multipath is None
                 else args.multipath)
    connector = get_connector(args, multipath)
    attachment = client.create_attachment(
        volume['id'], connector, instance_uuid=args.instance_uuid,
        mode=args.mode)
    attachment_id = attachment['id']
    secrets.remember(attachment)
    connected = mounted = False
    try:
        record = conns.connect(
            volume['id'], attachment_id,
            connection.from_attachment(attachment.get('connection_info')),
            mode=args.mode, multipath=multipath)
        connected = True
        client.complete_attachment(attachment_id, volume_id=volume['id'])
        if args.mountpoint:
            mounts.mount(record['device_path'], args.mountpoint,
                         args.mode == 'ro')
            mounted = True
            saved = conns.registry.get(attachment_id)
            saved['mountpoint'] = args.mountpoint
            conns.registry.save(saved)
            record['mountpoint'] = args.mountpoint
    except BaseException as e:
        # Nothing leaks: undo the connection and the attachment.
        LOG.info('Attaching volume %s failed (%s); removing attachment '
                 '%s', volume['id'], cli_output.safe_text(e), attachment_id)
        if mounted:
            try:
                mounts.unmount(args.mountpoint)
            except processutils.ProcessExecutionError as ue:
                LOG.error('Could not unmount %s: %s', args.mountpoint, ue)
        _rollback(client, conns, volume['id'], attachment_id, connected)
        raise
    return _attach_result(volume, attachment_id, record, attachment, host)


def _rollback(client, conns, volume_id, attachment_id, connected):
    if connected:
        try:
            conns.disconnect(attachment_id=attachment_id, force=True)
        except Exception as e:
            LOG.error('Could not disconnect attachment %s of volume %s: %s',
                      attachment_id, volume_id, cli_output.safe_text(e))
    try:
        client.delete_attachment(attachment_id, volume_id=volume_id)
    except exception.CinderError as e:
        LOG.error('Attachment %s of volume %s is left in Cinder: %s',
                  attachment_id, volume_id, e)


def _in_cinder(client, volume_id, attachment_id):
    """Whether Cinder still has the attachment (of this volume)."""
    try:
        att = client.get_attachment(attachment_id, volume_id=volume_id)
    except exception.CinderNotFound:
        return False
    if att.get('volume_id') != volume_id:
        raise CLIError('attachment %s belongs to volume %s, not %s'
                       % (attachment_id, att.get('volume_id'), volume_id),
                       cli.EXIT_USAGE)
    return True


def _detach_targets(client, conns, volume, args, host):
    """[(attachment id, whether Cinder has it)] to remove for ``volume``."""
    if args.attachment_id:
        return [(args.attachment_id,
                 _in_cinder(client, volume['id'], args.attachment_id))]
    records = conns.registry.find(volume_id=volume['id'])
    if records:
        return [(r['attachment_id'],
                 _in_cinder(client, volume['id'], r['attachment_id']))
                for r in records]
    mine = [a['attachment_id'] for a in volume.get('attachments') or []
            if a.get('host_name') == host]
    if len(mine) > 1:
        raise CLIError('volume %s has %d attachments for host %s and none '
                       'is recorded here: choose one with --attachment-id '
                       '(%s)' % (volume['id'], len(mine), host,
                                 ', '.join(mine)), cli.EXIT_USAGE)
    return [(attachment_id, True) for attachment_id in mine]


def _detach_one(client, conns, volume, attachment_id, in_cinder,
                force=False):
    """Unmount, disconnect and delete one attachment; returns a summary."""
    record = conns.registry.get(attachment_id) or {}
    device = record.get('device_path')
    if device and os.path.exists(device):
        for where in mounts.mounts_of(device):
            if where != record.get('mountpoint'):
                raise CLIError(
                    '%s (volume %s) is mounted at %s, which ipa-cinder did '
                    'not mount: unmount it first'
                    % (device, volume['id'], where), cli.EXIT_LOCAL)
            mounts.unmount(where)
        if in_cinder and not force and mounts.device_busy(device):
            raise CLIError(
                '%s (volume %s) is still in use: mounted in another mount '
                'namespace, or held by device-mapper, md or a process. '
                'Not disconnecting it; free it (lsblk, fuser -vm, '
                'grep %s /proc/*/mountinfo) or use --force'
                % (device, volume['id'], os.path.basename(device)),
                cli.EXIT_LOCAL)
    # An attachment Cinder no longer has leaves a stale record whose device
    # is gone or is no longer this volume's: forget it even if the flush
    # fails.
    conns.disconnect(attachment_id=attachment_id,
                     force=force or not in_cinder)
    deleted = in_cinder and client.delete_attachment(
        attachment_id, volume_id=volume['id'])
    return {'attachment_id': attachment_id, 'device_path': device,
            'mountpoint': record.get('mountpoint'),
            'disconnected': bool(record), 'deleted_in_cinder': deleted}


def cmd_local_detach(args):
    require_root('local-detach')
    client = cli.cinder_client(args)
    conns = connections.VolumeConnections()
    host = connector_host(args)
    try:
        volume = client.find_volume(args.volume)
    except exception.CinderNotFound:
        # Gone from Cinder: still disconnect what this host recorded.
        if not (uuidutils.is_uuid_like(args.volume)
                and conns.registry.find(volume_id=args.volume)):
            raise
        volume = {'id': args.volume, 'attachments': []}
    detached = [_detach_one(client, conns, volume, attachment_id, in_cinder,
                            force=args.force)
                for attachment_id, in_cinder in
                _detach_targets(client, conns, volume, args, host)]
    return {'volume_id': volume['id'], 'volume_name': volume.get('name'),
            'host': host, 'detached': detached,
            'already_detached': not detached}


def _cinder_view(client, host):
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
                             'attached_at': att.get('attached_at')})
    return rows


def cmd_list(args):
    host = connector_host(args)
    try:
        local = connections.VolumeConnections().list()
    except PermissionError as e:
        raise CLIError('cannot read the connection record (%s): run '
                       'ipa-cinder list as root' % e, cli.EXIT_NOT_ROOT)
    rows = [{'volume_id': r.get('volume_id'),
             'attachment_id': r.get('attachment_id'),
             'device_path': r.get('device_path'),
             'present': r.get('present'), 'mode': r.get('mode'),
             'mountpoint': r.get('mountpoint'),
             'driver_volume_type': r.get('driver_volume_type'),
             'connected_at': r.get('connected_at')} for r in local]
    try:
        cinder_rows = _cinder_view(cli.cinder_client(args), host)
    except exception.CinderError as e:
        # The local record is worth showing when Cinder cannot be asked.
        for row in rows:
            row['in_cinder'] = None
        raise cli.PartialResult(
            str(e), cli.EXIT_CINDER,
            {'host': host, 'state_dir': CONF.ipa_cinder.state_dir,
             'local': rows, 'cinder': None, 'cinder_error': str(e)})
    in_cinder = {r['attachment_id'] for r in cinder_rows}
    for row in rows:
        row['in_cinder'] = row['attachment_id'] in in_cinder
    ours = {r['attachment_id'] for r in rows}
    for row in cinder_rows:
        row['recorded_here'] = row['attachment_id'] in ours
    return {'host': host, 'state_dir': CONF.ipa_cinder.state_dir,
            'local': rows, 'cinder': cinder_rows}


COMMANDS = {'get-connector': cmd_get_connector,
            'local-attach': cmd_local_attach,
            'local-detach': cmd_local_detach,
            'list': cmd_list}

LIST_SECTIONS = [
    ('Connected on this host (local record)', 'local',
     ['volume_id', 'attachment_id', 'device_path', 'present', 'mode',
      'mountpoint', 'in_cinder']),
    ("Attached to this host in Cinder", 'cinder',
     ['volume_id', 'volume_name', 'volume_status', 'attachment_id',
      'recorded_here']),
]
DETACH_SECTIONS = [('Detached', 'detached',
                    ['attachment_id', 'device_path', 'mountpoint',
                     'disconnected', 'deleted_in_cinder'])]


SECTIONS = {'list': LIST_SECTIONS, 'local-detach': DETACH_SECTIONS}
