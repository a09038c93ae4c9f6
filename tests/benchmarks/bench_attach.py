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

"""Cinder API calls and attach time of ``cinder-agent`` deploys.

A benchmark, not a test: it asserts nothing about time. Run as root::

    .venv/bin/python -m tests.benchmarks.bench_attach --output bench.json

It brings up its own sandbox (``--state-dir``, default
``<tmp>/ipa-cinder-bench``; ports from ``--port-base``, default 19500, so
the developer's (18700) and the functional tests' (18750) sandboxes are
left alone), then, in one run:

1. deploys a ``cinder-agent`` node with a real, confined IPA, once with a
   boot volume only and once with the boot volume and 3 data volumes (all
   on the ``local`` backend), ``--repeat`` times each, interleaved;
2. counts the Cinder API requests of the attach (the deploy) and of the
   detach (the undeploy) from Cinder's own API log, ``cinder-api.log``: the
   log's size is recorded before and after each, and every request line in
   between is counted, by method and path pattern (ids replaced, the
   action of ``POST .../action`` named from Cinder's debug line). Nothing
   else talks to Cinder meanwhile: the benchmark only polls Ironic;
3. times the ``cinder_attach_volumes`` deploy step from Ironic's log, from
   ``Executing {'step': 'cinder_attach_volumes'...`` to the next step's
   ``Executing`` line, and prints the ratio 4 volumes / 1 volume and the
   per-volume (marginal) cost;
4. for comparison, the legacy flow (Ironic's ``cinder`` storage interface:
   per volume a GET, ``os-reserve``, ``os-initialize_connection``,
   ``os-attach`` and a metadata update, ``ironic/common/cinder.py``
   ``attach_volumes``; ``detach_volumes`` likewise). ``--legacy ironic``
   runs it in Ironic: a fake-hardware node with Fibre Channel connectors,
   attached by a power on of the active node, detached by a power off.
   In the sandbox that fails before any request (openstacksdk finds no
   version document at the ``[cinder]`` endpoint of noauth Cinder), so
   ``--legacy auto`` (the default) then replays the same openstacksdk proxy
   calls, in Ironic's order, from this process (``--legacy replay``):
   real requests to the real Cinder, counted the same way. The count
   derived from Ironic's code is printed either way (``--legacy none``
   skips the measurement).

The table goes to stdout, everything measured also as JSON to
``--output``. Nodes, volumes and the sandbox are removed at the end, also
after a failure or SIGTERM. Exit status 0 when every deploy and undeploy
worked; timings never fail the run.
"""

import argparse
import collections
import datetime
import importlib.util
import json
import os
import re
import signal
import statistics
import sys
import tempfile
import time
import traceback

from ipa_cinder_sandbox import device_broker
from ipa_cinder_sandbox import handle as sandbox_handle
from ipa_cinder_sandbox import rest

ATTACH_STEP = 'cinder_attach_volumes'

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

#: The pattern of version-discovery requests (GET /, /v3, /v3/).
DISCOVERY = 'GET /v3/ (version discovery)'

_TS = r'(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)'
_CINDER_REQUEST = re.compile(
    _TS + r' \d+ \w+ eventlet\.wsgi\.server \[\S+ (req-[0-9a-f-]+)[^\]]*\] '
    r'\S+ "(\w+) (\S+) HTTP/[\d.]+" status: (\d+)\s+len: \d+ '
    r'time: ([\d.]+)')
# Cinder's debug line naming the action of a request: only the body's
# first key is kept (the rest may hold a connector or credentials).
_CINDER_ACTION = re.compile(
    r'\[\S+ (req-[0-9a-f-]+)[^\]]*\] Action: \'action\', calling method: '
    r'\S+, body: \{"([\w:-]+)"')
_IRONIC_STEP = re.compile(
    _TS + r' .*Executing \{\'step\': \'(\w+)\'.* on node ([0-9a-f-]{36})')
_CONDUCTOR_CALL = re.compile(
    _TS + r' .*DEBUG ipa_cinder\.cinder .*Cinder (\w+): (\w+) (\S+) '
    r'\(microversion [^)]*\) -> HTTP (\d+) in ([\d.]+) s')
_AGENT_COMMAND = re.compile(
    _TS + r' .*(Executing agent command|Agent command) ([\w.]+) for node '
    r'([0-9a-f-]{36})')
