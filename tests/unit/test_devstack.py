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

"""The devstack plugin: syntax, style, and what each phase does.

devstack cannot run here, so its functions (iniset, setup_develop, die...)
are replaced by shell functions that record their calls, and
diskimage-builder and pip's wheel build by scripts that write the files
the plugin expects. Everything of the plugin itself runs as devstack runs
it: ``settings`` sourced, then ``plugin.sh <mode> <phase>``.
"""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
PLUGIN = os.path.join(ROOT, 'devstack', 'plugin.sh')
SETTINGS = os.path.join(ROOT, 'devstack', 'settings')

# The phases devstack calls a plugin in (doc/source/plugins.rst of
# devstack): stack's five, unstack and clean.
STACK_PHASES = ('pre-install', 'install', 'post-config', 'extra',
                'test-config')

# devstack's functions, recording their calls into $CALLS.
DEVSTACK_STUBS = r'''
record() { printf '%s\n' "$*" >> "$CALLS"; }
is_service_enabled() {
    local s
    for s in "$@"; do
        [[ ",$ENABLED_SERVICES," == *",$s,"* ]] && return 0
    done
    return 1
}
echo_summary() { record "summary $*"; }
die() { shift; echo "die: $*" >&2; exit 3; }
die_if_not_set() {
    local code=$? line=$1 evar=$2
    shift 2
    if [[ $code -ne 0 || -z "${!evar}" ]]; then die "$line" "$*"; fi
}
warn() { shift; record "warn $*"; }
trueorfalse() {
    case "${!2:-}" in
        True|true|yes|1) echo True ;;
        False|false|no|0) echo False ;;
        *) echo "$1" ;;
    esac
}
define_plugin() { :; }
plugin_requires() { :; }
setup_develop() { record "setup_develop $*"; }
git_clone() { record "git_clone $*"; }
install_diskimage_builder() { record "install_diskimage_builder"; }
iniset() { record "iniset $*"; }
iniget() {
    "$TEST_PYTHON" -c 'import configparser, sys
c = configparser.ConfigParser(interpolation=None)
c.read(sys.argv[1])
print(c.get(sys.argv[2], sys.argv[3], fallback=""))' "$@"
}
sudo() { record "sudo $*"; }
'''

FAKE_DIB = '''#!/bin/bash
# disk-image-create: records how it was called, writes the outputs.
printf 'dib %s\\n' "$*" >> "$CALLS"
printf 'dib-env ELEMENTS_PATH=%s DIB_IPA_CINDER_WHEEL=%s\\n' \\
    "$ELEMENTS_PATH" "$DIB_IPA_CINDER_WHEEL" >> "$CALLS"
while [[ $# -gt 0 ]]; do
    if [[ "$1" == -o ]]; then
        touch "$2.kernel" "$2.initramfs"
    fi
    shift
done
'''

FAKE_PYTHON = '''#!/bin/bash
# "python -m pip wheel ... --wheel-dir DIR SOURCE": writes the wheel.
printf 'python %s\\n' "$*" >> "$CALLS"
while [[ $# -gt 0 ]]; do
    if [[ "$1" == --wheel-dir ]]; then
        mkdir -p "$2"
        touch "$2/ipa_cinder-1.0.0-py3-none-any.whl"
    fi
    shift
done
'''


def _script(path, text):
    with open(path, 'w') as f:
        f.write(text)
    os.chmod(path, 0o755)


@pytest.fixture
def stack(tmp_path):
    """A devstack-like environment; returns a runner of one phase."""
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    _script(bindir / 'disk-image-create', FAKE_DIB)
    _script(bindir / 'fake-python', FAKE_PYTHON)
    files = tmp_path / 'files'
    files.mkdir()
    ironic_conf = tmp_path / 'ironic.conf'
    ironic_conf.write_text(textwrap.dedent('''\
        [DEFAULT]
        enabled_hardware_types = ipmi,fake-hardware,cinder-ipmi,cinder-redfish
        enabled_deploy_interfaces = fake,direct,ramdisk,cinder-agent
        '''))
    calls = tmp_path / 'calls'
    env = {
        'PATH': '%s:%s' % (bindir, os.environ.get('PATH', '/usr/bin:/bin')),
        'CALLS': str(calls), 'TEST_PYTHON': sys.executable,
        'PYTHON': str(bindir / 'fake-python'),
        'DEST': str(tmp_path), 'FILES': str(files), 'TOP_DIR': str(tmp_path),
        'IPA_CINDER_DIR': ROOT, 'HOST_IP': '192.0.2.1',
        'FLOATING_RANGE': '192.0.2.0/24',
        'IRONIC_CONF_FILE': str(ironic_conf),
        'TEMPEST_CONFIG': str(tmp_path / 'tempest.conf'),
        'DEVSTACK_PLUGINS': 'ironic,ipa-cinder',
        'ENABLED_SERVICES': 'ir-api,ir-cond,c-api,c-vol,tempest',
        'IRONIC_DIB_RAMDISK_OPTIONS': 'debian-minimal',
        'IRONIC_PYTHON_AGENT_BUILDER_DIR': str(tmp_path / 'ipa-builder'),
        'IRONIC_PYTHON_AGENT_DIR': str(tmp_path / 'no-ipa-checkout'),
    }

    def run(mode, phase='', check=True, after='', **extra):
        script = '%s\nsource "%s"\nsource "%s" %s %s\n%s\n' % (
            DEVSTACK_STUBS, SETTINGS, PLUGIN, mode, phase, after)
        if calls.exists():
            calls.unlink()
        result = subprocess.run(
            ['bash', '-c', script], env=dict(env, **extra), cwd=tmp_path,
            capture_output=True, text=True, timeout=60)
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        recorded = calls.read_text() if calls.exists() else ''
        return result, recorded

    run.files = files
    return run


