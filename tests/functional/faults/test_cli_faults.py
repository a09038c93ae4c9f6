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

"""``ipa-cinder local-attach`` / ``local-detach`` when Cinder misbehaves.

Every scenario ends with a clear result (exit code, a message naming the
volume and the cause) and nothing left behind, checked from Cinder's,
tgt's and the kernel's own view (:mod:`tests.functional.faults.leaks`).
"""

import concurrent.futures
import time
import uuid

from tests.functional.faults import leaks

CREATE = r'/attachments$'
COMPLETE = r'/attachments/[0-9a-f-]+/action$'
ATTACHMENT = r'/attachments/[0-9a-f-]+$'
VOLUME = r'/volumes/[0-9a-f-]+$'
EXIT_CINDER = 3


def _check_clean(sandbox, cli, volume, baseline, host=None):
    leaks.assert_no_leaks(sandbox, volumes=[volume],
                          state_dirs=[cli.state()], baseline=baseline)
    assert sandbox.get_volume(volume['id'])['status'] == 'available'


def _error(result, text):
    assert result and 'error' in result, text
    return result['error']


def test_create_answered_503_once_is_retried(sandbox, cli, faults, baseline):
    volume = sandbox.create_volume(volume_type='local')
    rule = faults.add('POST', CREATE, '503')
    attached = cli.ok('local-attach', volume['id'])
    assert rule.fired == 1
    assert len(leaks.leaks(sandbox, volumes=[volume])['attachments']) == 1
    assert attached['attachment_id']
    cli.ok('local-detach', volume['id'])
    _check_clean(sandbox, cli, volume, baseline)


def test_create_always_500_fails_clearly(sandbox, cli, faults, baseline):
    volume = sandbox.create_volume(volume_type='local')
    faults.add('POST', CREATE, '500', times=None)
    began = time.monotonic()
    code, result, text = cli.run('local-attach', volume['id'])
    assert code == EXIT_CINDER, text
    error = _error(result, text)
    assert volume['id'] in error['message']
    assert 'HTTP 500' in error['message']
    assert time.monotonic() - began < 60
    _check_clean(sandbox, cli, volume, baseline)


def test_cinder_unreachable_on_volume_lookup(sandbox, cli, faults, baseline):
    volume = sandbox.create_volume(volume_type='local')
    faults.add('*', r'/volumes', 'drop', times=None)
    code, result, text = cli.run('local-attach', volume['id'])
    assert code == EXIT_CINDER, text
    error = _error(result, text)
    assert volume['id'] in error['message']
    assert 'reach Cinder' in error['message']
    faults.clear()
    _check_clean(sandbox, cli, volume, baseline)


def test_lost_create_response_leaves_one_attachment(sandbox, cli, faults,
                                                    baseline):
    """Without --instance-uuid: the host's own instance UUID finds it."""
    volume = sandbox.create_volume(volume_type='local')
    rule = faults.add('POST', CREATE, 'lose')
    try:
        code, attached, text = cli.run('local-attach', volume['id'])
        assert rule.fired == 1
        assert code == 0, text
        found = leaks.leaks(sandbox, volumes=[volume])['attachments']
        assert len(found) == 1 and attached['attachment_id'] in found[0]
        cli.ok('local-detach', volume['id'])
        _check_clean(sandbox, cli, volume, baseline)
    finally:
        # What the failure left: removed as a service would.
        leaks.remove_attachments(sandbox, volume)


def test_complete_refused_rolls_back(sandbox, cli, faults, baseline):
    volume = sandbox.create_volume(volume_type='local')
    faults.add('POST', COMPLETE, '500', times=None)
    code, result, text = cli.run('local-attach', volume['id'])
    assert code == EXIT_CINDER, text
    error = _error(result, text)
    assert volume['id'] in error['message']
    assert 'HTTP 500' in error['message']
    _check_clean(sandbox, cli, volume, baseline)


def test_delete_refused_during_rollback(sandbox, cli, faults, baseline):
    """Complete refused, then the rollback's delete refused.

    The attach fails naming the attachment left in Cinder; once Cinder
    is back, ``local-detach VOLUME`` must remove it.
    """
    volume = sandbox.create_volume(volume_type='local')
    faults.add('POST', COMPLETE, '500', times=None)
    faults.add('DELETE', ATTACHMENT, '503', times=None)
    code, result, text = cli.run('local-attach', volume['id'])
    assert code == EXIT_CINDER, text
    error = _error(result, text)
    assert volume['id'] in error['message']
    faults.clear()
    left = leaks.leaks(sandbox, volumes=[volume])['attachments']
    assert len(left) == 1, left
    left_id = left[0].split()[0]
    assert left_id in error['message'], error
    try:
        detached = cli.ok('local-detach', volume['id'])
        assert [d['attachment_id'] for d in detached['detached']] == [
            left_id]
        _check_clean(sandbox, cli, volume, baseline)
    finally:
        # What the failure left: removed as a service would.
        leaks.remove_attachments(sandbox, volume)


def test_detach_delete_503_once_is_retried(sandbox, cli, faults, baseline):
    volume = sandbox.create_volume(volume_type='local')
    cli.ok('local-attach', volume['id'])
    rule = faults.add('DELETE', ATTACHMENT, '503')
    detached = cli.ok('local-detach', volume['id'])
    assert rule.fired == 1
    assert detached['detached'][0]['deleted_in_cinder'] is True
    _check_clean(sandbox, cli, volume, baseline)