_STEP_FINISHED = re.compile(
    _TS + r' .*Node ([0-9a-f-]{36}) finished deploy step \{\'step\': '
    r'\'(\w+)\'')
_UUID = re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-'
                   r'[0-9a-f]{12}')
# /v3/<project>/... (the sandbox's clients) and /v3/... (Ironic's
# unversioned-project endpoint) are the same API.
_PROJECT_PREFIX = re.compile(r'^/v3(/[0-9a-f]{32}|/[0-9a-f-]{36})?(?=/)')


def _parse_time(text):
    return datetime.datetime.strptime(text, '%Y-%m-%d %H:%M:%S.%f')


def pattern(method, path, action=None):
    """``GET /volumes/{id}``: a request line without ids or project."""
    path = path.split('?', 1)[0]
    path = _PROJECT_PREFIX.sub('', path)
    path = _UUID.sub('{id}', path)
    if method == 'GET' and path in ('', '/', '/v3', '/v3/'):
        return DISCOVERY
    label = '%s %s' % (method, path)
    if action:
        label += ' ' + action
    return label


def step_finished(ironic_text, node_uuid, step=ATTACH_STEP):
    """When Ironic logged ``finished deploy step`` for it, or None."""
    for match in _STEP_FINISHED.finditer(ironic_text):
        if match.group(2) == node_uuid and match.group(3) == step:
            return _parse_time(match.group(1))
    return None


def agent_commands(ironic_text, node_uuid, window):
    """{command: [count, seconds]} of the agent commands in ``window``."""
    pending = {}
    totals = {}
    for match in _AGENT_COMMAND.finditer(ironic_text):
        stamp, what, command, node = match.groups()
        stamp = _parse_time(stamp)
        if node != node_uuid or not window[0] <= stamp <= window[1]:
            continue
        if what.startswith('Executing'):
            pending[command] = stamp
        elif command in pending:
            entry = totals.setdefault(command, [0, 0.0])
            entry[0] += 1
            entry[1] += (stamp - pending.pop(command)).total_seconds()
    return {k: [n, round(t, 3)] for k, (n, t) in sorted(totals.items())}


class LogWindow(object):
    """The part of a log file written between :meth:`start` and ``stop``."""

    def __init__(self, path):
        self.path = path
        self.begin = self.end = None

    def _size(self):
        try:
            return os.path.getsize(self.path)
        except OSError:
            return 0

    def settle(self, quiet=0.7, timeout=15):
        """Wait until nothing was written for ``quiet`` seconds.

        A server writes its request line after sending the response: a
        client's last request can land in the log after the client moved
        on. Settling before each mark keeps it out of the next window.
        """
        deadline = time.monotonic() + timeout
        size = self._size()
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = self._size()
            if now == size:
                return now
            size = now
        return size

    def start(self):
        self.begin = self.settle()
        return self

    def stop(self):
        self.end = self.settle()
        return self

    def text(self):
        with open(self.path, 'rb') as f:
            f.seek(self.begin)
            data = f.read(self.end - self.begin)
        return data.decode('utf-8', errors='replace')


def cinder_requests(text):
    """The API requests of a slice of cinder-api.log, in order."""
    actions = {}
    for match in _CINDER_ACTION.finditer(text):
        actions[match.group(1)] = match.group(2)
    requests = []
    for match in _CINDER_REQUEST.finditer(text):
        stamp, req, method, path, status, seconds = match.groups()
        requests.append({
            'time': stamp, 'request_id': req, 'method': method,
            'pattern': pattern(method, path, actions.get(req)),
            'status': int(status), 'seconds': float(seconds)})
    return requests


def summarize_requests(requests):
    by_pattern = collections.Counter(r['pattern'] for r in requests)
    return {'count': len(requests),
            'count_without_discovery': sum(
                1 for r in requests if r['pattern'] != DISCOVERY),
            'by_pattern': dict(sorted(by_pattern.items())),
            'statuses': dict(collections.Counter(
                str(r['status']) for r in requests)),
            'cinder_seconds': round(sum(r['seconds'] for r in requests), 3)}


