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

"""What an iSCSI login needs on this host, and why one (or a logout) failed.

The kernel loads ``iscsi_tcp`` on the first login (iscsid asks for it), so
a fresh ramdisk has no iSCSI module loaded and that is fine: what a login
needs is open-iscsi's ``iscsiadm`` and a reachable (or startable) iscsid.
When a login fails, the error names the portal, the target and what
iscsiadm said it was (CHAP refused, no such target...), never a secret.
"""

import shutil

from oslo_concurrency import processutils
from oslo_log import log

from ipa_cinder.common import secrets

LOG = log.getLogger(__name__)

# iscsiadm exit codes (open-iscsi, include/iscsi_err.h).
_NO_OBJS_FOUND = 21
_ISCSID_COMM_ERR = 20
_REASONS = {
    5: 'the target or portal was not found (ISCSI_ERR_NOT_FOUND)',
    8: 'the login timed out (ISCSI_ERR_TRANS_TIMEOUT)',
    15: 'a session to this target already exists (ISCSI_ERR_SESS_EXISTS)',
    19: 'no iSCSI transport could be loaded, e.g. the iscsi_tcp module is '
        'missing (ISCSI_ERR_TRANS_NOT_FOUND)',
    20: 'iscsid could not be reached (ISCSI_ERR_ISCSID_COMM_ERR)',
    24: 'the target refused the CHAP credentials '
        '(ISCSI_ERR_LOGIN_AUTH_FAILED)',
}
_COMMAND_TIMEOUT = 30
# What a failed listing or logout means (a login's reasons do not fit).
_SESSION_REASONS = {
    8: 'the logout timed out (ISCSI_ERR_TRANS_TIMEOUT)',
    20: _REASONS[20],
}


def _session_query():
    """Exit code of ``iscsiadm -m session`` (0 or 21 when iscsid answers)."""
    try:
        processutils.execute('iscsiadm', '-m', 'session',
                             check_exit_code=[0, _NO_OBJS_FOUND],
                             timeout=_COMMAND_TIMEOUT)
    except processutils.ProcessExecutionError as e:
        return e.exit_code
    return 0


def unusable_reason():
    """Why this host cannot log in to an iSCSI target, or None."""
    if not shutil.which('iscsiadm'):
        return 'iscsiadm is not installed (package open-iscsi)'
    code = _session_query()
    if code in (0, None):
        return None
    if code == _ISCSID_COMM_ERR:
        LOG.info('iscsid is not running; starting it')
        try:
            processutils.execute('systemctl', 'start', 'iscsid.service',
                                 timeout=_COMMAND_TIMEOUT)
        except (processutils.ProcessExecutionError, OSError) as e:
            LOG.warning('Cannot start iscsid: %s', secrets.safe_text(e))
        code = _session_query()
        if code in (0, None):
            return None
        return 'iscsid is not running and could not be started'
    return 'iscsiadm -m session failed: %s' % _REASONS.get(
        code, 'exit code %s' % code)


def _process_errors(exc):
    """The ProcessExecutionErrors in an exception's chain."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, processutils.ProcessExecutionError):
            yield exc
        exc = exc.__cause__ or exc.__context__


def login_failure(exc):
    """A masked explanation of a failed iSCSI connect."""
    for failure in _process_errors(exc):
        if failure.exit_code in _REASONS:
            return _REASONS[failure.exit_code]
    text = secrets.safe_text(exc)
    if 'authoriz' in text.lower() or 'authentic' in text.lower():
        return 'the target refused the CHAP credentials (%s)' % text
    return text


def command_failure(exc):
    """A masked, short explanation of a failed session listing or logout."""
    code = getattr(exc, 'exit_code', None)
    if code in _SESSION_REASONS:
        return _SESSION_REASONS[code]
    detail = (getattr(exc, 'stderr', None)
              or getattr(exc, 'description', None) or exc)
    text = ' '.join(secrets.safe_text(detail).split())
    if len(text) > 240:
        text = text[:240] + '...'
    if code not in (None, -1):
        return 'exit code %s: %s' % (code, text)
    return text


def describe_target(data):
    """``portal P, target T`` of an iSCSI connection_info's data."""
    portal = data.get('target_portal') or ', '.join(
        data.get('target_portals') or ()) or '?'
    target = data.get('target_iqn') or ', '.join(
        data.get('target_iqns') or ()) or '?'
    return 'portal %s, target %s' % (portal, target)
