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
"""``make demo``: a boot-from-volume deploy with real services, narrated.

Run as root: ``python -m ipa_cinder_sandbox.demo``. It

1. (act 1, a few seconds) asks a real, confined ironic-python-agent with
   this plugin for its connector and connects a volume by hand;
2. brings the sandbox up under ``.sandbox-demo`` (ports from 18600):
   RabbitMQ, tgtd, Cinder 29, Ironic 39, an image server;
3. creates a boot volume on Cinder's ``local`` backend, enrolls a
   fake-hardware node with the ``cinder-agent`` deploy interface, a boot
   volume target and the sandbox's test image, and deploys it with a real
   IPA;
4. prints the timeline (each deploy step, each Cinder call), the
   attachment, the volume's status, the image's checksum on the volume and
   the boot configuration Ironic's iPXE boot interface reads;
5. undeploys, shows the volume available with no attachment left;
6. renders, with Ironic's own code, the iPXE sanboot script for an iSCSI
   boot volume (CHAP masked);
7. tears the sandbox down, also on failure or Ctrl-C.

:func:`run` is the core: it takes a running
:class:`ipa_cinder_sandbox.handle.SandboxHandle` and returns what it
showed, so the functional tests run it against their own sandbox.
"""

import argparse
import datetime
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

from ipa_cinder.common import connection
from ipa_cinder.common import secrets as secrets_mod

_T0 = time.monotonic()

DEFAULT_PORT_BASE = 18600
# The test image's GPT backup header (last 34 sectors) is rewritten by IPA
# for the larger disk: the checksum covers the partition only.
_GPT_BACKUP_BYTES = 34 * 512

_LOG_LINE = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) \d+ (\w+) '
                       r'(\S+) \[[^\]]*\] (.*)$')
_STEP = r"\{'step': '(?P<step>\w+)', 'priority': (?P<priority>\d+)"
_EXECUTING = re.compile(r'^Executing ' + _STEP + r'.* on node (?P<node>\S+)$')
_FINISHED = re.compile(r'^Node (?P<node>\S+) finished deploy step ' + _STEP)
_MOVED = re.compile(r'^Node (?P<node>\S+) moved to provision state '
                    r'"(?P<state>[\w ]+)"')
_CINDER_CALL = re.compile(
    r'^Cinder (?P<call>\w+): (?P<method>[A-Z]+) (?P<url>\S+) \(microversion '
    r'(?P<mv>[^)]*)\) -> HTTP (?P<status>\d+) in (?P<seconds>[\d.]+) s')
_CINDER_API = re.compile(
    r'^(?P<user>\S+) \S+ [^\]]*\] \S+ "(?P<method>[A-Z]+) (?P<path>\S+) '
    r'HTTP/1\.\d" status: (?P<status>\d+)\s+len: \d+ time: '
    r'(?P<seconds>[\d.]+)')
_REQUEST_CONTEXT = re.compile(r'\[\S+ req-\S+ (.*)$')
# The REST clients of the sandbox handle (and so of this demo) call Cinder
# as this user; Ironic's conductor does not.
_SANDBOX_USER = 'sandbox'


def say(message, *args):
    """One narrated line, with the seconds since the demo started."""
    print('[%6.2fs] %s' % (time.monotonic() - _T0,
                           message % args if args else message), flush=True)


def show(title, value):
    """Print ``value`` as indented JSON under ``title``, secrets masked."""
    text = json.dumps(secrets_mod.mask(value), indent=2, sort_keys=True)
    print('          %s:\n%s' % (title, '\n'.join(
        '            ' + line for line in text.splitlines())), flush=True)


def show_lines(title, lines):
    print('          %s:' % title, flush=True)
    for line in lines:
        print('            ' + line, flush=True)


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _sha256_of(path, size):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        remaining = size
        while remaining:
            chunk = f.read(min(remaining, 1 << 20))
            if not chunk:
                break
            digest.update(chunk)
            remaining -= len(chunk)
    return digest.hexdigest()


# Act 1: the agent alone ----------------------------------------------------