def step_window(ironic_text, node_uuid, step=ATTACH_STEP):
    """(start, end) of ``step`` on the node: its Executing line to the next.

    :returns: datetimes, or None when the step did not run (or no next
        step started, e.g. the deploy failed in it).
    """
    starts = [(m.group(1), m.group(2)) for m in
              _IRONIC_STEP.finditer(ironic_text) if m.group(3) == node_uuid]
    for index, (stamp, name) in enumerate(starts):
        if name == step and index + 1 < len(starts):
            return _parse_time(stamp), _parse_time(starts[index + 1][0])
    return None


def conductor_calls(ironic_text, window=None):
    """ipa-cinder's own ``Cinder <call>`` debug lines (inside ``window``)."""
    calls = []
    for match in _CONDUCTOR_CALL.finditer(ironic_text):
        stamp = _parse_time(match.group(1))
        if window and not window[0] <= stamp <= window[1]:
            continue
        calls.append({'call': match.group(2), 'seconds':
                      float(match.group(6))})
    return calls


class Bench(object):
    """One sandbox, the deploys, the measurements and the clean-up."""

    def __init__(self, args):
        self.args = args
        self.sandbox = None
        self.results = {'attach': [], 'legacy': None, 'errors': []}

    def log(self, message):
        print('[%s] %s' % (time.strftime('%H:%M:%S'), message), flush=True)

    # life cycle

    def up(self):
        self.log('bringing the sandbox up in %s (ports from %d)'
                 % (self.args.state_dir, self.args.port_base))
        self.sandbox = sandbox_handle.SandboxHandle.start(
            self.args.state_dir, self.args.port_base,
            database=self.args.database)
        self.log('sandbox up in %.1f s' % self.sandbox.startup_seconds)
        logs = os.path.join(self.sandbox.state_dir, 'log')
        self.cinder_log = os.path.join(logs, 'cinder-api.log')
        self.ironic_log = os.path.join(logs, 'ironic.log')
        image = self.sandbox.image
        self.image_url = '%s/%s' % (self.sandbox.http_url, image['name'])

    def down(self):
        if self.sandbox is None:
            return
        self.log('removing nodes and volumes, bringing the sandbox down')
        errors = self.sandbox.close()
        for error in errors:
            self.results['errors'].append('clean-up: %s' % error)
        left = self.sandbox.leftovers()
        if any(left.values()):
            self.results['errors'].append('sandbox left behind: %s' % left)
        self.sandbox = None

    # the cinder-agent flow

    def _volumes(self, count):
        return [self._volume() for _ in range(count)]

    def _volume(self, attempts=4):
        # Set-up, not measured: SQLite may answer "database is locked"
        # (HTTP 500) while cinder-volume deletes the previous round's.
        for attempt in range(attempts):
            try:
                return self.sandbox.create_volume(size=1,
                                                  volume_type='local')
            except rest.APIError as e:
                if e.status != 500 or attempt + 1 == attempts:
                    raise
                self.log('volume create: HTTP 500, retrying')
                time.sleep(2)

    def _wait(self, node_uuid, expect, timeout):
        return self.sandbox.wait_node(node_uuid, expect, timeout=timeout)

    def _deploy(self, node):
        """Deploy with a confined agent; returns when the node is active."""
        sandbox = self.sandbox
        sandbox.set_provision_state(node['uuid'], 'active')
        sandbox.wait_node(node['uuid'], 'wait call-back')
        agent = sandbox.start_agent()
        broker = device_broker.DeviceBroker(
            agent, sandbox.box.cinder.volumes_dir('local'))
        broker.start()
        try:
            self._wait(node['uuid'], 'active', self.args.deploy_timeout)
        finally:
            broker.stop()
            sandbox.stop_agent(agent)

    def _attachments(self, node_uuid):
        return self.sandbox.cinder.get(
            '/attachments/detail?all_tenants=1&instance_id=%s' % node_uuid,
            microversion='3.44')['attachments']

    def run_cinder_agent(self, count):
        """One deploy + undeploy with ``count`` volumes; its figures."""
        sandbox = self.sandbox
        volumes = self._volumes(count)
        instance_info = {
            'image_source': self.image_url,
            'image_os_hash_algo': 'sha256',
            'image_os_hash_value': sandbox.image['sha256'],
            'image_disk_format': 'raw'}
        node = sandbox.create_node(
            deploy_interface='cinder-agent', instance_info=instance_info,
            properties={'capabilities': 'iscsi_boot:true'})
        try:
            for index, volume in enumerate(volumes):
                sandbox.ironic.post('/v1/volume/targets', {
                    'node_uuid': node['uuid'], 'volume_type': 'local',
                    'boot_index': index, 'volume_id': volume['id'],
                    'properties': {}})
            self.log('deploying node %s with %d volume(s)'
                     % (node['uuid'], count))
            cinder = LogWindow(self.cinder_log).start()
            ironic = LogWindow(self.ironic_log).start()
            began = time.monotonic()
            self._deploy(node)
            deploy_seconds = time.monotonic() - began
            cinder.stop()
            ironic.stop()
            attach = cinder_requests(cinder.text())
            ironic_text = ironic.text()
            window = step_window(ironic_text, node['uuid'])
            attachments = self._attachments(node['uuid'])

            self.log('undeploying node %s' % node['uuid'])
            cinder = LogWindow(self.cinder_log).start()
            began = time.monotonic()
            sandbox.set_provision_state(node['uuid'], 'deleted')
            self._wait(node['uuid'], 'available', self.args.deploy_timeout)
            undeploy_seconds = time.monotonic() - began
            cinder.stop()
            detach = cinder_requests(cinder.text())
            left = self._attachments(node['uuid'])
        finally:
            sandbox.delete_node(node['uuid'])
            for volume in volumes:
                sandbox.delete_volume(volume['id'])

        result = {
            'volumes': count,
            'attach': summarize_requests(attach),
            'detach': summarize_requests(detach),
            'attachments_after_deploy': len(attachments),
            'attachments_after_undeploy': len(left),
            'deploy_seconds': round(deploy_seconds, 2),
            'undeploy_seconds': round(undeploy_seconds, 2),
        }
        if window:
            step = (window[1] - window[0]).total_seconds()
            inside = [r for r in attach if
                      window[0] <= _parse_time(r['time']) <= window[1]]
            calls = conductor_calls(ironic_text, window)
            finished = step_finished(ironic_text, node['uuid'])
            commands = agent_commands(ironic_text, node['uuid'], window)
            result.update({
                'step_seconds': round(step, 3),
                'step_seconds_to_finished': round(
                    (finished - window[0]).total_seconds(), 3)
                if finished else None,
                'agent_commands': commands,
                'agent_seconds': round(sum(t for _n, t in
                                           commands.values()), 3),
                'attach_requests_outside_step': len(attach) - len(inside),
                'conductor_cinder_calls': len(calls),
                'conductor_cinder_seconds': round(
                    sum(c['seconds'] for c in calls), 3)})
        else:
            result['step_seconds'] = None
            self.results['errors'].append(
                '%d volume(s): no %s step found in ironic.log'
                % (count, ATTACH_STEP))
        if len(attachments) != count or left:
            self.results['errors'].append(
                '%d volume(s): %d attachment(s) after deploy, %d after '
                'undeploy' % (count, len(attachments), len(left)))
        self.log('%d volume(s): %d Cinder requests to attach, %d to detach, '
                 '%s step %s s' % (count, len(attach), len(detach),
                                   ATTACH_STEP, result['step_seconds']))
        return result

    # Ironic's legacy flow, for comparison

    def run_legacy(self, count):
        """The ``cinder`` storage interface: power on / off an active node.

        Ironic attaches the volumes of an active node when it powers it on
        and detaches them when it powers it off (conductor/utils.py
        node_power_action). Fibre Channel connectors, because iSCSI ones
        need the ipxe boot interface; Cinder's ``local`` backend answers
        whatever the connector.
        """
        sandbox = self.sandbox
        volumes = self._volumes(count)
        node = sandbox.create_node(
            deploy_interface='fake', boot_interface='fake',
            storage_interface='cinder',
            properties={'capabilities':
                        'fibre_channel_boot:true,boot_mode:bios'})
        uuid = node['uuid']
        try:
            for kind, value in (('wwpn', '21:00:00:24:ff:00:00:01'),
                                ('wwnn', '20:00:00:24:ff:00:00:01'),
                                ('ip', '127.0.0.1')):
                sandbox.ironic.post('/v1/volume/connectors', {
                    'node_uuid': uuid, 'type': kind, 'connector_id': value})
            for index, volume in enumerate(volumes):
                sandbox.ironic.post('/v1/volume/targets', {
                    'node_uuid': uuid, 'volume_type': 'fibre_channel',
                    'boot_index': index, 'volume_id': volume['id']})
            sandbox.set_provision_state(uuid, 'active')
            self._wait(uuid, 'active', 120)
            if sandbox.get_node(uuid)['power_state'] != 'power off':
                self._power(uuid, 'power off')
            self.log('legacy flow: power on (attach) node %s with %d '
                     'volume(s)' % (uuid, count))
            cinder = LogWindow(self.cinder_log).start()
            self._power(uuid, 'power on')
            cinder.stop()
            attach = cinder_requests(cinder.text())
            statuses = [sandbox.get_volume(v['id'])['status']
                        for v in volumes]
            cinder = LogWindow(self.cinder_log).start()
            self._power(uuid, 'power off')
            cinder.stop()
            detach = cinder_requests(cinder.text())
            sandbox.set_provision_state(uuid, 'deleted')
            self._wait(uuid, 'available', 120)
        finally:
            sandbox.delete_node(uuid)
            for volume in volumes:
                sandbox.delete_volume(volume['id'])
        result = {'volumes': count, 'attach': summarize_requests(attach),
                  'detach': summarize_requests(detach),
                  'volume_status_after_attach': statuses}
        if statuses != ['in-use'] * count:
            result['note'] = ('the legacy attach did not leave every volume '
                              'in-use: %s' % statuses)
        self.log('legacy flow, %d volume(s): %d Cinder requests to attach, '
                 '%d to detach' % (count, len(attach), len(detach)))
        return result

    def run_legacy_replay(self, count):
        """Ironic's legacy calls, made here with the same SDK methods.

        When Ironic's own ``cinder`` storage interface cannot reach the
        sandbox's Cinder (see :meth:`run_legacy`), the requests that
        ``ironic/common/cinder.py`` makes are replayed from this process:
        the same openstacksdk block-storage proxy methods, in the same
        order, with the connector Ironic builds from Fibre Channel volume
        connectors. Real requests to the real Cinder, counted in its log.
        """
        import openstack.connection

        sandbox = self.sandbox
        volumes = self._volumes(count)
        instance = '00000000-0000-4000-8000-%012d' % count
        connector = {'wwpns': ['21000024ff000001'],
                     'wwnns': ['20000024ff000001'], 'ip': '127.0.0.1'}
        # The root URL: openstacksdk finds Cinder's version document there
        # (noauth Cinder answers 204 at /v3) and then uses /v3/...
        conn = openstack.connection.Connection(
            session=sandbox.cinder_session(),
            block_storage_endpoint_override=sandbox.cinder_url.split(
                '/v3')[0] + '/',
            block_storage_api_version='3')
        bs = conn.block_storage
        try:
            self.log('legacy calls replayed: attach %d volume(s)' % count)
            cinder = LogWindow(self.cinder_log).start()
            for volume in volumes:
                vol = bs.get_volume(volume['id'])
                bs.reserve_volume(vol)
                bs.init_volume_attachment(vol, connector)
                bs.attach_volume(vol, 'ironic_mountpoint', instance=instance)
                bs.set_volume_metadata(vol, **{
                    'ironic_node_%s' % instance: json.dumps(
                        {'instance_uuid': instance,
                         'last_action': 'attached'})})
            cinder.stop()
            attach = cinder_requests(cinder.text())
            statuses = [sandbox.get_volume(v['id'])['status']
                        for v in volumes]
            cinder = LogWindow(self.cinder_log).start()
            for volume in volumes:
                vol = bs.get_volume(volume['id'])
                attachment_id = None
                for item in vol.attachments or []:
                    if item.get('server_id') == instance:
                        attachment_id = item.get('attachment_id')
                bs.begin_volume_detaching(vol)
                bs.terminate_volume_attachment(vol, connector)
                bs.detach_volume(vol, attachment_id)
                bs.set_volume_metadata(vol, **{
                    'ironic_node_%s' % instance: json.dumps(
                        {'instance_uuid': instance,
                         'last_action': 'detached'})})
            cinder.stop()
            detach = cinder_requests(cinder.text())
        finally:
            for volume in volumes:
                sandbox.delete_volume(volume['id'])
        result = {'volumes': count, 'how': 'replayed with openstacksdk',
                  'attach': summarize_requests(attach),
                  'detach': summarize_requests(detach),
                  'volume_status_after_attach': statuses}
        if statuses != ['in-use'] * count:
            result['note'] = ('the legacy attach did not leave every volume '
                              'in-use: %s' % statuses)
        self.log('legacy calls replayed, %d volume(s): %d Cinder requests to '
                 'attach, %d to detach' % (count, len(attach), len(detach)))
        return result

    def _power(self, uuid, target, timeout=60):
        self.sandbox.ironic.put('/v1/nodes/%s/states/power' % uuid,
                                {'target': target})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            node = self.sandbox.get_node(uuid)
            if node['power_state'] == target and not node[
                    'target_power_state']:
                return node
            if node.get('last_error') and not node['target_power_state']:
                raise RuntimeError('node %s: %s failed: %s'
                                   % (uuid, target, node['last_error']))
            time.sleep(0.3)
        raise RuntimeError('node %s not %s after %d s'
                           % (uuid, target, timeout))

    # the run

    def run(self):
        sizes = self.args.sizes
        for round_ in range(self.args.repeat):
            for count in sizes:
                self.log('round %d/%d, %d volume(s)'
                         % (round_ + 1, self.args.repeat, count))
                self.results['attach'].append(self.run_cinder_agent(count))
        if self.args.legacy == 'none':
            return
        legacy = []
        use_ironic = self.args.legacy in ('auto', 'ironic')
        for count in sizes:
            item = None
            if use_ironic:
                try:
                    item = self.run_legacy(count)
                    item['how'] = 'Ironic cinder storage interface'
                except Exception as e:  # a comparison, not the benchmark
                    self.log('Ironic\'s legacy flow could not run: %s' % e)
                    self.results['legacy_ironic_error'] = str(e)
                    # Same cause for every count: do not try again.
                    use_ironic = False
            if item is None and self.args.legacy != 'ironic':
                try:
                    item = self.run_legacy_replay(count)
                except Exception as e:  # a comparison, not the benchmark
                    self.log('legacy replay failed: %s' % e)
                    item = {'volumes': count, 'error': str(e)}
            if item is not None:
                legacy.append(item)
        self.results['legacy'] = legacy


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def analyse(results, sizes):
    """Medians per volume count, ratios and per-volume costs."""
    summary = {}
    for count in sizes:
        runs = [r for r in results['attach'] if r['volumes'] == count]
        if not runs:
            continue
        summary[count] = {
            'runs': len(runs),
            'attach_calls': _median([r['attach']['count'] for r in runs]),
            'detach_calls': _median([r['detach']['count'] for r in runs]),
            'attach_calls_without_discovery': _median(
                [r['attach']['count_without_discovery'] for r in runs]),
            'detach_calls_without_discovery': _median(
                [r['detach']['count_without_discovery'] for r in runs]),
            'attach_by_pattern': runs[-1]['attach']['by_pattern'],
            'detach_by_pattern': runs[-1]['detach']['by_pattern'],
            'step_seconds': _median([r['step_seconds'] for r in runs]),
            'step_seconds_all': [r['step_seconds'] for r in runs],
            'agent_seconds': _median([r.get('agent_seconds')
                                      for r in runs]),
            'conductor_cinder_seconds': _median(
                [r.get('conductor_cinder_seconds') for r in runs]),
            'attach_cinder_seconds': _median(
                [r['attach']['cinder_seconds'] for r in runs]),
            'detach_cinder_seconds': _median(
                [r['detach']['cinder_seconds'] for r in runs]),
            'calls_stable': len({(r['attach']['count'], r['detach']['count'])
                                 for r in runs}) == 1,
        }
    ratios = {}
    if len(sizes) == 2 and all(s in summary for s in sizes):
        small, big = sorted(sizes)
        a, b = summary[small], summary[big]
        extra = big - small
        if a['step_seconds'] and b['step_seconds']:
            per_volume = (b['step_seconds'] - a['step_seconds']) / extra
            ratios['step_seconds_%d_over_%d' % (big, small)] = round(
                b['step_seconds'] / a['step_seconds'], 2)
            ratios['step_seconds_per_extra_volume'] = round(per_volume, 3)
            ratios['step_seconds_fixed'] = round(
                a['step_seconds'] - per_volume * small, 3)
            ratios['step_per_volume_ratio'] = round(
                (b['step_seconds'] / big) / (a['step_seconds'] / small), 2)
        for kind in ('attach', 'detach'):
            per_volume = (b['%s_calls' % kind] - a['%s_calls' % kind]) / extra
            ratios['%s_calls_%d_over_%d' % (kind, big, small)] = round(
                b['%s_calls' % kind] / a['%s_calls' % kind], 2)
            ratios['%s_calls_per_extra_volume' % kind] = per_volume
            ratios['%s_calls_fixed' % kind] = (
                a['%s_calls' % kind] - per_volume * small)
    legacy = {}
    for item in results.get('legacy') or []:
        if 'attach' in item:
            legacy[item['volumes']] = item
    if len(sizes) == 2 and all(s in legacy for s in sizes):
        small, big = sorted(sizes)
        for kind in ('attach', 'detach'):
            for key, label in (('count', ''),
                               ('count_without_discovery',
                                '_without_discovery')):
                a = legacy[small][kind][key]
                b = legacy[big][kind][key]
                ratios['legacy_%s_calls%s_per_extra_volume'
                       % (kind, label)] = (b - a) / (big - small)
    legacy_code = {count: {kind: len(calls) * count for kind, calls in
                           LEGACY_FROM_CODE.items()} for count in sizes}
    return {'by_volumes': summary, 'ratios': ratios,
            'legacy_measured': legacy, 'legacy_from_code': legacy_code}


