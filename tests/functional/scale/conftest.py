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

"""A private sandbox whose Ironic runs as ironic-api and two conductors.

One for the package: the cluster tests and the many-node tests share it.

``cluster`` is a sandbox of its own, apart from the session's ``sandbox``:
state directory ``<tmp>/ipa-cinder-scale``, ports from
``$IPA_CINDER_SCALE_PORT_BASE`` (default 19350, clear of the session
sandbox's 18750 and of the 20-port steps a concurrent session takes),
MariaDB, and a lock so that a concurrent session takes the next slot.
"""

import importlib.util
import os
import tempfile
import time

import pytest

from ipa_cinder_sandbox import database as database_mod
from ipa_cinder_sandbox import handle as sandbox_handle

CONDUCTORS = 2


def _no_cluster_reason():
    """Why the cluster cannot run here, or None.

    The same check as the session sandbox's choice of MariaDB: the
    conductors share a database, which only MariaDB serves them.
    """
    if os.geteuid() != 0:
        return 'the sandbox needs root (loop devices, tgtd)'
    if importlib.util.find_spec('pymysql') is None:
        return 'an Ironic cluster needs MariaDB: PyMySQL is not installed'
    if not os.path.exists(database_mod.MARIADBD):
        return ('an Ironic cluster needs MariaDB: %s is missing (install '
                'mariadb-server)' % database_mod.MARIADBD)
    return None


@pytest.fixture(scope='package')
def cluster():
    """A running sandbox with ironic-api + 2 conductors (a SandboxHandle)."""
    reason = _no_cluster_reason()
    if reason:
        pytest.skip(reason)
    state_dir = os.path.join(tempfile.gettempdir(), 'ipa-cinder-scale')
    port_base = int(os.environ.get('IPA_CINDER_SCALE_PORT_BASE') or 19350)
    handle = sandbox_handle.SandboxHandle.start_exclusive(
        state_dir, port_base, database='mariadb', conductors=CONDUCTORS)
    print('\ncluster sandbox up in %.1fs %s'
          % (handle.startup_seconds, handle.timings))
    names = handle.box.ironic.process_names()
    try:
        yield handle
    finally:
        began = time.monotonic()
        handle.close()
        print('\ncluster sandbox down in %.1fs' % (time.monotonic() - began))
        left = handle.leftovers()
        assert not any(left.values()), 'sandbox left behind: %s' % left
        # ironic-api and every conductor stopped and forgotten.
        assert not [name for name in names
                    if handle.box.procs.get(name) is not None]