def agent_demo(workdir):
    """The agent half against a real, confined IPA (no Ironic)."""
    from ipa_cinder_sandbox import agent_process

    say('Act 1, the agent alone: a volume is a sparse file behind a loop '
        'device, the way the sandbox\'s Cinder "local" backend exports it')
    backing = os.path.join(workdir, 'volume.img')
    with open(backing, 'wb') as f:
        f.truncate(64 << 20)
    loop = subprocess.run(['losetup', '--find', '--show', backing],
                          check=True, capture_output=True,
                          text=True).stdout.strip()
    agent = agent_process.AgentProcess(os.path.join(workdir, 'agent'),
                                       devices=[loop])
    try:
        say('Starting ironic-python-agent 13 in its jail (private /dev '
            'with only %s, no power off, no network changes)', loop)
        agent.start()
        say('Agent answers on %s (%.1fs)', agent.url, agent.started_in)
        say('cinder.get_connector: what the conductor sends to Cinder')
        show('connector', agent.command('cinder.get_connector'))
        volume_id, attachment_id = str(uuid.uuid4()), str(uuid.uuid4())
        info = {'driver_volume_type': 'local',
                'data': {'device_path': loop}}
        result = agent.command('cinder.connect_volume', {
            'volume_id': volume_id, 'attachment_id': attachment_id,
            'connection_info': info, 'boot': True})
        say('cinder.connect_volume: connected as %s', result['device_path'])
        image = os.urandom(4 << 20)
        fd = os.open(result['device_path'], os.O_WRONLY)
        try:
            os.write(fd, image)
            os.fsync(fd)
        finally:
            os.close(fd)
        say('4 MiB written through the device land in the volume file: '
            '%s', _sha256(image) == _sha256_of(backing, len(image)))
        password = 'demo-chap-%s' % uuid.uuid4().hex[:10]
        response = agent.post_command('cinder.connect_volume', {
            'volume_id': str(uuid.uuid4()),
            'attachment_id': str(uuid.uuid4()),
            'connection_info': {
                'driver_volume_type': 'iscsi',
                'data': {'target_portal': '127.0.0.1:3260',
                         'target_iqn': 'iqn.2010-10.org.openstack:demo',
                         'target_lun': 1, 'auth_method': 'CHAP',
                         'auth_username': 'demo-user',
                         'auth_password': password}}})
        say('An iSCSI volume with CHAP is refused here (no kernel iSCSI '
            'initiator): %s', secrets_mod.mask_text(str(
                (response.json().get('command_error') or {}).get(
                    'details')))[:240])
        say('The password in the reply: %s, in the agent log: %s',
            password in response.text, password in agent.read_log())
        agent.command('cinder.disconnect_volume', {'volume_id': volume_id})
        say('cinder.disconnect_volume: connections left %d', len(
            agent.command('cinder.list_connections')['connections']))
    finally:
        agent.stop()
        subprocess.run(['losetup', '--detach', loop], check=False)


# Logs ----------------------------------------------------------------------

class LogWindow(object):
    """What a log file gains from now on."""

    def __init__(self, path):
        self.path = path
        self.offset = os.path.getsize(path) if os.path.exists(path) else 0

    def read(self):
        if not os.path.exists(self.path):
            return ''
        with open(self.path, 'rb') as f:
            f.seek(self.offset)
            return f.read().decode('utf-8', 'replace')


def _log_records(text, context=False):
    for line in text.splitlines():
        match = _LOG_LINE.match(line)
        if match:
            when = datetime.datetime.strptime(match.group(1),
                                              '%Y-%m-%d %H:%M:%S.%f')
            if context:
                # The request context too: "[None req-<id> user project".
                rest = line[match.start(3) + len(match.group(3)) + 1:]
                yield when, match.group(2), rest
            else:
                yield when, match.group(2), match.group(4)


