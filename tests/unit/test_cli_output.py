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

"""The output of ``ipa-cinder``: cliff formats, columns, masking, errors.

Results go through the real application and cliff's formatters: two
commands of this test (built on the same bases as ipa-cinder's) show the
result the test gives them, or raise the error it gives them.
"""

import io
import json
import os
import signal
import time

from oslo_config import cfg
import pytest
import yaml

from ipa_cinder.cli import attach
from ipa_cinder.cli import base
from ipa_cinder.cli import errors
from ipa_cinder.cli import interrupts
from ipa_cinder.cli import listing
from ipa_cinder.cli import shell
from ipa_cinder.common import secrets
from ipa_cinder import exception
from ipa_cinder.host import registry

PASSWORD = 'Chap-Secret-Password-4242'
USERNAME = 'chap-user-name-77'
VOLUME = '1f6c2b9e-3b0e-4c59-8f6e-0d7d7a4b2c01'
ATTACHMENT = '1f6c2b9e-3b0e-4c59-8f6e-0d7d7a4b2c02'


def iscsi_info():
    return {'driver_volume_type': 'iscsi',
            'target_portal': '127.0.0.1:3260',
            'target_iqn': 'iqn.2010-10.org.openstack:volume-x',
            'target_lun': 1, 'auth_method': 'CHAP',
            'auth_username': USERNAME, 'auth_password': PASSWORD}


def attach_result():
    return {'volume_id': VOLUME, 'volume_name': 'data1',
            'attachment_id': ATTACHMENT, 'host': 'h1',
            'device_path': '/dev/loop7', 'mode': 'rw', 'attach_mode': 'rw',
            'mountpoint': None, 'driver_volume_type': 'iscsi',
            'reused': False, 'connection_info': iscsi_info()}


class ShowGiven(attach.LocalAttach):
    """Show the test's result with local-attach's fields, or raise."""

    given = None

    def take_action(self, parsed_args):
        if isinstance(self.given, BaseException):
            raise self.given
        return self.show(self.given, parsed_args)


class ListGiven(listing.ListAttached):
    """List the test's rows with list's columns, or raise."""

    given = None

    def take_action(self, parsed_args):
        if isinstance(self.given, BaseException):
            raise self.given
        return self.show(self.given, parsed_args)


class SignalledShow(base.ShowCommand):
    """Gets SIGTERM while it works."""

    def take_action(self, parsed_args):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)
        return self.show({'not': 'reached'}, parsed_args)


class SignalledSteps(base.ShowCommand):
    """Gets signals inside a deferred section and while undoing."""

    steps = []
    signals = (signal.SIGHUP,)

    def take_action(self, parsed_args):
        guard = interrupts.GUARD
        try:
            with guard.deferred('a step'):
                for signum in self.signals:
                    os.kill(os.getpid(), signum)
                time.sleep(0.2)
                self.steps.append('step finished')
            self.steps.append('not reached')
        except KeyboardInterrupt:
            with guard.deferred('undoing', check=False):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.2)
                self.steps.append('undone')
            raise


@pytest.fixture(autouse=True)
def _restore_conf():
    yield
    cfg.CONF.clear_override('state_dir', group='ipa_cinder')


@pytest.fixture
def run(tmp_path):
    """Run a test command: returns (exit code, stdout, stderr)."""
    def run(command, given, *argv):
        stdout, stderr = io.StringIO(), io.StringIO()
        argv = [command.__name__] + list(argv) + [
            '--state-dir', str(tmp_path / 'state'),
            '--config-file', os.devnull]
        app = shell.IpaCinderApp(argv, stdout=stdout, stderr=stderr)
        app.command_manager.add_command(command.__name__, command)
        if given is not None:
            command.given = given
        try:
            code = app.run(argv)
        finally:
            if given is not None:
                command.given = None
        return code, stdout.getvalue(), stderr.getvalue()
    return run


# Masking

@pytest.mark.parametrize('fmt', ['json', 'yaml', 'table', 'value', 'shell'])
def test_every_format_masks_secrets(run, fmt):
    code, out, _err = run(ShowGiven, attach_result(), 'vol', '-f', fmt)
    assert code == 0
    assert PASSWORD not in out
    assert USERNAME not in out
    assert 'iqn.2010-10.org.openstack:volume-x' in out


@pytest.mark.parametrize('fmt', ['json', 'yaml', 'table', 'value', 'shell'])
def test_show_secrets(run, fmt):
    code, out, _err = run(ShowGiven, attach_result(), 'vol', '-f', fmt,
                          '--show-secrets')
    assert code == 0
    assert PASSWORD in out
    assert USERNAME in out


