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

"""The benchmark's scale section: log parsing, figures and the table."""

import datetime
import os

import pytest

from tests.benchmarks import bench_scale
from tests.benchmarks import scale_report

NODE_A = '802bb994-6ba4-4d0a-8022-b8bc432ae2fc'
NODE_B = '7a43ccb0-4b5f-464d-87fe-24001fe4a9de'
PROJECT = '5a4d6b0e1c2f4a3b9d8e7f6a5b4c3d2e'
VOLUME = '0b7c1f5e-1d2a-4c3b-9e8f-7a6b5c4d3e2f'


def _moved(stamp, node, state, previous):
    return ('%s 15067 INFO ironic.conductor.task_manager [None req-c7f4346b-'
            'ea0a-4380-a052-3cd6384f1f03 - - - - - -] Node %s moved to '
            'provision state "%s" from state "%s"; target provision state '
            'is "None"\n' % (stamp, node, state, previous))


def _request(stamp, user, method, path, status=200):
    context = ('None req-807f6b0c-b529-469f-b99d-cd700f5b1df8 %s %s - - - -'
               % (user, PROJECT if user != '-' else '-'))
    return ('%s 15826 INFO eventlet.wsgi.server [%s] 127.0.0.1 "%s %s '
            'HTTP/1.1" status: %d  len: 537 time: 0.1725159\n'
            % (stamp, context, method, path, status))


CONDUCTOR_1 = (
    _moved('2026-11-29 12:58:54.548', NODE_A, 'deploying', 'available')
    + _moved('2026-11-29 12:59:10.100', NODE_A, 'wait call-back',
             'deploying')
    + _moved('2026-11-29 12:59:40.250', NODE_A, 'active', 'deploying'))
CONDUCTOR_2 = (
    _moved('2026-11-29 12:50:00.000', NODE_B, 'active', 'deploying')
    + _moved('2026-11-29 12:59:45.750', NODE_B, 'active', 'deploying'))

CINDER = (
    _request('2026-11-29 12:59:20.000', '-', 'GET', '/v3')
    + _request('2026-11-29 12:59:20.100', 'notused', 'POST',
               '/v3/attachments')
    + _request('2026-11-29 12:59:20.200', 'sandbox', 'GET',
               '/v3/%s/attachments/detail?all_tenants=1&volume_id=%s'
               % (PROJECT, VOLUME))
    + _request('2026-11-29 12:59:20.300', 'notused', 'POST',
               '/v3/attachments/%s/action' % VOLUME)
    + 'a DEBUG line that is no request\n')


def _time(text):
    return datetime.datetime.strptime(text, '%Y-%m-%d %H:%M:%S.%f')


class TestLogs(object):

    def test_transitions(self):
        found = scale_report.transitions(CONDUCTOR_1)
        assert found[-1] == (_time('2026-11-29 12:59:40.250'), NODE_A,
                             'active', 'deploying')
        assert len(found) == 3

    def test_reached_across_conductors_after_the_request(self):
        found = scale_report.reached(
            [CONDUCTOR_1, CONDUCTOR_2], {NODE_A, NODE_B}, 'active',
            after=_time('2026-11-29 12:58:00.000'))
        assert found == {NODE_A: _time('2026-11-29 12:59:40.250'),
                         NODE_B: _time('2026-11-29 12:59:45.750')}

    def test_reached_ignores_other_nodes(self):
        assert scale_report.reached([CONDUCTOR_2], {NODE_A}, 'active') == {}

    def test_without_user_drops_the_sandbox_requests(self):
        left = scale_report.without_user(CINDER, 'sandbox')
        assert 'volume_id' not in left
        assert left.count('eventlet.wsgi.server') == 3
        assert 'no request' in left

    def test_cinder_figures_per_node(self):
        figures = scale_report.cinder_figures(CINDER, 'sandbox', 2)
        assert figures['count'] == 3
        assert figures['count_without_discovery'] == 2
        assert figures['per_node'] == 1.5
        assert figures['per_node_without_discovery'] == 1.0
        assert figures['sandbox_requests'] == 1
        assert figures['by_pattern']['POST /attachments'] == 1

    def test_from_api_time_is_local(self):
        stamp = scale_report.from_api_time('2026-11-29T11:59:40.250000+00:00')
        utc = datetime.datetime(2026, 11, 29, 11, 59, 40, 250000,
                                tzinfo=datetime.timezone.utc)
        assert stamp == utc.astimezone().replace(tzinfo=None)
        assert scale_report.from_api_time(None) is None

    def test_tail_window(self, tmp_path):
        path = tmp_path / 'ironic-conductor-1.log'
        path.write_text('old line\n')
        window = scale_report.TailWindow(str(path))
        with open(path, 'a') as f:
            f.write('new line\n')
        assert window.stop().text() == 'new line\n'


