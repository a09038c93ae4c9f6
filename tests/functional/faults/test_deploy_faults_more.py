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

"""More deploys, undeploys and cleanings while something breaks.

Same set-up as test_deploy_faults.py: Ironic's ``[cinder]`` endpoint is
the fault proxy, three attempts per Cinder call within 6 s. Here: Cinder
answering 500 or 503 to each call the attach and detach steps make,
cinder-volume killed mid-attach, the agent killed while it writes the
image, the conductor restarted inside the undeploy's and the clean
step's attachment delete, and a volume put in ``error`` or deleted
behind Ironic's back. Every scenario ends in a stable node state, a
``last_error`` naming node, volume (when one is concerned) and cause,
and, once the operator has undeployed or cleaned again, nothing left in
Cinder, tgt, the kernel or the sandbox's process table.
"""

import http.server
import os
import signal
import threading
import time

import psutil
import pytest

from ipa_cinder_sandbox import faults as faults_mod
from tests.functional.faults import conftest as faults_conftest
from tests.functional.faults import leaks
from tests.functional.faults import test_deploy_faults as base

CREATE = base.CREATE
COMPLETE = base.COMPLETE
ATTACHMENT = base.ATTACHMENT
#: The node's attachments listing (attach and detach start with it).
NODE_LISTING = r'/attachments/detail\?.*instance_id='
VOLUME = r'/volumes/[0-9a-f-]+$'

#: Cinder calls of the attach step: (method, path) by name.
ATTACH_CALLS = {
    'list_attachments': ('GET', NODE_LISTING),
    'get_volume': ('GET', VOLUME),
    'create_attachment': ('POST', CREATE),
    'complete_attachment': ('POST', COMPLETE),
}
#: Cinder calls of the undeploy's detach.
DETACH_CALLS = {
    'list_attachments': ('GET', NODE_LISTING),
    'delete_attachment': ('DELETE', ATTACHMENT),
}
#: Seconds Ironic waits for a silent agent in the agent-killed scenario.
CALLBACK_TIMEOUT = 60
#: Calls made for one volume: their error names it.
PER_VOLUME = ('get_volume', 'create_attachment', 'complete_attachment',
              'delete_attachment')


def wait_no_leaks(sandbox, timeout=60, **kwargs):
    """Leak accounting, polled: Cinder may still be finishing a call.

    A request held or queued while a service was down completes once it
    is back; what is left after ``timeout`` has leaked.
    """
    deadline = time.monotonic() + timeout
    while True:
        found = leaks.leaks(sandbox, **kwargs)
        if not any(found.values()) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert not any(found.values()), 'leaked: %s' % {
        k: v for k, v in found.items() if v}


def _shown(current):
    """Print what the operator sees (pytest -s shows it), return it."""
    print('\n%s: %s: %s' % (current['uuid'], current['provision_state'],
                            current['last_error']))
    return current


def _wait_fired(rule, timeout=240):
    deadline = time.monotonic() + timeout
    while not rule.fired and time.monotonic() < deadline:
        time.sleep(0.2)
    assert rule.fired, 'no request matched %r' % rule


# 1. Cinder answering 500 to each call of the attach and detach (a 503 is
# retried the same way: test_deploy_faults.py rides two of them through).

@pytest.mark.parametrize('status', ['500'])
@pytest.mark.parametrize('call', sorted(ATTACH_CALLS))
def test_attach_step_call_failing(sandbox, deployer, faults, baseline,
                                  call, status):
    """Every attempt of one attach-step call answered 500 (or 503).

    The operator sees ``deploy failed`` with ``last_error`` naming the
    node, the volume (for a call about one volume) and ``HTTP 500`` /
    ``503`` after 3 attempts. Whatever the step had created is deleted
    (the rollback's own calls are not refused), nothing is recorded in
    ``driver_internal_info``, the agent holds no connection, and the
    volume is ``available`` again.
    """
    node, volume = base._node_with_volume(sandbox, deployer)
    method, path = ATTACH_CALLS[call]
    rule = faults.add(method, path, status, times=None)
    failed, agent = deployer.deploy(node, expect='deploy failed')
    error = _shown(failed)['last_error'] or ''
    assert rule.fired >= 3, rule
    assert node['uuid'] in error and 'HTTP %s' % status in error, error
    if call in PER_VOLUME:
        assert volume['id'] in error, error
    assert 'cinder_attachments' not in failed['driver_internal_info']
    faults.clear()
    base._check_clean(sandbox, volume, node, agent, baseline)
    deployer.undeploy(node)


