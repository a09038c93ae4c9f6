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

"""Every iSCSI session of this host, recorded by ipa-cinder or not.

A node whose firmware boots from an iSCSI volume (an iPXE ``sanhook``, a
NIC's iSCSI boot ROM) publishes an iBFT, and IPA logs in to that target
when it starts (``iscsistart -b``): the volume shows up as a local disk
that no connection record knows about. Cleaning must log such sessions
out before any erase step runs, and must never let a disk of an iSCSI
session be erased meanwhile.

Sessions are listed with ``iscsiadm -m session``; the block devices of a
session are found in sysfs (a disk's device directory sits under
``.../sessionN/...``); a session is logged out with
``iscsiadm -m session -r N -u`` once its devices are flushed. Every
command is bounded in time, every listing in size, and every error names
the portal and the target (a session never shows its CHAP credentials,
and errors are masked all the same).
"""

import collections
import os
import re
import shutil
import time

from oslo_concurrency import processutils
from oslo_log import log

from ipa_cinder.common import secrets
from ipa_cinder import exception
from ipa_cinder.host import blockdev
from ipa_cinder.host import initiator
from ipa_cinder.host import iscsi
from ipa_cinder.host import mounts

LOG = log.getLogger(__name__)

#: Where sysfs is mounted (a test points it at a tree of its own).
SYSFS_ROOT = '/sys'
#: Where the device nodes of block devices are.
DEV_ROOT = '/dev'

#: Seconds ``iscsiadm -m session`` may take.
LIST_TIMEOUT = 30
#: Seconds a logout may take: an unreachable target makes iscsiadm wait
#: for the session's recovery timeout (open-iscsi's default is 120 s).
LOGOUT_TIMEOUT = 180
#: Seconds the kernel is given to remove a logged out session from sysfs.
SETTLE_TIMEOUT = 10.0

#: Sessions, lines and sysfs entries read at most: a host has a handful.
MAX_SESSIONS = 1024
MAX_LINE = 1024
MAX_SYSFS_ENTRIES = 4096
#: Device-mapper levels followed down to a session's disks (multipath on
#: a partition on LVM...).
MAX_STACK_DEPTH = 4

_NO_OBJS_FOUND = 21

# "tcp: [3] 192.0.2.10:3260,1 iqn.2010-10.org.openstack:volume-x
# (non-flash)"; an IPv6 portal is bracketed ("[2001:db8::1]:3260,1");
# older open-iscsi prints no "(non-flash)". No field can hold a space or
# the portal a comma, so matching a line is linear in its length.
_SESSION_LINE = re.compile(
    r'(?P<transport>[A-Za-z0-9_]{1,32}): \[(?P<sid>[0-9]{1,9})\] '
    r'(?P<portal>[^\s,]{1,300}),(?P<tpgt>-?[0-9]{1,9}) '
    r'(?P<iqn>\S{1,255})(?: \((?P<flash>non-flash|flash)\))?\Z')
_SESSION_DIR = re.compile(r'/session([0-9]{1,9})/')
_SESSION_NAME = re.compile(r'session([0-9]{1,9})\Z')
_DEVICE_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9._:+-]{0,63}\Z')

Session = collections.namedtuple(
    'Session', ['sid', 'transport', 'portal', 'tpgt', 'target_iqn', 'flash'])


def describe(session):
    """``session N (portal P, target T)``, each value masked and short."""
    return 'session %s (%s)' % (session.sid, iscsi.describe_target(
        {'target_portal': secrets.brief(session.portal, 80).strip('\'"'),
         'target_iqn': secrets.brief(session.target_iqn, 120).strip('\'"')}))


def public(session):
    """What a command result shows of a session."""
    return {'target_iqn': session.target_iqn, 'portal': session.portal}


def parse_sessions(text):
    """The sessions of ``iscsiadm -m session`` output.

    Lines that do not read as a session (a warning, garbage, a line longer
    than MAX_LINE) are skipped; at most MAX_SESSIONS sessions are read.
    """
    sessions = []
    seen = set()
    for line in text.splitlines():
        line = line.strip()
        if len(line) > MAX_LINE:
            LOG.warning('Skipping an iscsiadm line of %d characters',
                        len(line))
            continue
        match = _SESSION_LINE.match(line)
        if match is None:
            continue
        sid = int(match.group('sid'))
        if sid in seen:
            continue
        seen.add(sid)
        sessions.append(Session(sid, match.group('transport'),
                                match.group('portal'),
                                int(match.group('tpgt')),
                                match.group('iqn'),
                                match.group('flash') == 'flash'))
        if len(sessions) >= MAX_SESSIONS:
            LOG.warning('More than %d iSCSI sessions listed; reading the '
                        'first ones only', MAX_SESSIONS)
            break
    return sessions


