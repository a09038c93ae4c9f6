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

"""A real, confined ironic-python-agent with no Ironic, for these tests.

The agent may see only the loop devices created here, over sparse files
created here (see ipa_cinder_sandbox.jail for how that is enforced).
"""

import os
import time

import pytest

from ipa_cinder_sandbox import agent_process
from ipa_cinder_sandbox import loopdev


class LoopDevice(object):
    def __init__(self, backing, size):
        self.backing = backing
        with open(backing, 'wb') as f:
            f.truncate(size)
        self.path = loopdev.attach(backing)

    def detach(self):
        loopdev.detach(self.path)


@pytest.fixture(scope='module')
def loops(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip('the functional tests need root')
    base = tmp_path_factory.mktemp('volumes')
    devices = [LoopDevice(str(base / ('volume-%d.img' % i)), 8 << 20)
               for i in range(2)]
    yield devices
    for device in devices:
        device.detach()


@pytest.fixture(scope='module')
def agent(tmp_path_factory, loops):
    workdir = tmp_path_factory.mktemp('agent')
    started = time.monotonic()
    proc = agent_process.AgentProcess(str(workdir),
                                      devices=[d.path for d in loops])
    proc.start()
    print('\nagent ready in %.1fs' % (time.monotonic() - started))
    yield proc
    proc.stop()
