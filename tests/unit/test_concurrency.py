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

"""Per-volume work run concurrently on the conductor (concurrency.py)."""

import threading
import time

import pytest

from ipa_cinder.conductor import concurrency


class _Calls(object):
    """Records the calls, how many ran at once, and fails some."""

    def __init__(self, fail=(), slow=0.05):
        self.fail = set(fail)
        self.slow = slow
        self.done = []
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def __call__(self, item):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(self.slow)
        with self.lock:
            self.running -= 1
            self.done.append(item)
        if item in self.fail:
            raise RuntimeError('item %s failed' % item)
        return item * 10


def test_results_in_order_and_bounded():
    calls = _Calls()
    assert concurrency.concurrently(calls, [3, 1, 2, 0], workers=2) == [
        30, 10, 20, 0]
    assert calls.most == 2
    assert sorted(calls.done) == [0, 1, 2, 3]


def test_first_failure_in_item_order_after_every_call_ended():
    calls = _Calls(fail={2, 1})
    with pytest.raises(RuntimeError, match='item 1 failed'):
        concurrency.concurrently(calls, [0, 1, 2, 3], workers=4)
    # Every call ran to its end: the caller can undo what each created.
    assert sorted(calls.done) == [0, 1, 2, 3]
    assert calls.running == 0


def test_one_worker_runs_in_the_calling_thread():
    main = threading.current_thread()
    seen = []
    concurrency.concurrently(lambda i: seen.append(
        (i, threading.current_thread() is main)), [0, 1], workers=1)
    assert seen == [(0, True), (1, True)]
    assert concurrency.concurrently(seen.append, [], workers=4) == []