def report(analysis, sizes):
    lines = []
    summary = analysis['by_volumes']
    legacy = analysis['legacy_measured']
    code = analysis['legacy_from_code']

    def fmt(value, spec='%.2f'):
        return '-' if value is None else spec % value

    lines.append('')
    lines.append('Cinder API requests (from cinder-api.log) and the %s step '
                 '(from ironic.log), medians' % ATTACH_STEP)

    def both(total, bare):
        if total is None:
            return '-'
        return '%d (%d)' % (total, bare)

    header = ('%-7s %-4s %8s %8s %20s %20s %7s %8s %7s'
              % ('volumes', 'runs', 'attach', 'detach', 'legacy attach',
                 'legacy detach', 'step s', 'Cinder s', 'agent s'))
    lines.append(header)
    lines.append('-' * len(header))
    for count in sizes:
        row = summary.get(count)
        if not row:
            continue
        measured = legacy.get(count) or {}
        legacy_cells = []
        for kind in ('attach', 'detach'):
            data = measured.get(kind) or {}
            legacy_cells.append('%s code %d' % (
                both(data.get('count'), data.get('count_without_discovery')),
                code[count][kind]))
        lines.append('%-7d %-4d %8s %8s %20s %20s %7s %8s %7s' % (
            count, row['runs'],
            both(row['attach_calls'], row['attach_calls_without_discovery']),
            both(row['detach_calls'], row['detach_calls_without_discovery']),
            legacy_cells[0], legacy_cells[1],
            fmt(row['step_seconds'], '%.3f'),
            fmt(row['conductor_cinder_seconds'], '%.3f'),
            fmt(row['agent_seconds'], '%.3f')))
        lines.append('%-7s step seconds of every run: %s' % (
            '', ', '.join(fmt(s, '%.3f') for s in row['step_seconds_all'])))
    lines.append('(attach/detach: Cinder API requests logged in '
                 'cinder-api.log during the deploy/undeploy, in parentheses '
                 'without version discovery; legacy: the same for Ironic\'s '
                 'cinder storage interface calls, and the count of its '
                 'code; step s: Executing %s to the next step\'s '
                 'Executing; Cinder s / agent s: time of the step spent in '
                 'Cinder calls / agent commands)' % ATTACH_STEP)
    for count in sizes:
        row = summary.get(count)
        if not row:
            continue
        for kind in ('attach', 'detach'):
            lines.append('')
            lines.append('%s, %d volume(s), by request:' % (kind, count))
            for name, number in row['%s_by_pattern' % kind].items():
                lines.append('  %3d  %s' % (number, name))
            measured = (legacy.get(count) or {}).get(kind)
            if measured:
                lines.append('  legacy flow (%s):'
                             % legacy[count].get('how', 'measured'))
                for name, number in measured['by_pattern'].items():
                    lines.append('  %3d  %s' % (number, name))
    lines.append('')
    lines.append('Ratios (same run):')
    for name, value in analysis['ratios'].items():
        lines.append('  %-56s %s' % (name, value))
    lines.append('  legacy flow per volume (Ironic code): %d to attach (%s), '
                 '%d to detach (%s)'
                 % (len(LEGACY_FROM_CODE['attach']),
                    ', '.join(LEGACY_FROM_CODE['attach']),
                    len(LEGACY_FROM_CODE['detach']),
                    ', '.join(LEGACY_FROM_CODE['detach'])))
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m tests.benchmarks.bench_attach',
        description='Cinder API calls per attach/detach and the duration of '
                    'the %s step, for 1 and 4 volumes.' % ATTACH_STEP)
    parser.add_argument('--output', help='write the results as JSON here')
    parser.add_argument('--state-dir', default=os.path.join(
        tempfile.gettempdir(), 'ipa-cinder-bench'))
    parser.add_argument('--port-base', type=int, default=19500)
    parser.add_argument('--database', default='auto',
                        choices=('auto', 'sqlite', 'mariadb'),
                        help='auto: MariaDB when mariadbd and PyMySQL are '
                             'installed (no "database is locked"), else '
                             'SQLite')
    parser.add_argument('--repeat', type=int, default=3,
                        help='deploys per volume count (medians reported)')
    parser.add_argument('--volumes', default='1,4',
                        help='volume counts, comma separated (boot + data)')
    parser.add_argument('--legacy', default='auto',
                        choices=('auto', 'ironic', 'replay', 'none'),
                        help='the legacy flow for comparison: Ironic\'s '
                             'cinder storage interface (ironic), its calls '
                             'replayed with openstacksdk (replay), the '
                             'first that works (auto), or not at all')
    parser.add_argument('--deploy-timeout', type=int, default=300)
    args = parser.parse_args(argv)
    args.sizes = sorted({int(v) for v in args.volumes.split(',') if v})
    if not args.sizes or min(args.sizes) < 1:
        parser.error('--volumes needs positive counts')
    if args.database == 'auto':
        args.database = ('mariadb' if os.path.exists('/usr/sbin/mariadbd')
                         and importlib.util.find_spec('pymysql')
                         else 'sqlite')
    return args