def parse_ironic_log(text, node_uuid, began):
    """Deploy steps and Cinder calls of ``node_uuid`` from Ironic's log.

    :param began: naive local datetime the offsets are counted from.
    :returns: a list of events sorted by start, each a dict with ``kind``
        (``step`` or ``cinder``), ``name``, ``offset`` (s after
        ``began``) and ``seconds`` (duration; None if unknown).
    """
    events, steps, end = [], [], None
    for when, _level, message in _log_records(text):
        offset = (when - began).total_seconds()
        match = _EXECUTING.match(message)
        if match and match.group('node') == node_uuid:
            steps.append({'kind': 'step', 'name': match.group('step'),
                          'priority': int(match.group('priority')),
                          'offset': offset, 'when': when, 'seconds': None})
            continue
        match = _FINISHED.match(message)
        if match and match.group('node') == node_uuid:
            for step in reversed(steps):
                if step['name'] == match.group('step'):
                    step['seconds'] = (when - step['when']).total_seconds()
                    break
            continue
        match = _MOVED.match(message)
        if (match and match.group('node') == node_uuid
                and match.group('state') in ('active', 'deploy failed')):
            end = when
            continue
        match = _CINDER_CALL.match(message)
        if match:
            events.append({
                'kind': 'cinder', 'name': match.group('call'),
                'method': match.group('method'),
                'url': re.sub(r'^https?://[^/]+', '', match.group('url')),
                'microversion': match.group('mv'),
                'status': int(match.group('status')), 'offset': offset,
                'seconds': float(match.group('seconds'))})
    # An asynchronous step (run by the agent) ends when the next starts.
    for step, following in zip(steps, steps[1:] + [None]):
        if step['seconds'] is None:
            stop = following['when'] if following else end
            if stop is not None:
                step['seconds'] = (stop - step['when']).total_seconds()
        del step['when']
    return sorted(events + steps, key=lambda e: e['offset'])


def parse_cinder_api_log(text):
    """Requests Cinder's API served, from its own log (wsgi lines).

    Requests of the sandbox's own REST clients (the demo's checks) are
    left out: what remains are Ironic's.
    """
    calls = []
    for when, _level, message in _log_records(text, context=True):
        context = _REQUEST_CONTEXT.match(message)
        match = _CINDER_API.match(context.group(1)) if context else None
        if match and match.group('user') != _SANDBOX_USER:
            path = re.sub(r'^/v3(/[0-9a-f]{32}|/[0-9a-f-]{36})?(?=/)', '',
                          match.group('path'))
            calls.append({'method': match.group('method'), 'path': path,
                          'status': int(match.group('status')),
                          'seconds': float(match.group('seconds')),
                          'when': when.isoformat()})
    return calls


def _short(url):
    """An URL with its ids shortened to 8 characters, for reading."""
    return re.sub(r'([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-'
                  r'[0-9a-f]{12}', r'\1', url)


def print_timeline(events, cinder_api, title=None):
    lines = []
    for event in events:
        seconds = ('%6.2fs' % event['seconds'] if event['seconds']
                   is not None else '     ?')
        if event['kind'] == 'step':
            lines.append('+%6.2fs  %s  step %s (%d)' % (
                event['offset'], seconds, event['name'], event['priority']))
        else:
            lines.append('+%6.2fs  %s      Cinder %s: %s %s (%s) -> %d' % (
                event['offset'], seconds, event['name'], event['method'],
                _short(event['url']), event['microversion'],
                event['status']))
    show_lines(title or 'timeline (from Ironic\'s log: start after the '
               'deploy request, duration)', lines)
    if cinder_api:
        requests = ['%s %s -> %d in %.3fs' % (c['method'], _short(c['path']),
                                              c['status'], c['seconds'])
                    for c in cinder_api]
        show_lines('Ironic\'s requests in Cinder\'s own API log (%d)'
                   % len(requests), requests)


# iPXE, rendered by Ironic's code ------------------------------------------

def render_ipxe(ironic_config, node_uuid, boot_target=None):
    """What Ironic's iPXE boot interface renders for ``node_uuid``.

    Runs Ironic's ``pxe_utils.get_volume_pxe_options`` and its iPXE
    template in a child process (Ironic's configuration is global and the
    caller may be a test run) on the sandbox Ironic's database, read only.

    :param boot_target: volume target UUID to use as
        ``driver_internal_info['boot_from_volume']`` (in memory only) when
        the node has not been deployed.
    :returns: dict with ``pxe_options`` and ``script`` (the
        ``:boot_iscsi`` section), every secret masked.
    """
    argv = [sys.executable, '-W', 'ignore', '-m', 'ipa_cinder_sandbox.demo',
            '--render-ipxe', ironic_config, node_uuid] + (
                [boot_target] if boot_target else [])
    result = subprocess.run(argv, capture_output=True, text=True,
                            timeout=120)
    if result.returncode:
        raise RuntimeError('rendering iPXE with Ironic\'s code failed: %s'
                           % secrets_mod.mask_text(result.stderr.strip()[
                               -2000:]))
    return json.loads(result.stdout.strip().splitlines()[-1])


