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

"""The ``ipa-cinder`` command: arguments, global options, exit codes.

No Cinder here (the functional tests use the sandbox's): the Cinder error
path is exercised against a port where nothing listens. Output formats and
masking are in test_cli_output.py.
"""

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
from unittest import mock
import uuid

from oslo_config import cfg
import pytest

from ipa_cinder.cli import errors
from ipa_cinder.cli import options
from ipa_cinder.cli import shell
from ipa_cinder.common import connection
from ipa_cinder.common import noauth
from ipa_cinder import exception
from ipa_cinder.host import mounts

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
    """Global options and the command's arguments, as ipa-cinder reads them.

    The application's parser first, then the command's.
    """
    argv = options.normalize_argv(argv)
    app = shell.IpaCinderApp(argv)
    global_options, rest = app.parser.parse_known_args(argv)
    factory, name, command_argv = app.command_manager.find_command(rest)
    command = factory(app, global_options, cmd_name=name)
    args = command.get_parser('ipa-cinder ' + name).parse_args(command_argv)
    return argparse.Namespace(**vars(global_options), **vars(args))


# Booleans, on/off flags, modes, formats

@pytest.mark.parametrize('word,value', [
    ('true', True), ('True', True), ('yes', True), ('1', True), ('on', True),
    ('false', False), ('False', False), ('no', False), ('0', False),
    ('off', False)])
def test_parse_bool(word, value):
    assert options.parse_bool(word) is value


@pytest.mark.parametrize('word', ['', 'maybe', 'ture', '2', 'none'])
def test_parse_bool_is_strict(word):
    with pytest.raises(argparse.ArgumentTypeError):
        options.parse_bool(word)


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
    assert parse('local-attach', 'vol', '--no-multipath').multipath is False
    assert parse('get-connector', '--no-multipath').multipath is False
    assert parse('get-connector', '--enforce-multipath',
                 'no').enforce_multipath is False
    assert parse('get-connector', '--enforce-multipath').enforce_multipath \
        is True
    assert parse('get-connector',
                 '--no-enforce-multipath').enforce_multipath is False


@pytest.mark.parametrize('word', ['false', 'False', 'no', '0', 'off'])
def test_multipath_false_is_never_true(word):
    for argv in (('--multipath', word), ('--multipath=%s' % word,)):
        assert parse('local-attach', 'vol', *argv).multipath is False
        assert parse('get-connector', *argv).multipath is False


def test_normalize_argv():
    assert options.normalize_argv(['local-attach', '--multipath', 'vol']) \
        == ['local-attach', '--multipath', 'vol']
    assert options.normalize_argv(['get-connector', '--multipath']) == [
        'get-connector', '--multipath']
    assert options.normalize_argv(
        ['local-attach', '--multipath', 'false', 'vol']) == [
        'local-attach', '--no-multipath', 'vol']
    assert options.normalize_argv(['list', '--show-secrets', 'off']) == [
        'list', '--no-show-secrets']
    assert options.normalize_argv(['local-detach', 'v', '--force=yes']) == [
        'local-detach', 'v', '--force']
    # Other options' values and what follows -- are left alone.
    assert options.normalize_argv(['list', '--host', 'true']) == [
        'list', '--host', 'true']
    assert options.normalize_argv(['local-attach', '--', '--force',
                                   'no']) == [
        'local-attach', '--', '--force', 'no']
    with pytest.raises(argparse.ArgumentTypeError, match='--multipath'):
        options.normalize_argv(['get-connector', '--multipath=maybe'])


def test_defaults():
    args = parse('local-attach', 'vol')
    assert args.mode == 'rw'
    assert args.formatter == 'table'
    assert args.columns == []
    assert args.show_secrets is False
    assert args.mountpoint is None
    assert args.instance_uuid is None
    assert args.enforce_multipath is False
    assert args.service_role_header is None
    assert args.host is None
    assert args.state_dir is None
    assert args.config_file is None
    assert parse('list', '--show-secrets').show_secrets is True
    assert parse('list', '--format', 'json').formatter == 'json'
    assert parse('list', '-f', 'yaml').formatter == 'yaml'
    assert parse('local-attach', 'vol', '--mode', 'ro').mode == 'ro'
    assert parse('local-detach', 'vol',
                 '--service-role-header', 'true').service_role_header
    assert parse('local-detach', 'vol').force is False
    assert parse('local-detach', '--force', 'vol').force is True
    assert parse('local-detach', 'vol', '--force', 'no').force is False
    assert parse('local-detach', 'vol', '--no-force').force is False


