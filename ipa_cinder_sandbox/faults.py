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

"""A fault-injecting HTTP proxy in front of the sandbox's cinder-api.

:class:`FaultProxy` listens on 127.0.0.1, forwards every request to the
real cinder-api and, when a :class:`Rule` matches the request (method,
path regular expression, which occurrence of it), does instead what the
rule says:

``500`` / ``503``
    answer that status with a Cinder-style fault body, without forwarding;
``drop``
    close the connection without forwarding or answering;
``lose``
    forward the request (Cinder does the work), then close the connection
    without passing the answer on: the client never learns the outcome;
``delay``
    hold the request for :data:`DELAY` seconds, then forward it (a window
    in which a test can restart the caller mid-call);
``freeze``
    accept the request and never answer it: hold it, unforwarded, until
    the proxy closes or :data:`FREEZE` seconds pass, then close the
    connection (a cinder-api that hangs).

Everything is bounded: every socket has a timeout, the server threads are
daemons, and :meth:`FaultProxy.close` stops the listener and waits for it.
:func:`route_ironic` restarts the sandbox's Ironic with one more
configuration file whose ``[cinder] endpoint_override`` is the proxy (and
shorter ``[ipa_cinder] cinder_retry_*`` bounds); :func:`restore_ironic`
restarts it with its own configuration again.
"""

import configparser
import http.client
import http.server
import json
import re
import threading
import urllib.parse

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

#: What a rule can do to a matching request.
ACTIONS = ('500', '503', 'drop', 'lose', 'delay', 'freeze')
#: Seconds a ``delay`` rule holds a request.
DELAY = 15
#: Seconds a ``freeze`` rule holds a request at most.
FREEZE = 300
#: Seconds a client or upstream socket may stay silent.
SOCKET_TIMEOUT = 60
#: Headers that belong to one hop, never forwarded.
_HOP_HEADERS = frozenset(['connection', 'keep-alive', 'proxy-connection',
                          'transfer-encoding', 'te', 'trailer', 'upgrade',
                          'content-length', 'host'])


class Rule(object):
    """One fault: what to do to which requests.

    :param method: HTTP method (``*`` for any).
    :param path: regular expression searched in the request path (query
        string included).
    :param action: one of :data:`ACTIONS`.
    :param occurrence: the first matching request (1-based) that gets the
        fault; earlier ones are forwarded untouched.
    :param times: how many matching requests in a row get it from there
        (None: every one).
    """

    def __init__(self, method, path, action, occurrence=1, times=1):
        if action not in ACTIONS:
            raise ValueError('unknown fault action %r (one of %s)'
                             % (action, ', '.join(ACTIONS)))
        if occurrence < 1 or (times is not None and times < 1):
            raise ValueError('occurrence and times start at 1')
        self.method = method.upper()
        self.pattern = re.compile(path)
        self.action = action
        self.occurrence = occurrence
        self.times = times
        #: Requests that matched method and path so far.
        self.seen = 0
        #: Requests that got the fault so far.
        self.fired = 0

    def matches(self, method, path):
        return (self.method in ('*', method.upper())
                and self.pattern.search(path) is not None)

    def consider(self, method, path):
        """Count a request; whether it gets the fault."""
        if not self.matches(method, path):
            return False
        self.seen += 1
        if self.seen < self.occurrence:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        self.fired += 1
        return True

    def __repr__(self):
        return '<Rule %s %s -> %s #%d x%s (fired %d)>' % (
            self.method, self.pattern.pattern, self.action, self.occurrence,
            self.times, self.fired)


class RuleBook(object):
    """Rules in the order they were added; the first that fires wins."""

    def __init__(self):
        self._lock = threading.Lock()
        self.rules = []
        #: (method, path, action or 'forward') of every request.
        self.history = []

    def add(self, method, path, action, occurrence=1, times=1):
        rule = Rule(method, path, action, occurrence, times)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self):
        with self._lock:
            self.rules = []
            self.history = []

    def choose(self, method, path):
        """The action for a request (None: forward it untouched).

        Every rule sees every request, so that occurrences count the same
        whatever rule fired on an earlier one.
        """
        with self._lock:
            chosen = None
            for rule in self.rules:
                if rule.consider(method, path) and chosen is None:
                    chosen = rule.action
            self.history.append((method.upper(), path, chosen or 'forward'))
            return chosen


