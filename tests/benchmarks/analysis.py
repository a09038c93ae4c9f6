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

"""Medians, ratios and goals of one benchmark run.

Each figure is compared with an anchor measured in the same run, never
with an absolute time: the machine is shared and loaded.
"""

import statistics

#: Goals the ratios are reported against (never asserted).
GOALS = {
    'bfv_over_direct': 0.9,
    'direct_with_over_without_plugins': 1.05,
    'attach_step_4_over_1': 1.5,
    'attach_requests_per_volume': 3,
    'detach_requests_per_volume': 1,
}


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio(a, b, digits=2):
    if a is None or not b:
        return None
    return round(a / b, digits)


def _runs(results, kind, **match):
    return [r for r in results['runs'] if r.get('kind') == kind and all(
        r.get(k) == v for k, v in match.items())]


def deploy_figures(results, small):
    """Item 1 and 2: agent start to active, medians and ratios."""
    bfv = _runs(results, 'cinder-agent', volumes=small)
    direct = _runs(results, 'direct', plugins=True)
    bare = _runs(results, 'direct', plugins=False)
    times = {name: [r['agent_start_to_active'] for r in runs]
             for name, runs in (('cinder-agent', bfv), ('direct', direct),
                                ('direct without plug-ins', bare))}
    medians = {name: median(values) for name, values in times.items()}
    from_heartbeat = {name: [r.get('heartbeat_to_active') for r in runs]
                      for name, runs in (('cinder-agent', bfv),
                                         ('direct', direct),
                                         ('direct without plug-ins', bare))}
    heartbeat_medians = {name: median(values)
                         for name, values in from_heartbeat.items()}
    return {
        'seconds': times, 'medians': medians,
        'bfv_over_direct': ratio(medians['cinder-agent'],
                                 medians['direct']),
        'from_heartbeat': from_heartbeat,
        'from_heartbeat_medians': heartbeat_medians,
        'bfv_over_direct_from_heartbeat': ratio(
            heartbeat_medians['cinder-agent'], heartbeat_medians['direct']),
        'direct_with_over_without_plugins': ratio(
            medians['direct'], medians['direct without plug-ins'], 3),
        'plugin_loaded': {
            'direct': sorted({r['cinder_plugin_loaded'] for r in direct}),
            'direct without plug-ins': sorted(
                {r['cinder_plugin_loaded'] for r in bare})},
    }


def _linear(counts, small, big):
    """(per extra volume, constant) of a figure measured at two counts."""
    if counts.get(small) is None or counts.get(big) is None:
        return None, None
    per_volume = (counts[big] - counts[small]) / float(big - small)
    return round(per_volume, 3), round(counts[small] - per_volume * small, 3)


def attach_figures(results, sizes):
    """Item 3: the attach step and Cinder requests per volume count."""
    by_count = {}
    for count in sizes:
        runs = [r for r in _runs(results, 'cinder-agent', volumes=count)
                if 'attach' in r]
        if not runs:
            continue
        row = {'runs': len(runs),
               'step_seconds': median([r.get('step_seconds')
                                       for r in runs]),
               'step_seconds_all': [r.get('step_seconds') for r in runs],
               'agent_seconds': median([r.get('agent_seconds')
                                        for r in runs]),
               'conductor_cinder_seconds': median(
                   [r.get('conductor_cinder_seconds') for r in runs])}
        for kind in ('attach', 'detach'):
            row[kind] = median([r[kind]['count'] for r in runs])
            row[kind + '_without_discovery'] = median(
                [r[kind]['count_without_discovery'] for r in runs])
            row[kind + '_by_pattern'] = runs[-1][kind]['by_pattern']
        by_count[count] = row
    out = {'by_volumes': by_count}
    if len(sizes) >= 2:
        small, big = min(sizes), max(sizes)
        steps = {c: r['step_seconds'] for c, r in by_count.items()}
        out['step_ratio'] = ratio(steps.get(big), steps.get(small))
        out['step_per_volume'], out['step_constant'] = _linear(
            steps, small, big)
        for kind in ('attach', 'detach'):
            out[kind + '_per_volume'], out[kind + '_constant'] = _linear(
                {c: r[kind] for c, r in by_count.items()}, small, big)
        # The anchor: Cinder's own time for the step's writes (create with
        # the connector, complete), all volumes at once, no Ironic, no
        # agent.
        alone = {c: median([r['seconds'] for r in _runs(
            results, 'cinder-alone', volumes=c)]) for c in (small, big)}
        out['cinder_alone_seconds'] = alone
        out['cinder_alone_ratio'] = ratio(alone.get(big), alone.get(small))
        if None not in (alone.get(big), alone.get(small),
                        steps.get(big), steps.get(small)):
            # What the step adds per extra volume beyond Cinder's own
            # extra time.
            out['step_beyond_cinder_per_volume'] = round(
                ((steps[big] - steps[small]) - (alone[big] - alone[small]))
                / (big - small), 3)
    return out


