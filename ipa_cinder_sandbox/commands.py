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

"""Programs the sandbox runs to completion, through one wrapper.

losetup, partx, tgtadm, sgdisk, mke2fs, mount, the services' schema tools:
each call goes through :func:`run`, built on oslo.concurrency's
``processutils.execute``. The services themselves, which keep running, are
started by :mod:`ipa_cinder_sandbox.process` instead.

A secret never goes on a command line: any user of the machine reads it in
``ps``, and processutils logs every command line at debug level. :func:`run`
refuses a command line holding one of the ``secrets`` it is told about (the
program gets them on its standard input or in a file), and masks them, and
every secret ipa-cinder remembers, in the errors it raises.
"""

import collections
import subprocess

from oslo_concurrency import processutils

from ipa_cinder.common import secrets as secrets_mod
from ipa_cinder_sandbox import errors

#: What a finished program left: its exit code and its output, decoded.
Result = collections.namedtuple('Result', ['exit_code', 'stdout', 'stderr'])


def _masker(secrets):
    """A function that hides ``secrets`` and known secrets in a text."""
    known = sorted((s for s in secrets if s), key=len, reverse=True)

    def mask(text):
        for secret in known:
            text = text.replace(secret, secrets_mod.MASK)
        return secrets_mod.safe_text(text)
    return mask


def run(*argv, check=True, env=None, cwd=None, stdin=None, timeout=None,
        secrets=()):
    """Run ``argv`` until it exits; returns a :data:`Result`.

    :param check: raise ExecutionError if the exit code is not 0.
    :param env: the program's whole environment (default: this process's).
    :param stdin: text for its standard input: the way to hand it a secret.
    :param timeout: seconds after which it is killed and ExecutionError
        raised (default: no limit).
    :param secrets: values never to show: refused on the command line,
        masked in the output an error carries.
    :raises ValueError: a secret is on the command line; nothing ran.
    :raises ExecutionError: it could not start, timed out or (with
        ``check``) exited non-zero.
    """
    argv = [str(arg) for arg in argv]
    if any(secret and secret in arg for secret in secrets for arg in argv):
        raise ValueError('refusing to run %s with a secret on its command '
                         'line: pass it on stdin or in a file' % argv[0])
    mask = _masker(secrets)
    command = mask(' '.join(argv))
    started = []
    try:
        stdout, stderr = processutils.execute(
            *argv, check_exit_code=False, env_variables=env, cwd=cwd,
            process_input=stdin, timeout=timeout,
            on_execute=started.append)
    except subprocess.TimeoutExpired:
        # processutils leaves the program running: it goes now.
        started[0].kill()
        started[0].communicate()
        raise errors.ExecutionError(command, None, '', '',
                                    reason='killed after %ss' % timeout)
    except OSError as e:
        raise errors.ExecutionError(command, None, '', '',
                                    reason='cannot start: %s' % e.strerror)
    result = Result(started[0].returncode, stdout, stderr)
    if check and result.exit_code:
        raise errors.ExecutionError(command, result.exit_code, mask(stdout),
                                    mask(stderr))
    return result
