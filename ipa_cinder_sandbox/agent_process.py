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
"""A real ironic-python-agent, with this plugin, running confined.

Used by the functional tests, the demo and the sandbox. The agent runs in
a :class:`ipa_cinder_sandbox.jail.host.Jail` on 127.0.0.1 and is driven over
its REST API exactly as Ironic drives it (``POST /v1/commands/``).

Without ``api_url`` the agent runs with no Ironic: it does no lookup and
every command needs ``?agent_token=...``. With ``api_url`` it looks itself
up by the MAC of a port of the node and heartbeats to Ironic: this
machine's NIC's MAC, or with ``mac`` one of the agent's own (see
:mod:`ipa_cinder_sandbox.agent_identity`), so that several agents serve
several nodes at once. ``hostname`` gives the agent a host name of its own
(the jail's UTS namespace): what it reports as the connector's ``host``
when it has no node.
"""

import os
import secrets
import socket
import subprocess
import sys
import time
import warnings

from oslo_log import log
import requests
import urllib3

from ipa_cinder_sandbox import errors
from ipa_cinder_sandbox.jail import host as jail_host
from ipa_cinder_sandbox import polling

LOG = log.getLogger(__name__)

AGENT_BINARY = os.path.join(os.path.dirname(sys.executable),
                            'ironic-python-agent')
