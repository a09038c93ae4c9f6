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

"""Start, record and stop the sandbox's processes, by PID only.

Every process the sandbox starts gets a record in ``<state>/run/<name>.json``
holding its PID and its start time (in clock ticks after boot, as the kernel
keeps it: a change of the clock does not move it), so that a later ``down``
(even after a crash, even after PID reuse) signals exactly the process it
started and nothing else. The process table is read here only, through
psutil.
"""

import errno
import json
import os
import re
import signal
import socket
import subprocess

from oslo_log import log as logging
import psutil

from ipa_cinder_sandbox import errors
from ipa_cinder_sandbox import polling

LOG = logging.getLogger(__name__)

_CLOCK_TICKS = os.sysconf('SC_CLK_TCK')


def start_ticks(pid):
    """The start time of ``pid`` in clock ticks, or None if it is gone."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        # create_time() adds the boot time psutil derives from the clock;
        # without it, what remains is the kernel's own count.
        return round((proc.create_time() - psutil.boot_time())
                     * _CLOCK_TICKS)
    except psutil.NoSuchProcess:
        return None


def is_alive(pid, start_time=None):
    """True if ``pid`` runs and, if given, started at ``start_time``."""
    current = start_ticks(pid)
    if current is None:
        return False
    return start_time is None or current == start_time


def check_port_free(port, host='127.0.0.1'):
    """Raise PortInUse if something already listens on ``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            raise errors.PortInUse(
                'port %s:%d is in use (%s): choose another base with '
                '--port-base' % (host, port, e.strerror))


