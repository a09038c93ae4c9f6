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

"""Find and remove what a sandbox (possibly a crashed one) left behind.

Only things that carry the state directory are touched: processes whose
command line names a file under it, mounts below it, loop devices backed
by files under it.
"""

from oslo_concurrency import processutils
from oslo_log import log as logging

from ipa_cinder.host import mounts
from ipa_cinder_sandbox import loopdev
from ipa_cinder_sandbox import process

LOG = logging.getLogger(__name__)


def unmount_all_under(directory):
    """Unmount everything below ``directory`` (lazily if busy)."""
    points = mounts.mounts_under(directory)
    for point in points:
        try:
            mounts.unmount(point)
        except processutils.ProcessExecutionError as e:
            LOG.warning('umount %s failed (%s); detaching it lazily', point,
                        (e.stderr or e.stdout or '').strip())
            try:
                mounts.unmount(point, lazy=True)
            except processutils.ProcessExecutionError as e:
                LOG.warning('Lazy umount of %s failed too: %s', point,
                            (e.stderr or '').strip())
    return points


def leftover_pids(state_dir):
    """Processes naming the state directory, except this one's lineage."""
    mine = process.lineage()
    return [pid for pid in process.pids_referring_to(state_dir)
            if pid not in mine]


def stop_leftovers(state_dir):
    """Stop every process still naming the state directory."""
    stopped = []
    for pid in leftover_pids(state_dir):
        cmd = process.command_line(pid)
        if cmd is None:
            continue
        LOG.info('Stopping leftover process %d: %s', pid, cmd[:200])
        if process.stop_pid(pid, None, 'leftover %d' % pid, timeout=10):
            stopped.append(pid)
    return stopped


def clean(state_dir):
    """Unmount, detach loop devices, stop leftovers; report what went."""
    return {
        'mounts': unmount_all_under(state_dir),
        'processes': stop_leftovers(state_dir),
        'loop_devices': loopdev.detach_all_under(state_dir),
    }