def test_global_options_before_or_after_the_command(tmp_path):
    state = str(tmp_path / 'state')
    conf = str(tmp_path / 'ipa-cinder.conf')
    argv_after = ['local-detach', 'vol', '--host', 'h1', '--state-dir',
                  state, '--config-file', conf, '--service-role-header',
                  'yes', '--debug', '-f', 'json', '--os-region-name', 'r1']
    argv_before = ['--host', 'h1', '--state-dir', state, '--config-file',
                   conf, '--service-role-header', 'yes', '--debug',
                   '--os-region-name', 'r1', 'local-detach', 'vol',
                   '-f', 'json']
    for argv in (argv_after, argv_before):
        args = parse(*argv)
        assert (args.host, args.state_dir, args.config_file) == (
            'h1', state, [conf])
        assert args.service_role_header is True
        assert args.debug is True
        assert args.os_region_name == 'r1'
        assert args.volume == 'vol'
        assert args.formatter == 'json'
    assert parse('list', '-v').verbose_level == 2
    assert parse('-v', 'list', '-v').verbose_level == 3


def test_log_levels():
    assert shell.log_level(parse('list')) == logging.WARNING
    assert shell.log_level(parse('list', '-q')) == logging.ERROR
    assert shell.log_level(parse('list', '-v')) == logging.INFO
    assert shell.log_level(parse('list', '-vv')) == logging.DEBUG
    assert shell.log_level(parse('list', '--debug')) == logging.DEBUG


def test_state_dir_after_the_command_is_used(tmp_path, capsys,
                                             no_cloud_env):
    state = tmp_path / 'state'
    # No cloud: the usage error comes after the configuration is read.
    code = shell.main(['list', '--state-dir', str(state)])
    assert code == errors.EXIT_USAGE
    assert cfg.CONF.ipa_cinder.state_dir == str(state)


def test_connector_host_defaults_to_host_name():
    app = shell.IpaCinderApp()
    app.options = parse('list')
    assert app.connector_host == socket.gethostname()
    app.options = parse('list', '--host', 'h1')
    assert app.connector_host == 'h1'


@pytest.mark.parametrize('argv', [
    [],
    ['attach'],
    ['--debug'],
    ['local-attach'],
    ['local-attach', 'vol', '--mode', 'rx'],
    ['local-attach', 'vol', '--multipath=maybe'],
    ['local-attach', 'vol', '--instance-uuid', 'not-a-uuid'],
    ['local-attach', 'vol', '--mountpoint', 'relative/dir'],
    ['local-detach', 'vol', '--attachment-id', '1234'],
    ['list', '--format', 'xml'],
    ['list', '-f', 'shell'],
    ['list', '--show-secrets=perhaps'],
    ['list', '--service-role-header'],
    ['list', '--service-role-header', 'maybe'],
    ['list', '--no-such-option'],
])
def test_usage_errors_exit_2(argv, capsys):
    assert shell.main(argv) == errors.EXIT_USAGE
    captured = capsys.readouterr()
    assert 'usage:' in captured.err
    assert captured.out == ''


def test_help_exits_0(capsys):
    assert shell.main(['--help']) == 0
    out = capsys.readouterr().out
    for command in ('get-connector', 'local-attach', 'local-detach',
                    'list'):
        assert command in out
    for option in ('--os-cloud', '--state-dir', '--host', '--config-file',
                   '--service-role-header', '--debug'):
        assert option in out
    assert 'Exit codes' in out


@pytest.mark.parametrize('argv', [['local-attach', '--help'],
                                  ['help', 'local-attach'],
                                  ['--help', 'local-attach']])
def test_command_help_exits_0(argv, capsys):
    assert shell.main(argv) == 0
    out = capsys.readouterr().out
    assert 'usage: ipa-cinder local-attach' in out
    for option in ('--mode', '--mountpoint', '--multipath',
                   '--no-multipath', '--format', '--column',
                   '--show-secrets'):
        assert option in out
    assert 'before or after the command' in out


def test_help_and_usage_errors_do_not_load_os_brick():
    code = ('import sys\n'
            'from ipa_cinder.cli import shell\n'
            'codes = [shell.main(a) for a in (["--help"], ["list", "--help"],'
            ' ["local-attach"], ["list", "-f", "xml"])]\n'
            'print(codes, "os_brick" in sys.modules)\n')
    result = subprocess.run([sys.executable, '-c', code], check=True,
                            capture_output=True, text=True)
    assert result.stdout.splitlines()[-1] == '[0, 0, 2, 2] False'
    assert 'Warning' not in result.stderr


# The commands, as the entry points and the documentation see them

def test_commands_are_entry_points():
    app = shell.IpaCinderApp()
    names = {name for name, _ep in app.command_manager}
    assert {'get-connector', 'local-attach', 'local-detach',
            'list'} <= names


@pytest.mark.parametrize('name', ['get-connector', 'local-attach',
                                  'local-detach', 'list'])
