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

:class:`ipa_cinder.sandbox.agent_process.AgentProcess` runs a confined IPA
and waits for its API over plain HTTP, which is what an agent without
Ironic serves. :class:`IronicAgent` adds two things the sandbox's deploy
needs:

* An agent that looks itself up in Ironic keeps IPA's default auto-TLS
  (Ironic's ``[agent] require_tls`` then holds): it serves HTTPS with a
  self-signed certificate that it sends to Ironic with its heartbeat, so
  its API is waited for over HTTPS.
* IPA lists only block devices of type ``disk``; the sandbox's disks are
  loop devices. An ``lsblk`` first on the agent's PATH reports the loop
  devices present in the agent's private /dev as disks and drops every
  device that is absent from it, so root device hints and listings only
  ever see the devices granted to the agent.
"""

import os
import shutil
import subprocess
import sys
import time
import warnings

from oslo_log import log as logging
import requests
import urllib3

from ipa_cinder.sandbox import agent_process

LOG = logging.getLogger(__name__)


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

    @property
    def url(self):
        scheme = 'https' if self.api_url else 'http'
        return '%s://127.0.0.1:%d' % (scheme, self.port)

    def _write_tools(self):
        """The lsblk wrapper, in a directory put first on the PATH."""
        tools = os.path.join(self.workdir, 'bin')
        os.makedirs(tools, exist_ok=True)
        lsblk = shutil.which('lsblk', path='/usr/bin:/bin:/usr/sbin:/sbin')
        if not lsblk:
            raise agent_process.AgentError('lsblk is missing (util-linux)')
        path = os.path.join(tools, 'lsblk')
        with open(path, 'w') as f:
            f.write(_LSBLK_WRAPPER % {'python': sys.executable,
                                      'lsblk': lsblk})
        os.chmod(path, 0o755)
        return tools

    def _answers(self):
        # Only "does the API answer": the certificate is the agent's own,
        # self-signed; Ironic verifies it with the copy from the heartbeat.
        with warnings.catch_warnings():
            warnings.simplefilter('ignore',
                                  urllib3.exceptions.InsecureRequestWarning)
            requests.get(self.url + '/v1/status', timeout=2, verify=False)

    def start(self, timeout=60):
        """Start the agent and wait until its API answers."""
        tools = self._write_tools()
        os.makedirs(os.path.join(self.workdir, 'tmp'), exist_ok=True)
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        with open(self.conf_path, 'w') as f:
            f.write(self._config())
        os.chmod(self.conf_path, 0o600)
        env = dict(os.environ, TMPDIR=os.path.join(self.workdir, 'tmp'),
                   PYTHONDONTWRITEBYTECODE='1',
                   PATH=os.pathsep.join([tools, os.path.dirname(
                       sys.executable), '/usr/local/sbin', '/usr/local/bin',
                       '/usr/sbin', '/usr/bin', '/sbin', '/bin']))
        self._log_file = open(self.log_path, 'ab')
        started = time.monotonic()
        self.jail.start([agent_process.AGENT_BINARY, '--config-file',
                         self.conf_path], env=env, stdout=self._log_file,
                        stderr=subprocess.STDOUT)
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.jail.proc.poll() is not None:
                self.stop()
                raise agent_process.AgentError(
                    'the agent exited with %s during start-up; see %s'
                    % (self.jail.proc.returncode, self.log_path))
            try:
                self._answers()
            except requests.RequestException:
                time.sleep(0.2)
                continue
            self.started_in = time.monotonic() - started
            LOG.info('Agent %s answers on %s after %.1fs', self.name,
                     self.url, self.started_in)
            return self
        self.stop()
        raise agent_process.AgentError(
            'the agent did not answer on %s within %ss; see %s'
            % (self.url, timeout, self.log_path))