@pytest.mark.parametrize('status', ['500'])
@pytest.mark.parametrize('call', sorted(DETACH_CALLS))
def test_undeploy_call_failing(sandbox, deployer, faults, baseline, call,
                               status):
    """Every attempt of one undeploy call answered 500 (or 503).

    The undeploy ends in ``error`` with ``last_error`` naming the node,
    the volume (delete) and the HTTP status; the attachment stays in
    Cinder and recorded on the node. Undeploying again once Cinder
    answers removes it: no attachment, export or loop device is left.
    """
    node, volume = base._node_with_volume(sandbox, deployer)
    _active, agent = deployer.deploy(node)
    method, path = DETACH_CALLS[call]
    rule = faults.add(method, path, status, times=None)
    sandbox.set_provision_state(node['uuid'], 'deleted')
    failed = deployer.wait_for(node, lambda n: n['provision_state'] in (
        'error', 'available'), timeout=120)
    assert _shown(failed)['provision_state'] == 'error', failed
    error = failed['last_error'] or ''
    assert rule.fired >= 3, rule
    assert node['uuid'] in error and 'HTTP %s' % status in error, error
    if call in PER_VOLUME:
        assert volume['id'] in error, error
    assert len(deployer.attachments(volume['id'])) == 1
    faults.clear()
    deployer.undeploy(node)
    base._check_clean(sandbox, volume, node, agent, baseline)


# 2. cinder-volume killed under the attachment create.

def _service_tree(sandbox, name):
    launcher = sandbox.box.procs.get(name)['pid']
    return [launcher] + [p.pid for p in psutil.Process(launcher).children(
        recursive=True)]


def _restart_service(sandbox, name, argv):
    cinder = sandbox.box.cinder
    sandbox.box.procs.start(name, argv, env=cinder._env())
    cinder.wait()


def test_cinder_volume_killed_mid_attach(sandbox, deployer, faults,
                                         baseline):
    """cinder-volume SIGKILLed while the attachment create is on its way.

    The proxy holds the create while cinder-volume-local (launcher and
    worker) is killed, then forwards it: cinder-api's call to the volume
    service gets no answer, and the step's retry budget runs out. The
    node ends ``deploy failed`` with ``last_error`` naming node, volume
    and the failed create. cinder-volume is started again; the undeploy
    then leaves no attachment, export, loop device or process behind
    (requests queued for the dead service are allowed to drain).
    """
    node, volume = base._node_with_volume(sandbox, deployer)
    name = 'cinder-volume-local'
    argv = list(sandbox.box.procs.get(name)['argv'])
    pids = _service_tree(sandbox, name)
    rule = faults.add('POST', CREATE, 'delay')
    killed = threading.Event()

    def kill_when_held():
        deadline = time.monotonic() + 180
        while not rule.fired and time.monotonic() < deadline:
            time.sleep(0.1)
        if rule.fired:
            base._signal_all(pids, signal.SIGKILL)
            killed.set()

    thread = threading.Thread(target=kill_when_held, daemon=True)
    thread.start()
    try:
        final, agent = deployer.deploy(node, expect='deploy failed',
                                       timeout=300)
    finally:
        thread.join(200)
        if killed.is_set() or not sandbox.box.procs.alive(name):
            _restart_service(sandbox, name, argv)
    assert killed.is_set()
    base._assert_names(_shown(final)['last_error'], node, volume)
    faults.clear()
    deployer.undeploy(node)
    wait_no_leaks(sandbox, volumes=[volume], nodes=[node],
                  state_dirs=[agent.state_dir], baseline=baseline)
    sandbox.wait_volume(volume['id'], 'available')


# 3. The agent killed while it writes the image onto the boot volume.