class TestFigures(object):

    def test_node_deploys_with_api_fallback(self):
        starts = {NODE_A: _time('2026-11-29 12:59:10.250'),
                  NODE_B: _time('2026-11-29 12:59:11.000')}
        actives = {NODE_A: _time('2026-11-29 12:59:40.250')}
        fallback = {NODE_B: _time('2026-11-29 12:59:46.000')}
        assert scale_report.node_deploys(starts, actives, fallback) == {
            NODE_A: 30.0, NODE_B: 35.0}
        assert scale_report.node_deploys(starts, actives)[NODE_B] is None

    def test_all_active_needs_every_node(self):
        requested = _time('2026-11-29 12:59:00.000')
        actives = {NODE_A: _time('2026-11-29 12:59:40.250'),
                   NODE_B: _time('2026-11-29 12:59:45.750')}
        assert scale_report.all_active_seconds(
            requested, actives, [NODE_A, NODE_B]) == 45.75
        assert scale_report.all_active_seconds(
            requested, {NODE_A: actives[NODE_A]}, [NODE_A, NODE_B]) is None

    def test_figures_of_a_run(self):
        requested = _time('2026-11-29 12:58:00.000')
        result = {'api_active': {NODE_A: None, NODE_B: None},
                  'conductor_cpu_seconds': 3.0, 'undeploy_cpu_seconds': 1.0}
        run = scale_report.figures(
            requested, [NODE_A, NODE_B],
            {NODE_A: _time('2026-11-29 12:59:10.250'),
             NODE_B: _time('2026-11-29 12:59:15.750')},
            [CINDER, CONDUCTOR_1, CONDUCTOR_2], [CINDER, '', ''],
            'sandbox', result)
        assert run['deploy_seconds'] == {NODE_A: 30.0, NODE_B: 30.0}
        assert run['all_active_seconds'] == 105.75
        assert run['deploy_requests_per_node'] == 1.5
        assert run['undeploy_requests_per_node'] == 1.5
        assert run['conductor_cpu_per_node'] == 1.5
        assert run['undeploy_cpu_per_node'] == 0.5
        assert 'api_active' not in run
        assert '30.0' in scale_report.brief(run)


def _run(size, seconds, requests=13.0, cpu=1.0, error=None):
    nodes = ['node-%d' % i for i in range(size)]
    run = {'size': size, 'round': 1, 'load_start': [2.0, 1.0, 0.5],
           'load_end': [3.0, 1.5, 0.7]}
    if error:
        return dict(run, error=error)
    return dict(run, deploy_seconds=dict(zip(nodes, seconds)),
                all_active_seconds=max(seconds) + 20,
                deploy_requests_per_node=requests,
                undeploy_requests_per_node=6.0, conductor_cpu_per_node=cpu,
                undeploy_cpu_per_node=cpu / 2, undeploy_seconds=10.0)


class TestSummary(object):

    def test_median_and_ratio(self):
        assert scale_report.median([3, None, 1, 2]) == 2
        assert scale_report.median([4, 1, 2, 3]) == 2.5
        assert scale_report.median([None]) is None
        assert scale_report.ratio(45.0, 30.0) == 1.5
        assert scale_report.ratio(45.0, None) is None

    def test_ratios_against_one_node_alone(self):
        runs = [_run(1, [30.0]), _run(5, [30.0, 33.0, 36.0, 39.0, 60.0]),
                _run(20, [], error='AgentError: too slow')]
        summary = scale_report.summarize(runs)
        assert summary['anchor_seconds'] == 30.0
        assert set(summary['sizes']) == {1, 5}
        five = summary['sizes'][5]
        assert five['deploy_median'] == 36.0
        assert five['ratio_median'] == 1.2
        assert five['ratio_max'] == 2.0
        assert five['deploy_requests_per_node'] == 13.0
        assert summary['sizes'][1]['ratio_median'] == 1.0

    def test_medians_of_rounds(self):
        runs = [_run(1, [30.0]), _run(1, [40.0], cpu=2.0),
                _run(1, [20.0], cpu=3.0)]
        row = scale_report.summarize(runs)['sizes'][1]
        assert row['rounds'] == 3
        assert row['deploy_median'] == 30.0
        assert row['conductor_cpu_per_node'] == 2.0

    def test_table(self):
        runs = [_run(1, [30.0]), _run(5, [30.0, 33.0, 36.0, 39.0, 60.0]),
                _run(20, [], error='AgentError: too slow')]
        document = {'conductors': 2, 'cpus': 2, 'load_start': [1.0, 2.0, 3.0],
                    'load_end': [4.0, 5.0, 6.0], 'runs': runs,
                    'summary': scale_report.summarize(runs)}
        text = scale_report.table(document)
        assert scale_report.HEADER in text
        assert 'one node alone: 30.0 s' in text
        assert '20 nodes (round 1) FAILED: AgentError: too slow' in text
        row = [line for line in text.splitlines()
               if line.split()[:1] == ['5']][0]
        assert row.split()[:7] == ['5', '1', '80.0', '36.0', '60.0', '1.20',
                                   '2.00']


class TestArguments(object):

    def test_defaults(self):
        args = bench_scale.parse_args([])
        assert args.sizes == [1, 5, 20]
        assert args.repeat == 1
        assert args.port_base == 19550
        assert args.state_dir.endswith('ipa-cinder-bench-scale')

    def test_one_node_is_always_measured(self):
        assert bench_scale.parse_args(['--sizes', '20,5']).sizes == [1, 5, 20]

    @pytest.mark.parametrize('sizes', ['0', 'a,b', ','])
    def test_bad_sizes(self, sizes):
        with pytest.raises(SystemExit):
            bench_scale.parse_args(['--sizes', sizes])


class TestProcesses(object):

    def test_cpu_and_memory_of_this_process(self):
        assert scale_report.cpu_seconds([os.getpid()]) > 0
        assert scale_report.rss_mib([os.getpid()]) > 0

    def test_gone_processes_count_nothing(self):
        assert scale_report.cpu_seconds([2 ** 22 + 1]) == 0
        assert scale_report.rss_mib([2 ** 22 + 1]) == 0
