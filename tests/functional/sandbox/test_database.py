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

"""The private MariaDB instance (``up --database mariadb``)."""

import os
import subprocess

import pytest

from ipa_cinder_sandbox import cleanup
from ipa_cinder_sandbox import database
from ipa_cinder_sandbox import layout as layout_mod
from ipa_cinder_sandbox import process


@pytest.mark.skipif(not os.path.exists(database.MARIADBD),
                    reason='mariadb-server is not installed')
def test_private_mariadb_on_loopback(tmp_path):
    layout = layout_mod.Layout(str(tmp_path / 'db'), port_base=18780,
                               database='mariadb')
    procs = process.ProcessTable(layout.path('run'), layout.path('log'))
    db = database.get_database(layout, procs)
    try:
        db.start()
        db.wait()
        db.create('cinder')
        # Over TCP on 127.0.0.1 and its own port, as the services connect.
        result = subprocess.run(
            [database.CLIENT, '--no-defaults', '-h', '127.0.0.1', '-P',
             str(layout.ports['mariadb']), '-uroot', '-N', '-e',
             'SHOW DATABASES LIKE "cinder"; SELECT @@datadir'],
            capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [
            'cinder', layout.path('mariadb', 'data') + '/']
    finally:
        db.stop()
    assert not procs.alive('mariadb')
    assert cleanup.leftover_pids(layout.state_dir) == []
