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
"""Hands the sandbox's Cinder exports to a confined agent as they appear.

On a real node the storage network brings a volume to the node when Cinder
exports it. In the sandbox, Cinder's ``local`` backend exports a volume as
a loop device on this machine only when an attachment is created, after the
agent started; the agent's private ``/dev`` does not have it yet. The
broker watches the loop devices whose backing file lies in the sandbox's
volumes directory and grants each new one to the agent's jail (and takes
back those that go away). Nothing else is ever granted: the devices are,
by their backing file, ones the sandbox created.

With an ``owner`` (the UUID of the agent's node) the broker grants a device
only if the volume it exports (``volume-<id>``, its backing file) has an
attachment whose instance is that node: agents of several nodes on one
machine each see their own node's volumes only, as each node of a real
storage network reaches only the targets it was given. Cinder is asked
once per new device; the answer holds for that (device, backing file)
pair. A loop number is reused after a detach, so a device whose backing
file changes is taken back and decided again.
"""

import os
import threading

from oslo_log import log
from oslo_utils import uuidutils

from ipa_cinder_sandbox import loopdev

LOG = log.getLogger(__name__)

VOLUME_PREFIX = 'volume-'


def volume_id_of(backing, directory):
    """The Cinder volume a backing file holds, or None if it is no volume.

    Only ``<directory>/volume-<uuid>`` is a volume: a snapshot, or a file
    anywhere else, is never one an attachment can grant.
    """
    if os.path.dirname(backing) != os.path.abspath(directory).rstrip('/'):
        return None
    name = os.path.basename(backing)
    volume_id = name[len(VOLUME_PREFIX):]
    if name.startswith(VOLUME_PREFIX) and uuidutils.is_uuid_like(volume_id):
        return volume_id
    return None


def attached_to(attachments, owner):
    """True if one of Cinder's ``attachments`` has ``owner`` as instance."""
    return any(attachment.get('instance') == owner
               for attachment in attachments)


class _Poller(object):
    """Calls ``sync()`` every ``interval`` seconds in a daemon thread."""

    interval = 0.1

    def __init__(self):
        self._stop = threading.Event()
        self._thread = None

    def thread_name(self):
        return 'device-broker'

    def _run(self):
        while not self._stop.wait(self.interval):
            try:
                self.sync()
            except Exception as e:  # keep watching whatever happens
                LOG.warning('%s: %s', self.thread_name(), e)

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=self.thread_name())
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class DeviceBroker(_Poller):
    """Grant ``directory``'s loop devices to ``agent`` while running.

    :param agent: an :class:`ipa_cinder_sandbox.agent_process.AgentProcess`.
    :param directory: only loop devices backed by files under it qualify.
    :param interval: seconds between two looks at the loop devices.
    :param owner: the agent's node UUID: grant only the volumes attached
        to it. None grants every device of ``directory``.
    :param cinder: an :class:`ipa_cinder_sandbox.rest.CinderClient` (for
        ``owner``), used from the broker's thread only.
    """

    def __init__(self, agent, directory, interval=0.1, owner=None,
                 cinder=None):
        if owner is not None and cinder is None:
            raise ValueError('a broker with an owner asks Cinder: give it '
                             'a Cinder client')
        self.agent = agent
        self.directory = os.path.abspath(directory)
        self.interval = interval
        self.owner = owner
        self.cinder = cinder
        self.granted = set()
        # Devices refused to the owner, for as long as their backing file
        # stays the same.
        self.denied = set()
        self.queries = 0
        self._decided = {}
        super().__init__()

    def _devices(self):
        """{device: backing file} of the loop devices under directory."""
        prefix = self.directory.rstrip('/') + '/'
        return {device: backing
                for device, backing in loopdev.list_devices().items()
                if backing.startswith(prefix)}

    def _allowed(self, device, backing):
        """May the agent have ``device``? (One Cinder query if owned.)"""
        if self.owner is None:
            return True
        volume_id = volume_id_of(backing, self.directory)
        if volume_id is None:
            LOG.info('Not granting %s to agent %s: %s is not a volume',
                     device, self.agent.name, backing)
            return False
        self.queries += 1
        attachments = self.cinder.get(
            '/attachments/detail?all_tenants=1&volume_id=%s' % volume_id,
            microversion='3.44')['attachments']
        if attached_to(attachments, self.owner):
            return True
        LOG.info('Not granting %s to agent %s: volume %s is not attached '
                 'to node %s', device, self.agent.name, volume_id,
                 self.owner)
        return False

    def _grant(self, device):
        try:
            self.agent.grant_device(device)
            self.granted.add(device)
            LOG.info('Granted %s to agent %s', device, self.agent.name)
        except Exception as e:  # the agent may be restarting
            LOG.debug('Cannot grant %s yet: %s', device, e)

    def _take_back(self, device):
        if device in self.granted:
            try:
                self.agent.revoke_device(device)
            except Exception as e:  # it is gone anyway
                LOG.debug('Cannot revoke %s: %s', device, e)
        self.granted.discard(device)
        self.denied.discard(device)
        self._decided.pop(device, None)

    def sync(self):
        """Grant new devices and revoke vanished or changed ones, once."""
        current = self._devices()
        for device in sorted(set(self._decided) - set(current)):
            self._take_back(device)
        for device, backing in sorted(current.items()):
            decided = self._decided.get(device)
            if decided is not None and decided[0] != backing:
                # The loop number now serves another file.
                self._take_back(device)
                decided = None
            if decided is None:
                try:
                    decided = (backing, self._allowed(device, backing))
                except Exception as e:  # Cinder busy: ask at the next look
                    LOG.warning('Cannot tell whether %s belongs to node '
                                '%s yet: %s', device, self.owner, e)
                    continue
                self._decided[device] = decided
                if not decided[1]:
                    self.denied.add(device)
            if decided[1] and device not in self.granted:
                self._grant(device)

    def thread_name(self):
        return 'device-broker-%s' % self.agent.name


