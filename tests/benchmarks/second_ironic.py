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

"""Figures that need a second Ironic next to the sandbox's.

* Ironic's own ``cinder`` storage interface (the legacy flow), run by a
  real second Ironic against the sandbox's Cinder: under noauth Cinder,
  ``[cinder] auth_type = admin_token`` with ``token = <user>:<project>``
  and the UNVERSIONED root URL as ``endpoint`` (version discovery under
  /v3 without a token gets 204). A fake-hardware node with iSCSI (iqn)
  connectors and targets; Ironic attaches an active node's volumes when
  it powers it on and detaches them when it powers it off
  (``conductor/utils.py`` ``node_power_action``).
* Deploys with Ironic's default ``[api] ramdisk_heartbeat_timeout`` (the
  sandbox's Ironic uses a shorter one).

Each second Ironic is stopped (and its nodes deleted) at the end, also
after a failure; the sandbox's ``down`` stops it if this process dies.
"""

import contextlib
import copy
import time

from ipa_cinder_sandbox import extra_ironic
from ipa_cinder_sandbox import layout as layout_mod

from tests.benchmarks import flows
from tests.benchmarks import logs

#: Port offsets of the second Ironics from the sandbox's port base.
LEGACY_PORT_OFFSET = 10
DEFAULTS_PORT_OFFSET = 11

#: Requests Ironic's legacy flow makes per volume, from
#: ironic/common/cinder.py (ironic 39): attach_volumes does get_volume,
#: reserve_volume, init_volume_attachment, attach_volume and
#: set_volume_metadata; detach_volumes does get_volume,
#: begin_volume_detaching, terminate_volume_attachment, detach_volume and
#: set_volume_metadata.
LEGACY_FROM_CODE = {
    'attach': ['GET /volumes/{id}', 'POST /volumes/{id}/action os-reserve',
               'POST /volumes/{id}/action os-initialize_connection',
               'POST /volumes/{id}/action os-attach',
               'POST /volumes/{id}/metadata'],
    'detach': ['GET /volumes/{id}',
               'POST /volumes/{id}/action os-begin_detaching',
               'POST /volumes/{id}/action os-terminate_connection',
               'POST /volumes/{id}/action os-detach',
               'POST /volumes/{id}/metadata'],
}


@contextlib.contextmanager
def second_ironic(sandbox, name, offset, overrides, errors):
    """A started second Ironic and a view of the sandbox on it."""
    layout = sandbox.layout
    ironic = extra_ironic.ExtraIronic(layout, sandbox.box.procs, name,
                                      layout.port_base + offset, overrides)
    view = None
    try:
        ironic.start()
        ironic.wait()
        view = flows.retarget(sandbox, ironic.url)
        yield ironic, view
    finally:
        if view is not None:
            errors.extend('%s clean-up: %s' % (name, e)
                          for e in flows.close_view(view))
        ironic.stop()


def legacy_overrides(sandbox):
    return {'cinder': {
        'auth_type': 'admin_token',
        'token': '%s:%s' % (layout_mod.USER_ID, sandbox.project_id),
        'endpoint': sandbox.layout.cinder_root_url + '/',
        'endpoint_override': None}}


def _power(view, uuid, target, timeout=60):
    view.ironic.put('/v1/nodes/%s/states/power' % uuid, {'target': target})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        node = view.get_node(uuid)
        if node['power_state'] == target and not node['target_power_state']:
            return node
        if node.get('last_error') and not node['target_power_state']:
            raise RuntimeError('node %s: %s failed: %s'
                               % (uuid, target, node['last_error']))
        time.sleep(0.3)
    raise RuntimeError('node %s not %s after %d s' % (uuid, target, timeout))


def _legacy_node(view, volumes):
    node = view.create_node(
        deploy_interface='fake', boot_interface='fake',
        storage_interface='cinder',
        properties={'capabilities': 'iscsi_boot:true,boot_mode:bios'})
    uuid = node['uuid']
    for kind, value in (('iqn', 'iqn.2004-10.org.example:legacy-bench'),
                        ('ip', '127.0.0.1')):
        view.ironic.post('/v1/volume/connectors', {
            'node_uuid': uuid, 'type': kind, 'connector_id': value})
    for index, volume in enumerate(volumes):
        view.ironic.post('/v1/volume/targets', {
            'node_uuid': uuid, 'volume_type': 'iscsi',
            'boot_index': index, 'volume_id': volume['id']})
    view.set_provision_state(uuid, 'active')
    view.wait_node(uuid, 'active', 120)
    if view.get_node(uuid)['power_state'] != 'power off':
        _power(view, uuid, 'power off')
    return uuid


def run_legacy(deployer, view, count, cinder_log):
    """Attach (power on) and detach (power off) ``count`` volumes."""
    sandbox = deployer.sandbox
    volumes = deployer.volumes(count)
    try:
        uuid = _legacy_node(view, volumes)
        deployer.log('legacy flow (second Ironic): power on node %s with %d '
                     'volume(s)' % (uuid, count))
        window = logs.LogWindow(cinder_log).start()
        _power(view, uuid, 'power on')
        attach = logs.cinder_requests(window.stop().text())
        statuses = [sandbox.get_volume(v['id'])['status'] for v in volumes]
        window = logs.LogWindow(cinder_log).start()
        _power(view, uuid, 'power off')
        detach = logs.cinder_requests(window.stop().text())
        after = [sandbox.get_volume(v['id'])['status'] for v in volumes]
        view.set_provision_state(uuid, 'deleted')
        view.wait_node(uuid, 'available', 120)
        view.delete_node(uuid)
    finally:
        for volume in volumes:
            sandbox.delete_volume(volume['id'])
    result = {'volumes': count, 'how': 'Ironic cinder storage interface '
              '(second Ironic)', 'attach': logs.summarize_requests(attach),
              'detach': logs.summarize_requests(detach),
              'volume_status_after_attach': statuses,
              'volume_status_after_detach': after}
    if statuses != ['in-use'] * count:
        result['note'] = ('the legacy attach did not leave every volume '
                          'in-use: %s' % statuses)
    deployer.log('legacy flow, %d volume(s): %d Cinder requests to attach, '
                 '%d to detach' % (count, len(attach), len(detach)))
    return result


def measure_legacy(deployer, sizes, cinder_log, errors):
    """The legacy flow for each volume count, in one second Ironic."""
    sandbox = deployer.sandbox
    results = []
    with second_ironic(sandbox, 'ironic-legacy', LEGACY_PORT_OFFSET,
                       legacy_overrides(sandbox), errors) as (_i, view):
        for count in sizes:
            results.append(run_legacy(deployer, view, count, cinder_log))
    return results


def measure_default_heartbeat(deployer, errors, timeout=900):
    """One cinder-agent and one direct deploy at Ironic's default.

    The default heartbeat timeout (300 s) makes the agent heartbeat every
    90-180 s: these deploys get a longer time limit.
    """
    overrides = {'api': {'ramdisk_heartbeat_timeout': None}}
    patient = copy.copy(deployer)
    patient.timeout = max(deployer.timeout, timeout)
    with second_ironic(deployer.sandbox, 'ironic-defaults',
                       DEFAULTS_PORT_OFFSET, overrides,
                       errors) as (ironic, view):
        bfv = patient.run_cinder_agent(1, target=view,
                                       ironic_log=ironic.log_path)
        direct = patient.run_direct(target=view)
    return {'cinder-agent': bfv, 'direct': direct,
            'ramdisk_heartbeat_timeout': 'default (300)'}
