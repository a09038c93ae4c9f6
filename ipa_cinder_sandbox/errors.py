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

"""Every error the sandbox raises, in one place.

All derive from :class:`SandboxError`, so a caller (the CLI, the demo)
that only reports failures catches that one class.
"""


class SandboxError(Exception):
    """A sandbox step failed; the message says which and why."""


class PortInUse(SandboxError):
    """A loopback port the sandbox needs is taken: another base is needed."""


class ExecutionError(SandboxError):
    """A program the sandbox ran could not start or exited non-zero.

    ``command`` is the command line with its secrets masked; ``stdout`` and
    ``stderr`` are masked the same way.
    """

    def __init__(self, command, exit_code, stdout, stderr, reason=None):
        self.command = command
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr
        output = (stdout + stderr).strip()[-3000:]
        super().__init__('%s failed (%s)%s' % (
            command, reason or 'exit code %s' % exit_code,
            ':\n%s' % output if output else ''))


class JailError(SandboxError):
    """The jail cannot be built; nothing is started without it."""


class AgentError(SandboxError):
    """The agent did not start, or a command could not be sent."""


class CommandFailed(AgentError):
    """An agent command was refused or failed; ``body`` is the reply."""

    def __init__(self, name, status, body):
        self.name = name
        self.status = status
        self.body = body
        error = body.get('command_error') if isinstance(body, dict) else None
        if isinstance(error, dict):
            message = error.get('details') or error.get('message')
        elif isinstance(body, dict):
            message = (body.get('faultstring') or body.get('details')
                       or error)
        else:
            message = body
        self.message = message
        super().__init__('%s failed (HTTP %s): %s' % (name, status, message))


class APIError(SandboxError):
    """An unexpected HTTP status, with the service's answer."""

    def __init__(self, method, url, status, body):
        self.status = status
        self.body = body
        super().__init__('%s %s -> %s: %s' % (method, url, status,
                                              body[:500]))
