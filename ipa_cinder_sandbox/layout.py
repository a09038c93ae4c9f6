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

"""Where the sandbox keeps its files and which loopback ports it uses.

Everything the sandbox creates lives under one state directory, and every
port is an offset from one base port, so two checkouts can run two sandboxes
side by side by choosing two bases.

The state directory is root's only (0700) and ``sandbox.json`` is 0600:
the services' logs hold CHAP user names and Ironic's database holds the
boot targets' CHAP passwords. :meth:`Layout.save` closes it, and
``up`` saves before it starts any service.

``conductors`` chooses how Ironic runs: 1 (the default) is one combined
``ironic`` process; 2 or more is ``ironic-api`` plus that many
``ironic-conductor`` processes talking over the sandbox's RabbitMQ, which
needs the MariaDB database (several processes on one SQLite file do not
work: Ironic then keeps its hash ring static and never refreshes its
conductors' heartbeats).
"""

import json
import os
import sys

from ipa_cinder_sandbox import errors

DEFAULT_PORT_BASE = 18700
STATE_DIR_ENV = 'IPA_CINDER_SANDBOX_DIR'
PORT_BASE_ENV = 'IPA_CINDER_SANDBOX_PORT_BASE'
HOST = '127.0.0.1'
# Cinder under noauth wants a project id made of hex digits and dashes.
PROJECT_ID = '5a4d6b0e1c2f4a3b9d8e7f6a5b4c3d2e'
USER_ID = 'sandbox'

# Offsets from the base port. tgt's "control port" is not a TCP port: it
# names tgtd's private management socket.
PORT_OFFSETS = {
    'rabbit': 0,
    'rabbit_dist': 1,
    'epmd': 2,
    'mariadb': 3,
    'iscsi': 4,
    'tgt_control': 5,
    'cinder': 6,
    'ironic': 7,
    'http': 8,
    'agent': 9,
}

#: Mode of the state directory and of the files the sandbox writes itself.
STATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600

# Sub-directories that belong to one run of the sandbox and are removed by
# a fresh ``up``. Everything else under the state directory is left alone.
RUN_DIRS = ('etc', 'run', 'log', 'bin', 'cinder', 'tgt', 'rabbitmq',
            'mariadb', 'ironic', 'images', 'agent', 'devices')


def default_state_dir():
    """The state directory: $IPA_CINDER_SANDBOX_DIR or ./.sandbox."""
    return os.path.abspath(os.environ.get(STATE_DIR_ENV) or '.sandbox')


def default_port_base():
    """The base port: $IPA_CINDER_SANDBOX_PORT_BASE or 18700."""
    return int(os.environ.get(PORT_BASE_ENV) or DEFAULT_PORT_BASE)


def check_conductors(conductors, database):
    """The number of Ironic conductors, checked against the database.

    :raises SandboxError: fewer than one conductor, or several on SQLite.
    """
    try:
        count = int(conductors)
    except (TypeError, ValueError):
        count = 0
    if count < 1:
        raise errors.SandboxError('conductors must be a whole number of at '
                                  'least 1, not %r' % (conductors,))
    if count > 1 and database != 'mariadb':
        raise errors.SandboxError(
            'Ironic with %d conductors needs the MariaDB database (use '
            '--database mariadb): its conductors share one database, which '
            'SQLite cannot serve to several processes' % count)
    return count


class Layout(object):
    """Paths and ports of one sandbox."""

    def __init__(self, state_dir=None, port_base=None, database='sqlite',
                 conductors=1, cinder_api_workers=1):
        self.state_dir = os.path.abspath(state_dir or default_state_dir())
        self.port_base = int(port_base or default_port_base())
        if database not in ('sqlite', 'mariadb'):
            raise ValueError('database must be sqlite or mariadb, not %r'
                             % database)
        self.database = database
        self.conductors = check_conductors(conductors, database)
        # One keeps test sandboxes small; Cinder's own default is one per
        # CPU (what the benchmark uses).
        self.cinder_api_workers = max(1, int(cinder_api_workers))
        self.ports = {name: self.port_base + offset
                      for name, offset in PORT_OFFSETS.items()}
        self.venv_bin = os.path.dirname(os.path.abspath(sys.executable))

    def path(self, *parts):
        """A path under the state directory."""
        return os.path.join(self.state_dir, *parts)

    @property
    def info_file(self):
        return self.path('sandbox.json')

    @property
    def cinder_url(self):
        """Cinder's block-storage v3 endpoint, project id included."""
        return 'http://%s:%d/v3/%s' % (HOST, self.ports['cinder'],
                                       PROJECT_ID)

    @property
    def cinder_root_url(self):
        return 'http://%s:%d' % (HOST, self.ports['cinder'])

    @property
    def ironic_url(self):
        return 'http://%s:%d' % (HOST, self.ports['ironic'])

    @property
    def http_url(self):
        return 'http://%s:%d' % (HOST, self.ports['http'])

    @property
    def transport_url(self):
        return 'rabbit://guest:guest@%s:%d/' % (HOST, self.ports['rabbit'])

    def venv_tool(self, name):
        """A console script of the virtualenv the sandbox runs from."""
        return os.path.join(self.venv_bin, name)

    def to_dict(self):
        """What ``status``, ``env`` and the test fixture need to know."""
        return {
            'state_dir': self.state_dir,
            'port_base': self.port_base,
            'database': self.database,
            'conductors': self.conductors,
            'cinder_api_workers': self.cinder_api_workers,
            'ports': dict(self.ports),
            'cinder_url': self.cinder_url,
            'ironic_url': self.ironic_url,
            'http_url': self.http_url,
            'project_id': PROJECT_ID,
            'user_id': USER_ID,
            'logs': self.path('log'),
        }

    def make_private(self):
        """Create the state directory if needed; root's only (0700)."""
        os.makedirs(self.state_dir, mode=STATE_DIR_MODE, exist_ok=True)
        # makedirs leaves an existing directory's mode alone, and its
        # mode argument goes through the umask.
        os.chmod(self.state_dir, STATE_DIR_MODE)

    def save(self, extra=None):
        """Record the running sandbox in ``sandbox.json`` (mode 0600).

        Makes the state directory private first (:meth:`make_private`).
        """
        self.make_private()
        data = self.to_dict()
        data.update(extra or {})
        tmp = self.info_file + '.tmp'
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     PRIVATE_FILE_MODE)
        os.fchmod(fd, PRIVATE_FILE_MODE)  # an older tmp file kept its mode
        with os.fdopen(fd, 'w') as f:
            json.dump(data, f, indent=2, sort_keys=True)
        os.replace(tmp, self.info_file)
        return data

    @classmethod
    def load(cls, state_dir=None):
        """The layout a previous ``up`` recorded, or None."""
        state_dir = os.path.abspath(state_dir or default_state_dir())
        try:
            with open(os.path.join(state_dir, 'sandbox.json')) as f:
                data = json.load(f)
        except FileNotFoundError:
            return None, None
        layout = cls(state_dir, data['port_base'], data['database'],
                     data.get('conductors', 1),
                     data.get('cinder_api_workers', 1))
        return layout, data
