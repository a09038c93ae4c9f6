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

"""``ipa-cinder local-attach`` on a host that has no iSCSI initiator name.

The CLI runs in a private mount namespace where /etc/iscsi is an empty
directory, so os-brick reports a connector without ``initiator``; the
host's own /etc/iscsi is never touched. Cinder is reached through the
fault proxy, whose history shows every request the CLI made.
"""

import os
import shutil
import subprocess
import time

import pytest

from tests.functional.faults import conftest as faults_conftest
from tests.functional.faults import leaks
from tests.functional import test_cli

ISCSI_DIR = '/etc/iscsi'


class NoInitiatorRunner(faults_conftest.FaultyRunner):
    """``ipa-cinder`` where /etc/iscsi is empty (own mount namespace)."""

    def __init__(self, sandbox, tmp_path, proxy):
        super().__init__(sandbox, tmp_path, proxy)
        self.empty = str(tmp_path / 'empty-iscsi')
        os.makedirs(self.empty, exist_ok=True)

    def raw(self, argv, env=None):
        script = 'mount --bind "$0" %s && exec "$@"' % ISCSI_DIR
        return subprocess.run(
            ['unshare', '--mount', '--propagation', 'private', 'sh', '-c',
             script, self.empty, test_cli.CLI] + list(argv),
            capture_output=True, text=True, env=env or self.env,
            cwd=str(self.tmp_path), timeout=180)


@pytest.fixture
def bare_cli(sandbox, tmp_path, faults):
    if not os.path.exists(test_cli.CLI):
        pytest.skip('ipa-cinder is not installed in this virtualenv')
    if not (shutil.which('unshare') and os.path.isdir(ISCSI_DIR)):
        pytest.skip('needs unshare(1) and an /etc/iscsi to hide')
    return NoInitiatorRunner(sandbox, tmp_path, faults)


def _creates(faults):
    return [(method, path) for method, path, _action in faults.rules.history
            if method == 'POST' and 'attachments' in path]


def test_iscsi_without_initiator_fails_at_once(sandbox, bare_cli, faults):
    """An iSCSI volume, a host without initiator name: exit 2 at once.

    The operator sees ``ipa-cinder: usage error: volume <id> is exported
    over iSCSI, which needs an iSCSI initiator name, but this host has
    none ...``. Nothing is created: no attachment request reaches Cinder
    (Cinder would answer 500 and leave a reservation, which the retries
    used to turn into ~17 s and a misleading "unavailable").
    """
    volume = sandbox.create_volume(volume_type='iscsi')
    connector = bare_cli.ok('get-connector')
    assert not connector.get('initiator'), connector
    for fmt in ('json', 'table'):
        began = time.monotonic()
        code, parsed, text = bare_cli.run('local-attach', volume['id'],
                                          fmt=fmt)
        took = time.monotonic() - began
        assert code == 2, text
        assert volume['id'] in text and 'initiator' in text, text
        assert 'iSCSI' in text and 'Nothing was created' in text, text
        if fmt == 'json':
            assert parsed['error']['kind'] == 'usage', parsed
        # The time is mostly the command's start (os-brick, privsep); on
        # a busy machine it varies too much to bound here. What matters:
        # one look at the volume's pool, no create, nothing retried.
        print('local-attach refused in %.1fs' % took)
    assert _creates(faults) == []
    pools = [path for _method, path, _action in faults.rules.history
             if 'get_pools' in path]
    assert len(pools) == 2, faults.rules.history
    leaks.assert_no_leaks(sandbox, volumes=[volume],
                          state_dirs=[bare_cli.state()])
    assert sandbox.get_volume(volume['id'])['status'] == 'available'
    sandbox.delete_volume(volume['id'])


def test_local_volume_without_initiator_still_attaches(
        sandbox, bare_cli, faults):
    """No initiator name does not matter to a volume that needs none."""
    volume = sandbox.create_volume(volume_type='local')
    attached = bare_cli.ok('local-attach', volume['id'])
    assert attached['driver_volume_type'] == 'local'
    assert os.path.exists(attached['device_path'])
    bare_cli.ok('local-detach', volume['id'])
    leaks.assert_no_leaks(sandbox, volumes=[volume],
                          state_dirs=[bare_cli.state()])
    sandbox.wait_volume(volume['id'], 'available')
    sandbox.delete_volume(volume['id'])
