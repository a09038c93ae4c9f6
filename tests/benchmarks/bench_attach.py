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

"""Deploy speed of ``cinder-agent``: one run, a table and JSON.

A benchmark, not a test: it asserts nothing about time. Run as root::

    .venv/bin/python -W ignore -m tests.benchmarks.bench_attach \
        --output bench-attach.json

It brings up its own sandbox (``--state-dir``, default
``<tmp>/ipa-cinder-bench``; ports from ``--port-base``, default 19500, so
the developer's (18700) and the functional tests' (18750) sandboxes are
left alone) and measures, in one run, each figure against an anchor of
the same run (the machine's load average is printed at start and end):

1. a ``cinder-agent`` deploy (one ``local`` boot volume) against a stock
   ``direct`` deploy of the same image onto a sandbox loop device, from
   the agent's start (the node waits in ``wait call-back``) to
   ``active``, interleaved, medians of ``--repeat``
   (:mod:`tests.benchmarks.flows`);
2. the same ``direct`` deploy by an agent without ipa-cinder's plug-ins
   (their entry points hidden from stevedore in that agent only);
3. the ``cinder_attach_volumes`` step (from Ironic's log) for 1 and 4
   volumes, and the Cinder requests of each attach (deploy) and detach
   (undeploy), counted in Cinder's API log (:mod:`tests.benchmarks.logs`);
4. the same counts for Ironic's own ``cinder`` storage interface, run by
   a real second Ironic against the same Cinder
   (:mod:`tests.benchmarks.second_ironic`; ``--legacy none`` skips it);
5. the agent's image write rate against ``dd conv=fsync`` onto a fresh
   loop device, and experiments on where the confined agent loses
   throughput (:mod:`tests.benchmarks.throughput`);
6. one ``cinder-agent`` / ``direct`` pair with Ironic's default
   ``[api] ramdisk_heartbeat_timeout`` (a second Ironic; the sandbox's
   uses 10 s).

The table goes to stdout (:mod:`tests.benchmarks.report`), everything
measured also as JSON to ``--output``. Nodes, volumes, loop devices,
agents, the second Ironics and the sandbox are removed at the end, also
after a failure or SIGTERM; ``--max-minutes`` bounds the run (phases not
started by then are skipped and listed). Exit status 0 when every deploy
and undeploy worked; timings never fail the run.
"""

import argparse
import importlib.util
import os
import sys
import tempfile
import time

from ipa_cinder_sandbox import handle as sandbox_handle

from tests.benchmarks import analysis as analysis_mod
from tests.benchmarks import flows
from tests.benchmarks import report
from tests.benchmarks import runner
from tests.benchmarks import second_ironic
from tests.benchmarks import throughput


