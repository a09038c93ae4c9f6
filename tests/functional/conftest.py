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

"""The session-wide sandbox every functional test suite shares.

``sandbox`` brings the real services up once per test session (RabbitMQ,
tgtd, Cinder api/scheduler/volume with the file driver, Ironic, the image
server) and down at the end, printing both times. Its state directory is
``$IPA_CINDER_FUNCTIONAL_DIR`` (default: ``<tmp>/ipa-cinder-functional``)
and its ports start at ``$IPA_CINDER_FUNCTIONAL_PORT_BASE`` (default
18750), so a developer's own ``ipa-cinder-sandbox up`` (18700) is left
alone. A test session locks its state directory; a second session running
at the same time takes the next one (``<dir>-1``, ports 20 higher). With
``IPA_CINDER_FUNCTIONAL_REUSE=1`` an already running sandbox in that
directory is used as is and left running.
"""

import importlib.util
import os
import tempfile
import time

import pytest

from ipa_cinder_sandbox import database as database_mod
from ipa_cinder_sandbox import handle as sandbox_handle


def _database():
    """MariaDB when the services can use it, else SQLite.

    Several suites share the sandbox and the machine may be busy: SQLite
    then answers "database is locked" (HTTP 500) now and then, MariaDB
    never does. ``$IPA_CINDER_FUNCTIONAL_DATABASE`` chooses explicitly.
    """
    choice = os.environ.get('IPA_CINDER_FUNCTIONAL_DATABASE')
    if choice:
        return choice
    if (importlib.util.find_spec('pymysql') is not None
            and os.path.exists(database_mod.MARIADBD)):
        return 'mariadb'
    return 'sqlite'


def _state_dir():
    return os.environ.get('IPA_CINDER_FUNCTIONAL_DIR') or os.path.join(
        tempfile.gettempdir(), 'ipa-cinder-functional')


@pytest.fixture(scope='session')
def sandbox():
    """A running sandbox: an ipa_cinder_sandbox.handle.SandboxHandle."""
    if os.geteuid() != 0:
        pytest.skip('the sandbox needs root (loop devices, tgtd)')
    port_base = int(os.environ.get('IPA_CINDER_FUNCTIONAL_PORT_BASE')
                    or 18750)
    database = _database()
    if os.environ.get('IPA_CINDER_FUNCTIONAL_REUSE') == '1':
        handle = sandbox_handle.SandboxHandle.start(
            _state_dir(), port_base, database=database, reuse=True)
    else:
        handle = sandbox_handle.SandboxHandle.start_exclusive(
            _state_dir(), port_base, database=database)
    print('\nsandbox up in %.1fs (%s) %s'
          % (handle.startup_seconds, handle.layout.database, handle.timings))
    try:
        yield handle
    finally:
        began = time.monotonic()
        handle.close()
        if not handle.reused:
            print('\nsandbox down in %.1fs' % (time.monotonic() - began))
            left = handle.leftovers()
            assert not any(left.values()), 'sandbox left behind: %s' % left