def _on_sigterm(signum, frame):
    raise SystemExit('terminated by signal %d' % signum)


def main(argv=None):
    args = parse_args(argv)
    if os.geteuid() != 0:
        print('The sandbox needs root (loop devices, tgtd, the agent\'s '
              'jail).', file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _on_sigterm)
    bench = Bench(args)
    began = time.monotonic()
    failed = False
    try:
        bench.up()
        bench.run()
    except BaseException as e:
        failed = True
        bench.results['errors'].append('%s: %s' % (type(e).__name__, e))
        traceback.print_exc()
    finally:
        try:
            bench.down()
        except Exception as e:
            failed = True
            bench.results['errors'].append('sandbox down: %s' % e)
            traceback.print_exc()
    analysis = analyse(bench.results, args.sizes)
    print(report(analysis, args.sizes))
    document = {
        'benchmark': 'bench_attach',
        'date': datetime.datetime.now(datetime.timezone.utc).isoformat(),
        'seconds': round(time.monotonic() - began, 1),
        'repeat': args.repeat, 'database': args.database,
        'summary': {str(k): v for k, v in analysis['by_volumes'].items()},
        'ratios': analysis['ratios'],
        'legacy_from_code': {
            'per_volume': LEGACY_FROM_CODE,
            'by_volumes': {str(k): v for k, v in
                           analysis['legacy_from_code'].items()}},
        'legacy_measured': bench.results['legacy'],
        'legacy_ironic_error': bench.results.get('legacy_ironic_error'),
        'runs': bench.results['attach'],
        'errors': bench.results['errors'],
    }
    if args.output:
        with open(args.output, 'w') as f:
            json.dump(document, f, indent=2, sort_keys=True)
        print('\nJSON written to %s' % args.output)
    if bench.results['errors']:
        print('\nErrors:\n  ' + '\n  '.join(bench.results['errors']))
    return 1 if failed or bench.results['errors'] else 0


if __name__ == '__main__':
    sys.exit(main())
