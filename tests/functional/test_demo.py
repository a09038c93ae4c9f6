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

"""``make demo``'s core, run against the session's sandbox.

The demo's :func:`ipa_cinder_sandbox.demo.run` takes a running sandbox, so
this runs exactly what ``make demo`` shows without a second sandbox, and
checks what it reports.
"""

import datetime

from ipa_cinder_sandbox import demo
from ipa_cinder_sandbox.demo import timeline


def test_demo_reports_a_bfv_deploy(sandbox):
    report = demo.run(sandbox, narrate=False)

    assert report['deploy_state'] == 'active'
    assert len(report['attachments']) == 1
    attachment = report['attachments'][0]
    assert attachment['status'] == 'attached'
    assert attachment['attach_mode'] == 'rw'
    assert attachment['instance'] == report['node']
    assert report['volume_status_active'] == 'in-use'
    assert report['checksum_match']
    assert report['image_sha256'] == report['volume_sha256']
    assert report['target_properties']['driver_volume_type'] == 'local'
    assert report['ipxe_local']['pxe_options'] == {}

    assert report['volume_status_after'] == 'available'
    assert report['attachments_after'] == 0

    steps = [e['name'] for e in report['timeline'] if e['kind'] == 'step']
    for step in ('deploy', 'cinder_attach_volumes', 'write_image',
                 'cinder_configure_boot', 'prepare_instance_boot',
                 'cinder_disconnect_volumes', 'boot_instance'):
        assert step in steps
    assert steps.index('cinder_attach_volumes') < steps.index('write_image')
    assert all(e['seconds'] is not None and e['seconds'] >= 0
               for e in report['timeline'])
    calls = [e['name'] for e in report['timeline'] if e['kind'] == 'cinder']
    assert calls, 'no Cinder call found in Ironic\'s log'
    assert any('/attachments' in c['path'] and c['method'] == 'POST'
               for c in report['cinder_api'])

    script = report['ipxe_iscsi']['script']
    assert 'sanhook --drive 0x80 iscsi:127.0.0.1::' in script
    assert 'set initiator-iqn %s' % report['connector']['initiator'] in script
    assert 'set password ***' in script

    # Nothing of the demo is left in the sandbox (the agent is looked up by
    # this machine's MAC: one node at a time).
    names = [n['name'] for n in sandbox.ironic.get('/v1/nodes')['nodes']]
    assert not [n for n in names if n and n.startswith('demo-')]
    volumes = sandbox.cinder.get('/volumes', microversion='3.0')['volumes']
    assert not [v for v in volumes if (v.get('name') or '').startswith(
        'demo-')]


def test_timeline_parsing():
    began = datetime.datetime(2026, 11, 22, 3, 45, 53)
    node = '61902208-4bfc-4f52-8988-e8add9b2fcd7'
    prefix = '2026-11-22 03:45:%s 6253 INFO ironic.conductor.deployments ' \
        '[None req-1 - - - - - -] '
    text = '\n'.join([
        prefix % '53.810' + "Executing {'step': 'deploy', 'priority': 100, "
        "'abortable': True} on node %s" % node,
        prefix % '58.299' + "Executing {'step': 'cinder_attach_volumes', "
        "'priority': 90, 'abortable': True} on node %s" % node,
        '2026-11-22 03:45:58.400 6253 DEBUG ipa_cinder.cinder [-] Cinder '
        'attachment_create: POST http://127.0.0.1:1/v3/p/attachments '
        '(microversion 3.54) -> HTTP 200 in 0.210 s',
        prefix % '59.000' + "Node %s finished deploy step {'step': "
        "'cinder_attach_volumes', 'priority': 90}" % node,
        prefix % '59.500' + 'Node %s moved to provision state "active" '
        'from state "deploying"; target provision state is "None"' % node,
    ])
    events = timeline.parse_ironic_log(text, node, began)
    assert [(e['kind'], e['name']) for e in events] == [
        ('step', 'deploy'), ('step', 'cinder_attach_volumes'),
        ('cinder', 'attachment_create')]
    assert round(events[0]['seconds'], 3) == 4.489
    assert round(events[1]['seconds'], 3) == 0.701
    assert events[2]['url'] == '/v3/p/attachments'
    assert events[2]['seconds'] == 0.21
