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

"""Cinder's database: SQLite, or a private MariaDB instance.

SQLite is enough for serial use; under parallel requests it fails with
"database is locked", so parallel work selects MariaDB: its own datadir,
socket and port, bound to 127.0.0.1, started and stopped by PID.
"""

import contextlib
import importlib.util
import os
import shutil
import sqlite3

from oslo_log import log as logging

from ipa_cinder_sandbox import commands
from ipa_cinder_sandbox import errors
from ipa_cinder_sandbox import polling
from ipa_cinder_sandbox import process

LOG = logging.getLogger(__name__)

MARIADBD = '/usr/sbin/mariadbd'
INSTALL_DB = '/usr/bin/mariadb-install-db'
CLIENT = '/usr/bin/mariadb'


class SQLite(object):
    """A file under the state directory; nothing to start."""

    name = 'sqlite'

    def __init__(self, layout, procs):
        self.layout = layout

    def url(self, dbname):
        # A writer descheduled on a busy machine can hold the lock for
        # seconds: wait up to a minute (pysqlite's default is 5 s) rather
        # than fail with "database is locked".
        return 'sqlite:///%s?timeout=60' % self.layout.path(
            dbname, '%s.sqlite' % dbname)

    def start(self):
        pass

    def wait(self, timeout=0):
        pass

    def create(self, dbname):
        os.makedirs(self.layout.path(dbname), exist_ok=True)

    def tune(self, dbname):
        """Write-ahead logging: readers no longer block the writer.

        The journal mode is stored in the database file, so every service
        opening it afterwards gets it.
        """
        path = self.layout.path(dbname, '%s.sqlite' % dbname)
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute('PRAGMA journal_mode=WAL')

    def stop(self):
        pass


class MariaDB(object):
    """A private mariadbd: own datadir, socket and port on 127.0.0.1."""

    name = 'mariadb'

    def __init__(self, layout, procs):
        self.layout = layout
        self.procs = procs
        self.base = layout.path('mariadb')
        self.datadir = os.path.join(self.base, 'data')
        self.socket = os.path.join(self.base, 'mysqld.sock')
        self.port = layout.ports['mariadb']

    def url(self, dbname):
        """SQLAlchemy URL; the services need PyMySQL to use it."""
        if importlib.util.find_spec('pymysql') is None:
            raise errors.SandboxError(
                'Cinder on MariaDB needs the PyMySQL package in the '
                'virtualenv (pip install PyMySQL)')
        return 'mysql+pymysql://root@127.0.0.1:%d/%s?charset=utf8' % (
            self.port, dbname)

    def start(self):
        for tool in (MARIADBD, INSTALL_DB):
            if not os.path.exists(tool):
                raise errors.SandboxError(
                    '%s is missing: install mariadb-server (make '
                    'system-deps)' % tool)
        os.makedirs(self.base, exist_ok=True)
        if not os.path.isdir(os.path.join(self.datadir, 'mysql')):
            LOG.info('Initialising MariaDB datadir %s', self.datadir)
            try:
                commands.run(INSTALL_DB, '--no-defaults',
                             '--datadir=%s' % self.datadir, '--user=root',
                             '--auth-root-authentication-method=normal',
                             '--skip-test-db')
            except errors.ExecutionError:
                shutil.rmtree(self.datadir, ignore_errors=True)
                raise
        self.procs.start('mariadb', [
            MARIADBD, '--no-defaults', '--datadir=%s' % self.datadir,
            '--socket=%s' % self.socket, '--port=%d' % self.port,
            '--bind-address=127.0.0.1', '--user=root', '--skip-name-resolve',
            '--pid-file=%s' % os.path.join(self.base, 'mysqld.pid'),
            '--max-connections=500', '--innodb-buffer-pool-size=64M',
            '--skip-log-bin'])

    def wait(self, timeout=60):
        polling.wait_until(lambda: os.path.exists(self.socket)
                           and process.port_open(self.port), timeout,
                           'MariaDB',
                           on_tick=lambda: self.procs.ensure_alive('mariadb'))

    def sql(self, statement):
        """Run one SQL statement as root over the private socket."""
        return commands.run(CLIENT, '--no-defaults',
                            '--socket=%s' % self.socket, '-uroot',
                            '-e', statement).stdout

    def create(self, dbname):
        self.sql('CREATE DATABASE IF NOT EXISTS %s CHARACTER SET utf8'
                 % dbname)

    def tune(self, dbname):
        pass

    def stop(self):
        self.procs.stop('mariadb', timeout=30)


def get_database(layout, procs):
    """The database the layout asks for."""
    return {'sqlite': SQLite, 'mariadb': MariaDB}[layout.database](
        layout, procs)
