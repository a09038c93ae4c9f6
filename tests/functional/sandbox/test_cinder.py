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

"""Cinder in the sandbox: both backends, attachments, multiattach, iSCSI.

Real cinder-api, cinder-scheduler and cinder-volume with the sandbox's
file driver; the iSCSI export is read and written through tgtd from
userspace (libiscsi's iscsi-ls, qemu-img's iscsi driver).
"""

import os
import re
import shutil
import subprocess
import time
import uuid

import pytest

from ipa_cinder_sandbox import loopdev

MiB = 1024 * 1024


def _attach(sandbox, volume_id, connector, mode=None, instance=None):
    """Attachment create WITH the connector (3.54 when a mode is given)."""
    body = {'volume_uuid': volume_id, 'connector': connector,
            'instance_uuid': instance or str(uuid.uuid4())}
    if mode:
        body['mode'] = mode
    return sandbox.cinder.post('/attachments', {'attachment': body},
                               microversion='3.54')['attachment']


def _complete(sandbox, attachment_id):
    sandbox.cinder.post('/attachments/%s/action' % attachment_id,
                        {'os-complete': None}, microversion='3.44')


def _detach(sandbox, attachment_id):
    # The attachment has an instance uuid and connection info: Cinder 29
    # deletes it only for a service request (under noauth, this header).
    sandbox.cinder.delete('/attachments/%s' % attachment_id,
                          microversion='3.44', service=True)


@pytest.mark.parametrize('volume_type', ['local', 'iscsi'])
def test_create_extend_clone_delete(sandbox, volume_type):
    began = time.monotonic()
    volume = sandbox.create_volume(size=1, volume_type=volume_type)
    created = time.monotonic() - began
    path = sandbox.volume_file(volume)
    assert volume['os-vol-host-attr:host'].endswith(
        '@%s#%s' % (volume_type, volume_type))
    assert os.path.getsize(path) == 1024 * MiB
    # Sparse: nothing allocated for a new volume.
    assert os.stat(path).st_blocks * 512 < MiB

    with open(path, 'r+b') as f:
        f.write(b'clone me')
    sandbox.cinder.post('/volumes/%s/action' % volume['id'],
                        {'os-extend': {'new_size': 2}})
    volume = sandbox.wait_volume(volume['id'], 'available')
    assert volume['size'] == 2
    assert os.path.getsize(path) == 2048 * MiB

    clone = sandbox.create_volume(size=3, volume_type=volume_type,
                                  source_volid=volume['id'])
    clone_path = sandbox.volume_file(clone)
    assert os.path.getsize(clone_path) == 3072 * MiB
    with open(clone_path, 'rb') as f:
        assert f.read(8) == b'clone me'

    sandbox.delete_volume(clone['id'])
    sandbox.delete_volume(volume['id'])
    assert not os.path.exists(path)
    assert not os.path.exists(clone_path)
    print('\n%s volume available in %.2fs' % (volume_type, created))


def test_capacity_stats_are_true(sandbox):
    pools = sandbox.cinder.get('/scheduler-stats/get_pools?detail=True',
                               microversion='3.0')['pools']
    stat = os.statvfs(sandbox.state_dir)
    total_gb = stat.f_blocks * stat.f_frsize / 1024 ** 3
    by_name = {p['capabilities']['volume_backend_name']: p['capabilities']
               for p in pools}
    assert set(by_name) >= {'local', 'iscsi'}
    for caps in by_name.values():
        assert caps['total_capacity_gb'] == pytest.approx(total_gb, abs=0.1)
        assert 0 < caps['free_capacity_gb'] <= caps['total_capacity_gb']
        assert caps['multiattach'] is True
        assert caps['thin_provisioning_support'] is True


