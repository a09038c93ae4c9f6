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

"""Running a node's per-volume work concurrently, on the conductor.

Cinder calls of several volumes may run at the same time (the agent runs
one command at a time, so it gets one command for all of them). Each
started call runs to its end, even after another failed, so that the
caller knows everything that was created and can undo it.
"""

from concurrent import futures


def _first_error(jobs):
    for job in jobs:
        if job.exception() is not None:
            raise job.exception()


def concurrently(function, items, workers):
    """``function(item)`` for every item, at most ``workers`` at a time.

    :returns: the results, in the order of ``items``.
    :raises: the first failure (in the order of ``items``), once every
        call has ended.
    """
    workers = min(workers, len(items)) or 1
    if workers == 1:
        return [function(item) for item in items]
    with futures.ThreadPoolExecutor(max_workers=workers) as pool:
        jobs = [pool.submit(function, item) for item in items]
        futures.wait(jobs)
    _first_error(jobs)
    return [job.result() for job in jobs]
