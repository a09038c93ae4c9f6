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

"""The scale section's figures and table, from logs and measurements.

Pure functions: the provision-state changes the conductors log, the
Cinder requests of the conductors (not of the sandbox's own clients) in a
slice of cinder-api.log, each node's deploy time, the medians of the
rounds, ratios against the one-node deploy of the same run, and the
table printed by :mod:`tests.benchmarks.bench_scale`.
"""

import datetime
import os
import re

import psutil

from tests.benchmarks import logs

# Ironic's task manager logs every provision state change of a node.
_TRANSITION = re.compile(
    r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) .*Node ([0-9a-f-]{36}) moved '
    r'to provision state "([^"]+)" from state "([^"]+)"', re.MULTILINE)


def median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    middle = len(values) // 2
    if len(values) % 2:
        return values[middle]
    return (values[middle - 1] + values[middle]) / 2.0


def ratio(value, anchor, digits=2):
    if value is None or not anchor:
        return None
    return round(value / anchor, digits)


def transitions(text):
    """[(time, node, state, previous)] of the provision state changes."""
    return [(logs.parse_time(m.group(1)), m.group(2), m.group(3),
             m.group(4)) for m in _TRANSITION.finditer(text)]


def reached(texts, nodes, state, after=None):
    """{node: when it first moved to ``state``} (after ``after``).

    :param texts: the conductors' logs (a node may change conductor).
    :param nodes: the node UUIDs of interest; others are ignored.
    """
    found = {}
    for text in texts:
        for stamp, node, new, _old in transitions(text):
            if node not in nodes or new != state:
                continue
            if after is not None and stamp < after:
                continue
            if node not in found or stamp < found[node]:
                found[node] = stamp
    return found


def from_api_time(text):
    """An Ironic API timestamp (UTC, ISO 8601) as local naive time."""
    if not text:
        return None
    stamp = datetime.datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return stamp.astimezone().replace(tzinfo=None)


def without_user(text, user):
    """``text`` without the request lines of Cinder user ``user``.

    The sandbox's own clients (node and volume set-up, the device
    brokers that decide which agent may see which export) all call
    Cinder as ``user``; the conductors call it as their own service
    user (or anonymously for version discovery). What is left are the
    requests ipa-cinder makes.
    """
    own = re.compile(r'\[\S+ req-[0-9a-f-]+ %s ' % re.escape(user))
    return ''.join(line for line in text.splitlines(True)
                   if not own.search(line))


def cinder_figures(text, user, nodes):
    """Cinder requests of a window of cinder-api.log, per node.

    :returns: the conductors' requests (``logs.summarize_requests``),
        plus ``per_node`` and ``sandbox_requests`` (the rest).
    """
    every = logs.cinder_requests(text)
    ours = logs.cinder_requests(without_user(text, user))
    summary = logs.summarize_requests(ours)
    summary['per_node'] = (round(summary['count'] / float(nodes), 2)
                           if nodes else None)
    summary['per_node_without_discovery'] = (
        round(summary['count_without_discovery'] / float(nodes), 2)
        if nodes else None)
    summary['sandbox_requests'] = len(every) - len(ours)
    return summary


def node_deploys(starts, actives, fallback=None):
    """{node: seconds from its agent's start to ``active``}.

    :param starts: {node: local naive time its agent was started}.
    :param actives: {node: time it moved to ``active``} from the logs.
    :param fallback: {node: time} from the API, for nodes the logs miss.
    """
    seconds = {}
    for node, began in starts.items():
        ended = actives.get(node) or (fallback or {}).get(node)
        seconds[node] = (None if ended is None or began is None
                         else round((ended - began).total_seconds(), 2))
    return seconds


def all_active_seconds(requested, actives, nodes):
    """From the deploy request to the last node ``active``, or None."""
    if not nodes or any(node not in actives for node in nodes):
        return None
    return round((max(actives[n] for n in nodes)
                  - requested).total_seconds(), 2)


def per_node(value, nodes, digits=2):
    return None if value is None or not nodes else round(
        value / float(nodes), digits)


def summarize(runs):
    """{size: medians over the rounds} and ratios to the one-node deploy.

    The anchor is the median deploy time of the size-1 runs of the same
    document: a node's deploy among N at once, relative to alone.
    """
    by_size = {}
    for run in runs:
        if run.get('error'):
            continue
        by_size.setdefault(run['size'], []).append(run)
    anchor = median(
        seconds for run in by_size.get(1, [])
        for seconds in run['deploy_seconds'].values())
    summary = {'anchor_seconds': anchor, 'sizes': {}}
    for size, items in sorted(by_size.items()):
        node_seconds = [s for run in items
                        for s in run['deploy_seconds'].values()]
        row = {'rounds': len(items)}
        for key in ('all_active_seconds', 'deploy_requests_per_node',
                    'undeploy_requests_per_node', 'conductor_cpu_per_node',
                    'undeploy_cpu_per_node', 'undeploy_seconds'):
            row[key] = median(run.get(key) for run in items)
        row['deploy_median'] = median(node_seconds)
        row['deploy_max'] = max((s for s in node_seconds if s is not None),
                                default=None)
        row['ratio_median'] = ratio(row['deploy_median'], anchor)
        row['ratio_max'] = ratio(row['deploy_max'], anchor)
        row['load_start'] = items[0]['load_start']
        row['load_end'] = items[-1]['load_end']
        summary['sizes'][size] = row
    return summary


