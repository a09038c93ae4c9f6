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
"""

import threading

from oslo_log import log

from ipa_cinder_sandbox import loopdev

LOG = log.getLogger(__name__)


class DeviceBroker(object):
    """Grant ``directory``'s loop devices to ``agent`` while running.

    :param agent: an :class:`ipa_cinder_sandbox.agent_process.AgentProcess`.
    :param directory: only loop devices backed by files under it qualify.
    :param interval: seconds between two looks at the loop devices.
    """

    def __init__(self, agent, directory, interval=0.1):
        self.agent = agent
        self.directory = directory
        self.interval = interval
        self.granted = set()
        self._stop = threading.Event()
        self._thread = None

    def sync(self):
        """Grant new devices and revoke vanished ones, once."""
        current = set(loopdev.devices_under(self.directory))
        for device in sorted(current - self.granted):
            try:
                self.agent.grant_device(device)
                self.granted.add(device)
                LOG.info('Granted %s to agent %s', device, self.agent.name)
            except Exception as e:  # the agent may be restarting
                LOG.debug('Cannot grant %s yet: %s', device, e)
        for device in sorted(self.granted - current):
            try:
                self.agent.revoke_device(device)
            except Exception as e:  # it is gone anyway
                LOG.debug('Cannot revoke %s: %s', device, e)
            self.granted.discard(device)

    def _run(self):
        while not self._stop.wait(self.interval):
            try:
                self.sync()
            except Exception as e:  # keep watching whatever happens
                LOG.warning('Device broker: %s', e)

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name='device-broker')
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
