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

"""The sandbox's fault proxy: which request gets which fault."""

import http.server
import threading
import time

import pytest
import requests

from ipa_cinder_sandbox import faults


def test_rule_fires_on_its_occurrence_only():
    book = faults.RuleBook()
    rule = book.add('POST', r'/attachments$', '503', occurrence=2)
    assert book.choose('POST', '/v3/p/attachments') is None
    assert book.choose('POST', '/v3/p/attachments') == '503'
    assert book.choose('POST', '/v3/p/attachments') is None
    assert (rule.seen, rule.fired) == (3, 1)


def test_method_and_path_must_both_match():
    book = faults.RuleBook()
    book.add('DELETE', r'/attachments/[0-9a-f-]+$', 'drop', times=None)
    assert book.choose('GET', '/v3/p/attachments/abc-1') is None
    assert book.choose('DELETE', '/v3/p/attachments/detail?x=1') is None
    assert book.choose('delete', '/v3/p/attachments/abc-1') == 'drop'
    assert book.choose('DELETE', '/v3/p/attachments/abc-2') == 'drop'


def test_times_and_any_method():
    book = faults.RuleBook()
    book.add('*', r'/volumes/', '500', times=2)
    assert [book.choose(m, '/v3/p/volumes/v') for m in
            ('GET', 'POST', 'GET')] == ['500', '500', None]


def test_first_rule_wins_and_every_rule_counts():
    book = faults.RuleBook()
    first = book.add('POST', r'/action$', 'lose')
    second = book.add('POST', r'/action$', '500', occurrence=2)
    assert book.choose('POST', '/v3/p/attachments/a/action') == 'lose'
    assert book.choose('POST', '/v3/p/attachments/a/action') == '500'
    assert (first.seen, second.seen) == (2, 2)
    assert [h[2] for h in book.history] == ['lose', '500']


def test_bad_rules_are_refused():
    with pytest.raises(ValueError):
        faults.Rule('GET', '/', '418')
    with pytest.raises(ValueError):
        faults.Rule('GET', '/', 'drop', occurrence=0)


class _Upstream(http.server.BaseHTTPRequestHandler):
    calls = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        self.calls.append(body)
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def proxy():
    upstream = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Upstream)
    thread = threading.Thread(target=upstream.serve_forever, daemon=True)
    thread.start()
    _Upstream.calls = []
    with faults.FaultProxy('http://127.0.0.1:%d'
                           % upstream.server_address[1], timeout=5) as p:
        yield p
    upstream.shutdown()
    upstream.server_close()


def test_proxy_forwards_answers_and_injects(proxy):
    url = proxy.url + '/v3/p/attachments'
    assert requests.post(url, data=b'{"a": 1}', timeout=5).json() == {
        'a': 1}
    proxy.add('POST', r'/attachments$', '503')
    answer = requests.post(url, data=b'{}', timeout=5)
    assert answer.status_code == 503
    assert 'serviceUnavailable' in answer.json()
    proxy.add('POST', r'/attachments$', 'drop')
    with pytest.raises(requests.ConnectionError):
        requests.post(url, data=b'{"b": 2}', timeout=5)
    proxy.add('POST', r'/attachments$', 'lose')
    with pytest.raises(requests.ConnectionError):
        requests.post(url, data=b'{"c": 3}', timeout=5)
    # Only the first and the lost request reached the upstream.
    assert _Upstream.calls == [b'{"a": 1}', b'{"c": 3}']
    assert proxy.endpoint('http://127.0.0.1:1/v3/p') == url[:-12]


def test_delay_holds_then_forwards(proxy, monkeypatch):
    monkeypatch.setattr(faults, 'DELAY', 0.3)
    rule = proxy.add('POST', r'/action$', 'delay')
    began = time.monotonic()
    answer = requests.post(proxy.url + '/v3/p/attachments/a/action',
                           data=b'{"os-complete": null}', timeout=5)
    assert answer.status_code == 200
    assert time.monotonic() - began >= 0.3
    assert rule.fired == 1
    assert _Upstream.calls == [b'{"os-complete": null}']