def port_open(port, host='127.0.0.1'):
    """True if something accepts TCP connections on ``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


class ProcessTable(object):
    """The records of the processes started under one state directory."""

    def __init__(self, run_dir, log_dir):
        self.run_dir = run_dir
        self.log_dir = log_dir

    def _record_path(self, name):
        return os.path.join(self.run_dir, '%s.json' % name)

    def log_path(self, name):
        return os.path.join(self.log_dir, '%s.log' % name)

    def start(self, name, argv, env=None, cwd=None):
        """Start ``argv`` in its own session, output to ``log/<name>.log``.

        :returns: the subprocess.Popen object.
        """
        os.makedirs(self.run_dir, exist_ok=True)
        os.makedirs(self.log_dir, exist_ok=True)
        LOG.debug('Starting %s: %s', name, ' '.join(argv))
        with open(self.log_path(name), 'ab') as log:
            try:
                proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, env=env, cwd=cwd,
                    start_new_session=True, close_fds=True)
            except OSError as e:
                raise errors.SandboxError('cannot start %s (%s): %s'
                                          % (name, argv[0], e))
        self.record(name, proc.pid, argv)
        return proc

    def record(self, name, pid, argv=None):
        """Remember ``pid`` (started by the sandbox) under ``name``."""
        os.makedirs(self.run_dir, exist_ok=True)
        data = {'name': name, 'pid': pid, 'start_time': start_ticks(pid),
                'argv': argv or []}
        with open(self._record_path(name), 'w') as f:
            json.dump(data, f)

    def records(self):
        """All records, oldest first."""
        result = []
        try:
            names = os.listdir(self.run_dir)
        except FileNotFoundError:
            return result
        for fname in names:
            if not fname.endswith('.json'):
                continue
            try:
                with open(os.path.join(self.run_dir, fname)) as f:
                    result.append(json.load(f))
            except (OSError, ValueError) as e:
                LOG.warning('Ignoring unreadable process record %s: %s',
                            fname, e)
        return sorted(result, key=lambda r: r.get('start_time') or 0)

    def get(self, name):
        try:
            with open(self._record_path(name)) as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def alive(self, name):
        """True if the process recorded under ``name`` still runs."""
        rec = self.get(name)
        return bool(rec) and is_alive(rec['pid'], rec['start_time'])

    def ensure_alive(self, name):
        """Raise SandboxError, with the log's tail, if ``name`` died."""
        if not self.alive(name):
            raise errors.SandboxError(
                '%s exited during start-up; last lines of %s:\n%s'
                % (name, self.log_path(name), self.log_tail(name)))

    def log_tail(self, name, lines=15):
        try:
            with open(self.log_path(name), errors='replace') as f:
                return ''.join(f.readlines()[-lines:])
        except FileNotFoundError:
            return '(no log)'

    def stop_many(self, names, timeout=15):
        """Signal several processes at once, then wait for each."""
        for name in names:
            rec = self.get(name)
            if rec and is_alive(rec['pid'], rec['start_time']):
                try:
                    os.kill(rec['pid'], signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for name in names:
            self.stop(name, timeout=timeout)

    def stop(self, name, timeout=15, sig=signal.SIGTERM):
        """Stop the process recorded under ``name`` and forget it."""
        rec = self.get(name)
        if rec is None:
            return False
        stopped = stop_pid(rec['pid'], rec['start_time'], name,
                           timeout=timeout, sig=sig)
        if rec['start_time'] is not None:
            # Children it forked (cinder-volume runs one per backend) are in
            # the session it led; they go with it.
            for pid in group_members(rec['pid']):
                stop_pid(pid, None, '%s child %d' % (name, pid), timeout=5)
        try:
            os.unlink(self._record_path(name))
        except FileNotFoundError:
            pass
        return stopped


def stop_pid(pid, start_time, name, timeout=15, sig=signal.SIGTERM):
    """Signal ``pid`` if it is still the process we started; wait for it.

    SIGKILL follows ``sig`` after ``timeout`` seconds.
    :returns: True if a process was stopped.
    """
    if not is_alive(pid, start_time):
        return False
    LOG.debug('Stopping %s (pid %d)', name, pid)
    for current_sig, wait in ((sig, timeout), (signal.SIGKILL, 5)):
        try:
            os.kill(pid, current_sig)
        except ProcessLookupError:
            return True
        try:
            polling.wait_until(lambda: _gone(pid, start_time), wait,
                               '%s (pid %d) exit' % (name, pid),
                               interval=0.05)
            return True
        except errors.SandboxError:
            LOG.warning('%s (pid %d) ignored signal %d', name, pid,
                        current_sig)
    raise errors.SandboxError('%s (pid %d) would not stop' % (name, pid))


def _gone(pid, start_time):
    """Reap ``pid`` if it is our child; True once it no longer runs."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    except OSError as e:
        if e.errno != errno.ECHILD:
            raise
    return not is_alive(pid, start_time)


def children(pid):
    """Direct children of ``pid`` (empty if it is gone)."""
    try:
        return [child.pid for child in psutil.Process(pid).children()]
    except psutil.NoSuchProcess:
        return []


def group_members(pgid):
    """Live PIDs of process group ``pgid`` (started by us as its leader)."""
    members = []
    for proc in psutil.process_iter(['status']):
        if proc.info['status'] == psutil.STATUS_ZOMBIE:
            continue
        try:
            if os.getpgid(proc.pid) == pgid:
                members.append(proc.pid)
        except ProcessLookupError:
            continue
    return members


def lineage():
    """This process and its ancestors."""
    me = psutil.Process()
    return {me.pid} | {parent.pid for parent in me.parents()}


def command_line(pid):
    """The command line of ``pid`` as one string, or None if it is gone."""
    try:
        return ' '.join(psutil.Process(pid).cmdline())
    except psutil.NoSuchProcess:
        return None


def pids_in_log(path, pattern):
    """PIDs a log file reports, e.g. privsep daemons that re-parent to 1."""
    regex = re.compile(pattern)
    pids = set()
    try:
        with open(path, errors='replace') as f:
            for line in f:
                match = regex.search(line)
                if match:
                    pids.add(int(match.group(1)))
    except FileNotFoundError:
        pass
    return sorted(pids)


def pids_referring_to(path):
    """PIDs whose command line names ``path`` (files of this sandbox).

    Used only to find what a crashed sandbox left behind: every process
    the sandbox starts carries its state directory on its command line.
    """
    needle = path.rstrip('/') + '/'
    me = os.getpid()
    return [proc.pid for proc in psutil.process_iter(['cmdline'])
            if proc.pid != me
            and any(needle in arg for arg in proc.info['cmdline'] or ())]
