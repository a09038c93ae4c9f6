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

"""Many boot-from-volume nodes at once, each served by its own agent.

A :class:`Fleet` enrols ``cinder-agent`` nodes in a sandbox, each with a
MAC of its own and a ``local`` boot volume, and runs one confined agent
per node (that MAC, its own host name and initiator); one device broker
for the fleet grants each agent only the exports of its own node's
attachments. It also
watches Cinder while a test runs (:class:`AttachmentWatch`): no volume
may ever hold two attachments for the same node. Used by the scale tests
and by the benchmark's scale section.
"""

import collections
import concurrent.futures
import threading
import time

from ipa_cinder_sandbox import device_broker
from ipa_cinder_sandbox import rest
from tests.functional.conductor import conftest as conductor_conftest

#: Locally administered MACs, apart from the VM nodes' 52:54:00:...
MAC_PREFIX = '02:5c:a1:e0'
#: Agents starting together on two busy cores take long to import IPA.
AGENT_START_TIMEOUT = 600
#: What the agent waits for a ``local`` volume's device: the broker hands
#: it over from this machine's loop devices, later when many start at once.
AGENT_CONF = {'ipa_cinder': {'device_wait_timeout': 60}}


def fleet_mac(index):
    return '%s:%02x:%02x' % (MAC_PREFIX, (index >> 8) & 0xff, index & 0xff)


def os_image(sandbox):
    """The small "OS" image of the conductor suite, in this sandbox."""
    image = conductor_conftest.build_os_image(
        sandbox.layout.path('images', 'bfv-os.raw'))
    image['url'] = '%s/%s' % (sandbox.http_url, image['name'])
    return image


class FleetNode(object):
    """One node, its boot volume, and (while it runs) its agent."""

    def __init__(self, index, node, volume):
        self.index = index
        self.node = node
        self.uuid = node['uuid']
        self.volume = volume
        self.agent = None
        self.agent_started = None
        self.agent_start_seconds = None

    @property
    def mac(self):
        return fleet_mac(self.index)


class Fleet(object):
    """Nodes of one sandbox deployed, undeployed and checked together."""

    def __init__(self, sandbox, image, parallel=8):
        self.sandbox = sandbox
        self.deployer = conductor_conftest.Deployer(sandbox, image)
        self.members = []
        self.pool = concurrent.futures.ThreadPoolExecutor(parallel)
        # One broker for every agent: each device is looked up once.
        self.broker = device_broker.FleetBroker(
            sandbox.box.cinder.volumes_dir('local'),
            rest.CinderClient(sandbox.cinder_url)).start()

    def _map(self, func, members=None):
        """``func(member)`` for every member at once; re-raises."""
        members = self.members if members is None else members
        return list(self.pool.map(func, members))

    def enrol(self, count, first_index=0):
        """``count`` nodes, each with a ``local`` boot volume target."""
        def one(index):
            node = self.deployer.create_node(
                name=self.sandbox.name('fleet'), mac=fleet_mac(index))
            volume = self.sandbox.create_volume(size=1)
            self.deployer.add_target(node, volume)
            return FleetNode(index, node, volume)

        added = list(self.pool.map(one, range(first_index,
                                              first_index + count)))
        self.members.extend(added)
        return added

    def set_state(self, target, members=None):
        self._map(lambda m: self.sandbox.set_provision_state(m.uuid, target),
                  members)

    def wait(self, expect, members=None, timeout=600, accept=()):
        """Wait until each member is ``expect`` (or one of ``accept``).

        :returns: {uuid: node} as last seen.
        """
        members = self.members if members is None else members
        deadline = time.monotonic() + timeout
        seen = {}
        while time.monotonic() < deadline:
            for member in members:
                seen[member.uuid] = self.sandbox.get_node(member.uuid)
            states = {u: n['provision_state'] for u, n in seen.items()}
            if all(s == expect or s in accept for s in states.values()):
                return seen
            failed = {u: seen[u]['last_error'] for u, s in states.items()
                      if s in ('deploy failed', 'clean failed', 'error')
                      and s not in accept and s != expect}
            if failed:
                raise AssertionError('nodes failed: %s' % failed)
            time.sleep(1)
        raise AssertionError('not all %s after %ss: %s' % (
            expect, timeout, collections.Counter(
                n['provision_state'] for n in seen.values())))

    def start_agents(self, members=None, start_timeout=AGENT_START_TIMEOUT):
        """An agent (own MAC and host name) per member, all at once.

        Each gets its node's devices from the fleet's broker; its start
        (wall clock) and start-up time are kept on the member.
        """
        members = self.members if members is None else members
        pool = concurrent.futures.ThreadPoolExecutor(max(1, len(members)))

        def one(member):
            member.agent_started = time.time()
            began = time.monotonic()
            member.agent = self.sandbox.start_agent(
                name='agent-fleet-%d' % member.index, mac=member.mac,
                start_timeout=start_timeout, extra_conf=AGENT_CONF)
            member.agent_start_seconds = time.monotonic() - began
            self.broker.add(member.uuid, member.agent)
        with pool:
            list(pool.map(one, members))

    def granted(self, member):
        """The devices the member's agent was given."""
        return self.broker.granted_to(member.uuid)

    def stop_agents(self, members=None):
        def one(member):
            self.broker.remove(member.uuid)
            if member.agent is not None:
                self.sandbox.stop_agent(member.agent)
                member.agent = None
        self._map(one, members)

    def attachments(self, member):
        return self.deployer.attachments(volume_id=member.volume['id'])

    def close(self, volumes_before):
        """Stop every agent, delete the nodes and volumes (no matter what)."""
        try:
            self.stop_agents()
        finally:
            self.broker.stop()
            self.deployer.remove_created(volumes_before)
            self.pool.shutdown(wait=True)


class AttachmentWatch(object):
    """Polls Cinder: the most attachments any (volume, node) pair had.

    A second attachment of a volume for the node that already holds one
    is what a conductor take-over must never create; the watch sees it
    even if it is gone again by the end of the test.
    """

    def __init__(self, sandbox, volumes, interval=0.3):
        self.cinder = rest.CinderClient(sandbox.cinder_url)
        self.volume_ids = [v['id'] for v in volumes]
        self.interval = interval
        self.most = collections.Counter()
        self.polls = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name='attachment-watch')

    def poll(self):
        found = self.cinder.get('/attachments/detail?all_tenants=1',
                                microversion='3.44')['attachments']
        now = collections.Counter(
            (a['volume_id'], a['instance']) for a in found
            if a['volume_id'] in self.volume_ids)
        for pair, count in now.items():
            self.most[pair] = max(self.most[pair], count)
        self.polls += 1

    def _run(self):
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception:  # Cinder restarting: look again
                self.errors += 1

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)

    def doubled(self):
        """(volume, node) pairs that ever had two or more attachments."""
        return {pair: count for pair, count in self.most.items()
                if count > 1}