def _render_ipxe_main(ironic_config, node_uuid, boot_target=None):
    """The child process of :func:`render_ipxe`: print JSON on stdout."""
    import types

    from ironic.common import context as ironic_context
    from ironic.common import pxe_utils
    from ironic.common import utils as ironic_utils
    from ironic.conf import CONF
    from ironic.drivers.modules import deploy_utils
    from ironic import objects

    CONF(['--config-file', ironic_config], project='ironic')
    objects.register_all()
    ctx = ironic_context.get_admin_context()
    node = objects.Node.get_by_uuid(ctx, node_uuid)
    if boot_target:
        node.set_driver_internal_info('boot_from_volume', boot_target)
    # The objects a TaskManager loads for the boot interface.
    task = types.SimpleNamespace(
        context=ctx, node=node,
        volume_targets=objects.VolumeTarget.list_by_node_id(ctx, node.id),
        volume_connectors=objects.VolumeConnector.list_by_node_id(
            ctx, node.id))
    secrets = set()
    for target in task.volume_targets:
        secrets |= secrets_mod.secret_values(target.properties or {})
    options = pxe_utils.get_volume_pxe_options(task)
    params = dict(options, ipxe_timeout=CONF.pxe.ipxe_timeout * 1000)
    template = deploy_utils.get_ipxe_config_template(node)
    script = ironic_utils.render_template(
        template, {'pxe_options': params, 'ROOT': '{{ ROOT }}',
                   'DISK_IDENTIFIER': ''})
    section = []
    if ':boot_iscsi' in script:
        section = script[script.index(':boot_iscsi'):].split(
            ':fail_iscsi_retry')[0].strip().splitlines()
    text = '\n'.join(line for line in section if line.strip())
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, secrets_mod.MASK)
    print(json.dumps({'pxe_options': secrets_mod.mask(options),
                      'template': template, 'script': text}))


# The deploy ----------------------------------------------------------------