def test_commands_document_themselves(name):
    # What cliff's Sphinx extension does: no application.
    app = shell.IpaCinderApp()
    factory = app.command_manager.find_command([name])[0]
    command = factory(None, None)
    parser = command.get_parser('ipa-cinder ' + name)
    assert len(command.get_description().split('\n')[0]) > 20
    assert 'Exit codes' in parser.epilog
    for action in parser._actions:
        assert action.help, '%s %s has no help' % (name, action.dest)


# Other rules the command relies on

def test_noauth_token_takes_the_project_from_the_url():
    assert noauth.token_for(
        'http://127.0.0.1:8776/v3/5a4d6b0e1c2f4a3b9d8e7f6a5b4c3d2e', {}) \
        == 'ipa-cinder:5a4d6b0e1c2f4a3b9d8e7f6a5b4c3d2e'
    assert noauth.token_for(
        'http://127.0.0.1:8776/v3', {'project_id': 'p1', 'user_id': 'u1'}) \
        == 'u1:p1'


def test_mount_table_unescape():
    assert mounts.unescape(r'/mnt/with\040space') == '/mnt/with space'


def test_attachment_connection_info_is_unflattened():
    flat = {'driver_volume_type': 'iscsi',
            'target_portal': '127.0.0.1:3260',
            'target_iqn': 'iqn.2010-10.org.openstack:volume-x',
            'target_lun': 1}
    nested = connection.from_attachment(flat)
    assert nested['driver_volume_type'] == 'iscsi'
    assert nested['data']['target_lun'] == 1
    assert 'driver_volume_type' not in nested['data']
    assert connection.validate_connection_info(nested)
    # Already nested: unchanged.
    assert connection.from_attachment(nested) == nested


# Exit codes

@pytest.mark.parametrize('exc,code', [
    (exception.CLIError('x', errors.EXIT_LOCAL), errors.EXIT_LOCAL),
    (exception.CLIError('x', errors.EXIT_NOT_ROOT), errors.EXIT_NOT_ROOT),
    (exception.PartialResult('x', errors.EXIT_CINDER, []),
     errors.EXIT_CINDER),
    (exception.CinderNotFound('gone', call='find_volume'),
     errors.EXIT_CINDER),
    (exception.CinderUnavailable('down'), errors.EXIT_CINDER),
    (exception.InvalidConnector('no host'), errors.EXIT_CINDER),
    (exception.VolumeConnectionError('no'), errors.EXIT_LOCAL),
    (exception.InvalidConnectionInfo('data', 'bad'), errors.EXIT_LOCAL),
    (exception.NoStorageIdentity('none'), errors.EXIT_LOCAL),
    (OSError(5, 'EIO'), errors.EXIT_LOCAL),
    (RuntimeError('bug'), errors.EXIT_ERROR),
    (exception.CLIError('x'), errors.EXIT_ERROR),
])
def test_classify(exc, code):
    assert errors.classify(exc)[0] == code


def test_exit_codes_are_distinct():
    codes = [errors.EXIT_OK, errors.EXIT_ERROR, errors.EXIT_USAGE,
             errors.EXIT_CINDER, errors.EXIT_LOCAL, errors.EXIT_NOT_ROOT,
             errors.EXIT_INTERRUPTED]
    assert len(set(codes)) == len(codes)
    assert errors.EXIT_USAGE == 2
    assert errors.EXIT_INTERRUPTED == 130


@pytest.mark.parametrize('command', [['get-connector'],
                                     ['local-attach', 'vol'],
                                     ['local-detach', 'vol']])
def test_not_root_exit_5(command, tmp_path, capsys, no_cloud_env):
    with mock.patch.object(os, 'geteuid', autospec=True, return_value=1000):
        code = shell.main(command + ['--state-dir', str(tmp_path)])
    assert code == errors.EXIT_NOT_ROOT
    err = capsys.readouterr().err
    assert 'must run as root' in err
    assert 'sudo' in err


def test_unknown_column_is_refused_before_anything_runs(tmp_path, capsys,
                                                        no_cloud_env):
    # Not root, no cloud: the column check comes first.
    with mock.patch.object(os, 'geteuid', autospec=True, return_value=1000):
        code = shell.main(['local-attach', 'vol', '-c', 'device_path',
                           '-c', 'no_such_column', '--state-dir',
                           str(tmp_path), '-f', 'json'])
    assert code == errors.EXIT_USAGE
    captured = capsys.readouterr()
    assert 'no_such_column' in captured.err
    assert json.loads(captured.out)['error']['kind'] == 'usage'


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
    code = shell.main(['local-detach', VOLUME] + unreachable_cinder)
    assert code == errors.EXIT_CINDER
    captured = capsys.readouterr()
    assert json.loads(captured.out)['error']['kind'] == 'cinder'
    assert 'cinder error' in captured.err


