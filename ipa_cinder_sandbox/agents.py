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

"""Confined agents that Ironic drives, seeing loop devices as disks.

:class:`IronicAgent` is an
:class:`ipa_cinder_sandbox.agent_process.AgentProcess` for the sandbox's
deploys. IPA lists only block devices of type ``disk``; the sandbox's disks
are loop devices. An ``lsblk`` first on the agent's PATH reports the loop
devices present in the agent's private /dev as disks and drops every
device that is absent from it, so root device hints and listings only ever
see the devices granted to the agent.
"""

import os
import shutil
import sys

from ipa_cinder_sandbox import agent_process
from ipa_cinder_sandbox import errors


_LSBLK_WRAPPER = """#!%(python)s
# lsblk for an agent of the ipa-cinder sandbox: only the devices of the
# agent's private /dev, loop devices reported as disks.
import json
import os
import subprocess
import sys

result = subprocess.run([%(lsblk)r] + sys.argv[1:], capture_output=True)
out = result.stdout
if result.returncode == 0 and '--json' in sys.argv[1:]:
    data = json.loads(out)
    devices = []
    for device in data.get('blockdevices', []):
        name = device.get('kname') or device.get('name') or ''
        if not os.path.exists(os.path.join('/dev', os.path.basename(name))):
            continue
        if device.get('type') == 'loop':
            device['type'] = 'disk'
        devices.append(device)
    data['blockdevices'] = devices
    out = json.dumps(data).encode()
sys.stdout.buffer.write(out)
sys.stderr.buffer.write(result.stderr)
sys.exit(result.returncode)
"""


class IronicAgent(agent_process.AgentProcess):
    """A confined agent for Ironic deploys (see the module docstring)."""

    def _write_tools(self):
        """The lsblk wrapper, in a directory put first on the PATH."""
        tools = os.path.join(self.workdir, 'bin')
        os.makedirs(tools, exist_ok=True)
        lsblk = shutil.which('lsblk', path='/usr/bin:/bin:/usr/sbin:/sbin')
        if not lsblk:
            raise errors.AgentError('lsblk is missing (util-linux)')
        path = os.path.join(tools, 'lsblk')
        with open(path, 'w') as f:
            f.write(_LSBLK_WRAPPER % {'python': sys.executable,
                                      'lsblk': lsblk})
        os.chmod(path, 0o755)
        return tools

    def _environment(self):
        env = super()._environment()
        env['PATH'] = os.pathsep.join([
            self._write_tools(), os.path.dirname(sys.executable),
            '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin',
            '/sbin', '/bin'])
        return env