class Demo(object):
    """A boot-from-volume deploy through a running sandbox, narrated."""

    def __init__(self, handle, narrate=True):
        self.handle = handle
        self.narrate = narrate
        self.report = {}
        self._cleanups = []

    def say(self, message, *args):
        if self.narrate:
            say(message, *args)

    def show(self, title, value):
        if self.narrate:
            show(title, value)

    def _log(self, name):
        return os.path.join(self.handle.state_dir, 'log', name)

    def attachments(self, volume_id):
        return self.handle.cinder.get(
            '/attachments/detail?all_tenants=1&volume_id=%s' % volume_id,
            microversion='3.44')['attachments']

    def run(self):
        """Deploy, report, undeploy, render iPXE; clean what it made."""
        try:
            self._deploy_and_report()
            self._ipxe_for_iscsi()
        finally:
            for func, arg in reversed(self._cleanups):
                try:
                    func(arg)
                except Exception as e:  # clean as much as possible
                    self.say('Cleaning %s failed: %s', arg, e)
        return self.report

    def _deploy_and_report(self):
        handle, report = self.handle, self.report
        image = handle.image
        url = '%s/%s' % (handle.http_url, image['name'])

        self.say('Creating a 1 GiB boot volume on Cinder\'s "local" backend '
                 '(a sparse file, exported as a loop device)')
        volume = handle.create_volume(size=1, volume_type='local',
                                      name='demo-boot')
        self._cleanups.append((handle.delete_volume, volume['id']))
        self.say('Volume %s is %s', volume['id'], volume['status'])

        self.say('Enrolling a fake-hardware node with deploy interface '
                 'cinder-agent and image %s (%d MiB, sha256 %s...)',
                 url, image['size'] >> 20, image['sha256'][:12])
        node = handle.create_node(
            name='demo-node', deploy_interface='cinder-agent',
            instance_info={'image_source': url,
                           'image_os_hash_algo': 'sha256',
                           'image_os_hash_value': image['sha256'],
                           'image_disk_format': 'raw'},
            properties={'capabilities': 'iscsi_boot:true'})
        self._cleanups.append((handle.delete_node, node['uuid']))
        report['node'] = node['uuid']
        target = handle.ironic.post('/v1/volume/targets', {
            'node_uuid': node['uuid'], 'volume_type': 'local',
            'boot_index': 0, 'volume_id': volume['id'], 'properties': {}})
        self.say('Node %s is %s; boot volume target %s (boot_index 0) '
                 'points at the volume', node['uuid'],
                 node['provision_state'], target['uuid'])

        ironic_log = LogWindow(self._log('ironic.log'))
        cinder_log = LogWindow(self._log('cinder-api.log'))
        began = datetime.datetime.now()
        clock = time.monotonic()
        self.say('Deploying: baremetal node deploy %s', node['uuid'])
        handle.set_provision_state(node['uuid'], 'active')
        handle.wait_node(node['uuid'], 'wait call-back')
        self.say('Node is in "wait call-back": starting a real IPA 13 in '
                 'its jail; it looks itself up in Ironic by MAC')
        from ipa_cinder_sandbox import device_broker
        agent = handle.start_agent()
        broker = device_broker.DeviceBroker(
            agent, handle.box.cinder.volumes_dir('local'))
        broker.start()
        try:
            self.say('Agent up in %.1fs; the conductor runs the deploy '
                     'steps', agent.started_in)
            active = self._wait_deployed(node['uuid'])
        finally:
            broker.stop()
            agent_log = agent.read_log()
            handle.stop_agent(agent)
        report['deploy_state'] = active['provision_state']
        report['deploy_seconds'] = round(time.monotonic() - clock, 2)
        self.say('Node %s is %s after %.1fs', node['uuid'],
                 active['provision_state'], report['deploy_seconds'])

        events = parse_ironic_log(ironic_log.read(), node['uuid'], began)
        cinder_api = parse_cinder_api_log(cinder_log.read())
        report['timeline'] = events
        report['cinder_api'] = cinder_api
        if self.narrate:
            print_timeline(events, cinder_api)

        for line in ('Install device is the boot volume %s' % volume['id'],
                     'cinder_disconnect_volumes: disconnected 1 volume'):
            if line in agent_log:
                self.say('Agent log: "%s"', line)

        attachments = self.attachments(volume['id'])
        report['attachments'] = [
            {'id': a['id'], 'status': a['status'],
             'attach_mode': a.get('attach_mode'),
             'instance': a.get('instance'),
             'connection_info': secrets_mod.mask(a.get('connection_info'))}
            for a in attachments]
        self.say('Cinder has %d attachment(s) of the volume', len(
            attachments))
        for attachment in report['attachments']:
            self.show('attachment', attachment)
        report['volume_status_active'] = handle.get_volume(
            volume['id'])['status']
        self.say('Volume status: %s', report['volume_status_active'])

        with open(image['path'], 'rb') as f:
            written = f.read()
        start = image['partition_offset']
        end = image['size'] - _GPT_BACKUP_BYTES
        with open(handle.volume_file(volume), 'rb') as f:
            on_volume = f.read(end)[start:]
        report['image_sha256'] = _sha256(written[start:end])
        report['volume_sha256'] = _sha256(on_volume)
        report['checksum_match'] = (report['image_sha256']
                                    == report['volume_sha256'])
        self.say('The image\'s partition (bytes %d-%d) on the volume file '
                 '%s:', start, end, handle.volume_file(volume))
        self.say('  sha256 of the image  %s', report['image_sha256'])
        self.say('  sha256 on the volume %s  -> %s',
                 report['volume_sha256'], 'match' if
                 report['checksum_match'] else 'MISMATCH')

        info = active['driver_internal_info']
        properties = handle.ironic.get('/v1/volume/targets/%s'
                                       % target['uuid'])['properties']
        report['boot_from_volume'] = info.get('boot_from_volume')
        report['target_properties'] = secrets_mod.mask(properties)
        report['connector'] = info.get('cinder_connector') or {}
        self.say('Boot configuration: driver_internal_info boot_from_volume '
                 '= %s (the boot target)', info.get('boot_from_volume'))
        self.show('boot volume target properties (what the boot interface '
                  'reads)', properties)
        rendered = render_ipxe(self.handle.box.ironic.conf, node['uuid'])
        report['ipxe_local'] = rendered
        self.say('Ironic\'s get_volume_pxe_options for this node: %s: iPXE '
                 'sanboots iSCSI targets only; a "local" volume is a disk '
                 'the node boots from directly',
                 json.dumps(rendered['pxe_options']))

        clock = time.monotonic()
        ironic_log = LogWindow(self._log('ironic.log'))
        cinder_log = LogWindow(self._log('cinder-api.log'))
        began = datetime.datetime.now()
        self.say('Undeploying: baremetal node undeploy %s', node['uuid'])
        handle.set_provision_state(node['uuid'], 'deleted')
        handle.wait_node(node['uuid'], 'available', timeout=120)
        report['undeploy_seconds'] = round(time.monotonic() - clock, 2)
        report['undeploy_timeline'] = parse_ironic_log(
            ironic_log.read(), node['uuid'], began)
        report['undeploy_cinder_api'] = parse_cinder_api_log(
            cinder_log.read())
        if self.narrate:
            print_timeline(report['undeploy_timeline'],
                           report['undeploy_cinder_api'],
                           'undeploy: Cinder calls (from Ironic\'s log: '
                           'start after the undeploy request, duration)')
        report['attachments_after'] = len(self.attachments(volume['id']))
        report['volume_status_after'] = handle.get_volume(
            volume['id'])['status']
        kept = handle.ironic.get('/v1/volume/targets/%s' % target['uuid'])
        self.say('Node available after %.1fs; volume %s, %d attachment(s); '
                 'the volume target is kept, without connection data (%s)',
                 report['undeploy_seconds'], report['volume_status_after'],
                 report['attachments_after'],
                 ', '.join(sorted(kept['properties'])) or 'no properties')
        # The agent is looked up by this machine's MAC: one node at a time.
        handle.delete_node(node['uuid'])
        handle.delete_volume(volume['id'])

    def _wait_deployed(self, node_uuid, timeout=240):
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            node = self.handle.get_node(node_uuid)
            state = node['provision_state']
            step = (node.get('deploy_step') or {}).get('step')
            if (state, step) != seen and step:
                self.say('  %s: deploy step %s', state, step)
            seen = (state, step)
            if state == 'active':
                return node
            if state in ('deploy failed', 'error'):
                raise RuntimeError('node %s went to %s: %s' % (
                    node_uuid, state, node.get('last_error')))
            time.sleep(0.25)
        raise RuntimeError('node %s not active after %ss' % (node_uuid,
                                                             timeout))

    def _ipxe_for_iscsi(self):
        """Ironic's iPXE sanboot script for an iSCSI boot volume."""
        handle, report = self.handle, self.report
        connector = report.get('connector') or {}
        if not connector.get('initiator'):
            self.say('The agent reported no iSCSI initiator: no iSCSI boot '
                     'configuration to render')
            return
        self.say('An iSCSI boot volume: the agent cannot log in to iSCSI '
                 'on this kernel, so no deploy; but Ironic\'s iPXE script '
                 'for one can be rendered honestly:')
        volume = handle.create_volume(size=1, volume_type='iscsi',
                                      name='demo-iscsi-boot')
        self._cleanups.append((handle.delete_volume, volume['id']))
        node = handle.ironic.post('/v1/nodes', {
            'name': 'demo-ipxe-render', 'driver': 'fake-hardware',
            'deploy_interface': 'cinder-agent'})
        self._cleanups.append((self._delete_enrolled, node['uuid']))
        attachment = handle.cinder.post('/attachments', {'attachment': {
            'volume_uuid': volume['id'], 'instance_uuid': node['uuid'],
            'connector': dict(connector, host=node['uuid']),
            'mode': 'rw'}}, microversion='3.54')['attachment']
        self._cleanups.append((self._delete_attachment, attachment['id']))
        info = connection.from_attachment(attachment['connection_info'])
        self.say('  Cinder attachment %s for the deployed node\'s connector '
                 '(initiator %s), as cinder_attach_volumes creates it: '
                 'tgt target with CHAP', attachment['id'],
                 connector['initiator'])
        # As cinder_attach_volumes writes it into the boot target.
        properties = dict(info.get('data') or {},
                          driver_volume_type=info.get('driver_volume_type'))
        target = handle.ironic.post('/v1/volume/targets', {
            'node_uuid': node['uuid'], 'volume_type': 'iscsi',
            'boot_index': 0, 'volume_id': volume['id'],
            'properties': properties})
        handle.ironic.post('/v1/volume/connectors', {
            'node_uuid': node['uuid'], 'type': 'iqn',
            'connector_id': connector['initiator']})
        self.show('boot volume target properties', properties)
        rendered = render_ipxe(handle.box.ironic.conf, node['uuid'],
                               boot_target=target['uuid'])
        report['ipxe_iscsi'] = rendered
        self.say('  rendered by ironic.common.pxe_utils.'
                 'get_volume_pxe_options and %s:',
                 os.path.basename(rendered['template']))
        if self.narrate:
            show_lines(':boot_iscsi section (CHAP masked)',
                       rendered['script'].splitlines())

    def _delete_enrolled(self, node_uuid):
        self.handle.ironic.delete('/v1/nodes/%s' % node_uuid,
                                  expect=(204, 404))

    def _delete_attachment(self, attachment_id):
        self.handle.cinder.delete('/attachments/%s' % attachment_id,
                                  microversion='3.44', service=True,
                                  expect=(200, 204, 404))


