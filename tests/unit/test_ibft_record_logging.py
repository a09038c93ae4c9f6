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

"""IPA's start-up logs the firmware's iSCSI record: no CHAP secret shown.

At start-up IPA runs ``iscsistart -f`` (and ``-b`` when it finds an iBFT)
through its ``utils.execute``, which logs the command's whole output at
debug level (and, when ``-b`` fails, at warning level in the error). On a
node whose firmware booted or hooked an iSCSI volume that output is the
iBFT record: the boot target's CHAP user name and password, mutual ones
too. The agent's log filter must mask every one of them, whatever they
hold, spaces included. Only ``iscsistart`` is replaced (this machine has
no iBFT); IPA's real code runs and logs.
"""

import io
import logging
from unittest import mock

from ironic_python_agent import hardware
from oslo_concurrency import processutils
import pytest

from ipa_cinder.common import log_filter

RECORD = """# BEGIN RECORD 2.1.8
iface.initiatorname = iqn.2010-10.org.openstack.ipa-cinder:node-1
iface.hwaddress = 52:54:00:4c:c2:00
iface.ipaddress = 10.0.2.15
node.name = iqn.2010-10.org.openstack:volume-1
node.session.auth.authmethod = CHAP
node.session.auth.username = %(user)s
node.session.auth.password = %(password)s
node.session.auth.username_in = %(user_in)s
node.session.auth.password_in = %(password_in)s
node.conn[0].address = 10.0.2.100
node.conn[0].port = 3260
node.boot_lun = 01000000
# END RECORD
"""

SECRETS = [
    {'user': 'hvncuG6bVrHqBgKf627D', 'password': 'GL4uucEtTqGMf9aP',
     'user_in': 'target-user-1', 'password_in': 'Mutual-Secret-9'},
    {'user': 'chap-Us3r wi7h sp4ces', 'password': 'p4ss w0rd " w1th} qu0te',
     'user_in': "it's {m3}", 'password_in': 'x9 = y8, z7: w6'},
]


@pytest.fixture
def agent_log():
    """IPA's hardware module logging through the agent's filter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter('%(levelname)s %(message)s'))
    log = logging.getLogger('ironic_python_agent')
    saved = (log.handlers, log.level, log.propagate)
    log.handlers = [handler]
    log.setLevel(logging.DEBUG)
    log.propagate = False
    log_filter.install(log)
    yield stream
    log.handlers, log.level, log.propagate = saved


def _parts(secrets):
    """Every word of every secret (a part shown is a part leaked)."""
    return {word for value in secrets.values() for word in value.split()
            if len(word) > 2}


@pytest.mark.parametrize('secrets', SECRETS)
def test_start_up_iscsi_check_logs_no_chap_secret(agent_log, secrets):
    record = RECORD % secrets

    def iscsistart(*cmd, **kwargs):
        if cmd == ('iscsistart', '-f'):
            return record, ''
        raise processutils.ProcessExecutionError(
            stdout=record, stderr='iscsistart: login failed',
            exit_code=8, cmd=' '.join(cmd))

    with mock.patch.object(processutils, 'execute', autospec=True,
                           side_effect=iscsistart):
        hardware._check_for_iscsi()
    text = agent_log.getvalue()
    # IPA logged the record (debug) and the failed login (warning)...
    assert 'node.session.auth.password = ***' in text
    assert 'Something went wrong executing' in text
    assert 'iqn.2010-10.org.openstack:volume-1' in text
    # ... and no part of a credential.
    for part in _parts(secrets):
        assert part not in text, part