class _SlowImage(http.server.BaseHTTPRequestHandler):
    """Serves the image in small pieces; tells when half is out."""

    def log_message(self, fmt, *args):
        pass

    def _headers(self):
        self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        self.send_header('Content-Length', str(len(self.server.payload)))
        self.end_headers()

    def do_HEAD(self):
        # Ironic checks the image's URL before the deploy.
        self._headers()

    def do_GET(self):
        server = self.server
        self._headers()
        piece = 256 << 10
        try:
            for offset in range(0, len(server.payload), piece):
                self.wfile.write(server.payload[offset:offset + piece])
                if offset >= len(server.payload) // 2:
                    server.half_sent.set()
                # Slow enough for the agent to be killed mid-write.
                if server.stop.wait(0.2):
                    return
        except OSError:
            # The agent died with the connection open.
            server.half_sent.set()


class SlowImageServer(object):
    def __init__(self, path):
        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                     _SlowImage)
        self.httpd.daemon_threads = True
        with open(path, 'rb') as f:
            self.httpd.payload = f.read()
        self.httpd.half_sent = threading.Event()
        self.httpd.stop = threading.Event()
        self.url = 'http://127.0.0.1:%d/%s' % (self.httpd.server_address[1],
                                               os.path.basename(path))
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


@pytest.fixture
def short_callback_timeout(sandbox, fault_proxy):
    """Ironic gives up on a silent agent after CALLBACK_TIMEOUT s."""
    faults_mod.route_ironic(sandbox.box, fault_proxy,
                            retry=faults_conftest.RETRY, extra={
                                'conductor': {
                                    'deploy_callback_timeout':
                                        CALLBACK_TIMEOUT,
                                    'check_provision_state_interval': 5}})
    try:
        yield CALLBACK_TIMEOUT
    finally:
        faults_mod.route_ironic(sandbox.box, fault_proxy,
                                retry=faults_conftest.RETRY)


def test_agent_killed_during_image_write(sandbox, deployer, os_image,
                                         faults, baseline,
                                         short_callback_timeout):
    """The agent SIGKILLed half-way through writing the image.

    The image comes from a server that trickles it (about 20 s for
    24 MiB), so the agent is killed while ``write_image`` streams onto
    the boot volume. No heartbeat comes any more: once
    ``[conductor] deploy_callback_timeout`` has passed (60 s here, 1800
    by default) the node is ``deploy failed`` with ``last_error``
    "Timeout reached while waiting for callback for node <uuid>". The
    undeploy deletes the node's attachment: no attachment, tgt target or
    loop device of the volume is left (the agent's own records die with
    its ramdisk, as they would on a node).
    """
    node, volume = base._node_with_volume(sandbox, deployer)
    with SlowImageServer(os_image['path']) as server:
        _deploy_from(sandbox, node, server)
        with deployer.running_agent() as agent:
            assert server.httpd.half_sent.wait(240), 'no image download'
            current = sandbox.get_node(node['uuid'])
            assert (current['deploy_step'] or {}).get('step') == (
                'write_image'), current['deploy_step']
            os.kill(agent.jail.inner_pid(), signal.SIGKILL)
            # The agent had connected the boot volume: it is attached.
            assert len(deployer.attachments(volume['id'])) == 1
    # Ironic moves the node to "deploy failed" first, then writes
    # last_error (under the same lock): wait for both.
    failed = deployer.wait_for(node, lambda n: n[
        'provision_state'] == 'deploy failed' and n['last_error'],
        timeout=short_callback_timeout + 60)
    assert node['uuid'] in (_shown(failed)['last_error'] or ''), failed
    assert 'callback' in failed['last_error'], failed['last_error']
    deployer.undeploy(node)
    wait_no_leaks(sandbox, volumes=[volume], nodes=[node],
                  baseline=baseline)
    assert sandbox.get_volume(volume['id'])['status'] == 'available'


# 4. The conductor restarted inside the undeploy's and the clean step's
#    attachment delete.

