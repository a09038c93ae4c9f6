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

"""The benchmark's scale section: 1, 5 and 20 concurrent BFV deploys.

A benchmark, not a test: it asserts nothing about time. Run as root::

    .venv/bin/python -W ignore -m tests.benchmarks.bench_scale \
        --output bench-scale.json --sizes 1,5,20

It brings up its own sandbox with Ironic as ``ironic-api`` and two
``ironic-conductor`` processes on MariaDB (``--state-dir``, default
``<tmp>/ipa-cinder-bench-scale``; ports from ``--port-base``, default
19550; a concurrent run takes the next slot). For each size N, smallest
first, it enrols N ``cinder-agent`` nodes with a ``local`` boot volume
each (:mod:`tests.functional.scale.fleet`), requests the deploy of all
at once, starts all their agents at once when every node waits in
``wait call-back``, and waits until all are ``active``; then undeploys
all and checks that nothing leaked (:mod:`tests.functional.faults.
leaks`). Measured:

* time from the deploy request to the last node ``active`` and, per
  node, from its agent's start to ``active`` (the conductors' logs), and
  that over the one-node deploy of the same run;
* Cinder API requests per node of the conductors during the deploy and
  the undeploy (cinder-api.log; the sandbox's own requests, e.g. the
  device brokers', are counted apart);
* CPU seconds (user + system) of both conductors and their children per
  node; the load average at the start and end of each size.

The table goes to stdout (:mod:`tests.benchmarks.scale_report`),
everything as JSON to ``--output``. Nodes, volumes, agents and the
sandbox are removed at the end, also after a failure or SIGTERM.
"""

import argparse
import datetime
import os
import sys
import tempfile
import time
import traceback

import psutil

from ipa_cinder_sandbox import database as database_mod
from ipa_cinder_sandbox import handle as sandbox_handle
from ipa_cinder_sandbox import layout as layout_mod

from tests.benchmarks import logs
from tests.benchmarks import runner
from tests.benchmarks import scale_report
from tests.functional.faults import leaks
from tests.functional.scale import fleet as fleet_mod

CONDUCTORS = 2

#: MAC index ranges of the rounds do not overlap (Ironic refuses a MAC
#: that a node not yet deleted still has).
INDEX_STEP = 1000

#: Nodes (each with its volume) enrolled at the same time.
ENROL_AT_ONCE = 5


class ScaleBench(object):
    """The cluster sandbox, the deploys of each size, the clean-up."""

    def __init__(self, args):
        self.args = args
        self.sandbox = None
        self.deadline = time.monotonic() + args.max_minutes * 60
        self.runs = []
        self.errors = []
        self.skipped = []

    def log(self, message):
        print('[%s] %s' % (time.strftime('%H:%M:%S'), message), flush=True)

    def up(self):
        self.log('bringing the cluster sandbox up in %s (ports from %d, %d '
                 'conductors)' % (self.args.state_dir, self.args.port_base,
                                  CONDUCTORS))
        self.sandbox = sandbox_handle.SandboxHandle.start_exclusive(
            self.args.state_dir, self.args.port_base, database='mariadb',
            conductors=CONDUCTORS)
        self.log('sandbox up in %.1f s (%s)' % (self.sandbox.startup_seconds,
                                                self.sandbox.state_dir))
        self.image = fleet_mod.os_image(self.sandbox)
        procs = self.sandbox.box.procs
        self.ironic = self.sandbox.box.ironic
        self.cinder_log = procs.log_path('cinder-api')
        self.conductor_logs = [procs.log_path(name) for name in
                               self.ironic.conductor_names()]

    def down(self):
        if self.sandbox is None:
            return
        self.log('bringing the sandbox down')
        for error in self.sandbox.close():
            self.errors.append('clean-up: %s' % error)
        left = self.sandbox.leftovers()
        if any(left.values()):
            self.errors.append('sandbox left behind: %s' % left)
        self.sandbox = None

    def conductor_pids(self):
        procs = self.sandbox.box.procs
        return [procs.get(name)['pid']
                for name in self.ironic.conductor_names()]

    def run(self):
        for number in range(self.args.repeat):
            for size in self.args.sizes:
                phase = '%d nodes, round %d' % (size, number + 1)
                if time.monotonic() > self.deadline:
                    self.log('time limit reached: skipping %s' % phase)
                    self.skipped.append(phase)
                    continue
                first = (number * len(self.args.sizes)
                         + self.args.sizes.index(size)) * INDEX_STEP
                self.runs.append(self.measure(size, number + 1, first))

    def measure(self, size, number, first_index):
        """One size: enrol, deploy, undeploy, check, remove; a run dict."""
        self.log('%d node(s), round %d: enrolling' % (size, number))
        run = {'size': size, 'round': number}
        volumes_before = set(self.sandbox._volumes)
        baseline = leaks.process_baseline(self.sandbox)
        fleet = fleet_mod.Fleet(self.sandbox, self.image,
                                parallel=max(8, size))
        try:
            # Set-up, not measured: enrolled ENROL_AT_ONCE at a time
            # (20 volume creates at once overrun cinder-api's 30 s).
            for first in range(0, size, ENROL_AT_ONCE):
                fleet.enrol(min(ENROL_AT_ONCE, size - first),
                            first_index + first)
            run.update(Round(self, fleet).deploy_and_undeploy())
            fleet.stop_agents()
            found = leaks.leaks(self.sandbox,
                                volumes=[m.volume for m in fleet.members],
                                nodes=[m.node for m in fleet.members],
                                baseline=baseline)
            run['leaked'] = {k: v for k, v in found.items() if v}
            if run['leaked']:
                self.errors.append('%d nodes: leaked %s'
                                   % (size, run['leaked']))
        except Exception as e:
            run['error'] = '%s: %s' % (type(e).__name__, e)
            self.errors.append('%d nodes, round %d: %s'
                               % (size, number, run['error']))
            traceback.print_exc()
        finally:
            fleet.close(volumes_before)
        self.log('%d node(s): %s' % (size, scale_report.brief(run)))
        return run