def _sysfs_session_ids():
    """Session numbers present in sysfs (what the kernel holds)."""
    path = os.path.join(SYSFS_ROOT, 'class', 'iscsi_session')
    found = set()
    try:
        with os.scandir(path) as entries:
            for count, entry in enumerate(entries):
                if count >= MAX_SYSFS_ENTRIES:
                    break
                match = _SESSION_NAME.match(entry.name)
                if match:
                    found.add(int(match.group(1)))
    except OSError:
        pass  # no iSCSI transport class: no session
    return found


def _sysfs_target(sid):
    """The target name sysfs gives for a session, for messages."""
    path = os.path.join(SYSFS_ROOT, 'class', 'iscsi_session',
                        'session%d' % sid, 'targetname')
    try:
        with open(path) as f:
            return f.read(256).strip() or '?'
    except OSError:
        return '?'


def list_sessions():
    """The host's iSCSI sessions.

    :raises: IscsiSessionError when they cannot be listed while the kernel
        has some (iscsiadm missing or failing).
    """
    if not shutil.which('iscsiadm'):
        present = _sysfs_session_ids()
        if present:
            raise exception.IscsiSessionError(
                'the kernel has %d iSCSI session(s) (targets %s) but '
                'iscsiadm is not installed (package open-iscsi): they '
                'cannot be listed nor logged out'
                % (len(present), ', '.join(
                    _sysfs_target(sid) for sid in sorted(present)[:4])))
        return []
    try:
        out, _err = processutils.execute(
            'iscsiadm', '-m', 'session',
            check_exit_code=[0, _NO_OBJS_FOUND], timeout=LIST_TIMEOUT)
    except (processutils.ProcessExecutionError, OSError) as e:
        raise exception.IscsiSessionError(
            'cannot list the iSCSI sessions: %s'
            % iscsi.command_failure(e))
    return parse_sessions(out or '')


def _session_in_path(path):
    """The session number in the resolved sysfs path, or None."""
    root = os.path.realpath(SYSFS_ROOT)
    real = os.path.realpath(path)
    if not real.startswith(root + os.sep):
        return None
    match = _SESSION_DIR.search(real[len(root):] + '/')
    return int(match.group(1)) if match else None


def _device_name(device):
    """The kernel name of a device given as a name or a /dev path."""
    if not isinstance(device, str):
        return None
    if '/' in device:
        device = os.path.basename(os.path.realpath(device))
    return device if _DEVICE_NAME.match(device) else None


def _session_and_depth(name, depth):
    base = os.path.join(SYSFS_ROOT, 'class', 'block', name)
    sid = _session_in_path(base)
    if sid is not None:
        return sid, depth
    if depth >= MAX_STACK_DEPTH:
        return None, depth
    # A device-mapper (or md) device over the session's disks: its members
    # are listed under "slaves".
    try:
        members = sorted(os.listdir(os.path.join(base, 'slaves')))
    except OSError:
        return None, depth
    for member in members[:64]:
        if _DEVICE_NAME.match(member):
            sid, found_at = _session_and_depth(member, depth + 1)
            if sid is not None:
                return sid, found_at
    return None, depth


def session_of_device(device):
    """The iSCSI session a block device belongs to, or None.

    :param device: a kernel name (``sda``, ``sda1``, ``dm-0``) or a path
        (``/dev/sda``, ``/dev/disk/by-path/...``). A partition, or a
        device-mapper device over a session's disk, belongs to the session
        of that disk.
    """
    name = _device_name(device)
    if name is None:
        return None
    return _session_and_depth(name, 0)[0]


def session_devices():
    """``{session number: [device names]}`` from sysfs.

    Each session's devices are listed stacked first (a multipath map
    before its paths, a partition before its disk), in the order they are
    to be flushed.
    """
    found = collections.defaultdict(list)
    path = os.path.join(SYSFS_ROOT, 'class', 'block')
    try:
        names = sorted(os.listdir(path))[:MAX_SYSFS_ENTRIES]
    except OSError:
        return {}
    for name in names:
        if not _DEVICE_NAME.match(name):
            continue
        sid, depth = _session_and_depth(name, 0)
        if sid is not None:
            partition = os.path.exists(os.path.join(path, name, 'partition'))
            found[sid].append((-depth, not partition, name))
    return {sid: [name for _d, _p, name in sorted(items)]
            for sid, items in found.items()}


