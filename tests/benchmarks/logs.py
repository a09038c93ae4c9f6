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

"""Reading the services' logs for the benchmark.

Cinder's API log gives the requests of an attach or a detach (a window of
the file between two marks), Ironic's log the deploy steps and the
conductor's Cinder calls, the agent's log the image write.
"""

import collections
import datetime
import os
import re
import time

ATTACH_STEP = 'cinder_attach_volumes'

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
    _TS + r' .*DEBUG ipa_cinder\.\S*cinder\S* .*Cinder (\w+): (\w+) (\S+) '
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


def parse_time(text):
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
            return parse_time(match.group(1))
    return None


def agent_commands(ironic_text, node_uuid, window):
    """{command: [count, seconds]} of the agent commands in ``window``."""
    pending = {}
    totals = {}
    for match in _AGENT_COMMAND.finditer(ironic_text):
        stamp, what, command, node = match.groups()
        stamp = parse_time(stamp)
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
            return parse_time(stamp), parse_time(starts[index + 1][0])
    return None


def conductor_calls(ironic_text, window=None):
    """ipa-cinder's own ``Cinder <call>`` debug lines (inside ``window``)."""
    calls = []
    for match in _CONDUCTOR_CALL.finditer(ironic_text):
        stamp = parse_time(match.group(1))
        if window and not window[0] <= stamp <= window[1]:
            continue
        calls.append({'call': match.group(2), 'seconds':
                      float(match.group(6))})
    return calls


_IMAGE_STREAMED = re.compile(
    r'Image streamed onto device (\S+) in ([\d.]+) seconds for (\d+) bytes')


_HEARTBEATER = re.compile(
    r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) .*Starting heartbeater',
    re.MULTILINE)


def first_heartbeat(agent_text):
    """When the agent sent its first heartbeat (local time), or None.

    IPA logs ``Starting heartbeater`` right before its first heartbeat.
    """
    match = _HEARTBEATER.search(agent_text)
    return parse_time(match.group(1)) if match else None


_LINE_TIME = r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) .*'
_DOWNLOAD_START = re.compile(_LINE_TIME + 'Attempting to download image',
                             re.MULTILINE)
# IPA builds a TLS context and loads the system CA certificates for every
# download (an http:// one too); its DEBUG line ends that set-up.
_DOWNLOAD_READY = re.compile(_LINE_TIME + 'Using system default CA '
                             'certificates', re.MULTILINE)
_STREAM_END = re.compile(_LINE_TIME + 'Verifying image at', re.MULTILINE)


def image_stream_phases(agent_text):
    """(set-up seconds, stream seconds) of the agent's last download.

    IPA's ``Image streamed`` figure runs from before the download's
    set-up to the device's close: set-up = start to the CA certificates
    loaded, stream = from there to the checksum check (the transfer, the
    writes and the device's close). None without the DEBUG lines.
    """
    starts = list(_DOWNLOAD_START.finditer(agent_text))
    if not starts:
        return None
    start = starts[-1]
    ready = _DOWNLOAD_READY.search(agent_text, start.end())
    end = ready and _STREAM_END.search(agent_text, ready.end())
    if not end:
        return None
    began, ready_at, ended = (parse_time(m.group(1))
                              for m in (start, ready, end))
    return ((ready_at - began).total_seconds(),
            (ended - ready_at).total_seconds())


def image_write(agent_text):
    """(device, seconds, bytes) of the agent's streamed image write."""
    match = None
    for match in _IMAGE_STREAMED.finditer(agent_text):
        pass
    if match is None:
        return None
    return match.group(1), float(match.group(2)), int(match.group(3))