def test_plugin_and_settings_pass_bash_syntax_check():
    for path in (PLUGIN, SETTINGS):
        result = subprocess.run(['bash', '-n', path], capture_output=True,
                                text=True)
        assert result.returncode == 0, result.stderr


def test_plugin_and_settings_are_bashate_clean():
    bashate = shutil.which(
        'bashate', path=os.path.dirname(sys.executable)) or shutil.which(
        'bashate')
    assert bashate, 'bashate is in test-requirements.txt: install it'
    result = subprocess.run([bashate, '-v', PLUGIN, SETTINGS],
                            capture_output=True, text=True)
    # Warnings (E006 long lines...) count too: bashate prints every one.
    assert result.returncode == 0, result.stdout + result.stderr
    assert ' E0' not in result.stdout, result.stdout


def test_every_devstack_phase_is_dispatched():
    with open(PLUGIN) as f:
        text = f.read()
    assert '"$1" == "stack"' in text
    for phase in STACK_PHASES:
        assert '"$2" == "%s"' % phase in text, phase
    for mode in ('unstack', 'clean'):
        assert '"$1" == "%s"' % mode in text, mode


def _settings(stack, **extra):
    result, _calls = stack('', after='echo "$IRONIC_ENABLED_HARDWARE_TYPES '
                           '$IRONIC_ENABLED_DEPLOY_INTERFACES '
                           '$IRONIC_ENABLED_BOOT_INTERFACES '
                           '${IRONIC_DEPLOY_KERNEL:-none} '
                           '${IRONIC_DEPLOY_RAMDISK:-none}"', **extra)
    return result.stdout.split()


def test_settings_extend_ironic_defaults(stack):
    types, deploy, boot, kernel, ramdisk = _settings(stack)
    assert types == 'ipmi,fake-hardware,cinder-ipmi,cinder-redfish'
    assert deploy == 'fake,direct,ramdisk,cinder-agent'
    assert boot == 'fake,ipxe'
    assert kernel == str(stack.files / 'ir-deploy-ipa-cinder.kernel')
    assert ramdisk == str(stack.files / 'ir-deploy-ipa-cinder.initramfs')


def test_settings_keep_what_local_conf_set(stack):
    types, deploy, boot, kernel, _ramdisk = _settings(
        stack, IRONIC_ENABLED_HARDWARE_TYPES='redfish,cinder-ipmi',
        IRONIC_ENABLED_DEPLOY_INTERFACES='direct',
        IRONIC_ENABLED_BOOT_INTERFACES='http-ipxe',
        IPA_CINDER_BUILD_RAMDISK='False')
    assert types == 'redfish,cinder-ipmi,cinder-redfish'
    assert deploy == 'direct,cinder-agent'
    assert boot == 'http-ipxe,ipxe'
    assert kernel == 'none'


def test_pre_install_refuses_ironic_enabled_after_the_plugin(stack):
    result, _calls = stack('stack', 'pre-install', check=False,
                           DEVSTACK_PLUGINS='ipa-cinder,ironic')
    assert result.returncode == 3
    assert 'enable_plugin ironic must come before' in result.stderr


def test_pre_install_warns_without_cinder(stack):
    _result, calls = stack('stack', 'pre-install')
    assert 'warn' not in calls
    _result, calls = stack('stack', 'pre-install',
                           ENABLED_SERVICES='ir-api,ir-cond')
    assert 'warn Cinder (c-vol) is not enabled' in calls


