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

"""What ``ipa-cinder local-attach`` does on this host, step by step.

Attachment create WITH this host's connector and the mode (microversion
3.54), os-brick connect through
:class:`~ipa_cinder.host.connections.VolumeConnections` (validation,
kernel read-only flag for ``ro``, record on disk), attachment complete,
optional mount.

Nothing leaks. Create, connect, complete and mount run as one section that
a signal does not break off (:mod:`~ipa_cinder.cli.interrupts`): a signal
received meanwhile lets the running step finish, then the attach is
undone like after any failure (unmount, disconnect, attachment delete).

The attachment's identity. Cinder's attachments API shows no connector
host, and Cinder's view of a volume lists completed attachments only: an
attachment whose create answer was lost, or that an interrupted attach
could not delete, could not be found again by host name. Every attachment
``local-attach`` makes therefore carries an instance UUID the command can
compute again: the one given with ``--instance-uuid``, else
:func:`~ipa_cinder.cli.volumes.host_instance_uuid` of (connector
host, volume). A create retried
after a lost answer finds and deletes the lost attempt's attachment, and
``local-detach VOLUME`` finds what an interrupted attach left, whatever
its status.
"""

import os

from oslo_concurrency import processutils
from oslo_log import log

from ipa_cinder.cli import errors
from ipa_cinder.cli import interrupts
from ipa_cinder.cli import protocols
from ipa_cinder.cli import volumes
from ipa_cinder.common import connection
from ipa_cinder.common import secrets
from ipa_cinder import conf as ipa_conf
from ipa_cinder import exception
from ipa_cinder.host import connections
from ipa_cinder.host import mounts

LOG = log.getLogger(__name__)
CONF = ipa_conf.CONF

CLIError = exception.CLIError
GUARD = interrupts.GUARD


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


def _existing_attach(conns, volume, mode, mountpoint, host):
    """The result for a volume already attached here, or an error."""
    record = conns.registry.find(volume_id=volume['id'])[0]
    present = bool(record.get('device_path')) and os.path.exists(
        record['device_path'])
    if (present and record.get('mode') == mode
            and mountpoint in (None, record.get('mountpoint'))):
        record['reused'] = True
        return _attach_result(volume, record['attachment_id'], record,
                              host=host)
    raise CLIError(
        'volume %s is already attached to this host through attachment %s '
        '(device %s%s, mode %s, mountpoint %s); run ipa-cinder local-detach '
        'first' % (volume['id'], record.get('attachment_id'),
                   record.get('device_path'), '' if present else ' is gone',
                   record.get('mode'), record.get('mountpoint')),
        errors.EXIT_LOCAL)


def _forget_stale(client, conns, volume):
    """Forget the records of attachments Cinder no longer has."""
    for record in conns.registry.find(volume_id=volume['id']):
        if not volumes.in_cinder(client, volume['id'],
                                 record['attachment_id']):
            # Deleted behind our back: the device is gone, or is now
            # another volume's. Forget it and attach afresh.
            LOG.warning('Attachment %s of volume %s is recorded here but '
                        'Cinder no longer has it: forgetting it',
                        record['attachment_id'], volume['id'])
            volumes.detach_one(client, conns, volume,
                               record['attachment_id'], in_cinder=False)


def _unrecorded(client, volume, instance_uuid, host, derived):
    """Attachments of (volume, instance) that exist before the create.

    With the instance derived from this host, they were made by this
    host but are not recorded here: left by an attach that was killed,
    or recorded in another state directory. A volume that is not
    multiattach is refused then (Cinder would let the same instance
    attach it twice); the operator detaches first.
    """
    if not instance_uuid:
        return None
    existing = client.list_attachments(volume_id=volume['id'],
                                       instance_uuid=instance_uuid)
    if not (derived and existing):
        return existing
    ids = ', '.join('%s (%s)' % (a['id'], a.get('status'))
                    for a in existing)
    if not volume.get('multiattach'):
        raise CLIError(
            'volume %s already has attachment(s) %s of connector host %s '
            'that are not recorded in %s: left by an attach that was '
            'killed, or recorded in another state directory. Run '
            'ipa-cinder local-detach %s first'
            % (volume['id'], ids, host, CONF.ipa_cinder.state_dir,
               volume['id']), errors.EXIT_LOCAL)
    LOG.warning('Volume %s already has attachment(s) %s of connector host '
                '%s not recorded here; adding another (the volume is '
                'multiattach)', volume['id'], ids, host)
    return existing