def test_list_shows_local_record_when_cinder_is_unreachable(
        unreachable_cinder, capsys):
    code = shell.main(['list'] + unreachable_cinder)
    assert code == errors.EXIT_CINDER
    captured = capsys.readouterr()
    # The (empty) local record is the result; the error is on stderr.
    assert json.loads(captured.out) == []
    assert 'cinder error' in captured.err
    assert 'cannot reach Cinder' in captured.err


def test_noauth_without_endpoint_is_a_usage_error(tmp_path, capsys,
                                                  monkeypatch,
                                                  no_cloud_env):
    monkeypatch.setenv('OS_AUTH_TYPE', 'none')
    code = shell.main(['list', '--state-dir', str(tmp_path / 'state')])
    assert code == errors.EXIT_USAGE
    assert 'OS_ENDPOINT' in capsys.readouterr().err


def test_unknown_auth_type_is_a_usage_error(capsys, monkeypatch,
                                            no_cloud_env):
    monkeypatch.setenv('OS_AUTH_TYPE', 'no-such-plugin')
    assert shell.main(['list']) == errors.EXIT_USAGE
    assert 'cloud configuration' in capsys.readouterr().err


def test_no_cloud_configured_is_a_usage_error(tmp_path, capsys,
                                              no_cloud_env):
    if os.path.exists(os.path.expanduser('~/.config/openstack')) or \
            os.path.exists('/etc/openstack'):
        pytest.skip('a clouds.yaml may exist on this host')
    code = shell.main(['list', '--state-dir', str(tmp_path / 'state')])
    assert code == errors.EXIT_USAGE
    err = capsys.readouterr().err
    assert 'usage error' in err
    assert 'OS_CLOUD' in err


def test_bad_config_file_is_a_usage_error(tmp_path, capsys, no_cloud_env):
    conf_file = tmp_path / 'broken.conf'
    conf_file.write_text('[ipa_cinder\nstate_dir = /x\n')
    code = shell.main(['list', '--config-file', str(conf_file)])
    assert code == errors.EXIT_USAGE
    assert 'configuration' in capsys.readouterr().err


def test_bad_mountpoint_is_a_usage_error(tmp_path, capsys, no_cloud_env):
    code = shell.main(['local-attach', 'vol', '--mountpoint', 'relative/dir',
                       '--state-dir', str(tmp_path)])
    assert code == errors.EXIT_USAGE
    assert '--mountpoint' in capsys.readouterr().err


@pytest.mark.parametrize('line,reason', [
    ('cinder_retry_attempts = many', "invalid literal for int()"),
    ('cinder_request_timeout = 0', 'greater than or equal to 1'),
])
def test_bad_option_value_is_a_usage_error(tmp_path, capsys, no_cloud_env,
                                           line, reason):
    conf_file = tmp_path / 'bad-value.conf'
    conf_file.write_text('[ipa_cinder]\n%s\n' % line)
    code = shell.main(['list', '--config-file', str(conf_file),
                       '--state-dir', str(tmp_path / 'state')])
    assert code == errors.EXIT_USAGE
    err = capsys.readouterr().err
    assert 'usage error: configuration: %s: option [ipa_cinder] %s' % (
        conf_file, line.split()[0]) in err, err
    assert reason in err


def test_clouds_yaml_that_is_not_yaml(tmp_path, capsys, monkeypatch,
                                      no_cloud_env):
    clouds = tmp_path / 'clouds.yaml'
    clouds.write_text('clouds: [\n  x: {\n')
    monkeypatch.setenv('OS_CLIENT_CONFIG_FILE', str(clouds))
    monkeypatch.setenv('OS_CLOUD', 'x')
    code = shell.main(['list', '--state-dir', str(tmp_path / 'state')])
    assert code == errors.EXIT_USAGE
    err = capsys.readouterr().err
    assert '%s is not valid YAML' % clouds in err, err
    assert 'was not found' not in err


def test_host_instance_uuid_is_stable_per_host_and_volume():
    from ipa_cinder.cli import volumes

    first = volumes.host_instance_uuid('host-a', VOLUME)
    assert first == volumes.host_instance_uuid('host-a', VOLUME)
    assert first != volumes.host_instance_uuid('host-b', VOLUME)
    assert first != volumes.host_instance_uuid('host-a', VOLUME[::-1])
    # A published value: changing it would orphan existing attachments.
    assert first == str(uuid.uuid5(volumes.HOST_INSTANCE_NAMESPACE,
                                   'host-a/' + VOLUME))


def test_instance_uuid_option():
    assert parse('local-attach', 'v').instance_uuid is None
    assert parse('local-attach', 'v', '--instance-uuid',
                 'None').instance_uuid == ''
    assert parse('local-attach', 'v', '--instance-uuid',
                 VOLUME).instance_uuid == VOLUME
    with pytest.raises(SystemExit):
        parse('local-attach', 'v', '--instance-uuid', 'nope')