def run(handle, narrate=True):
    """The demo's core on a running sandbox; returns what it showed."""
    return Demo(handle, narrate=narrate).run()


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt('signal %d' % signum)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m ipa_cinder_sandbox.demo',
        description='A boot-from-volume deploy with real Ironic, IPA and '
        'Cinder, narrated; tears everything down at the end.')
    # Not under ``.sandbox``: ``ipa-cinder-sandbox up``/``down`` there stops
    # every process naming a path below it, the demo's services included.
    parser.add_argument('--state-dir', default=os.path.join(
        os.getcwd(), '.sandbox-demo'))
    parser.add_argument('--port-base', type=int, default=DEFAULT_PORT_BASE)
    parser.add_argument('--skip-agent-act', action='store_true',
                        help='skip act 1 (the agent alone)')
    parser.add_argument('--render-ipxe', nargs='+', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.render_ipxe:
        _render_ipxe_main(*args.render_ipxe)
        return 0
    if os.geteuid() != 0:
        sys.exit('The demo needs root: it creates loop devices, namespaces '
                 'and services.')
    # Ctrl-C and SIGTERM both end in the teardown below (SIGINT also when
    # the demo was started with it ignored, e.g. in the background).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    from ipa_cinder_sandbox import handle as handle_mod

    status, handle = 0, None
    try:
        if not args.skip_agent_act:
            # In the state directory: the sandbox's start-up detaches any
            # loop device a crashed earlier run left there.
            os.makedirs(args.state_dir, exist_ok=True)
            workdir = tempfile.mkdtemp(prefix='demo-agent-',
                                       dir=args.state_dir)
            try:
                agent_demo(workdir)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        say('Act 2: bringing the sandbox up in %s (ports from %d): '
            'RabbitMQ, tgtd, Cinder 29, Ironic 39, image server',
            args.state_dir, args.port_base)
        # Locked: a second demo at the same time takes <dir>-1, ports +20.
        handle = handle_mod.SandboxHandle.start_exclusive(
            args.state_dir, args.port_base, attempts=3)
        say('Sandbox up in %.1fs in %s, ports %d-%d (%s)',
            handle.startup_seconds, handle.state_dir,
            handle.layout.port_base, handle.layout.port_base + 9, ', '.join(
                '%s %.1fs' % (k, v) for k, v in sorted(
                    handle.timings.items())
                if k != 'total' and isinstance(v, (int, float))
                and v >= 0.5))
        report = run(handle)
        ok = (report.get('deploy_state') == 'active'
              and report.get('checksum_match')
              and report.get('volume_status_after') == 'available'
              and report.get('attachments_after') == 0)
        say('Deploy %s in %.1fs, undeploy in %.1fs; %s',
            report.get('deploy_state'), report.get('deploy_seconds', 0),
            report.get('undeploy_seconds', 0),
            'everything as expected' if ok else 'SOMETHING IS WRONG')
        status = 0 if ok else 1
    except KeyboardInterrupt:
        say('Interrupted: cleaning up')
        status = 130
    except Exception as e:
        say('FAILED: %s', secrets_mod.mask_text(str(e)))
        status = 1
    finally:
        if handle is not None:
            clock = time.monotonic()
            say('Tearing the sandbox down (every process by PID, loop '
                'devices, tgt targets)')
            try:
                handle.close()
                say('Sandbox down in %.1fs', time.monotonic() - clock)
            except KeyboardInterrupt:
                say('Interrupted again: run ipa-cinder-sandbox --state-dir '
                    '%s down', args.state_dir)
        say('Done in %.1fs.', time.monotonic() - _T0)
    return status


if __name__ == '__main__':
    sys.exit(main())