def legacy_figures(legacy, sizes):
    """Item 4: the same counts for Ironic's ``cinder`` storage interface."""
    measured = {item['volumes']: item for item in legacy or []
                if 'attach' in item}
    out = {'by_volumes': {c: {k: measured[c][k]['count']
                              for k in ('attach', 'detach')}
                          for c in measured}}
    if len(sizes) >= 2:
        small, big = min(sizes), max(sizes)
        for kind in ('attach', 'detach'):
            out[kind + '_per_volume'], out[kind + '_constant'] = _linear(
                {c: measured[c][kind]['count'] for c in measured},
                small, big)
    return out


def throughput_figures(results, small):
    """Item 5: the agent's write rate over the ``dd`` anchor."""
    rates, stream, setup = {}, {}, {}
    for name, runs in (
            ('cinder-agent (boot volume)',
             _runs(results, 'cinder-agent', volumes=small)),
            ('direct (loop device)', _runs(results, 'direct'))):
        writes = [r.get('image_write') or {} for r in runs]
        rates[name] = median([w.get('mib_per_s') for w in writes])
        stream[name] = median([w.get('stream_mib_per_s') for w in writes])
        setup[name] = median([w.get('setup_seconds') for w in writes])
    experiments = results.get('throughput') or {}
    anchor = (experiments.get('dd, host (anchor)') or {}).get('mib_per_s')
    return {'agent_mib_per_s': rates, 'dd_anchor_mib_per_s': anchor,
            'agent_over_dd': {name: ratio(rate, anchor)
                              for name, rate in rates.items()},
            # The same write without IPA's per-download set-up (TLS
            # context, system CA certificates): the rate of the bytes.
            'agent_stream_mib_per_s': stream,
            'agent_stream_over_dd': {name: ratio(rate, anchor)
                                     for name, rate in stream.items()},
            'agent_setup_seconds': setup,
            'experiments': {name: dict(item, over_anchor=ratio(
                item.get('mib_per_s'), anchor))
                for name, item in experiments.items()}}


def analyse(results, sizes):
    small = min(sizes)
    return {'deploys': deploy_figures(results, small),
            'attach': attach_figures(results, sizes),
            'legacy': legacy_figures(results.get('legacy'), sizes),
            'throughput': throughput_figures(results, small),
            'default_heartbeat': results.get('default_heartbeat')}


def goals(analysis):
    """{goal: (measured, limit, held)} for the goals of the brief."""
    deploys, attach = analysis['deploys'], analysis['attach']
    measured = {
        'bfv_over_direct': deploys['bfv_over_direct'],
        'direct_with_over_without_plugins':
            deploys['direct_with_over_without_plugins'],
        'attach_step_4_over_1': attach.get('step_ratio'),
        'attach_requests_per_volume': attach.get('attach_per_volume'),
        'detach_requests_per_volume': attach.get('detach_per_volume'),
    }
    return {name: (value, GOALS[name],
                   None if value is None else value <= GOALS[name])
            for name, value in measured.items()}