def test_detach_lost_delete_response_is_success(sandbox, cli, faults,
                                                baseline):
    volume = sandbox.create_volume(volume_type='local')
    cli.ok('local-attach', volume['id'])
    rule = faults.add('DELETE', ATTACHMENT, 'lose')
    cli.ok('local-detach', volume['id'])
    assert rule.fired == 1
    _check_clean(sandbox, cli, volume, baseline)


def test_detach_with_cinder_unreachable_then_again(sandbox, cli, faults,
                                                   baseline):
    volume = sandbox.create_volume(volume_type='local')
    attached = cli.ok('local-attach', volume['id'])
    faults.add('*', r'/', 'drop', times=None)
    code, result, text = cli.run('local-detach', volume['id'])
    assert code == EXIT_CINDER, text
    error = _error(result, text)
    assert volume['id'] in error['message']
    assert 'reach Cinder' in error['message']
    faults.clear()
    # Cinder still has it, so the host must still know about it.
    assert len(leaks.leaks(sandbox, volumes=[volume])['attachments']) == 1
    detached = cli.ok('local-detach', volume['id'])
    assert [d['attachment_id'] for d in detached['detached']] == [
        attached['attachment_id']]
    _check_clean(sandbox, cli, volume, baseline)


def test_two_hosts_race_for_one_volume(sandbox, cli, baseline):
    volume = sandbox.create_volume(volume_type='local')

    def attach(host):
        return cli.run('local-attach', volume['id'], '--host', host,
                       state=host)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(attach, ['race-a', 'race-b']))
    codes = sorted(code for code, _r, _t in results)
    assert codes == [0, EXIT_CINDER], results
    winner = ['race-a', 'race-b'][[c for c, _r, _t in results].index(0)]
    loser = results[[c for c, _r, _t in results].index(EXIT_CINDER)]
    assert volume['id'] in loser[1]['error']['message'], loser
    cli.ok('local-detach', volume['id'], '--host', winner, state=winner)
    leaks.assert_no_leaks(sandbox, volumes=[volume], baseline=baseline,
                          state_dirs=[cli.state('race-a'),
                                      cli.state('race-b')])


def test_lost_create_response_with_instance_uuid(sandbox, cli, faults,
                                                 baseline):
    """With an instance, the lost attempt's attachment is found again."""
    volume = sandbox.create_volume(volume_type='local')
    rule = faults.add('POST', CREATE, 'lose')
    attached = cli.ok('local-attach', volume['id'], '--instance-uuid',
                      str(uuid.uuid4()))
    assert rule.fired == 1
    found = leaks.leaks(sandbox, volumes=[volume])['attachments']
    assert len(found) == 1 and attached['attachment_id'] in found[0], found
    cli.ok('local-detach', volume['id'])
    _check_clean(sandbox, cli, volume, baseline)


def test_attachment_deleted_behind_the_hosts_back(sandbox, cli, baseline):
    """An admin deleted the attachment between attach and detach."""
    volume = sandbox.create_volume(volume_type='local')
    attached = cli.ok('local-attach', volume['id'])
    sandbox.cinder.delete('/attachments/%s' % attached['attachment_id'],
                          microversion='3.44', service=True)
    detached = cli.ok('local-detach', volume['id'])
    assert [d['attachment_id'] for d in detached['detached']] == [
        attached['attachment_id']]
    _check_clean(sandbox, cli, volume, baseline)


def test_volume_put_in_error_between_attach_and_detach(sandbox, cli,
                                                       baseline):
    volume = sandbox.create_volume(volume_type='local')
    cli.ok('local-attach', volume['id'])
    sandbox.cinder.post('/volumes/%s/action' % volume['id'],
                        {'os-reset_status': {'status': 'error'}},
                        microversion='3.0', expect=(202,))
    try:
        code, result, text = cli.run('local-detach', volume['id'])
        assert code == 0, text
        leaks.assert_no_leaks(sandbox, volumes=[volume], baseline=baseline,
                              state_dirs=[cli.state()])
    finally:
        sandbox.cinder.post('/volumes/%s/action' % volume['id'],
                            {'os-reset_status': {'status': 'available'}},
                            microversion='3.0', expect=(202,))


def test_frozen_cinder_fails_within_the_budget(sandbox, cli, faults,
                                               baseline):
    """cinder-api accepts connections and never answers."""
    volume = sandbox.create_volume(volume_type='local')
    with open(cli.config, 'a') as f:
        f.write('cinder_request_timeout = 2\n')
    faults.add('*', r'/', 'freeze', times=None)
    for args in (('local-attach', volume['id']),
                 ('local-attach', volume['name']),
                 ('local-detach', volume['id'])):
        began = time.monotonic()
        code, result, text = cli.run(*args)
        elapsed = time.monotonic() - began
        assert code == EXIT_CINDER, text
        assert 'reach Cinder' in _error(result, text)['message'], text
        # 3 attempts of 2 s within 6 s of retries, plus start-up.
        assert elapsed < 20, (args, elapsed)
    faults.clear()
    _check_clean(sandbox, cli, volume, baseline)


def test_create_frozen_rolls_nothing_forward(sandbox, cli, faults,
                                             baseline):
    volume = sandbox.create_volume(volume_type='local')
    with open(cli.config, 'a') as f:
        f.write('cinder_request_timeout = 2\n')
    faults.add('POST', CREATE, 'freeze', times=None)
    began = time.monotonic()
    code, result, text = cli.run('local-attach', volume['id'])
    assert code == EXIT_CINDER, text
    assert volume['id'] in _error(result, text)['message']
    assert time.monotonic() - began < 20
    faults.clear()
    _check_clean(sandbox, cli, volume, baseline)
