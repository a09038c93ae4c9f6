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

"""On-disk record of the volumes this host has connected.

One JSON file per connection, named after its Cinder attachment, under
``[ipa_cinder] state_dir``/connections. A restarted agent (or a later
``ipa-cinder`` command) reads them to list and disconnect what an earlier
process connected. The connection info is stored with its secrets masked:
os-brick does not need CHAP credentials to disconnect.

Writes are atomic (temporary file, fsync, rename) and every change holds an
oslo.concurrency external lock in that directory, so two processes on one
host (the agent and an ``ipa-cinder`` command) cannot interleave.
"""

import contextlib
import json
import os
import threading

from oslo_concurrency import lockutils
from oslo_log import log

from ipa_cinder.common import connection
from ipa_cinder.common import secrets
from ipa_cinder import conf as ipa_conf

LOG = log.getLogger(__name__)
CONF = ipa_conf.CONF

_SUFFIX = '.json'


class ConnectionRegistry(object):
    """The connections recorded under one state directory."""

    def __init__(self, state_dir=None):
        self.state_dir = state_dir or CONF.ipa_cinder.state_dir
        self.path = os.path.join(self.state_dir, 'connections')
        self._thread_lock = threading.RLock()
        self._depth = 0

    def _ensure_dir(self):
        os.makedirs(self.path, mode=0o700, exist_ok=True)

    @contextlib.contextmanager
    def locked(self):
        """Hold the registry exclusively (threads and processes).

        Re-entrant within a thread; the inter-process lock is taken once,
        by the outermost holder (a second flock of the same file from this
        process would wait for itself).
        """
        with self._thread_lock:
            self._ensure_dir()
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            with lockutils.external_lock('.lock',
                                         lock_path=self.path):
                self._depth = 1
                try:
                    yield self
                finally:
                    self._depth = 0

    def _file(self, attachment_id):
        connection.check_uuid(attachment_id, 'attachment_id')
        return os.path.join(self.path, attachment_id + _SUFFIX)

    def get(self, attachment_id):
        """The record of an attachment, or None."""
        try:
            with open(self._file(attachment_id)) as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def list(self):
        """Every record, oldest first. Unreadable files are skipped."""
        try:
            names = sorted(os.listdir(self.path))
        except FileNotFoundError:
            return []
        records = []
        for name in names:
            if not name.endswith(_SUFFIX):
                continue
            try:
                with open(os.path.join(self.path, name)) as f:
                    records.append(json.load(f))
            except (OSError, ValueError) as e:
                LOG.warning('Ignoring unreadable connection record %s: %s',
                            name, e)
        records.sort(key=lambda r: r.get('connected_at', ''))
        return records

    def find(self, volume_id=None, attachment_id=None):
        """Records matching a volume and/or an attachment."""
        return [r for r in self.list()
                if (volume_id is None or r.get('volume_id') == volume_id)
                and (attachment_id is None
                     or r.get('attachment_id') == attachment_id)]

    def save(self, record):
        """Write a record atomically; secrets are masked on the way."""
        self._ensure_dir()
        target = self._file(record['attachment_id'])
        tmp = target + '.tmp'
        data = json.dumps(secrets.mask(record), indent=2, sort_keys=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, target)
        dir_fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def remove(self, attachment_id):
        try:
            os.unlink(self._file(attachment_id))
        except FileNotFoundError:
            pass