@pytest.mark.parametrize('volume_type', ['local', 'iscsi'])
def test_attachment_lifecycle(sandbox, volume_type):
    volume = sandbox.create_volume(volume_type=volume_type)
    assert volume['status'] == 'available'
    connector = sandbox.connector('host-a')

    began = time.monotonic()
    attachment = _attach(sandbox, volume['id'], connector, mode='rw')
    assert attachment['attach_mode'] == 'rw'
    info = attachment['connection_info']
    assert sandbox.get_volume(volume['id'])['status'] == 'attaching'

    _complete(sandbox, attachment['id'])
    volume = sandbox.get_volume(volume['id'])
    assert volume['status'] == 'in-use'
    assert volume['attachments'][0]['attachment_id'] == attachment['id']

    path = sandbox.volume_file(volume)
    if volume_type == 'local':
        assert info['driver_volume_type'] == 'local'
        assert info['device_path'] in loopdev.devices_of(path)
    else:
        assert info['driver_volume_type'] == 'iscsi'
        assert info['auth_method'] == 'CHAP'
        assert info['target_portal'] == '127.0.0.1:%d' % sandbox.ports[
            'iscsi']
        assert info['target_iqn'] in sandbox.box.tgt.targets().values()

    _detach(sandbox, attachment['id'])
    sandbox.wait_volume(volume['id'], 'available')
    print('\n%s attach/complete/detach in %.2fs'
          % (volume_type, time.monotonic() - began))
    if volume_type == 'local':
        assert loopdev.devices_of(path) == []
    else:
        assert info['target_iqn'] not in sandbox.box.tgt.targets().values()
    sandbox.delete_volume(volume['id'])


@pytest.mark.parametrize('volume_type', ['multiattach', 'local-multiattach'])
def test_multiattach_two_hosts_one_read_only(sandbox, volume_type):
    volume = sandbox.create_volume(volume_type=volume_type)
    assert volume['multiattach'] is True
    first = _attach(sandbox, volume['id'], sandbox.connector('host-a'),
                    mode='rw')
    _complete(sandbox, first['id'])
    second = _attach(sandbox, volume['id'], sandbox.connector('host-b'),
                     mode='ro')
    _complete(sandbox, second['id'])
    # The mode shows in attach_mode, not in connection_info.access_mode.
    assert first['attach_mode'] == 'rw'
    assert second['attach_mode'] == 'ro'
    volume = sandbox.get_volume(volume['id'])
    assert volume['status'] == 'in-use'
    assert {a['host_name'] for a in volume['attachments']} == {'host-a',
                                                               'host-b'}

    _detach(sandbox, first['id'])
    volume = sandbox.get_volume(volume['id'])
    # The export stays while the other host is attached.
    assert volume['status'] == 'in-use'
    if volume_type == 'local-multiattach':
        assert loopdev.devices_of(sandbox.volume_file(volume))
    else:
        assert (second['connection_info']['target_iqn']
                in sandbox.box.tgt.targets().values())
    _detach(sandbox, second['id'])
    sandbox.wait_volume(volume['id'], 'available')
    sandbox.delete_volume(volume['id'])


def test_second_rw_attach_of_plain_volume_is_refused(sandbox):
    volume = sandbox.create_volume(volume_type='local')
    attachment = _attach(sandbox, volume['id'], sandbox.connector('host-a'))
    _complete(sandbox, attachment['id'])
    response = sandbox.cinder.raw(
        'POST', '/attachments', microversion='3.54',
        json={'attachment': {'volume_uuid': volume['id'],
                             'instance_uuid': str(uuid.uuid4()),
                             'connector': sandbox.connector('host-b')}})
    assert response.status_code == 400
    _detach(sandbox, attachment['id'])
    sandbox.delete_volume(volume['id'])


_ISCSI_TOOLS = pytest.mark.skipif(
    not shutil.which('iscsi-inq') or not shutil.which('qemu-img'),
    reason='libiscsi-bin and qemu-utils are needed')
OTHER_INITIATOR = 'iqn.2004-10.org.openstack.ipa-cinder:someone-else'


def _iscsi_url(info, user, password, lun=''):
    return 'iscsi://%s%%%s@%s/%s/%s' % (user, password, info['target_portal'],
                                        info['target_iqn'], lun)


def _inquiry(info, initiator, password=None):
    """A CHAP login as ``initiator`` and a SCSI INQUIRY of the LUN."""
    password = password or info['auth_password']
    return subprocess.run(
        ['iscsi-inq', '-i', initiator,
         _iscsi_url(info, info['auth_username'], password,
                    info['target_lun'])],
        capture_output=True, text=True, timeout=30)


