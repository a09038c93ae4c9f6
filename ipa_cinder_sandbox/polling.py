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

"""Waiting until something holds, the one way the sandbox polls.

A service that starts, a process that stops, an agent that answers, a node
that deploys: each is polled at a fixed interval for a bounded time, with
tenacity doing the looping.
"""

import tenacity

from ipa_cinder_sandbox import errors


def _not_yet(result):
    return not result


def wait_until(predicate, timeout, what, interval=0.2, on_tick=None,
               retry_on=(Exception,), error=errors.SandboxError):
    """Poll ``predicate`` until it returns a true value; return that value.

    :param timeout: seconds to keep polling.
    :param what: what is awaited, for the error message.
    :param interval: seconds between two polls.
    :param on_tick: called before each poll; what it raises ends the wait
        at once (for instance: the service being waited for has died).
    :param retry_on: the exceptions of ``predicate`` that mean "not yet"
        (a service that starts fails in many ways); any other ends the wait.
    :param error: the class of the error raised on timeout.
    :raises error: after ``timeout`` seconds, naming ``what`` and the last
        poll's exception, if it raised one.
    """
    def timed_out(retry_state):
        failure = retry_state.outcome.exception()
        raise error('%s not ready after %ss%s' % (
            what, timeout, ': %s' % failure if failure else ''))

    def before(_retry_state):
        if on_tick is not None:
            on_tick()

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_delay(timeout),
        wait=tenacity.wait_fixed(interval),
        retry=(tenacity.retry_if_exception_type(tuple(retry_on))
               | tenacity.retry_if_result(_not_yet)),
        before=before,
        retry_error_callback=timed_out)
    return retrying(predicate)
