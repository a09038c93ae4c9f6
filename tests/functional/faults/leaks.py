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

"""What a failure path may leave behind, from each service's own view.

:func:`leaks` looks at Cinder's attachments (of the given volumes and of
the given nodes as instances), tgt's targets (``tgtadm --op show`` of the
sandbox's tgtd) for those volumes, loop devices backed by the volumes'
files or by anything under the agents' and CLI state directories, the
connection records of agents and CLI runs, and processes naming the
sandbox's state directory that were not there before.
"""

import os
import time

import psutil

from ipa_cinder_sandbox import cleanup
from ipa_cinder_sandbox import loopdev


def process_baseline(sandbox):
    """PIDs naming the state directory now (services, running agents)."""
    return set(cleanup.leftover_pids(sandbox.state_dir))


def _attachments(sandbox, query):
    return sandbox.cinder.get(
        '/attachments/detail?all_tenants=1&' + query,
        microversion='3.44')['attachments']


def _records(state_dir):
    path = os.path.join(state_dir, 'connections')
    if not os.path.isdir(path):
        return []
    return sorted(os.path.join(path, n) for n in os.listdir(path)
                  if n.endswith('.json'))


def leaks(sandbox, volumes=(), nodes=(), state_dirs=(), baseline=None,
          keep=()):
    """{kind: [what leaked]} (every list empty when nothing leaked).

    :param volumes: volume dicts (or ids) of the scenario.
    :param nodes: node dicts (or UUIDs) of the scenario.
    :param state_dirs: agent or CLI state directories (connection records).
    :param baseline: :func:`process_baseline` taken before the scenario.
    :param keep: attachment ids that are expected to stay.
    """
    volume_ids = [v['id'] if isinstance(v, dict) else v for v in volumes]
    node_ids = [n['uuid'] if isinstance(n, dict) else n for n in nodes]
    found = {'attachments': [], 'tgt_targets': [], 'loop_devices': [],
             'records': [], 'processes': []}
    for volume_id in volume_ids:
        found['attachments'] += [
            '%s (volume %s, %s)' % (a['id'], volume_id, a['status'])
            for a in _attachments(sandbox, 'volume_id=%s' % volume_id)
            if a['id'] not in keep]
    for node_id in node_ids:
        found['attachments'] += [
            '%s (node %s, %s)' % (a['id'], node_id, a['status'])
            for a in _attachments(sandbox, 'instance_id=%s' % node_id)
            if a['id'] not in keep]
    found['attachments'] = sorted(set(found['attachments']))
    targets = sandbox.box.tgt.targets().values()
    found['tgt_targets'] = sorted(t for t in targets
                                  if any(v in t for v in volume_ids))
    files = set()
    for backend in ('local', 'iscsi'):
        directory = sandbox.box.cinder.volumes_dir(backend)
        files.update(os.path.join(directory, 'volume-%s' % v)
                     for v in volume_ids)
    for device, backing in sorted(loopdev.list_devices().items()):
        if backing in files or any(
                backing.startswith(d.rstrip('/') + '/') for d in state_dirs):
            found['loop_devices'].append('%s (%s)' % (device, backing))
    for state_dir in state_dirs:
        found['records'] += _records(state_dir)
    if baseline is not None:
        found['processes'] = _new_processes(sandbox, baseline)
    return found


def _new_processes(sandbox, baseline, grace=10.0):
    """Processes that appeared since ``baseline`` and do not go away."""
    deadline = time.monotonic() + grace
    while True:
        new = sorted(set(cleanup.leftover_pids(sandbox.state_dir))
                     - baseline - _service_pids(sandbox))
        if not new or time.monotonic() > deadline:
            return ['%d' % pid for pid in new]
        time.sleep(0.5)


def _service_pids(sandbox):
    """The sandbox's services (restarted ones get new PIDs)."""
    pids = {rec['pid'] for rec in sandbox.box.procs.records()
            if not rec['name'].startswith(('agent', 'clean-agent'))}
    for pid in list(pids):
        pids.update(_descendants(pid))
    pids.update(sandbox.box.cinder.privsep_pids())
    return pids


def _descendants(pid):
    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def assert_no_leaks(sandbox, **kwargs):
    found = leaks(sandbox, **kwargs)
    assert not any(found.values()), 'leaked: %s' % {
        k: v for k, v in found.items() if v}
    return found


def remove_attachments(sandbox, volume):
    """Delete every attachment of ``volume`` as a service would.

    The handle's ``delete_volume`` sees only the volume's completed
    attachments; one a failure left ``attaching`` or ``reserved`` is
    found through the attachments API.
    """
    for attachment in _attachments(sandbox, 'volume_id=%s' % volume['id']):
        sandbox.cinder.delete('/attachments/%s' % attachment['id'],
                              microversion='3.44', service=True,
                              expect=(200, 204, 404))