def _write_lun(info, initiator, source, tmp_path):
    """qemu-img writes ``source`` onto the LUN, logged in as ``initiator``.

    The password goes through a secret object read from a file, never on
    the command line.
    """
    secret = tmp_path / 'chap-secret'
    secret.write_text(info['auth_password'])
    host, port = info['target_portal'].rsplit(':', 1)
    target = ('json:{"driver": "raw", "file": {"driver": "iscsi", '
              '"transport": "tcp", "portal": "%s:%s", "target": "%s", '
              '"lun": %d, "user": "%s", "password-secret": "chap", '
              '"initiator-name": "%s"}}'
              % (host, port, info['target_iqn'], info['target_lun'],
                 info['auth_username'], initiator))
    return subprocess.run(
        ['qemu-img', 'convert', '--object',
         'secret,id=chap,file=%s' % secret, '-n', '-f', 'raw', '-O', 'raw',
         str(source), target], capture_output=True, text=True, timeout=60)


def _acl(sandbox, iqn):
    """The initiators tgt's ACL of target ``iqn`` admits."""
    shown = sandbox.box.tgt.show()
    block = [b for b in re.split(r'^Target \d+: ', shown, flags=re.M)
             if b.startswith(iqn + '\n')]
    assert block, 'tgt has no target %s' % iqn
    acl = block[0].split('ACL information:', 1)[1]
    return [line.strip() for line in acl.splitlines() if line.strip()]


@_ISCSI_TOOLS
def test_iscsi_export_served_by_tgt_with_chap(sandbox, tmp_path):
    volume = sandbox.create_volume(volume_type='iscsi')
    connector = sandbox.connector('host-a')
    attachment = _attach(sandbox, volume['id'], connector)
    _complete(sandbox, attachment['id'])
    info = attachment['connection_info']
    password = info['auth_password']

    # A CHAP login to this target and a SCSI INQUIRY of its LUN: tgt's
    # backing-store LUN answers.
    inquiry = _inquiry(info, connector['initiator'])
    assert inquiry.returncode == 0, inquiry.stderr.replace(password, '***')
    assert 'IET' in inquiry.stdout or 'VIRTUAL-DISK' in inquiry.stdout, (
        inquiry.stdout)
    wrong = _inquiry(info, connector['initiator'], 'wrong-password')
    assert wrong.returncode != 0

    payload = os.urandom(MiB)
    source = tmp_path / 'payload.raw'
    source.write_bytes(payload)
    began = time.monotonic()
    written = _write_lun(info, connector['initiator'], source, tmp_path)
    assert written.returncode == 0, written.stderr.replace(password, '***')
    print('\n1 MiB written over iSCSI in %.2fs' % (time.monotonic() - began))
    with open(sandbox.volume_file(volume), 'rb') as f:
        assert f.read(MiB) == payload

    _detach(sandbox, attachment['id'])
    sandbox.wait_volume(volume['id'], 'available')
    sandbox.delete_volume(volume['id'])


@_ISCSI_TOOLS
def test_iscsi_export_admits_only_the_attached_initiator(sandbox, tmp_path):
    """CHAP alone is not access control: the target is bound to initiators.

    The export admits the initiator of the connector it was made for; the
    same CHAP credentials from another initiator are refused; a second
    attachment with another connector adds its initiator, its detach
    removes it again; after the last detach nothing is exported.
    """
    volume = sandbox.create_volume(volume_type='multiattach')
    first = _attach(sandbox, volume['id'], sandbox.connector('host-a'))
    _complete(sandbox, first['id'])
    info = first['connection_info']
    password = info['auth_password']
    mine = sandbox.connector('host-a')['initiator']

    assert _inquiry(info, mine).returncode == 0
    refused = _inquiry(info, OTHER_INITIATOR)
    assert refused.returncode != 0, 'another initiator got in with CHAP'
    assert password not in refused.stdout + refused.stderr
    assert _acl(sandbox, info['target_iqn']) == [mine]

    second = _attach(sandbox, volume['id'], sandbox.connector(
        'host-b', initiator=OTHER_INITIATOR))
    _complete(sandbox, second['id'])
    assert _inquiry(second['connection_info'], OTHER_INITIATOR).returncode == 0
    assert sorted(_acl(sandbox, info['target_iqn'])) == sorted(
        [mine, OTHER_INITIATOR])
    _detach(sandbox, second['id'])
    assert _inquiry(info, OTHER_INITIATOR).returncode != 0
    assert _inquiry(info, mine).returncode == 0
    assert _acl(sandbox, info['target_iqn']) == [mine]

    _detach(sandbox, first['id'])
    sandbox.wait_volume(volume['id'], 'available')
    assert info['target_iqn'] not in sandbox.box.tgt.targets().values()
    sandbox.delete_volume(volume['id'])