def figures(requested, nodes, starts, texts, undeploy_texts, user, result):
    """The run's figures from the logs of the deploy and the undeploy."""
    size = len(nodes)
    actives = reached(texts[1:], nodes, 'active', after=requested)
    fallback = {u: from_api_time(t)
                for u, t in result.pop('api_active').items()}
    deploy_seconds = node_deploys(starts, actives, fallback)
    result.update(
        nodes=nodes,
        deploy_seconds=deploy_seconds,
        all_active_seconds=all_active_seconds(
            requested, actives, nodes),
        deploy_cinder=cinder_figures(texts[0], user, size),
        undeploy_cinder=cinder_figures(undeploy_texts[0], user, size),
        conductor_cpu_per_node=per_node(
            result['conductor_cpu_seconds'], size, 3),
        undeploy_cpu_per_node=per_node(
            result['undeploy_cpu_seconds'], size, 3))
    result['deploy_requests_per_node'] = result['deploy_cinder']['per_node']
    result['undeploy_requests_per_node'] = result['undeploy_cinder'][
        'per_node']
    return result


def brief(run):
    if run.get('error'):
        return 'FAILED: %s' % run['error']
    return ('all active after %s s, node deploys %s s, %s Cinder requests '
            'per node, %s conductor CPU s per node' % (
                run.get('all_active_seconds'),
                sorted(s for s in run.get('deploy_seconds', {}).values()
                       if s is not None),
                run.get('deploy_requests_per_node'),
                run.get('conductor_cpu_per_node')))


class TailWindow(object):
    """What is appended to a log file from now on (no settling needed)."""

    def __init__(self, path):
        self.path = path
        self.begin = os.path.getsize(path) if os.path.exists(path) else 0

    def stop(self):
        return self

    def text(self):
        with open(self.path, 'rb') as f:
            f.seek(self.begin)
            return f.read().decode('utf-8', errors='replace')


def cpu_seconds(pids):
    """User + system CPU seconds of ``pids``, their children, reaped ones."""
    total = 0.0
    seen = set()
    for pid in pids:
        try:
            parent = psutil.Process(pid)
            family = [parent] + parent.children(recursive=True)
        except psutil.NoSuchProcess:
            continue
        for proc in family:
            if proc.pid in seen:
                continue
            seen.add(proc.pid)
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += (times.user + times.system + times.children_user
                      + times.children_system)
    return total


def rss_mib(pids):
    """Resident memory (MiB) of ``pids`` and all their children."""
    total = 0
    for pid in pids:
        try:
            parent = psutil.Process(pid)
            for proc in [parent] + parent.children(recursive=True):
                total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return round(total / 1048576.0, 1)


def fmt(value, spec='%.2f'):
    return '-' if value is None else spec % value


HEADER = ('%5s %6s %8s %8s %8s %7s %7s %8s %8s %7s %7s  %s' % (
    'nodes', 'rounds', 'all act', 'node med', 'node max', 'x1 med',
    'x1 max', 'req dep', 'req und', 'cpu dep', 'cpu und', 'load 1m'))


def table(document):
    """The scale section as text."""
    summary = document['summary']
    lines = ['Scale: concurrent cinder-agent deploys on %d conductors '
             '(one local boot volume each), %d CPUs; load average (1, 5, '
             '15 min) at start %s, at end %s' % (
                 document['conductors'], document['cpus'],
                 ' '.join('%.2f' % v for v in document['load_start']),
                 ' '.join('%.2f' % v for v in document['load_end'])),
             'one node alone: %s s from its agent start to active'
             % fmt(summary['anchor_seconds'], '%.1f'),
             '', HEADER]
    for size, row in sorted(summary['sizes'].items()):
        lines.append('%5d %6d %8s %8s %8s %7s %7s %8s %8s %7s %7s  %s' % (
            size, row['rounds'], fmt(row['all_active_seconds'], '%.1f'),
            fmt(row['deploy_median'], '%.1f'), fmt(row['deploy_max'], '%.1f'),
            fmt(row['ratio_median']), fmt(row['ratio_max']),
            fmt(row['deploy_requests_per_node'], '%.1f'),
            fmt(row['undeploy_requests_per_node'], '%.1f'),
            fmt(row['conductor_cpu_per_node']),
            fmt(row['undeploy_cpu_per_node']),
            '%.1f -> %.1f' % (row['load_start'][0], row['load_end'][0])))
    lines += [
        '',
        'all act: deploy request of every node to the last one active (s);',
        'node med/max: each node, its agent\'s start to active (s); x1: '
        'that over one node alone;',
        'req dep/und: Cinder API requests per node made by the conductors '
        'during the deploy / the undeploy (cinder-api.log);',
        'cpu dep/und: CPU seconds (user+system) of both conductors and '
        'their children per node, deploy / undeploy.']
    for run in document['runs']:
        if run.get('error'):
            lines.append('%d nodes (round %d) FAILED: %s'
                         % (run['size'], run['round'], run['error']))
    return '\n'.join(lines)
