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

"""The benchmark's table, as printed on stdout."""

from tests.benchmarks import analysis as analysis_mod
from tests.benchmarks import second_ironic


def fmt(value, spec='%.2f'):
    return '-' if value is None else spec % value


def _load(document):
    start, end = document['load_start'], document['load_end']
    lines = ['Load average (1, 5, 15 min): start %s, end %s; %d CPUs'
             % (' '.join('%.2f' % v for v in start),
                ' '.join('%.2f' % v for v in end) if end else '-',
                document['cpus'])]
    if document.get('database'):
        lines.append('Sandbox: %s, %s cinder-api worker(s)' % (
            document['database'], document.get('cinder_api_workers', 1)))
    return lines


def _deploys(analysis, heartbeat):
    deploys = analysis['deploys']
    lines = ['', 'Deploys, agent start to active (s), medians of %s runs'
             % {k: len(v) for k, v in deploys['seconds'].items()},
             '%-28s %8s  %s' % ('deploy', 'median', 'every run')]
    for name, values in deploys['seconds'].items():
        lines.append('%-28s %8s  %s' % (
            name, fmt(deploys['medians'][name], '%.1f'),
            ', '.join(fmt(v, '%.1f') for v in values)))
    lines.append('first heartbeat to active (s)')
    for name, values in deploys.get('from_heartbeat', {}).items():
        lines.append('%-28s %8s  %s' % (
            name, fmt(deploys['from_heartbeat_medians'][name], '%.1f'),
            ', '.join(fmt(v, '%.1f') for v in values)))
    lines.append('ratio cinder-agent / direct: %s from the agent start, %s '
                 'from the first heartbeat' % (
                     deploys['bfv_over_direct'],
                     deploys.get('bfv_over_direct_from_heartbeat')))
    lines.append('[api] ramdisk_heartbeat_timeout of the sandbox Ironic: 10 '
                 '(Ironic default: 300)')
    default = heartbeat or {}
    if default.get('error'):
        lines.append('  at the default (second Ironic): failed: %s'
                     % default['error'])
    elif default:
        bfv, direct = default['cinder-agent'], default['direct']
        lines.append('  at the default (second Ironic, one pair): '
                     'cinder-agent %.1f s, direct %.1f s, ratio %s' % (
                         bfv['agent_start_to_active'],
                         direct['agent_start_to_active'],
                         analysis_mod.ratio(bfv['agent_start_to_active'],
                                            direct['agent_start_to_active'])))
        bfv_hb = bfv.get('heartbeat_to_active')
        direct_hb = direct.get('heartbeat_to_active')
        lines.append('  from the first heartbeat: cinder-agent %s s, direct '
                     '%s s, ratio %s' % (bfv_hb, direct_hb,
                                         analysis_mod.ratio(bfv_hb,
                                                            direct_hb)))
    lines.append('plug-in loaded by the agent: %s'
                 % deploys['plugin_loaded'])
    return lines


def _requests(analysis, sizes):
    attach, legacy = analysis['attach'], analysis['legacy']
    lines = ['', 'Cinder API requests (cinder-api.log) and the '
             'cinder_attach_volumes step (ironic.log), medians',
             '%-7s %-4s %9s %9s %9s %9s %8s %8s %8s' % (
                 'volumes', 'runs', 'attach', 'detach', 'legacy a',
                 'legacy d', 'step s', 'Cinder s', 'agent s')]
    for count in sizes:
        row = attach['by_volumes'].get(count)
        if not row:
            continue
        old = legacy['by_volumes'].get(count, {})
        lines.append('%-7d %-4d %9s %9s %9s %9s %8s %8s %8s' % (
            count, row['runs'], fmt(row['attach'], '%d'),
            fmt(row['detach'], '%d'), fmt(old.get('attach'), '%d'),
            fmt(old.get('detach'), '%d'), fmt(row['step_seconds'], '%.3f'),
            fmt(row['conductor_cinder_seconds'], '%.3f'),
            fmt(row['agent_seconds'], '%.3f')))
        lines.append('        step seconds of every run: %s' % ', '.join(
            fmt(s, '%.3f') for s in row['step_seconds_all']))
    lines.append('per volume + constant: cinder-agent attach %s + %s, '
                 'detach %s + %s; Ironic cinder storage interface attach '
                 '%s + %s, detach %s + %s' % tuple(fmt(v, '%g') for v in (
                     attach.get('attach_per_volume'),
                     attach.get('attach_constant'),
                     attach.get('detach_per_volume'),
                     attach.get('detach_constant'),
                     legacy.get('attach_per_volume'),
                     legacy.get('attach_constant'),
                     legacy.get('detach_per_volume'),
                     legacy.get('detach_constant'))))
    lines.append('attach step: %s s per volume + %s s' % (
        fmt(attach.get('step_per_volume'), '%.3f'),
        fmt(attach.get('step_constant'), '%.3f')))
    alone = attach.get('cinder_alone_seconds') or {}
    if alone:
        small, big = min(sizes), max(sizes)
        lines.append(
            'Cinder alone (the step\'s create + complete of every volume at '
            'once, no Ironic, no agent): %s s for %d, %s s for %d, ratio %s; '
            'the step adds %s s per extra volume beyond Cinder\'s own' % (
                fmt(alone.get(small), '%.3f'), small,
                fmt(alone.get(big), '%.3f'), big,
                fmt(attach.get('cinder_alone_ratio')),
                fmt(attach.get('step_beyond_cinder_per_volume'), '%.3f')))
    return lines