def attach(client, volume_ref, *, host, mode='rw', mountpoint=None,
           instance_uuid=None, multipath=None, enforce_multipath=False):
    """Attach a volume to this host; returns what to show.

    :param volume_ref: the volume's ID or name.
    :param instance_uuid: the attachment's instance; None for
        :func:`volumes.host_instance_uuid`, '' for none at all.
    :param multipath: None for ``[ipa_cinder] use_multipath``.
    """
    conns = connections.VolumeConnections()
    volume = client.find_volume(volume_ref)
    _forget_stale(client, conns, volume)
    if conns.registry.find(volume_id=volume['id']):
        return _existing_attach(conns, volume, mode, mountpoint, host)
    if mountpoint and os.path.ismount(mountpoint):
        raise CLIError('%s is already a mount point' % mountpoint,
                       errors.EXIT_LOCAL)
    multipath = volumes.multipath_default(multipath)
    steps = {'connector': volumes.connector(host, multipath,
                                            enforce_multipath),
             'multipath': multipath, 'mode': mode, 'mountpoint': mountpoint,
             'instance_uuid': (volumes.host_instance_uuid(host, volume['id'])
                               if instance_uuid is None else instance_uuid)}
    # Before anything is created: Cinder answers 500 (and leaves a
    # reservation) to a connector without the identity the volume needs.
    steps['protocol'] = protocols.check_connector(client, volume,
                                                  steps['connector'])
    steps['existing'] = _unrecorded(client, volume, steps['instance_uuid'],
                                    host, derived=instance_uuid is None)
    done = {'attachment': None, 'connected': False, 'mounted': False}
    try:
        with GUARD.deferred('attaching volume %s' % volume['id']):
            record = _steps(client, conns, volume['id'], steps, done)
    except BaseException as e:
        _undo(client, conns, volume['id'], done, mountpoint, e)
        raise
    return _attach_result(volume, done['attachment']['id'], record,
                          done['attachment'], host)


def _steps(client, conns, volume_id, steps, done):
    """Create, connect, complete, mount; ``done`` says how far it got.

    Runs in a deferred section: ``GUARD.check()`` between the steps
    stops at the first step boundary after a signal.
    """
    attachment = client.create_attachment(
        volume_id, steps['connector'], instance_uuid=steps['instance_uuid']
        or None, mode=steps['mode'], protocol=steps['protocol'],
        existing=steps['existing'])
    done['attachment'] = attachment
    secrets.remember(attachment)
    GUARD.check()
    attachment_id = attachment['id']
    record = conns.connect(
        volume_id, attachment_id,
        connection.from_attachment(attachment.get('connection_info')),
        mode=steps['mode'], multipath=steps['multipath'])
    done['connected'] = True
    GUARD.check()
    client.complete_attachment(attachment_id, volume_id=volume_id)
    GUARD.check()
    mountpoint = steps['mountpoint']
    if mountpoint:
        mounts.mount(record['device_path'], mountpoint,
                     steps['mode'] == 'ro')
        done['mounted'] = True
        saved = conns.registry.get(attachment_id)
        saved['mountpoint'] = mountpoint
        conns.registry.save(saved)
        record['mountpoint'] = mountpoint
    return record


def _undo(client, conns, volume_id, done, mountpoint, cause):
    """Undo the mount, connection and attachment ``done`` lists.

    Runs to its end whatever signal arrives (a deferred section without
    check): the error that caused it is what gets reported.
    """
    attachment = done['attachment']
    if attachment is None:
        return
    with GUARD.deferred('undoing the attach of volume %s' % volume_id,
                        check=False):
        LOG.warning('Attaching volume %s failed (%s); removing attachment '
                    '%s', volume_id, secrets.safe_text(cause) or
                    type(cause).__name__, attachment['id'])
        if done['mounted']:
            try:
                mounts.unmount(mountpoint)
            except processutils.ProcessExecutionError as e:
                LOG.error('Could not unmount %s: %s', mountpoint, e)
        _rollback(client, conns, volume_id, attachment['id'],
                  done['connected'])


def _rollback(client, conns, volume_id, attachment_id, connected):
    if connected:
        try:
            conns.disconnect(attachment_id=attachment_id, force=True)
        except Exception as e:
            LOG.error('Could not disconnect attachment %s of volume %s: %s',
                      attachment_id, volume_id, secrets.safe_text(e))
    try:
        client.delete_attachment(attachment_id, volume_id=volume_id)
    except exception.CinderError as e:
        LOG.error('Attachment %s of volume %s is left in Cinder: %s',
                  attachment_id, volume_id, e)