def test_conductor_restarted_inside_undeploy_delete(sandbox, deployer,
                                                    faults, baseline):
    """Ironic restarted while the undeploy's attachment DELETE is held.

    The held delete reaches Cinder after the restart. The new conductor
    fails the interrupted undeploy (``error``, with a ``last_error``) or
    finds it done; undeploying again ends ``available`` with nothing left
    in Cinder, tgt or the kernel.
    """
    node, volume = base._node_with_volume(sandbox, deployer)
    _active, agent = deployer.deploy(node)
    rule = faults.add('DELETE', ATTACHMENT, 'delay')
    sandbox.set_provision_state(node['uuid'], 'deleted')
    _wait_fired(rule)
    deployer.restart_ironic()
    final = deployer.wait_for(node, lambda n: n['provision_state'] in (
        'available', 'error'), timeout=240)
    if _shown(final)['provision_state'] == 'error':
        assert final['last_error'], final
        deployer.undeploy(node)
    wait_no_leaks(sandbox, volumes=[volume], nodes=[node],
                  state_dirs=[agent.state_dir], baseline=baseline)
    assert sandbox.get_volume(volume['id'])['status'] == 'available'


def _deploy_from(sandbox, node, server):
    """Deploy ``node`` with ``server``'s image; wait for its agent."""
    sandbox.ironic.patch('/v1/nodes/%s' % node['uuid'], [
        {'op': 'replace', 'path': '/instance_info/image_source',
         'value': server.url}])
    sandbox.set_provision_state(node['uuid'], 'active')
    sandbox.wait_node(node['uuid'], 'wait call-back')


def _leftover_attachment(sandbox, node, volume):
    """An attachment of the node, as a previous life of it would leave."""
    return sandbox.attach_completed(volume['id'], node['uuid'],
                                    sandbox.connector(node['uuid']))


def _clean(sandbox, deployer, node, agent_name, rule=None):
    """Clean with cinder_detach_volumes; restart Ironic inside the delete.

    :returns: the node once cleaning has ended.
    """
    sandbox.set_provision_state(node['uuid'], 'clean', clean_steps=[
        {'interface': 'deploy', 'step': 'cinder_detach_volumes'}])
    sandbox.wait_node(node['uuid'], 'clean wait')
    with deployer.running_agent(name=agent_name):
        if rule is not None:
            _wait_fired(rule)
            deployer.restart_ironic()
        return deployer.wait_for(node, lambda n: n['provision_state'] in (
            'manageable', 'clean failed'), timeout=240)


def test_conductor_restarted_inside_clean_step_delete(sandbox, deployer,
                                                      faults, baseline):
    """Ironic restarted while ``cinder_detach_volumes`` deletes.

    The node has a volume target and a leftover attachment in Cinder.
    Ironic is restarted while the clean step's DELETE is held: the node
    ends ``clean failed`` (with a ``last_error``) or ``manageable``;
    cleaning again ends ``manageable``, and Cinder has no attachment of
    the node or the volume.
    """
    node, volume = base._node_with_volume(sandbox, deployer)
    sandbox.set_provision_state(node['uuid'], 'manage')
    sandbox.wait_node(node['uuid'], 'manageable')
    _leftover_attachment(sandbox, node, volume)
    agent_name = sandbox.name('clean-agent')
    rule = faults.add('DELETE', ATTACHMENT, 'delay')
    final = _clean(sandbox, deployer, node, agent_name, rule)
    if _shown(final)['provision_state'] == 'clean failed':
        assert final['last_error'], final
        sandbox.set_provision_state(node['uuid'], 'manage')
        sandbox.wait_node(node['uuid'], 'manageable')
        final = _clean(sandbox, deployer, node, agent_name)
    assert final['provision_state'] == 'manageable', final['last_error']
    wait_no_leaks(sandbox, volumes=[volume], nodes=[node],
                  baseline=baseline)
    assert sandbox.get_volume(volume['id'])['status'] == 'available'


# 5. The volume put in error, or deleted, behind Ironic's back.

def _reset_status(sandbox, volume, **status):
    sandbox.cinder.post('/volumes/%s/action' % volume['id'],
                        {'os-reset_status': status}, microversion='3.44',
                        expect=(200, 202))