def _flush_devices(session, names, force):
    """Flush a session's devices; refuse a mounted one unless forced.

    :returns: an error text, or None when the session may be logged out.
    """
    for name in names:
        path = os.path.join(DEV_ROOT, name)
        if not blockdev.is_block_device(path):
            LOG.warning('%s: %s has no device node, nothing to flush',
                        describe(session), path)
            continue
        points = mounts.mounts_of(path)
        if points and not force:
            return ('%s: %s is mounted at %s; unmount it first'
                    % (describe(session), path, ', '.join(points[:4])))
        try:
            blockdev.flush(path)
        except (OSError, exception.UnusableDevice,
                exception.DeviceTimeout) as e:
            if not force:
                return ('%s: cannot flush %s before logging out: %s'
                        % (describe(session), path, secrets.safe_text(e)))
            LOG.warning('%s: flush of %s failed, forced: %s',
                        describe(session), path, secrets.safe_text(e))
    return None


def logout(session):
    """Log out of one session (its devices flushed by the caller).

    A session that is already gone is a success.

    :raises: IscsiSessionError naming the portal and the target.
    """
    try:
        processutils.execute(
            'iscsiadm', '-m', 'session', '-r', str(session.sid), '-u',
            check_exit_code=[0, _NO_OBJS_FOUND], timeout=LOGOUT_TIMEOUT)
    except (processutils.ProcessExecutionError, OSError) as e:
        raise exception.IscsiSessionError(
            'cannot log out of iSCSI %s: %s'
            % (describe(session), iscsi.command_failure(e)),
            portal=session.portal, target_iqn=session.target_iqn)


def _wait_for_sysfs(sids):
    """The sessions among ``sids`` still in sysfs after SETTLE_TIMEOUT."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        left = _sysfs_session_ids() & set(sids)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.2)


def logout_all(force=False, errors=None):
    """Flush the devices of every iSCSI session, then log them all out.

    Meant for cleaning, after the recorded connections are disconnected:
    what is left is a firmware (iBFT) login or a crashed run's, and no
    disk of it may stay visible to the erase steps.

    :param force: log out even when a device cannot be flushed or is
        mounted.
    :param errors: a list each failure is added to (as text); without it
        IscsiSessionError is raised, after every session was tried.
    :returns: the sessions logged out (:func:`public` of each).
    """
    failures = [] if errors is None else errors
    first_failure = len(failures)
    if _sysfs_session_ids():  # iscsiadm needs iscsid, iscsid a name
        initiator.ensure_for_sessions()
    try:
        listed = list_sessions()
    except exception.IscsiSessionError as e:
        failures.append(str(e))
        listed = None
    logged_out = _logout_listed(listed or [], force, failures)
    _check_gone(listed, logged_out, failures)
    if errors is None and len(failures) > first_failure:
        raise exception.IscsiSessionError('; '.join(failures))
    return [public(s) for s in logged_out]


def _logout_listed(sessions, force, failures):
    """Flush every session's devices, then log out those flushed."""
    if not sessions:
        return []
    reason = iscsi.unusable_reason()
    if reason:
        failures.extend('cannot log out of iSCSI %s: %s'
                        % (describe(s), reason) for s in sessions)
        return []
    devices = session_devices()
    # Every session is flushed before any is logged out: a multipath map
    # over two sessions keeps a path to write through until the end.
    ready = []
    for session in sessions:
        failure = _flush_devices(session, devices.get(session.sid, []),
                                 force)
        if failure:
            failures.append(failure)
        else:
            ready.append(session)
    logged_out = []
    for session in ready:
        try:
            logout(session)
        except exception.IscsiSessionError as e:
            failures.append(str(e))
            continue
        LOG.info('Logged out of iSCSI %s (devices: %s)', describe(session),
                 ', '.join(devices.get(session.sid, [])) or 'none')
        logged_out.append(session)
    return logged_out


def _check_gone(listed, logged_out, failures):
    """Nothing logged out may stay in the kernel, nothing unlisted exist.

    :param listed: the sessions iscsiadm listed; None when it could not
        list them (that failure is reported already).
    """
    left = _wait_for_sysfs([s.sid for s in logged_out])
    for session in logged_out:
        if session.sid in left:
            failures.append('iSCSI %s is still in sysfs %ss after its '
                            'logout' % (describe(session), SETTLE_TIMEOUT))
    if listed is None:
        return
    unlisted = _sysfs_session_ids() - {s.sid for s in listed}
    for sid in sorted(unlisted)[:8]:
        failures.append('the kernel has iSCSI session %d (target %s) that '
                        'iscsiadm does not list: it cannot be logged out'
                        % (sid, secrets.brief(_sysfs_target(sid), 120)))