class FleetBroker(_Poller):
    """One broker for the agents of many nodes.

    A :class:`DeviceBroker` per agent looks at every new device and asks
    Cinder about it once per agent: N agents make N x N queries, which at
    twenty nodes on two busy cores lagged past the agent's wait for its
    device. This broker looks once per device and hands it to the agent
    of each node the volume is attached to (several for a multi-attach
    volume); agents may join later (:meth:`add`), and get what was decided
    for their node already.

    :param directory: only loop devices backed by files under it qualify.
    :param cinder: an :class:`ipa_cinder_sandbox.rest.CinderClient`, used
        from the broker's thread only.
    """

    def __init__(self, directory, cinder, interval=0.1):
        self.directory = os.path.abspath(directory)
        self.cinder = cinder
        self.interval = interval
        self.queries = 0
        self._agents = {}
        # device -> (backing file, node UUIDs its volume is attached to)
        self._decided = {}
        # device -> node UUIDs whose agent has it
        self._granted = {}
        self._lock = threading.Lock()
        super().__init__()

    def add(self, owner, agent):
        """Serve ``agent``, the agent of node ``owner``, from now on."""
        with self._lock:
            self._agents[owner] = agent

    def remove(self, owner):
        """Stop serving node ``owner``'s agent (it is stopping)."""
        with self._lock:
            self._agents.pop(owner, None)
            for owners in self._granted.values():
                owners.discard(owner)

    def granted_to(self, owner):
        """The devices node ``owner``'s agent was given."""
        with self._lock:
            return {device for device, owners in self._granted.items()
                    if owner in owners}

    def _owners(self, backing):
        volume_id = volume_id_of(backing, self.directory)
        if volume_id is None:
            return set()
        self.queries += 1
        attachments = self.cinder.get(
            '/attachments/detail?all_tenants=1&volume_id=%s' % volume_id,
            microversion='3.44')['attachments']
        return {a.get('instance') for a in attachments if a.get('instance')}

    def _take_back(self, device):
        for owner in self._granted.pop(device, set()):
            agent = self._agents.get(owner)
            if agent is not None:
                try:
                    agent.revoke_device(device)
                except Exception as e:  # it is gone anyway
                    LOG.debug('Cannot revoke %s: %s', device, e)
        self._decided.pop(device, None)

    def sync(self):
        """Decide new devices, hand them out, take back vanished ones."""
        prefix = self.directory.rstrip('/') + '/'
        current = {device: backing
                   for device, backing in loopdev.list_devices().items()
                   if backing.startswith(prefix)}
        with self._lock:
            for device in list(self._decided):
                if self._decided[device][0] != current.get(device):
                    self._take_back(device)
        for device, backing in sorted(current.items()):
            if device not in self._decided:
                try:
                    owners = self._owners(backing)
                except Exception as e:  # Cinder busy: ask at the next look
                    LOG.warning('Cannot tell whose %s is yet: %s', device, e)
                    continue
                with self._lock:
                    self._decided[device] = (backing, owners)
        with self._lock:
            for device, (_backing, owners) in self._decided.items():
                given = self._granted.setdefault(device, set())
                for owner in owners - given:
                    agent = self._agents.get(owner)
                    if agent is None:
                        continue
                    try:
                        agent.grant_device(device)
                        given.add(owner)
                        LOG.info('Granted %s to agent %s (node %s)',
                                 device, agent.name, owner)
                    except Exception as e:  # the agent may be restarting
                        LOG.debug('Cannot grant %s yet: %s', device, e)

    def thread_name(self):
        return 'fleet-device-broker'