@pytest.mark.parametrize('flag', ['--no-show-secrets', '--show-secrets=no',
                                  '--show-secrets false'])
def test_show_secrets_off(run, flag):
    code, out, _err = run(ShowGiven, attach_result(), 'vol', '-f', 'json',
                          *flag.split())
    assert code == 0
    assert PASSWORD not in out


def test_json_keeps_the_structure(run):
    code, out, _err = run(ShowGiven, attach_result(), 'vol', '-f', 'json')
    assert code == 0
    shown = json.loads(out)
    assert shown['connection_info']['auth_password'] == secrets.MASK
    assert shown['connection_info']['target_lun'] == 1
    assert shown['reused'] is False
    assert shown['mountpoint'] is None
    assert list(shown) == list(attach.LocalAttach.columns)


def test_yaml(run):
    code, out, _err = run(ShowGiven, attach_result(), 'vol', '-f', 'yaml')
    assert code == 0
    shown = yaml.safe_load(out)
    assert shown['device_path'] == '/dev/loop7'
    assert shown['connection_info']['auth_username'] == secrets.MASK


def test_value_and_columns(run):
    code, out, _err = run(ShowGiven, attach_result(), 'vol', '-f', 'value',
                          '-c', 'device_path')
    assert (code, out) == (0, '/dev/loop7\n')
    code, out, _err = run(ShowGiven, attach_result(), 'vol', '-f', 'value',
                          '-c', 'attachment_id', '-c', 'device_path')
    assert out.split() == [ATTACHMENT, '/dev/loop7']


def test_shell_format(run):
    code, out, _err = run(ShowGiven, attach_result(), 'vol', '-f', 'shell',
                          '-c', 'device_path', '--prefix', 'vol_')
    assert (code, out) == (0, 'vol_device_path="/dev/loop7"\n')


def test_table_shows_dicts_one_key_per_line(run):
    result = dict(attach_result(), connection_info={'target_lun': 1,
                                                    'access_mode': 'ro'})
    code, out, _err = run(ShowGiven, result, 'vol', '--max-width', '0')
    assert code == 0
    lines = out.splitlines()
    assert any('connection_info' in line and 'access_mode: ro' in line
               for line in lines)
    assert any('target_lun: 1' in line and 'connection_info' not in line
               for line in lines)
    assert len({len(line) for line in lines}) == 1


# Lists

def list_rows():
    return [{'volume_id': VOLUME, 'attachment_id': ATTACHMENT,
             'device_path': '/dev/loop7', 'present': True, 'mode': 'ro',
             'recorded_here': True, 'in_cinder': True,
             'volume_status': 'in-use', 'connected_at': '2026-01-01',
             'connection_info': iscsi_info()},
            {'volume_id': VOLUME, 'attachment_id': VOLUME,
             'recorded_here': False, 'in_cinder': True,
             'volume_status': 'in-use', 'instance': 'i-1'}]


def test_list_table(run):
    code, out, _err = run(ListGiven, list_rows())
    assert code == 0
    assert 'recorded_here' in out
    assert '/dev/loop7' in out
    assert '| True ' in out
    assert 'connected_at' not in out
    assert PASSWORD not in out


def test_list_formats_and_columns(run):
    code, out, _err = run(ListGiven, list_rows(), '-f', 'json')
    rows = json.loads(out)
    assert [r['recorded_here'] for r in rows] == [True, False]
    assert 'instance' not in rows[0]
    code, out, _err = run(ListGiven, list_rows(), '-f', 'yaml', '--long')
    assert yaml.safe_load(out)[1]['instance'] == 'i-1'
    code, out, _err = run(ListGiven, list_rows(), '-f', 'value',
                          '-c', 'attachment_id', '-c', 'mode')
    assert out.splitlines() == ['%s ro' % ATTACHMENT, '%s None' % VOLUME]
    # A long column named with -c is shown without --long.
    code, out, _err = run(ListGiven, list_rows(), '-f', 'csv',
                          '-c', 'connected_at')
    assert out.splitlines() == ['"connected_at"', '"2026-01-01"', '""']