class Bench(object):
    """One sandbox, the deploys, the measurements and the clean-up."""

    def __init__(self, args):
        self.args = args
        self.sandbox = None
        self.deadline = time.monotonic() + args.max_minutes * 60
        self.results = {'runs': [], 'legacy': None, 'throughput': None,
                        'default_heartbeat': None, 'errors': [],
                        'skipped': []}

    def log(self, message):
        print('[%s] %s' % (time.strftime('%H:%M:%S'), message), flush=True)

    def up(self):
        self.log('bringing the sandbox up in %s (ports from %d)'
                 % (self.args.state_dir, self.args.port_base))
        self.sandbox = sandbox_handle.SandboxHandle.start(
            self.args.state_dir, self.args.port_base,
            database=self.args.database,
            cinder_api_workers=self.args.cinder_api_workers)
        self.log('sandbox up in %.1f s' % self.sandbox.startup_seconds)
        logs = os.path.join(self.sandbox.state_dir, 'log')
        self.cinder_log = os.path.join(logs, 'cinder-api.log')
        self.ironic_log = os.path.join(logs, 'ironic.log')
        self.deployer = flows.Deployer(self.sandbox,
                                       self.args.deploy_timeout, self.log)

    def down(self):
        if self.sandbox is None:
            return
        self.log('removing nodes, volumes and devices, bringing the sandbox '
                 'down')
        for error in self.sandbox.close():
            self.results['errors'].append('clean-up: %s' % error)
        left = self.sandbox.leftovers()
        if any(left.values()):
            self.results['errors'].append('sandbox left behind: %s' % left)
        self.sandbox = None

    def _time_left(self, phase):
        if time.monotonic() < self.deadline:
            return True
        self.log('time limit reached: skipping %s' % phase)
        self.results['skipped'].append(phase)
        return False

    def _round(self, number):
        """One of each deploy; the order turns from round to round."""
        small, big = min(self.args.sizes), max(self.args.sizes)
        deployer = self.deployer
        kinds = [
            ('cinder-agent, %d volume(s)' % small,
             lambda: deployer.run_cinder_agent(
                 small, cinder_log=self.cinder_log,
                 ironic_log=self.ironic_log)),
            ('direct', lambda: deployer.run_direct()),
            ('direct without plug-ins',
             lambda: deployer.run_direct(plugins=False)),
        ]
        if big != small:
            kinds.append(('cinder-agent, %d volume(s)' % big,
                          lambda: deployer.run_cinder_agent(
                              big, cinder_log=self.cinder_log,
                              ironic_log=self.ironic_log)))
            kinds.append(('Cinder alone, %d volume(s)' % small,
                          lambda: deployer.cinder_alone(small)))
            kinds.append(('Cinder alone, %d volume(s)' % big,
                          lambda: deployer.cinder_alone(big)))
        turn = number % len(kinds)
        for name, run in kinds[turn:] + kinds[:turn]:
            if not self._time_left('round %d: %s' % (number + 1, name)):
                continue
            result = run()
            result['round'] = number + 1
            self.results['runs'].append(result)
            self._check(name, result)

    def _check(self, name, result):
        if result.get('kind') != 'cinder-agent':
            return
        count = result['volumes']
        if (result['attachments_after_deploy'] != count
                or result['attachments_after_undeploy']):
            self.results['errors'].append(
                '%s: %d attachment(s) after deploy, %d after undeploy'
                % (name, result['attachments_after_deploy'],
                   result['attachments_after_undeploy']))
        if result.get('step_seconds') is None:
            self.results['errors'].append(
                '%s: no cinder_attach_volumes step found in ironic.log'
                % name)

    def run(self):
        for number in range(self.args.repeat):
            self.log('round %d/%d' % (number + 1, self.args.repeat))
            self._round(number)
        if self._time_left('throughput'):
            self.results['throughput'] = throughput.Throughput(
                self.sandbox, self.args.repeat, self.log).measure()
        if self.args.legacy != 'none' and self._time_left('legacy flow'):
            self.results['legacy'] = second_ironic.measure_legacy(
                self.deployer, self.args.sizes, self.cinder_log,
                self.results['errors'])
        if self.args.default_heartbeat and self._time_left(
                'default heartbeat pair'):
            self.results['default_heartbeat'] = (
                second_ironic.measure_default_heartbeat(
                    self.deployer, self.results['errors']))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m tests.benchmarks.bench_attach',
        description='Deploy speed of cinder-agent against direct, Cinder '
                    'requests per attach/detach, image write rate.')
    parser.add_argument('--output', help='write the results as JSON here')
    parser.add_argument('--state-dir', default=os.path.join(
        tempfile.gettempdir(), 'ipa-cinder-bench'))
    parser.add_argument('--port-base', type=int, default=19500)
    parser.add_argument('--database', default='auto',
                        choices=('auto', 'sqlite', 'mariadb'),
                        help='auto: MariaDB when mariadbd and PyMySQL are '
                             'installed (no "database is locked"), else '
                             'SQLite')
    parser.add_argument('--cinder-api-workers', type=int,
                        default=os.cpu_count() or 1,
                        help='cinder-api processes (default: one per CPU, '
                             'as Cinder itself; test sandboxes run one)')
    parser.add_argument('--repeat', type=int, default=3,
                        help='rounds of deploys (medians reported)')
    parser.add_argument('--volumes', default='1,4',
                        help='two volume counts, comma separated')
    parser.add_argument('--legacy', default='ironic',
                        choices=('ironic', 'none'),
                        help='Ironic\'s cinder storage interface in a '
                             'second Ironic, or not at all')
    parser.add_argument('--no-default-heartbeat', dest='default_heartbeat',
                        action='store_false',
                        help='skip the deploy pair at Ironic\'s default '
                             'ramdisk_heartbeat_timeout')
    parser.add_argument('--deploy-timeout', type=int, default=300)
    parser.add_argument('--max-minutes', type=float, default=90,
                        help='start no new phase after this long')
    args = parser.parse_args(argv)
    args.sizes = sorted({int(v) for v in args.volumes.split(',') if v})
    if not args.sizes or min(args.sizes) < 1 or len(args.sizes) > 2:
        parser.error('--volumes needs one or two positive counts')
    if args.database == 'auto':
        args.database = ('mariadb' if os.path.exists('/usr/sbin/mariadbd')
                         and importlib.util.find_spec('pymysql')
                         else 'sqlite')
    return args


def _document(args, bench, began, load_start):
    return dict(runner.header('bench_attach', began, load_start), **{
        'repeat': args.repeat,
        'database': args.database, 'volumes': args.sizes,
        'cinder_api_workers': args.cinder_api_workers,
        'ramdisk_heartbeat_timeout': {'sandbox': 10, 'ironic_default': 300},
        'legacy_from_code': second_ironic.LEGACY_FROM_CODE,
        'runs': bench.results['runs'], 'legacy': bench.results['legacy'],
        'throughput': bench.results['throughput'],
        'default_heartbeat': bench.results['default_heartbeat'],
        'skipped': bench.results['skipped'],
        'errors': bench.results['errors'],
    })


def main(argv=None):
    args = parse_args(argv)
    if os.geteuid() != 0:
        print('The sandbox needs root (loop devices, tgtd, the agent\'s '
              'jail).', file=sys.stderr)
        return 2
    runner.clean_up_on_sigterm()
    load_start = list(os.getloadavg())
    began = time.monotonic()
    bench = Bench(args)
    failed = runner.run(bench, bench.results['errors'])
    document = _document(args, bench, began, load_start)
    analysis = analysis_mod.analyse(document, args.sizes)
    document['analysis'] = analysis
    document['goals'] = analysis_mod.goals(analysis)
    return runner.finish(document,
                         report.table(document, analysis, args.sizes),
                         args.output, failed)


if __name__ == '__main__':
    sys.exit(main())
