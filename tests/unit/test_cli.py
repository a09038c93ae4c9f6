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

"""The ``ipa-cinder`` command: arguments, output masking, exit codes.

No Cinder here (the functional tests use the sandbox's): the Cinder error
path is exercised against a port where nothing listens.
"""

import argparse
import json
import os
import socket
from unittest import mock

from oslo_config import cfg
import pytest

from ipa_cinder.host import connections
from ipa_cinder.common import cinder_client as cinder
from ipa_cinder.common import cinder_transport
from ipa_cinder.common import secrets
from ipa_cinder.conductor import cinder_session
from ipa_cinder import exception
from ipa_cinder.cli import shell as cli
from ipa_cinder.cli import commands as cli_commands
from ipa_cinder.cli import output as cli_output
from ipa_cinder.common import connection

PASSWORD = 'Chap-Secret-Password-4242'
USERNAME = 'chap-user-name-77'
VOLUME = '1f6c2b9e-3b0e-4c59-8f6e-0d7d7a4b2c01'


@pytest.fixture(autouse=True)
def _restore_conf():
    yield
    cfg.CONF.clear_override('state_dir', group='ipa_cinder')


@pytest.fixture
def no_cloud_env(monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith('OS_'):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def parse(*argv):
    argv = cli.normalize_argv(list(argv))
    return cli.build_parser(argv).parse_args(argv)


def iscsi_info():
    return {'driver_volume_type': 'iscsi',
            'target_portal': '127.0.0.1:3260',
            'target_iqn': 'iqn.2010-10.org.openstack:volume-x',
            'target_lun': 1, 'auth_method': 'CHAP',
            'auth_username': USERNAME, 'auth_password': PASSWORD}


# Booleans, modes, formats

@pytest.mark.parametrize('word,value', [
    ('true', True), ('True', True), ('yes', True), ('1', True), ('on', True),
    ('false', False), ('False', False), ('no', False), ('0', False),
    ('off', False)])
def test_parse_bool(word, value):
    assert cli.parse_bool(word) is value


@pytest.mark.parametrize('word', ['', 'maybe', 'ture', '2', 'none'])
def test_parse_bool_is_strict(word):
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_bool(word)


def test_multipath_flag_forms():
    assert parse('local-attach', 'vol').multipath is None
    assert parse('local-attach', 'vol', '--multipath').multipath is True
    assert parse('local-attach', '--multipath', 'vol').multipath is True
    args = parse('local-attach', '--multipath', 'false', 'vol')
    assert args.multipath is False
    assert args.volume == 'vol'
    assert parse('local-attach', 'vol', '--multipath=False').multipath \
        is False
    assert parse('local-attach', 'vol', '--multipath', 'yes').multipath \
        is True
    assert parse('get-connector', '--enforce-multipath',
                 'no').enforce_multipath is False
    assert parse('get-connector', '--enforce-multipath').enforce_multipath \
        is True


def test_normalize_argv_leaves_other_arguments():
    assert cli.normalize_argv(['local-attach', '--multipath', 'vol']) == [
        'local-attach', '--multipath=true', 'vol']
    assert cli.normalize_argv(['get-connector', '--multipath']) == [
        'get-connector', '--multipath=true']
    assert cli.normalize_argv(['list', '--show-secrets', 'off']) == [
        'list', '--show-secrets', 'off']
    assert cli.normalize_argv(['list', '--host', 'true']) == [
        'list', '--host', 'true']


def test_defaults():
    args = parse('local-attach', 'vol')
    assert args.mode == 'rw'
    assert args.format == 'table'
    assert args.show_secrets is False
    assert args.mountpoint is None
    assert args.instance_uuid is None
    assert args.enforce_multipath is False
    assert args.service_role_header is None
    assert parse('list', '--show-secrets').show_secrets is True
    assert parse('list', '--format', 'json').format == 'json'
    assert parse('local-attach', 'vol', '--mode', 'ro').mode == 'ro'
    assert parse('local-detach', 'vol',
                 '--service-role-header', 'true').service_role_header
    assert parse('local-detach', 'vol').force is False
    assert parse('local-detach', '--force', 'vol').force is True
    assert parse('local-detach', 'vol', '--force', 'no').force is False


def test_connector_host_defaults_to_host_name():
    assert cli_commands.connector_host(parse('list')) == \
        socket.gethostname()
    assert cli_commands.connector_host(parse('list', '--host', 'h1')) == 'h1'


@pytest.mark.parametrize('argv', [
    [],
    ['attach'],
    ['local-attach'],
    ['local-attach', 'vol', '--mode', 'rx'],
    ['local-attach', 'vol', '--multipath=maybe'],
    ['local-attach', 'vol', '--instance-uuid', 'not-a-uuid'],
    ['local-detach', 'vol', '--attachment-id', '1234'],
    ['list', '--format', 'xml'],
    ['list', '--show-secrets=perhaps'],
    ['list', '--service-role-header'],
])
def test_usage_errors_exit_2(argv, capsys):
    assert cli.main(argv) == cli.EXIT_USAGE
    assert 'usage:' in capsys.readouterr().err


def test_help_exits_0(capsys):
    assert cli.main(['--help']) == 0
    out = capsys.readouterr().out
    for command in ('get-connector', 'local-attach', 'local-detach',
                    'list'):
        assert command in out
    assert 'Exit codes' in out


# Output and masking

def test_json_output_masks_secrets():
    result = {'attachment_id': 'a', 'connection_info': iscsi_info()}
    text = cli_output.render(result, 'json')
    assert PASSWORD not in text
    assert USERNAME not in text
    shown = json.loads(text)
    assert shown['connection_info']['auth_password'] == connection.MASK
    assert shown['connection_info']['target_iqn'] == iscsi_info()[
        'target_iqn']


def test_table_output_masks_secrets():
    text = cli_output.render({'connection_info': iscsi_info()}, 'table')
    assert PASSWORD not in text
    assert USERNAME not in text
    assert 'connection_info' in text


def test_show_secrets():
    result = {'connection_info': iscsi_info()}
    for fmt in ('json', 'table'):
        text = cli_output.render(result, fmt, show_secrets=True)
        assert PASSWORD in text
        assert USERNAME in text


def test_sections_render_tables():
    result = {'host': 'h1', 'local': [{'volume_id': VOLUME, 'present': True,
                                       'connection_info': iscsi_info()}],
              'cinder': []}
    text = cli_output.render(
        result, 'table', sections=[('Local', 'local',
                                    ['volume_id', 'present']),
                                   ('Cinder', 'cinder', ['volume_id'])])
    assert 'Local (1)' in text
    assert 'Cinder (0)' in text
    assert VOLUME in text
    assert '| true ' in text
    assert PASSWORD not in text


def test_error_document_is_always_masked():
    message = "connect failed: {'auth_password': '%s'} password=%s" % (
        PASSWORD, PASSWORD)
    text = cli_output.render_error(4, 'local', message, 'json')
    assert PASSWORD not in text
    assert json.loads(text)['error']['exit_code'] == 4
    assert cli_output.render_error(4, 'local', message, 'table') is None
    assert PASSWORD not in cli_output.safe_text(message)


def test_attachment_connection_info_is_unflattened():
    flat = iscsi_info()
    nested = connection.from_attachment(flat)
    assert nested['driver_volume_type'] == 'iscsi'
    assert nested['data']['target_lun'] == 1
    assert 'driver_volume_type' not in nested['data']
    assert connection.validate_connection_info(nested)
    # Already nested: unchanged.
    assert connection.from_attachment(nested) == nested


def test_noauth_token_takes_the_project_from_the_url():
    assert cli.noauth_token(
        'http://127.0.0.1:8776/v3/5a4d6b0e1c2f4a3b9d8e7f6a5b4c3d2e', {}) \
        == 'ipa-cinder:5a4d6b0e1c2f4a3b9d8e7f6a5b4c3d2e'
    assert cli.noauth_token(
        'http://127.0.0.1:8776/v3', {'project_id': 'p1', 'user_id': 'u1'}) \
        == 'u1:p1'


def test_mount_table_unescape():
    assert cli_commands._unescape(r'/mnt/with\040space') == \
        '/mnt/with space'


# Exit codes

@pytest.mark.parametrize('exc,code', [
    (cli.CLIError('x', cli.EXIT_LOCAL), cli.EXIT_LOCAL),
    (cli.CLIError('x', cli.EXIT_NOT_ROOT), cli.EXIT_NOT_ROOT),
    (exception.CinderNotFound('gone', call='find_volume'), cli.EXIT_CINDER),
    (exception.CinderUnavailable('down'), cli.EXIT_CINDER),
    (exception.InvalidConnector('no host'), cli.EXIT_CINDER),
    (connections.VolumeConnectionError('no'), cli.EXIT_LOCAL),
    (connection.InvalidConnectionInfo('data', 'bad'), cli.EXIT_LOCAL),
    (OSError(5, 'EIO'), cli.EXIT_LOCAL),
    (RuntimeError('bug'), cli.EXIT_ERROR),
    (cli.CLIError('x'), cli.EXIT_ERROR),
])
def test_classify(exc, code):
    assert cli.classify(exc)[0] == code


def test_exit_codes_are_distinct():
    codes = [cli.EXIT_OK, cli.EXIT_ERROR, cli.EXIT_USAGE, cli.EXIT_CINDER,
             cli.EXIT_LOCAL, cli.EXIT_NOT_ROOT]
    assert len(set(codes)) == len(codes)
    assert cli.EXIT_USAGE == 2


@pytest.mark.parametrize('command', [['get-connector'],
                                     ['local-attach', 'vol'],
                                     ['local-detach', 'vol']])
def test_not_root_exit_5(command, tmp_path, capsys, no_cloud_env):
    with mock.patch.object(os, 'geteuid', autospec=True, return_value=1000):
        code = cli.main(command + ['--state-dir', str(tmp_path)])
    assert code == cli.EXIT_NOT_ROOT
    err = capsys.readouterr().err
    assert 'must run as root' in err
    assert 'sudo' in err


@pytest.fixture
def unreachable_cinder(monkeypatch, tmp_path, no_cloud_env):
    """Auth type none towards a port where nothing listens; one attempt."""
    monkeypatch.setenv('OS_AUTH_TYPE', 'none')
    monkeypatch.setenv('OS_ENDPOINT', 'http://127.0.0.1:9/v3/abc123')
    conf_file = tmp_path / 'ipa-cinder.conf'
    conf_file.write_text('[ipa_cinder]\ncinder_retry_attempts = 1\n')
    return ['--state-dir', str(tmp_path / 'state'),
            '--config-file', str(conf_file), '--format', 'json']


def test_cinder_unreachable_exit_3(unreachable_cinder, capsys):
    if os.geteuid() != 0:
        pytest.skip('local-detach checks for root first')
    code = cli.main(['local-detach', VOLUME] + unreachable_cinder)
    assert code == cli.EXIT_CINDER
    captured = capsys.readouterr()
    assert json.loads(captured.out)['error']['kind'] == 'cinder'
    assert 'cinder error' in captured.err


def test_list_shows_local_record_when_cinder_is_unreachable(
        unreachable_cinder, capsys):
    code = cli.main(['list'] + unreachable_cinder)
    assert code == cli.EXIT_CINDER
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result['local'] == []
    assert result['cinder'] is None
    assert 'cannot reach Cinder' in result['cinder_error']
    assert 'cinder error' in captured.err


def test_noauth_without_endpoint_is_a_usage_error(tmp_path, capsys,
                                                  monkeypatch,
                                                  no_cloud_env):
    monkeypatch.setenv('OS_AUTH_TYPE', 'none')
    code = cli.main(['list', '--state-dir', str(tmp_path / 'state')])
    assert code == cli.EXIT_USAGE
    assert 'OS_ENDPOINT' in capsys.readouterr().err


def test_no_cloud_configured_is_a_usage_error(tmp_path, capsys,
                                              no_cloud_env):
    if os.path.exists(os.path.expanduser('~/.config/openstack')) or \
            os.path.exists('/etc/openstack'):
        pytest.skip('a clouds.yaml may exist on this host')
    code = cli.main(['list', '--state-dir', str(tmp_path / 'state')])
    assert code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert 'usage error' in err
    assert 'OS_CLOUD' in err


def test_bad_mountpoint_is_a_usage_error(tmp_path, capsys, no_cloud_env):
    if os.geteuid() != 0:
        pytest.skip('checked after the root check')
    code = cli.main(['local-attach', 'vol', '--mountpoint', 'relative/dir',
                     '--state-dir', str(tmp_path)])
    assert code == cli.EXIT_USAGE
    assert '--mountpoint' in capsys.readouterr().err


def test_table_shows_dicts_one_key_per_line():
    text = cli_output.render({'connection_info': {'target_lun': 1,
                                                  'access_mode': 'ro'}},
                             'table')
    lines = text.splitlines()
    assert any('connection_info' in line and 'access_mode: ro' in line
               for line in lines)
    assert any('target_lun: 1' in line and 'connection_info' not in line
               for line in lines)
    assert len({len(line) for line in lines}) == 1
