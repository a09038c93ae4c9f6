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

"""What Ironic's and Cinder's logs say about a deploy, as a timeline.

Ironic logs each deploy step it starts and finishes and (through
ipa-cinder) each Cinder call it makes; Cinder's API logs each request it
serves. Read from a :class:`LogWindow` opened before the deploy, they give
what happened, when, and how long it took.
"""

import datetime
import os
import re

from ipa_cinder_sandbox.demo import narration
from ipa_cinder_sandbox import layout as layout_mod

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
_SANDBOX_USER = layout_mod.USER_ID


class LogWindow(object):
    """What a log file gains from now on."""

    def __init__(self, path):
        self.path = path
        self.offset = os.path.getsize(path) if os.path.exists(path) else 0

    def read(self):
        """What was appended since the window opened."""
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
    """Print the steps and Cinder calls, then Cinder's own view."""
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
    narration.show_lines(title or 'timeline (from Ironic\'s log: start '
                         'after the deploy request, duration)', lines)
    if cinder_api:
        requests = ['%s %s -> %d in %.3fs' % (c['method'], _short(c['path']),
                                              c['status'], c['seconds'])
                    for c in cinder_api]
        narration.show_lines('Ironic\'s requests in Cinder\'s own API log '
                             '(%d)' % len(requests), requests)
