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

"""The conductor's attach pipeline (conductor/concurrency.py)."""

import threading
import time

import pytest

from ipa_cinder.conductor import concurrency


class _Recorder(object):
    """Records what ran, in which thread, in which order."""

    def __init__(self, slow=(), fail_prepare=(), fail_connect=(),
                 fail_complete=()):
        self.slow = dict(slow)
        self.fail = {'prepare': set(fail_prepare),
                     'connect': set(fail_connect),
                     'complete': set(fail_complete)}
        self.events = []
        self.lock = threading.Lock()
        self.main = threading.current_thread()

    def _record(self, what, item):
        with self.lock:
            self.events.append((what, item))
        if item in self.fail[what]:
            raise RuntimeError('%s %s failed' % (what, item))

    def prepare(self, item):
        time.sleep(self.slow.get(item, 0))
        self._record('prepare', item)

    def connect(self, item):
        assert threading.current_thread() is self.main
        self._record('connect', item)

    def complete(self, item):
        self._record('complete', item)

    def of(self, what):
        return [item for kind, item in self.events if kind == what]


def test_connects_in_order_as_each_is_prepared():
    # Item 0 is prepared last: nothing may be connected before it, then
    # everything in order.
    rec = _Recorder(slow={0: 0.3})
    concurrency.pipeline([0, 1, 2, 3], rec.prepare, rec.connect,
                         rec.complete, workers=4)
    assert rec.of('connect') == [0, 1, 2, 3]
    assert sorted(rec.of('complete')) == [0, 1, 2, 3]
    assert rec.events.index(('prepare', 0)) < rec.events.index(
        ('connect', 0))


def test_first_is_connected_while_others_are_prepared():
    rec = _Recorder(slow={1: 0.3, 2: 0.3})
    concurrency.pipeline([0, 1, 2], rec.prepare, rec.connect, rec.complete,
                         workers=3)
    assert rec.events.index(('connect', 0)) < rec.events.index(
        ('prepare', 1))
    assert rec.events.index(('complete', 0)) < rec.events.index(
        ('prepare', 1))


def test_prepare_failure_stops_connecting_and_waits_for_the_rest():
    rec = _Recorder(slow={2: 0.3}, fail_prepare=[1])
    with pytest.raises(RuntimeError, match='prepare 1 failed'):
        concurrency.pipeline([0, 1, 2], rec.prepare, rec.connect,
                             rec.complete, workers=3)
    assert rec.of('connect') == [0]
    # The slow one still ran to its end: what it created is known.
    assert sorted(rec.of('prepare')) == [0, 1, 2]


def test_connect_failure_is_raised_and_nothing_more_connected():
    rec = _Recorder(fail_connect=[1])
    with pytest.raises(RuntimeError, match='connect 1 failed'):
        concurrency.pipeline([0, 1, 2], rec.prepare, rec.connect,
                             rec.complete, workers=2)
    assert rec.of('connect') == [0, 1]
    assert rec.of('complete') == [0]


def test_complete_failure_is_raised_after_everything_ended():
    rec = _Recorder(fail_complete=[0])
    with pytest.raises(RuntimeError, match='complete 0 failed'):
        concurrency.pipeline([0, 1, 2], rec.prepare, rec.connect,
                             rec.complete, workers=2)
    assert rec.of('connect') == [0, 1, 2]
    assert sorted(rec.of('complete')) == [0, 1, 2]


def test_one_worker_and_no_items():
    rec = _Recorder()
    concurrency.pipeline([0, 1], rec.prepare, rec.connect, rec.complete,
                         workers=1)
    assert rec.of('connect') == [0, 1]
    concurrency.pipeline([], rec.prepare, rec.connect, rec.complete,
                         workers=4)