def test_install_builds_the_ramdisk_with_the_element(stack):
    _result, calls = stack('stack', 'install')
    assert 'setup_develop %s conductor' % ROOT in calls
    assert 'python -m pip wheel' in calls
    dib = [line for line in calls.splitlines() if line.startswith('dib ')]
    assert len(dib) == 1
    assert dib[0].split()[1] == 'debian-minimal'
    assert dib[0].endswith('ironic-python-agent-ramdisk ipa-cinder')
    assert 'ELEMENTS_PATH=%s/elements:' % ROOT in calls
    assert 'DIB_IPA_CINDER_WHEEL=%s/' % os.path.dirname(
        str(stack.files)) in calls
    assert '-py3-none-any.whl' in calls
    for name in ('ir-deploy-ipa-cinder.kernel',
                 'ir-deploy-ipa-cinder.initramfs'):
        assert (stack.files / name).exists()


def test_install_keeps_a_ramdisk_already_built(stack):
    for name in ('ir-deploy-ipa-cinder.kernel',
                 'ir-deploy-ipa-cinder.initramfs'):
        (stack.files / name).touch()
    _result, calls = stack('stack', 'install')
    assert 'setup_develop' in calls
    assert 'dib ' not in calls


@pytest.mark.parametrize('extra', [{'IPA_CINDER_BUILD_RAMDISK': 'False'},
                                   {'HOST_TOPOLOGY_ROLE': 'subnode'}])
def test_install_without_a_ramdisk_build(stack, extra):
    _result, calls = stack('stack', 'install', **extra)
    assert 'setup_develop %s conductor' % ROOT in calls
    assert 'dib ' not in calls


def test_post_config_checks_what_ironic_wrote(stack, tmp_path):
    stack('stack', 'post-config')
    (tmp_path / 'ironic.conf').write_text(
        '[DEFAULT]\nenabled_hardware_types = ipmi,cinder-ipmi,'
        'cinder-redfish\nenabled_deploy_interfaces = direct\n')
    result, _calls = stack('stack', 'post-config', check=False)
    assert result.returncode == 3
    assert 'enabled_deploy_interfaces = direct lacks cinder-agent' in (
        result.stderr)


RULE = 'INPUT -d 192.0.2.1 -p tcp --dport 3260 -s 192.0.2.0/24 -j ACCEPT'


def test_extra_opens_the_iscsi_portal(stack):
    _result, calls = stack('stack', 'extra')
    assert 'sudo iptables -I %s' % RULE in calls
    # Ironic's own cinder storage interface opens it already.
    _result, calls = stack('stack', 'extra', IRONIC_STORAGE_INTERFACE='cinder')
    assert 'iptables' not in calls


def test_test_config_configures_tempest(stack, tmp_path):
    (tmp_path / 'tempest.conf').write_text(
        '[baremetal]\nenabled_hardware_types = ipmi\n'
        'enabled_deploy_interfaces = direct\n[volume]\nvolume_size = 1\n')
    _result, calls = stack('stack', 'test-config')
    conf = str(tmp_path / 'tempest.conf')
    assert ('iniset %s baremetal enabled_hardware_types '
            'ipmi,cinder-ipmi,cinder-redfish' % conf) in calls
    assert ('iniset %s baremetal enabled_deploy_interfaces '
            'direct,cinder-agent' % conf) in calls
    assert 'iniset %s volume volume_size 2' % conf in calls
    # No exercise unless asked: it would call the openstack client.
    assert 'ipa-cinder boot-from-volume exercise' not in calls
    _result, calls = stack('stack', 'test-config',
                           ENABLED_SERVICES='ir-api,ir-cond,c-vol')
    assert 'iniset' not in calls


def test_unstack_removes_the_iscsi_rule(stack):
    _result, calls = stack('unstack')
    assert 'sudo iptables -D %s' % RULE in calls


@pytest.mark.parametrize('services', ['ir-api,ir-cond', ''])
def test_clean_removes_the_built_ramdisk(stack, services):
    for name in ('ir-deploy-ipa-cinder.kernel',
                 'ir-deploy-ipa-cinder.initramfs', 'other.kernel'):
        (stack.files / name).touch()
    stack('clean', ENABLED_SERVICES=services)
    assert sorted(os.listdir(stack.files)) == ['other.kernel']


@pytest.mark.parametrize('driver,expected', [
    ('ipmi', 'cinder-ipmi'), ('redfish', 'cinder-redfish'),
    ('cinder-ipmi', 'cinder-ipmi'), ('fake-hardware', 'fake-hardware'),
    ('idrac', '')])
def test_exercise_driver_for_each_hardware_type(stack, driver, expected):
    result, _calls = stack('', after='_ipa_cinder_bfv_driver %s' % driver)
    assert result.stdout.strip() == expected


def test_wait_for_returns_on_the_wanted_state_and_dies_on_failure(stack):
    stack('', after='_ipa_cinder_wait_for node 60 active error echo active')
    result, _calls = stack(
        '', check=False,
        after='_ipa_cinder_wait_for node 60 active "deploy failed,error" '
              'echo "deploy failed"')
    assert result.returncode == 3
    assert 'node: deploy failed instead of active' in result.stderr
