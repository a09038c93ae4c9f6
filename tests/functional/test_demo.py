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
from ipa_cinder_sandbox.demo import vm_console


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


# The VM act (``vm_act``, 5-10 minutes under TCG) never runs here: only
# what it reads and prints, which needs no service.

_CONSOLE = (
    '\n[ipa-cinder-sandbox] demo-vm: power on at 2026-11-29T09:46:16+00:00\n'
    '\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16.2-debian-1.16.2-1)\r\n'
    'http://10.0.2.100:19508/boot.ipxe... ok\r\r\n'
    'pxelinux.cfg/52-54-00-4b-ec-00... ok\r\r\n'
    'Probing EDD (edd=off to disable)... o\x1bc\x1b[?7l\x1b[2J[    0.000000]'
    ' Linux version 6.1.0-57-cloud-amd64 (debian-kernel@lists.debian.org)\r\n'
    '[\x1b[0;32m  OK  \x1b[0m] Started \x1b[0;1;39mironic-python-agen\xe2\x80'
    '\xa6service\x1b[0m - Ironic Python Agent.\r\r\n'
    '[  200.97] scsi host0: iSCSI Initiator over TCP/IP\r\n'
    '[  203.10] sd 0:0:0:1: [sda] Attached SCSI disk\r\n'
    'Registered SAN device 0x80\r\n'
    'IPA-CINDER-BOOTED ibft_initiator=iqn.x:node os_initiator=iqn.x:node '
    'root=/dev/sda1 marker=m4rk\r\n')


def test_vm_console_milestones(tmp_path):
    log = tmp_path / 'serial.log'
    log.write_text('an earlier boot: IPA-CINDER-BOOTED ibft_initiator=a '
                   'os_initiator=a root=b marker=c\n')
    clock = iter(range(100)).__next__
    watch = vm_console.SerialWatch(str(log), clock)
    text = _CONSOLE.encode('latin-1').decode('utf-8')
    half = len(text) // 2
    with open(log, 'a') as f:
        f.write(text[:half])
    first = watch.poll()
    with open(log, 'a') as f:
        f.write(text[half:])
    found = first + watch.poll()
    assert [key for key, *_ in found] == [
        'power', 'chain', 'node script', 'kernel', 'agent', 'iscsi session',
        'disk', 'san hook', 'marker']
    told = [event[2] for event in found]
    assert told[1] == 'iPXE chained http://10.0.2.100:19508/boot.ipxe'
    assert told[3] == 'kernel 6.1.0-57-cloud-amd64 starting'
    assert told[6] == 'an iSCSI LUN is /dev/sda in the VM'
    marker = vm_console.MARKER.search(watch.last('marker')[3])
    assert marker.groups() == ('iqn.x:node', 'iqn.x:node', '/dev/sda1',
                               'm4rk')
    assert watch.last('failed') is None


def test_vm_ipxe_lines_mask_chap():
    user, password = 'Us3rN4meXyZq', 'pAssW0rd9Qz7Lm2K'
    script = '\n'.join([
        '#!ipxe', 'set attempts:int32 10', 'goto boot_iscsi', ':deploy',
        'kernel http://10.0.2.100:1/deploy_kernel', ':boot_iscsi', 'imgfree',
        'set username %s' % user, 'set password %s' % password,
        'set initiator-iqn iqn.x:node',
        'sanhook --drive 0x80 iscsi:10.0.2.100::19504:1:iqn.t:b || goto '
        'fail_iscsi_retry',
        'set username %s' % user, 'set password %s' % password,
        'set reverse-password %s' % password,
        'sanhook --drive 0x81 iscsi:10.0.2.100::19504:1:iqn.t:d',
        'sanboot --no-describe || goto fail_iscsi_retry', '',
        ':fail_iscsi_retry', 'echo %s' % password, 'goto boot_iscsi'])
    lines = vm_console.ipxe_lines(script, {user, password})
    assert lines[:5] == ['goto boot_iscsi', ':boot_iscsi', 'imgfree',
                         'set username ***', 'set password ***']
    assert 'set initiator-iqn iqn.x:node' in lines
    assert 'set reverse-password ***' in lines
    assert lines[-1].startswith('sanboot --no-describe')
    assert not [line for line in lines if user in line or password in line]


def test_vm_timings_table():
    timings = vm_console.phase_timings(
        states=[('deploying', 0.0), ('wait call-back', 2.0),
                ('deploying', 190.5), ('active', 260.0)],
        steps=[{'kind': 'step', 'name': 'cinder_attach_volumes',
                'seconds': 3.25},
               {'kind': 'step', 'name': 'write_image', 'seconds': 20.0},
               {'kind': 'cinder', 'name': 'write_image', 'seconds': 9.0}],
        events=[('power', 10.0, '', ''), ('power', 300.0, '', ''),
                ('marker', 345.5, '', '')],
        undeploy_seconds=12.0)
    assert timings == [('ramdisk boot to first heartbeat', 188.5),
                       ('attach', 3.25), ('image write', 20.0),
                       ('configure boot', None),
                       ('reboot to marker', 45.5), ('undeploy', 12.0)]
    lines = vm_console.timing_lines(timings)
    assert lines[0].split() == ['phase', 'seconds']
    assert lines[1].split()[-1] == '188.5'
    assert lines[4].split()[-1] == '-'