class Round(object):
    """Deploy and undeploy one fleet, measuring as it goes."""

    def __init__(self, bench, fleet):
        self.bench = bench
        self.fleet = fleet
        self.sandbox = bench.sandbox
        self.nodes = [m.uuid for m in fleet.members]
        self.starts = {}
        self.agent_start_seconds = {}

    def _windows(self):
        """cinder-api.log (settled: it counts requests), the conductors'."""
        return ([logs.LogWindow(self.bench.cinder_log).start()]
                + [scale_report.TailWindow(path)
                   for path in self.bench.conductor_logs])

    def start_agents(self):
        """Every member's agent at once; each one's start time noted."""
        self.fleet.start_agents(
            start_timeout=self.bench.args.agent_start_timeout)
        for member in self.fleet.members:
            self.starts[member.uuid] = datetime.datetime.fromtimestamp(
                member.agent_started)
            self.agent_start_seconds[member.uuid] = round(
                member.agent_start_seconds, 2)

    def deploy(self):
        args = self.bench.args
        windows = self._windows()
        cpu = scale_report.cpu_seconds(self.bench.conductor_pids())
        requested = datetime.datetime.now()
        began = time.monotonic()
        self.fleet.set_state('active')
        self.fleet.wait('wait call-back', timeout=args.callback_timeout)
        waiting = round(time.monotonic() - began, 2)
        self.bench.log('all %d in wait call-back after %.1f s: starting '
                       'their agents' % (len(self.nodes), waiting))
        self.start_agents()
        seen = self.fleet.wait('active', timeout=args.deploy_timeout)
        polled = round(time.monotonic() - began, 2)
        agents_rss = scale_report.rss_mib(
            [m.agent.jail.proc.pid for m in self.fleet.members])
        cpu = scale_report.cpu_seconds(self.bench.conductor_pids()) - cpu
        texts = [w.stop().text() for w in windows]
        return requested, texts, {
            'wait_callback_seconds': waiting,
            'all_active_polled_seconds': polled,
            'agent_start_seconds': self.agent_start_seconds,
            'agents_rss_mib': agents_rss,
            'conductor_cpu_seconds': round(cpu, 2),
            'api_active': {u: n.get('provision_updated_at')
                           for u, n in seen.items()}}

    def undeploy(self):
        windows = self._windows()
        cpu = scale_report.cpu_seconds(self.bench.conductor_pids())
        began = time.monotonic()
        self.fleet.set_state('deleted')
        self.fleet.wait('available', timeout=self.bench.args.deploy_timeout)
        seconds = round(time.monotonic() - began, 2)
        cpu = scale_report.cpu_seconds(self.bench.conductor_pids()) - cpu
        return [w.stop().text() for w in windows], seconds, cpu

    def attached(self):
        """{node: [(instance, status)]} of nodes not attached as expected."""
        wrong = {}
        for member in self.fleet.members:
            found = [(a['instance'], a['status'])
                     for a in self.fleet.attachments(member)]
            if found != [(member.uuid, 'attached')]:
                wrong[member.uuid] = found
        return wrong

    def deploy_and_undeploy(self):
        size = len(self.nodes)
        load_start = list(os.getloadavg())
        requested, texts, result = self.deploy()
        result['wrongly_attached'] = self.attached()
        if result['wrongly_attached']:
            self.bench.errors.append('%d nodes: attachments not as expected: '
                                     '%s' % (size,
                                             result['wrongly_attached']))
        undeploy_texts, seconds, cpu = self.undeploy()
        return scale_report.figures(
            requested, self.nodes, self.starts, texts, undeploy_texts,
            layout_mod.USER_ID, dict(
                result, undeploy_seconds=seconds,
                undeploy_cpu_seconds=round(cpu, 2), load_start=load_start,
                load_end=list(os.getloadavg())))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m tests.benchmarks.bench_scale',
        description='Concurrent cinder-agent deploys on two conductors: '
                    'time to all active, per-node deploy time against one '
                    'node alone, Cinder requests and conductor CPU per '
                    'node.')
    parser.add_argument('--output', help='write the results as JSON here')
    parser.add_argument('--state-dir', default=os.path.join(
        tempfile.gettempdir(), 'ipa-cinder-bench-scale'))
    parser.add_argument('--port-base', type=int, default=19550)
    parser.add_argument('--sizes', default='1,5,20',
                        help='node counts, comma separated (1 is always '
                             'run: it is the anchor)')
    parser.add_argument('--repeat', type=int, default=1,
                        help='rounds of every size (medians reported)')
    parser.add_argument('--callback-timeout', type=int, default=600,
                        help='seconds for all nodes to wait for agents')
    parser.add_argument('--deploy-timeout', type=int, default=1200,
                        help='seconds for all nodes to be active (and '
                             'available again)')
    parser.add_argument('--agent-start-timeout', type=int, default=600,
                        help='seconds for each agent\'s API to answer')
    parser.add_argument('--max-minutes', type=float, default=90,
                        help='start no new size after this long')
    args = parser.parse_args(argv)
    try:
        sizes = {int(v) for v in args.sizes.split(',') if v.strip()}
    except ValueError:
        parser.error('--sizes takes positive integers, comma separated')
    if not sizes or min(sizes) < 1 or args.repeat < 1:
        parser.error('--sizes takes positive integers, --repeat >= 1')
    args.sizes = sorted(sizes | {1})
    return args


def document_of(args, bench, began, load_start):
    return dict(runner.header('bench_scale', began, load_start), **{
        'conductors': CONDUCTORS,
        'memory_mib': round(psutil.virtual_memory().total / 1048576.0),
        'sizes': args.sizes, 'repeat': args.repeat,
        'runs': bench.runs,
        'summary': scale_report.summarize(bench.runs),
        'skipped': bench.skipped, 'errors': bench.errors,
    })


def main(argv=None):
    args = parse_args(argv)
    if os.geteuid() != 0:
        print('The sandbox needs root (loop devices, tgtd, the agents\' '
              'jails).', file=sys.stderr)
        return 2
    if not os.path.exists(database_mod.MARIADBD):
        print('Two conductors share a database only MariaDB serves them: '
              'install mariadb-server (%s is missing).'
              % database_mod.MARIADBD, file=sys.stderr)
        return 2
    runner.clean_up_on_sigterm()
    load_start = list(os.getloadavg())
    began = time.monotonic()
    bench = ScaleBench(args)
    failed = runner.run(bench, bench.errors)
    document = document_of(args, bench, began, load_start)
    return runner.finish(document, scale_report.table(document),
                         args.output, failed)


if __name__ == '__main__':
    sys.exit(main())