def test_volume_in_error_between_deploy_and_undeploy(sandbox, deployer,
                                                     faults, baseline):
    """An admin resets the deployed boot volume to ``error``.

    The undeploy still deletes the node's attachment (Cinder accepts the
    delete whatever the volume's status): no attachment, export or loop
    device is left. Deploying again is refused at the attach step:
    ``deploy failed``, ``last_error`` naming node, volume and its status
    ``error``; nothing is created.
    """
    node, volume = base._node_with_volume(sandbox, deployer)
    _active, agent = deployer.deploy(node)
    _reset_status(sandbox, volume, status='error')
    deployer.undeploy(node)
    wait_no_leaks(sandbox, volumes=[volume], nodes=[node],
                  state_dirs=[agent.state_dir], baseline=baseline)
    _reset_status(sandbox, volume, status='error')
    failed, agent = deployer.deploy(node, expect='deploy failed')
    base._assert_names(_shown(failed)['last_error'], node, volume, 'error')
    wait_no_leaks(sandbox, volumes=[volume], nodes=[node],
                  state_dirs=[agent.state_dir], baseline=baseline)
    _reset_status(sandbox, volume, status='available')
    deployer.undeploy(node)


def test_volume_in_error_during_image_write(sandbox, deployer, os_image,
                                            faults, baseline):
    """An admin resets the boot volume to ``error`` while the image goes on.

    The deploy stops at the next conductor step (``cinder_configure_boot``
    reads each recorded volume again) with ``deploy failed`` and a
    ``last_error`` naming node, volume and its status; the undeploy
    leaves nothing.
    """
    node, volume = base._node_with_volume(sandbox, deployer)
    with SlowImageServer(os_image['path']) as server:
        _deploy_from(sandbox, node, server)
        with deployer.running_agent():
            assert server.httpd.half_sent.wait(240), 'no image download'
            _reset_status(sandbox, volume, status='error')
            final = deployer.wait_for(node, lambda n: n[
                'provision_state'] in ('active', 'deploy failed'),
                timeout=240)
    try:
        assert _shown(final)['provision_state'] == 'deploy failed'
        base._assert_names(final['last_error'], node, volume, 'error')
    finally:
        deployer.undeploy(node)
        wait_no_leaks(sandbox, volumes=[volume], nodes=[node],
                      baseline=baseline)
        _reset_status(sandbox, volume, status='available')


def _wait_gone(sandbox, volume, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sandbox.cinder.get('/volumes/detail?all_tenants=1&id=%s'
                                   % volume['id'])['volumes']
        if not [v for v in found if v['id'] == volume['id']]:
            return
        time.sleep(0.5)
    raise AssertionError('volume %s not deleted after %ss'
                         % (volume['id'], timeout))


def test_volume_deleted_between_deploy_and_undeploy(sandbox, deployer,
                                                    faults, baseline):
    """An admin deletes the deployed boot volume behind Ironic's back.

    (Reset to available/detached, then deleted: Cinder drops its
    attachments with it.) The undeploy finds the attachment gone (404 is
    success) and ends ``available``; no export or loop device of the
    volume is left. Deploying again fails at the attach step with
    ``last_error`` naming node and volume (not found).
    """
    node, volume = base._node_with_volume(sandbox, deployer)
    _active, agent = deployer.deploy(node)
    _reset_status(sandbox, volume, status='available',
                  attach_status='detached')
    sandbox.cinder.delete('/volumes/%s' % volume['id'], expect=(202, 204))
    _wait_gone(sandbox, volume)
    deployer.undeploy(node)
    wait_no_leaks(sandbox, volumes=[volume], nodes=[node],
                  state_dirs=[agent.state_dir], baseline=baseline)
    failed, agent = deployer.deploy(node, expect='deploy failed')
    base._assert_names(_shown(failed)['last_error'], node, volume)
    assert 'not found' in failed['last_error'].lower() or (
        '404' in failed['last_error']), failed['last_error']
    deployer.undeploy(node)
    wait_no_leaks(sandbox, volumes=[volume], nodes=[node],
                  state_dirs=[agent.state_dir], baseline=baseline)
