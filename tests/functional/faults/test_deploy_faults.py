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

"""Deploys and undeploys through Ironic while Cinder misbehaves.

Ironic's ``[cinder]`` endpoint is the fault proxy (see conftest), with
three attempts per Cinder call within 6 s. Each scenario ends in a clear
node state, with ``last_error`` naming the node, the volume and the cause
when it fails, and nothing left behind in Cinder, tgt, the kernel or the
agent's records.
"""

import os
import signal
import threading
import time

import psutil
import pytest

from ipa_cinder_sandbox import faults as faults_mod
from tests.functional.faults import leaks

CREATE = r'/attachments$'
COMPLETE = r'/attachments/[0-9a-f-]+/action$'
ATTACHMENT = r'/attachments/[0-9a-f-]+$'


def _node_with_volume(sandbox, deployer):
    volume = sandbox.create_volume(size=1, volume_type='local')
    node = deployer.create_node()
    deployer.add_target(node, volume)
    return node, volume


def _check_clean(sandbox, volume, node, agent, baseline):
    leaks.assert_no_leaks(sandbox, volumes=[volume], nodes=[node],
                          state_dirs=[agent.state_dir], baseline=baseline)
    assert sandbox.get_volume(volume['id'])['status'] == 'available'


def _signal_all(pids, signum):
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def _assert_names(error, node, volume, *causes):
    assert node['uuid'] in error, error
    assert volume['id'] in error, error
    for cause in causes:
        assert cause in error, error


def test_create_503_twice_is_ridden_through(sandbox, deployer, faults,
                                            baseline):
    node, volume = _node_with_volume(sandbox, deployer)
    rule = faults.add('POST', CREATE, '503', times=2)
    _active, agent = deployer.deploy(node)
    assert rule.fired == 2
    assert len(deployer.attachments(volume['id'])) == 1
    deployer.undeploy(node)
    _check_clean(sandbox, volume, node, agent, baseline)


def test_lost_create_response_creates_one_attachment(sandbox, deployer,
                                                     faults, baseline):
    node, volume = _node_with_volume(sandbox, deployer)
    rule = faults.add('POST', CREATE, 'lose')
    _active, agent = deployer.deploy(node)
    assert rule.fired == 1
    attachments = deployer.attachments(volume['id'])
    assert [a['status'] for a in attachments] == ['attached']
    deployer.undeploy(node)
    _check_clean(sandbox, volume, node, agent, baseline)


def test_cinder_unreachable_fails_the_deploy_clearly(sandbox, deployer,
                                                     faults, baseline):
    node, volume = _node_with_volume(sandbox, deployer)
    faults.add('*', r'/(attachments|volumes)', 'drop', times=None)
    failed, agent = deployer.deploy(node, expect='deploy failed')
    error = failed['last_error']
    assert node['uuid'] in error and 'reach Cinder' in error, error
    faults.clear()
    _check_clean(sandbox, volume, node, agent, baseline)
    deployer.undeploy(node)


def test_complete_refused_rolls_back(sandbox, deployer, faults, baseline):
    node, volume = _node_with_volume(sandbox, deployer)
    faults.add('POST', COMPLETE, '500', times=None)
    failed, agent = deployer.deploy(node, expect='deploy failed')
    _assert_names(failed['last_error'], node, volume, 'HTTP 500')
    assert 'cinder_attachments' not in failed['driver_internal_info']
    _check_clean(sandbox, volume, node, agent, baseline)
    deployer.undeploy(node)


def test_delete_refused_during_rollback_then_undeploy(sandbox, deployer,
                                                      faults, baseline):
    node, volume = _node_with_volume(sandbox, deployer)
    faults.add('POST', COMPLETE, '500', times=None)
    faults.add('DELETE', ATTACHMENT, '503', times=None)
    failed, agent = deployer.deploy(node, expect='deploy failed')
    _assert_names(failed['last_error'], node, volume, 'HTTP 500')
    # Cinder refused the delete: the attachment stays recorded...
    left = deployer.attachments(volume['id'])
    assert len(left) == 1
    assert (failed['driver_internal_info']['cinder_attachments'][
        volume['id']]['attachment_id'] == left[0]['id'])
    # ... and the agent let go of it all the same (the volume's loop
    # device is Cinder's export and stays with the attachment).
    found = leaks.leaks(sandbox, volumes=[volume],
                        state_dirs=[agent.state_dir])
    assert not found['records'], found
    faults.clear()
    deployer.undeploy(node)
    _check_clean(sandbox, volume, node, agent, baseline)