def _patterns(analysis, legacy_runs, sizes):
    lines = []
    legacy = {item['volumes']: item for item in legacy_runs or []
              if 'attach' in item}
    for count in sizes:
        row = analysis['attach']['by_volumes'].get(count, {})
        for kind in ('attach', 'detach'):
            lines += ['', '%s, %d volume(s), by request:' % (kind, count)]
            for name, number in row.get(kind + '_by_pattern', {}).items():
                lines.append('  %3d  %s' % (number, name))
            if count in legacy:
                lines.append('  Ironic cinder storage interface:')
                for name, number in legacy[count][kind][
                        'by_pattern'].items():
                    lines.append('  %3d  %s' % (number, name))
    lines.append('  (Ironic code, per volume: attach %s; detach %s)' % (
        ', '.join(second_ironic.LEGACY_FROM_CODE['attach']),
        ', '.join(second_ironic.LEGACY_FROM_CODE['detach'])))
    return lines


def _throughput(analysis):
    data = analysis['throughput']
    lines = ['', 'Image write (MiB/s; the agent\'s from its log, "Image '
             'streamed onto device"), against dd conv=fsync: %s MiB/s'
             % fmt(data['dd_anchor_mib_per_s'], '%.0f')]
    for name, rate in data['agent_mib_per_s'].items():
        lines.append('  agent, %-38s %7s  x%s' % (
            name, fmt(rate, '%.0f'), fmt(data['agent_over_dd'][name])))
    for name, rate in (data.get('agent_stream_mib_per_s') or {}).items():
        lines.append('  agent, %-38s %7s  x%s  (after %s s of set-up)' % (
            name.split(' (')[0] + ', bytes only', fmt(rate, '%.0f'),
            fmt(data['agent_stream_over_dd'][name]),
            fmt(data['agent_setup_seconds'][name], '%.3f')))
    for name, item in data['experiments'].items():
        if 'error' in item:
            lines.append('  %-45s failed: %s' % (name, item['error']))
            continue
        lines.append('  %-45s %7s  x%s  (%s)' % (
            name, fmt(item['mib_per_s'], '%.0f'), fmt(item['over_anchor']),
            ', '.join('%.0f' % v for v in item['all'])))
    return lines


def _goals(analysis):
    lines = ['', 'Goals (ratios of the same run):']
    for name, (value, limit, held) in analysis_mod.goals(analysis).items():
        lines.append('  %-36s %8s <= %-5s %s' % (
            name, fmt(value, '%g'), limit,
            {True: 'held', False: 'NOT held', None: 'not measured'}[held]))
    return lines


def table(document, analysis, sizes):
    """The whole table, as text."""
    lines = _load(document)
    lines += _deploys(analysis, document.get('default_heartbeat'))
    lines += _requests(analysis, sizes)
    lines += _throughput(analysis)
    lines += _goals(analysis)
    lines += _patterns(analysis, document.get('legacy'), sizes)
    return '\n'.join(lines)
