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

Cinder calls of several volumes may run at the same time; the agent runs
one command at a time (IPA refuses a command while another is running),
so its commands are sent from the calling thread, one after the other.
Each started call runs to its end, even after another failed, so that the
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


def pipeline(items, prepare, connect, complete, workers):
    """Prepare concurrently, connect in order, complete concurrently.

    ``connect(item)`` runs in the calling thread, in the order of
    ``items``, as soon as ``prepare(item)`` has ended: the first item is
    connected while the others are still being prepared, and completed
    while the next ones are connected. After a failure nothing more is
    connected; the calls already started run to their end.

    :param workers: how many prepare/complete calls run at the same time.
    :raises: the first failure, once every started call has ended.
    """
    if not items:
        return
    workers = min(workers, len(items)) or 1
    with futures.ThreadPoolExecutor(max_workers=workers) as pool:
        prepared = [pool.submit(prepare, item) for item in items]
        completing = []
        error = None
        for item, job in zip(items, prepared):
            try:
                job.result()
                connect(item)
            except Exception as e:
                error = e
                break
            completing.append(pool.submit(complete, item))
        futures.wait(prepared + completing)
    if error is not None:
        raise error
    _first_error(prepared + completing)