class _Handler(http.server.BaseHTTPRequestHandler):
    """Forwards one request (HTTP/1.0: one request per connection)."""

    server_version = 'ipa-cinder-sandbox-faults'
    timeout = SOCKET_TIMEOUT

    def log_message(self, fmt, *args):
        LOG.debug('fault proxy: ' + fmt, *args)

    def _handle(self):
        proxy = self.server.fault_proxy
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else None
        action = proxy.rules.choose(self.command, self.path)
        if action == 'drop':
            LOG.info('fault proxy: dropping %s %s', self.command, self.path)
            self.close_connection = True
            return
        if action in ('500', '503'):
            LOG.info('fault proxy: answering %s to %s %s', action,
                     self.command, self.path)
            self._answer_fault(int(action))
            return
        if action == 'freeze':
            LOG.info('fault proxy: freezing %s %s', self.command, self.path)
            proxy.closing.wait(FREEZE)
            self.close_connection = True
            return
        if action == 'delay':
            LOG.info('fault proxy: holding %s %s for %s s', self.command,
                     self.path, DELAY)
            # Cut short when the proxy closes.
            proxy.closing.wait(DELAY)
        status, reason, headers, payload = proxy.forward(
            self.command, self.path, self.headers, body)
        if action == 'lose':
            LOG.info('fault proxy: losing the answer (%s) to %s %s',
                     status, self.command, self.path)
            self.close_connection = True
            return
        self.send_response(status, reason)
        for name, value in headers:
            if name.lower() not in _HOP_HEADERS:
                self.send_header(name, value)
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _answer_fault(self, status):
        name = {500: 'computeFault', 503: 'serviceUnavailable'}[status]
        payload = json.dumps({name: {
            'code': status,
            'message': 'injected by the sandbox fault proxy'}}).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _safely(self):
        try:
            self._handle()
        except (OSError, http.client.HTTPException) as e:
            LOG.warning('fault proxy: %s %s failed: %s', self.command,
                        self.path, e)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _safely


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # A restarted proxy takes its port again at once.
    allow_reuse_address = True


class FaultProxy(object):
    """The proxy: ``with FaultProxy(upstream) as proxy: proxy.url``.

    :param upstream: ``http://host:port`` of cinder-api.
    :param port: port to listen on (0: any free one).
    """

    def __init__(self, upstream, port=0, timeout=SOCKET_TIMEOUT):
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream_host = parsed.hostname
        self.upstream_port = parsed.port or 80
        self.timeout = timeout
        self.rules = RuleBook()
        self._server = _Server(('127.0.0.1', port), _Handler)
        self._server.fault_proxy = self
        self._server.timeout = timeout
        self.port = self._server.server_address[1]
        self.url = 'http://127.0.0.1:%d' % self.port
        self._thread = None
        #: Set by :meth:`close`: held requests stop waiting.
        self.closing = threading.Event()

    def start(self):
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={'poll_interval': 0.2},
            name='fault-proxy-%d' % self.port, daemon=True)
        self._thread.start()
        return self

    def close(self):
        """Stop listening and wait for the listener (at most 10 s)."""
        self.closing.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(10)
            self._thread = None
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def add(self, method, path, action, occurrence=1, times=1):
        """Add a :class:`Rule`; returns it (see ``fired``)."""
        return self.rules.add(method, path, action, occurrence, times)

    def clear(self):
        self.rules.clear()

    def endpoint(self, url):
        """``url`` of cinder-api with the proxy's host and port."""
        parsed = urllib.parse.urlsplit(url)
        return urllib.parse.urlunsplit(parsed._replace(
            netloc='127.0.0.1:%d' % self.port))

    def forward(self, method, path, headers, body):
        """Send the request upstream; (status, reason, headers, body)."""
        conn = http.client.HTTPConnection(self.upstream_host,
                                          self.upstream_port,
                                          timeout=self.timeout)
        try:
            conn.request(method, path, body=body, headers={
                k: v for k, v in headers.items()
                if k.lower() not in _HOP_HEADERS})
            response = conn.getresponse()
            payload = response.read()
            return (response.status, response.reason,
                    response.getheaders(), payload)
        finally:
            conn.close()


def _ironic_argv(box):
    return list(box.procs.get('ironic')['argv'])


def _restart_ironic(box, argv):
    box.ironic.restart(argv)


def route_ironic(box, proxy, retry=None, extra=None):
    """Restart Ironic with its ``[cinder]`` endpoint on the proxy.

    :param box: the :class:`ipa_cinder_sandbox.sandbox.Sandbox`.
    :param retry: ``[ipa_cinder]`` options to override as well (shorter
        ``cinder_retry_*`` bounds keep failure tests short).
    :param extra: more options to override, ``{section: {name: value}}``
        (a short ``[conductor] deploy_callback_timeout`` for a scenario
        whose agent dies); calling again without it drops them.
    :returns: the path of the override file.
    """
    path = box.layout.path('etc', 'ironic-faults.conf')
    conf = configparser.ConfigParser(interpolation=None)
    upstream = box.layout.cinder_url.rsplit('/', 1)[0]
    conf['cinder'] = {'endpoint_override': proxy.endpoint(upstream)}
    if retry:
        conf['ipa_cinder'] = {k: str(v) for k, v in retry.items()}
    for section, options in (extra or {}).items():
        conf[section] = {k: str(v) for k, v in options.items()}
    with open(path, 'w') as f:
        conf.write(f)
    argv = _without_override(_ironic_argv(box), path) + ['--config-file', path]
    _restart_ironic(box, argv)
    return path


def restore_ironic(box):
    """Restart Ironic without the override of :func:`route_ironic`."""
    path = box.layout.path('etc', 'ironic-faults.conf')
    argv = _ironic_argv(box)
    if path in argv:
        _restart_ironic(box, _without_override(argv, path))


def _without_override(argv, path):
    result = []
    skip = False
    for index, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == '--config-file' and index + 1 < len(argv) and (
                argv[index + 1] == path):
            skip = True
            continue
        result.append(arg)
    return result
