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

"""The sandbox's shared plumbing: running programs, polling, processes.

Real programs and real child processes (``sh``, ``sleep``): nothing here
needs a service or root.
"""

import os
import subprocess
import sys
import time

import pytest

from ipa_cinder_sandbox import commands
from ipa_cinder_sandbox import errors
from ipa_cinder_sandbox import polling
from ipa_cinder_sandbox import process

SECRET = 'chap-secret-4f1d2b'


# commands.run

def test_run_returns_the_exit_code_and_both_outputs():
    result = commands.run('sh', '-c', 'echo out; echo err >&2; exit 3',
                          check=False)
    assert result == commands.Result(3, 'out\n', 'err\n')


def test_run_checks_the_exit_code():
    with pytest.raises(errors.ExecutionError) as failure:
        commands.run('sh', '-c', 'echo it broke >&2; exit 4')
    assert failure.value.exit_code == 4
    assert 'exit code 4' in str(failure.value)
    assert 'it broke' in str(failure.value)
    assert isinstance(failure.value, errors.SandboxError)


def test_run_passes_stdin_and_env():
    result = commands.run('sh', '-c', 'read line; echo "$line $WHO"',
                          stdin='hello\n', env={'WHO': 'sandbox'})
    assert result.stdout == 'hello sandbox\n'


def test_run_refuses_a_secret_on_the_command_line(tmp_path):
    marker = tmp_path / 'ran'
    with pytest.raises(ValueError) as failure:
        commands.run('sh', '-c', 'touch %s' % marker, '--password=' + SECRET,
                     secrets=[SECRET])
    assert SECRET not in str(failure.value)
    assert not marker.exists()


def test_run_masks_secrets_in_its_errors():
    with pytest.raises(errors.ExecutionError) as failure:
        commands.run('sh', '-c', 'read s; echo "login $s failed" >&2; exit 1',
                     stdin=SECRET + '\n', secrets=[SECRET])
    assert SECRET not in str(failure.value)
    assert SECRET not in failure.value.stderr
    assert 'login *** failed' in str(failure.value)


def test_run_kills_a_program_that_times_out():
    began = time.monotonic()
    with pytest.raises(errors.ExecutionError) as failure:
        commands.run('sleep', '30', timeout=0.5)
    assert time.monotonic() - began < 10
    assert 'killed after 0.5s' in str(failure.value)


def test_run_reports_a_missing_program():
    with pytest.raises(errors.ExecutionError) as failure:
        commands.run('/nonexistent/ipa-cinder-sandbox-tool')
    assert 'cannot start' in str(failure.value)


# polling.wait_until

def test_wait_until_returns_the_first_true_value():
    answers = iter([None, 0, ValueError('not yet'), 'ready'])

    def poll():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer
    assert polling.wait_until(poll, 5, 'thing', interval=0.01) == 'ready'


def test_wait_until_times_out_naming_what_and_why():
    def poll():
        raise ValueError('connection refused')
    with pytest.raises(errors.SandboxError) as failure:
        polling.wait_until(poll, 0.2, 'the service', interval=0.05)
    assert str(failure.value) == ('the service not ready after 0.2s: '
                                  'connection refused')


def test_wait_until_raises_the_asked_error_class():
    with pytest.raises(errors.AgentError):
        polling.wait_until(lambda: False, 0.1, 'agent', interval=0.05,
                           error=errors.AgentError)


def test_wait_until_stops_at_once_on_tick_and_unexpected_errors():
    calls = []

    def died():
        calls.append(1)
        raise errors.SandboxError('service died')
    with pytest.raises(errors.SandboxError, match='service died'):
        polling.wait_until(lambda: False, 30, 'service', on_tick=died)
    assert calls == [1]

    def broken():
        calls.append(2)
        raise KeyError('bug')
    with pytest.raises(KeyError):
        polling.wait_until(broken, 30, 'thing', retry_on=(ValueError,))
    assert calls == [1, 2]


# process

def test_start_time_is_the_kernels(tmp_path):
    with open('/proc/self/stat') as f:
        ticks = int(f.read().rsplit(')', 1)[1].split()[19])
    assert process.is_alive(os.getpid(), ticks)
    assert not process.is_alive(os.getpid(), ticks + 1)
    assert os.getpid() in process.lineage()
    assert os.getppid() in process.lineage()


def test_children_stop_and_leftovers(tmp_path):
    marker = str(tmp_path / 'state') + '/'
    child = subprocess.Popen([sys.executable, '-c',
                              'import time; time.sleep(60)', marker])
    try:
        assert child.pid in process.children(os.getpid())
        assert child.pid in process.pids_referring_to(str(tmp_path / 'state'))
        assert 'time.sleep(60)' in process.command_line(child.pid)
        started = process.start_ticks(child.pid)
        assert process.stop_pid(child.pid, started, 'sleeper', timeout=5)
        assert not process.is_alive(child.pid)
        assert not process.stop_pid(child.pid, started, 'sleeper')
    finally:
        child.kill()
        child.wait()
    assert process.command_line(child.pid) is None


def test_jail_refuses_iscsi_tools_when_the_host_has_sessions(
        tmp_path, monkeypatch):
    from ipa_cinder_sandbox.jail import filesystem
    sessions = tmp_path / 'iscsi_session'
    monkeypatch.setattr(filesystem, 'ISCSI_SESSIONS', str(sessions))
    assert 'iscsiadm' not in filesystem.refused_tools()
    sessions.mkdir()
    assert 'iscsiadm' not in filesystem.refused_tools()
    (sessions / 'session1').mkdir()
    assert {'iscsiadm', 'iscsistart', 'poweroff'} <= set(
        filesystem.refused_tools())
