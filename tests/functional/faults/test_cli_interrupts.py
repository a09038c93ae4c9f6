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

"""``ipa-cinder local-attach`` interrupted at every stage.

SIGINT, SIGTERM or SIGHUP reach the command before the attachment create,
while Cinder works on it, after it, while os-brick connects, before and
during the attachment complete, and again while the command undoes the
attach. Every time nothing must be left, from Cinder's, tgt's and the
kernel's own view (:mod:`tests.functional.faults.leaks`), and the volume
must be available again.

Timing. The create and the complete are held by the fault proxy
(``delay``): the signal is sent once the proxy has the request. The
stages without a Cinder request are stretched by a launcher that runs the
real ``ipa-cinder`` code in a real process with one function wrapped: it
writes a marker file and sleeps before (or after) the wrapped step, and
the signal is sent once the marker exists. Only the timing changes.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ipa_cinder_sandbox import faults as faults_mod
from tests.functional.faults import leaks

CREATE = r'/attachments$'
COMPLETE = r'/attachments/[0-9a-f-]+/action$'
ATTACHMENT = r'/attachments/[0-9a-f-]+$'

#: stage -> (module, attribute path, pause 'before' or 'after' the call)
STAGES = {
    'before-create': ('ipa_cinder.cli.volumes', 'connector', 'before'),
    'after-create': ('ipa_cinder.host.connections',
                     'VolumeConnections.connect', 'before'),
    'during-connect': ('ipa_cinder.host.connections',
                       'VolumeConnections.connect', 'after'),
    'after-connect': ('ipa_cinder.common.cinder_client',
                      'CinderClient.complete_attachment', 'before'),
}

LAUNCHER = '''
import functools, importlib, sys, time

stage_module, attribute, where, marker = sys.argv[1:5]
if stage_module != '-':
    owner = importlib.import_module(stage_module)
    *path, name = attribute.split('.')
    for part in path:
        owner = getattr(owner, part)
    real = getattr(owner, name)

    def pause():
        with open(marker, 'w') as f:
            f.write('reached')
        time.sleep(4)

    @functools.wraps(real)
    def wrapped(*args, **kwargs):
        if where == 'before':
            pause()
        result = real(*args, **kwargs)
        if where == 'after':
            pause()
        return result

    setattr(owner, name, wrapped)

from ipa_cinder.cli import shell
sys.exit(shell.main(sys.argv[5:]))
'''


class Attach(object):
    """``ipa-cinder local-attach`` started in the background."""

    def __init__(self, cli, tmp_path, volume, stage=None):
        launcher = tmp_path / 'launcher.py'
        launcher.write_text(LAUNCHER)
        self.marker = str(tmp_path / 'stage-reached')
        module, attribute, where = STAGES.get(stage, ('-', '-', '-'))
        self.proc = subprocess.Popen(
            [sys.executable, str(launcher), module, attribute, where,
             self.marker, 'local-attach', volume['id'], '--state-dir',
             cli.state(), '--config-file', cli.config, '-f', 'json'],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=cli.env, cwd=str(tmp_path))

    def wait_for(self, predicate, what, timeout=60):
        deadline = time.monotonic() + timeout
        while not predicate():
            assert self.proc.poll() is None, (what, self.finish())
            assert time.monotonic() < deadline, 'never reached: %s' % what
            time.sleep(0.05)

    def wait_marker(self):
        self.wait_for(lambda: os.path.exists(self.marker), 'the stage')

    def signal(self, signum):
        self.proc.send_signal(signum)

    def finish(self, timeout=120):
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err


def _check_clean(sandbox, cli, volume, baseline):
    sandbox.wait_volume(volume['id'], 'available')
    leaks.assert_no_leaks(sandbox, volumes=[volume],
                          state_dirs=[cli.state()], baseline=baseline)


def _check_interrupted(result, signum):
    code, out, err = result
    assert code == 128 + signum, (code, out, err)
    name = signal.Signals(signum).name
    assert 'interrupted by %s' % name in err, err
    assert json.loads(out)['error']['kind'] == 'interrupted'


@pytest.mark.parametrize('stage', sorted(STAGES))
@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_interrupt_between_steps_leaves_nothing(sandbox, cli, tmp_path,
                                                baseline, stage, signum):
    volume = sandbox.create_volume(volume_type='local')
    attach = Attach(cli, tmp_path, volume, stage)
    attach.wait_marker()
    attach.signal(signum)
    _check_interrupted(attach.finish(), signum)
    _check_clean(sandbox, cli, volume, baseline)


@pytest.mark.parametrize('path,signum', [
    (CREATE, signal.SIGINT), (CREATE, signal.SIGTERM),
    (COMPLETE, signal.SIGHUP)])
def test_interrupt_while_cinder_works(sandbox, cli, faults, tmp_path,
                                      baseline, path, signum):
    """The request in flight is answered, then the attach is undone."""
    volume = sandbox.create_volume(volume_type='local')
    rule = faults.add('POST', path, 'delay')
    attach = Attach(cli, tmp_path, volume)
    attach.wait_for(lambda: rule.fired, 'the held request')
    attach.signal(signum)
    _check_interrupted(attach.finish(), signum)
    _check_clean(sandbox, cli, volume, baseline)


def test_second_signal_does_not_stop_the_undo(sandbox, cli, faults,
                                              tmp_path, baseline):
    volume = sandbox.create_volume(volume_type='local')
    rule = faults.add('DELETE', ATTACHMENT, 'delay')
    attach = Attach(cli, tmp_path, volume, 'after-connect')
    attach.wait_marker()
    attach.signal(signal.SIGTERM)
    attach.wait_for(lambda: rule.fired, 'the held delete')
    attach.signal(signal.SIGINT)
    attach.signal(signal.SIGHUP)
    code, out, err = attach.finish()
    _check_interrupted((code, out, err), signal.SIGTERM)
    assert 'ignored, the clean-up goes on' in err
    _check_clean(sandbox, cli, volume, baseline)


def test_killed_during_create_is_found_by_detach(sandbox, cli, faults,
                                                 tmp_path, baseline):
    """SIGKILL cannot be handled: what it leaves, local-detach removes.

    The proxy still forwards the create after the command died: Cinder
    makes an attachment nobody recorded. The next local-attach refuses
    to attach the volume a second time; local-detach finds the
    attachment by the instance UUID derived from the host and removes it.
    """
    volume = sandbox.create_volume(volume_type='local')
    rule = faults.add('POST', CREATE, 'delay')
    attach = Attach(cli, tmp_path, volume)
    attach.wait_for(lambda: rule.fired, 'the held request')
    attach.signal(signal.SIGKILL)
    attach.finish()
    deadline = time.monotonic() + faults_mod.DELAY + 30
    while not leaks.leaks(sandbox, volumes=[volume])['attachments']:
        assert time.monotonic() < deadline, 'the held create never ran'
        time.sleep(0.5)
    code, result, text = cli.run('local-attach', volume['id'])
    assert code == 4, text
    assert 'local-detach' in result['error']['message']
    detached = cli.ok('local-detach', volume['id'])
    assert len(detached['detached']) == 1
    assert detached['already_detached'] is False
    _check_clean(sandbox, cli, volume, baseline)