# Read inside the agent by ipa_cinder_sandbox.agent_identity (which needs
# IPA's configuration to import, so it is not imported here).
MAC_VARIABLE = 'IPA_CINDER_SANDBOX_AGENT_MAC'


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class AgentProcess(object):
    """One confined IPA process and a client for its API.

    :param workdir: directory for the config, state, log and scratch
        files; the only host directory the agent may write.
    :param devices: block devices (under /dev) the agent may see.
    :param api_url: Ironic API URL; None runs the agent with no Ironic.
    :param port: the agent API port (a free one by default).
    :param extra_conf: more ``{section: {option: value}}`` for the
        agent's configuration file.
    :param mac: the MAC the agent reports (its only NIC); None reports
        this machine's NICs.
    :param hostname: the agent's host name; None keeps this machine's.
    """

    def __init__(self, workdir, devices=(), api_url=None, port=None,
                 name=None, extra_conf=None, debug=True, mac=None,
                 hostname=None):
        self.workdir = os.path.abspath(workdir)
        self.api_url = api_url
        self.port = port or free_port()
        self.name = name or 'agent-%d' % self.port
        self.token = None if api_url else secrets.token_urlsafe(24)
        self.extra_conf = extra_conf or {}
        self.debug = debug
        self.mac = mac.lower() if mac else None
        self.hostname = hostname
        self.state_dir = os.path.join(self.workdir, 'state')
        self.log_path = os.path.join(self.workdir, 'agent.log')
        self.conf_path = os.path.join(self.workdir, 'agent.conf')
        self.initiator_file = os.path.join(self.workdir, 'iscsi',
                                           'initiatorname.iscsi')
        self.jail = jail_host.Jail(self.name,
                                   os.path.join(self.workdir, 'jail'),
                                   devices=devices,
                                   writable=[self.workdir],
                                   hostname=hostname)
        self._log_file = None

    @property
    def url(self):
        # An agent that talks to Ironic keeps IPA's auto-TLS (Ironic's
        # [agent] require_tls): it serves HTTPS.
        scheme = 'https' if self.api_url else 'http'
        # Any loopback address the caller chose (all of 127/8 is local).
        host = self.extra_conf.get('DEFAULT', {}).get('listen_host',
                                                      '127.0.0.1')
        if not host.startswith('127.'):
            raise ValueError('the sandbox agent listens on loopback only, '
                             'not %s' % host)
        return '%s://%s:%d' % (scheme, host, self.port)

    def _config(self):
        default = {
            'debug': self.debug,
            'use_stderr': True,
            'listen_host': '127.0.0.1',
            'listen_port': self.port,
            'advertise_host': '127.0.0.1',
            'advertise_port': self.port,
            'inspection_callback_url': '',
            'inspection_collectors': '',
            'disk_wait_attempts': 1,
            'disk_wait_delay': 0,
            'hardware_initialization_delay': 0,
            'collect_lldp': False,
            'enable_mdns': False,
            'lookup_timeout': 300,
            'lookup_interval': 1,
        }
        if self.api_url:
            default['api_url'] = self.api_url
        else:
            default['agent_token'] = self.token
            default['enable_auto_tls'] = False
        conf = {'DEFAULT': default,
                # The agent writes the node's initiator name: into its own
                # directory, never the host's /etc (read-only in the jail).
                'ipa_cinder': {'state_dir': self.state_dir,
                               'initiator_file': self.initiator_file},
                'metrics': {'backend': 'noop'}}
        for section, options in self.extra_conf.items():
            conf.setdefault(section, {}).update(options)
        lines = []
        for section, options in conf.items():
            lines.append('[%s]' % section)
            lines.extend('%s = %s' % (k, v) for k, v in options.items())
            lines.append('')
        return '\n'.join(lines)

    def _environment(self):
        """The agent's environment (subclasses add to it)."""
        env = dict(os.environ, TMPDIR=os.path.join(self.workdir, 'tmp'),
                   PYTHONDONTWRITEBYTECODE='1')
        # Never inherited: an agent without a MAC of its own reports this
        # machine's NICs, whatever started the sandbox.
        env.pop(MAC_VARIABLE, None)
        if self.mac:
            env[MAC_VARIABLE] = self.mac
        return env

    def _answers(self):
        """True if the agent's API answers (raises if it does not).

        Only "does it answer": with auto-TLS the certificate is the agent's
        own, self-signed; Ironic verifies it with the copy from the
        heartbeat.
        """
        with warnings.catch_warnings():
            warnings.simplefilter('ignore',
                                  urllib3.exceptions.InsecureRequestWarning)
            requests.get(self.url + '/v1/status', timeout=2, verify=False)
        return True

    def _check_running(self):
        if self.jail.proc.poll() is not None:
            raise errors.AgentError(
                'the agent exited with %s during start-up; see %s'
                % (self.jail.proc.returncode, self.log_path))

    def start(self, timeout=60):
        """Start the agent and wait until its API answers."""
        os.makedirs(os.path.join(self.workdir, 'tmp'), exist_ok=True)
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        with open(self.conf_path, 'w') as f:
            f.write(self._config())
        os.chmod(self.conf_path, 0o600)
        env = self._environment()
        self._log_file = open(self.log_path, 'ab')
        started = time.monotonic()
        self.jail.start([AGENT_BINARY, '--config-file', self.conf_path],
                        env=env, stdout=self._log_file,
                        stderr=subprocess.STDOUT)
        try:
            polling.wait_until(
                self._answers, timeout,
                'the agent on %s (see %s)' % (self.url, self.log_path),
                on_tick=self._check_running,
                retry_on=(requests.RequestException,),
                error=errors.AgentError)
        except errors.AgentError:
            self.stop()
            raise
        self.started_in = time.monotonic() - started
        LOG.info('Agent %s answers on %s after %.1fs', self.name,
                 self.url, self.started_in)
        return self

    def stop(self):
        """Stop the agent and everything it started. Idempotent."""
        self.jail.stop()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def restart(self, timeout=60):
        self.stop()
        return self.start(timeout=timeout)

    def grant_device(self, path):
        self.jail.grant_device(path)

    def revoke_device(self, path):
        self.jail.revoke_device(path)

    def post_command(self, name, params=None, timeout=120):
        """Run ``name`` and wait: returns the raw HTTP response."""
        query = {'wait': 'true'}
        if self.token:
            query['agent_token'] = self.token
        return requests.post(self.url + '/v1/commands/', params=query,
                             json={'name': name, 'params': params or {}},
                             timeout=timeout)

    def command(self, name, params=None, timeout=120):
        """Run ``name`` and return its result.

        :raises ipa_cinder_sandbox.errors.CommandFailed: it was refused or
            failed.
        """
        response = self.post_command(name, params, timeout=timeout)
        body = response.json()
        if response.status_code >= 400:
            raise errors.CommandFailed(name, response.status_code, body)
        if body.get('command_status') != 'SUCCEEDED':
            raise errors.CommandFailed(name, response.status_code, body)
        return body.get('command_result')

    def read_log(self):
        with open(self.log_path, 'rb') as f:
            return f.read().decode(errors='replace')