def test_list_of_the_real_record(run, tmp_path, monkeypatch):
    """list reads the state directory; Cinder is unreachable here."""
    registry.ConnectionRegistry(str(tmp_path / 'state')).save({
        'attachment_id': ATTACHMENT, 'volume_id': VOLUME, 'mode': 'ro',
        'device_path': '/dev/ipa-cinder-test-absent',
        'connected_at': '2026-01-01T00:00:00', 'driver_volume_type': 'local',
        'connection_info': iscsi_info()})
    for key in list(os.environ):
        if key.startswith('OS_'):
            monkeypatch.delenv(key)
    monkeypatch.setenv('OS_AUTH_TYPE', 'none')
    monkeypatch.setenv('OS_ENDPOINT', 'http://127.0.0.1:9/v3/abc123')
    conf_file = tmp_path / 'ipa-cinder.conf'
    conf_file.write_text('[ipa_cinder]\ncinder_retry_attempts = 1\n')
    code, out, err = run(listing.ListAttached, None, '-f', 'json',
                         '--long', '--config-file', str(conf_file))
    assert code == errors.EXIT_CINDER
    [row] = json.loads(out)
    assert row['attachment_id'] == ATTACHMENT
    assert (row['present'], row['recorded_here'], row['in_cinder']) == (
        False, True, None)
    assert row['driver_volume_type'] == 'local'
    assert 'cinder error' in err


def test_partial_result_prints_then_fails(run):
    error = exception.PartialResult('Cinder failed: password=%s' % PASSWORD,
                                    errors.EXIT_CINDER, list_rows()[:1])
    code, out, err = run(ListGiven, error, '-f', 'json')
    assert code == errors.EXIT_CINDER
    assert [r['attachment_id'] for r in json.loads(out)] == [ATTACHMENT]
    assert 'ipa-cinder: cinder error: Cinder failed' in err
    assert PASSWORD not in out + err


# Errors

@pytest.mark.parametrize('fmt,load', [('json', json.loads),
                                      ('yaml', yaml.safe_load)])
def test_error_document_is_always_masked(run, fmt, load):
    error = exception.VolumeConnectionError(
        "connect failed: {'auth_password': '%s'} password=%s"
        % (PASSWORD, PASSWORD))
    code, out, err = run(ShowGiven, error, 'vol', '-f', fmt,
                         '--show-secrets')
    assert code == errors.EXIT_LOCAL
    assert load(out)['error'] == {
        'exit_code': errors.EXIT_LOCAL, 'kind': 'local',
        'message': load(out)['error']['message']}
    assert 'connect failed' in load(out)['error']['message']
    assert 'ipa-cinder: local error: connect failed' in err
    assert PASSWORD not in out + err


@pytest.mark.parametrize('fmt', ['table', 'value', 'shell'])
def test_error_goes_to_stderr_only(run, fmt):
    error = exception.CinderNotFound('no volume has this ID or name',
                                     call='find_volume', volume='vol')
    code, out, err = run(ShowGiven, error, 'vol', '-f', fmt)
    assert (code, out) == (errors.EXIT_CINDER, '')
    assert 'ipa-cinder: cinder error: Cinder find_volume failed' in err


def test_unexpected_error_exit_1(run):
    code, out, err = run(ShowGiven, RuntimeError('a bug'), 'vol')
    assert (code, out) == (errors.EXIT_ERROR, '')
    assert 'unexpected error: a bug' in err


def test_ctrl_c_exit_130(run):
    code, out, err = run(ShowGiven, KeyboardInterrupt(), 'vol')
    assert (code, out) == (errors.EXIT_INTERRUPTED, '')
    assert 'interrupted' in err


def test_sigterm_interrupts_like_ctrl_c(run):
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        started = time.monotonic()
        code, out, err = run(SignalledShow, None)
        assert time.monotonic() - started < 5
        # The command's handler is gone once it is done.
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert (code, out) == (errors.EXIT_TERMINATED, '')
    assert 'ipa-cinder: interrupted by SIGTERM' in err


@pytest.mark.parametrize('signals,code', [
    ((signal.SIGHUP,), errors.EXIT_HANGUP),
    ((signal.SIGTERM, signal.SIGINT), errors.EXIT_TERMINATED),
])
def test_signal_in_a_deferred_step_acts_after_it(run, signals, code):
    """The step finishes, the undo is not cut short by another signal."""
    SignalledSteps.steps = []
    SignalledSteps.signals = signals
    code_seen, out, err = run(SignalledSteps, None, '-f', 'json')
    assert code_seen == code
    assert SignalledSteps.steps == ['step finished', 'undone']
    assert json.loads(out)['error'] == {
        'exit_code': code, 'kind': 'interrupted',
        'message': 'interrupted by %s' % signal.Signals(signals[0]).name}
    for signum in interrupts.SIGNALS:
        assert signal.getsignal(signum) != interrupts.GUARD._on_signal


def test_interrupted_exit_codes():
    assert [interrupts.Interrupted(s).exit_code
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)] == [
        errors.EXIT_INTERRUPTED, errors.EXIT_TERMINATED, errors.EXIT_HANGUP]
    # Not an Exception: os-brick or keystoneauth cannot swallow it.
    assert not isinstance(interrupts.Interrupted(signal.SIGINT), Exception)