def test_undeploy_delete_503_once_is_retried(sandbox, deployer, faults,
                                             baseline):
    node, volume = _node_with_volume(sandbox, deployer)
    _active, agent = deployer.deploy(node)
    rule = faults.add('DELETE', ATTACHMENT, '503')
    deployer.undeploy(node)
    assert rule.fired == 1
    _check_clean(sandbox, volume, node, agent, baseline)


def test_undeploy_with_lost_delete_response(sandbox, deployer, faults,
                                            baseline):
    node, volume = _node_with_volume(sandbox, deployer)
    _active, agent = deployer.deploy(node)
    rule = faults.add('DELETE', ATTACHMENT, 'lose')
    deployer.undeploy(node)
    assert rule.fired == 1
    _check_clean(sandbox, volume, node, agent, baseline)


def test_cinder_volume_stopped_mid_attach(sandbox, deployer, faults,
                                          baseline):
    """cinder-volume SIGSTOPped under the attachment create, resumed later.

    The proxy holds the create (``delay``) while cinder-volume is stopped,
    then lets it through: Cinder's create-with-connector waits on the
    stopped volume service (an RPC call) for 5 s more. The step waits with
    it (within ``cinder_request_timeout``) and the deploy completes.
    """
    node, volume = _node_with_volume(sandbox, deployer)
    # The service runs in a child of the recorded launcher: stop both.
    launcher = sandbox.box.procs.get('cinder-volume-local')['pid']
    pids = [launcher] + [p.pid for p in psutil.Process(launcher).children(
        recursive=True)]
    rule = faults.add('POST', CREATE, 'delay')
    resumed = threading.Event()

    def stop_then_continue():
        deadline = time.monotonic() + 180
        while not rule.fired and time.monotonic() < deadline:
            time.sleep(0.1)
        if not rule.fired:
            return
        _signal_all(pids, signal.SIGSTOP)
        try:
            time.sleep(faults_mod.DELAY + 5)
        finally:
            _signal_all(pids, signal.SIGCONT)
            resumed.set()

    thread = threading.Thread(target=stop_then_continue, daemon=True)
    thread.start()
    try:
        _active, agent = deployer.deploy(node)
    finally:
        thread.join(60)
        if not resumed.is_set():
            _signal_all(pids, signal.SIGCONT)
    assert resumed.is_set() and rule.fired == 1
    assert [a['status'] for a in deployer.attachments(volume['id'])] == [
        'attached']
    deployer.undeploy(node)
    _check_clean(sandbox, volume, node, agent, baseline)


@pytest.mark.parametrize('step', ['create', 'complete'])
def test_conductor_restarted_inside_cinder_call(sandbox, deployer, faults,
                                                baseline, step):
    """Ironic restarted while its create or os-complete call is held.

    The held request still reaches Cinder after the restart. Whatever the
    new conductor makes of the interrupted step (it fails a deploy it
    cannot resume), the node ends in a stable state and the undeploy
    leaves nothing in Cinder, tgt or the kernel.
    """
    node, volume = _node_with_volume(sandbox, deployer)
    rule = faults.add('POST', {'create': CREATE, 'complete': COMPLETE}[
        step], 'delay')
    sandbox.set_provision_state(node['uuid'], 'active')
    sandbox.wait_node(node['uuid'], 'wait call-back')
    with deployer.running_agent():
        deadline = time.monotonic() + 180
        while not rule.fired and time.monotonic() < deadline:
            time.sleep(0.2)
        assert rule.fired, 'the attach never reached the %s' % step
        held_until = time.monotonic() + faults_mod.DELAY
        deployer.restart_ironic()
        final = deployer.wait_for(node, lambda n: n['provision_state'] in (
            'active', 'deploy failed'), timeout=240)
    if final['provision_state'] == 'deploy failed':
        assert final['last_error'], final
    # The held request reaches Cinder DELAY seconds after it was sent,
    # from a conductor that is gone; a restart quicker than that fails
    # the node first. The undeploy comes after it, as an operator's would
    # (one sent before it cannot see an attachment that does not exist
    # yet: the node's next deploy or cleaning finds that one).
    time.sleep(max(0.0, held_until + 2 - time.monotonic()))
    deployer.undeploy(node)
    # The agent's records die with its ramdisk; Cinder's view is clean.
    leaks.assert_no_leaks(sandbox, volumes=[volume], nodes=[node],
                          baseline=baseline)
    assert sandbox.get_volume(volume['id'])['status'] == 'available'
