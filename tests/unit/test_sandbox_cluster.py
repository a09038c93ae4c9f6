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

"""The sandbox's Ironic cluster: layout, configuration files, commands.

Nothing is started: the configuration is written under a temporary state
directory and read back, and the cluster's own options are checked against
the options Ironic 39 registers.
"""

import configparser
import json

import pytest

from ipa_cinder_sandbox import cli
from ipa_cinder_sandbox import database as database_mod
from ipa_cinder_sandbox import errors
from ipa_cinder_sandbox import ironic_cluster
from ipa_cinder_sandbox import ironic_service
from ipa_cinder_sandbox import layout as layout_mod
from ipa_cinder_sandbox import process
from ipa_cinder_sandbox import sandbox as sandbox_mod

#: What the cluster changes in the combined process's ironic.conf, and
#: nothing else.
CLUSTER_CHANGES = {
    ('DEFAULT', 'rpc_transport'), ('DEFAULT', 'transport_url'),
    ('DEFAULT', 'host'), ('database', 'connection'),
} | {(section, option)
     for section, options in ironic_cluster.CLUSTER_OPTIONS.items()
     for option in options}


def _layout(tmp_path, conductors=2, database='mariadb'):
    return layout_mod.Layout(str(tmp_path / 'state'), 19350, database,
                             conductors)


def _ironic(layout):
    procs = process.ProcessTable(layout.path('run'), layout.path('log'))
    database = database_mod.get_database(layout, procs)
    return ironic_cluster.get_ironic(layout, procs, database)


def _read(*paths):
    conf = configparser.ConfigParser(interpolation=None)
    for path in paths:
        assert conf.read(path) == [path]
    return conf


def _options(conf):
    """{(section, option): value}, [DEFAULT] included once."""
    result = {('DEFAULT', k): v for k, v in conf.defaults().items()}
    for section in conf.sections():
        for option in conf.options(section):
            if option not in conf.defaults():
                result[(section, option)] = conf.get(section, option)
    return result


# Layout

def test_one_conductor_is_the_default(tmp_path):
    layout = layout_mod.Layout(str(tmp_path / 'state'), 19350)
    assert layout.conductors == 1
    assert layout.to_dict()['conductors'] == 1


@pytest.mark.parametrize('conductors', [2, 5])
def test_several_conductors_need_mariadb(tmp_path, conductors):
    with pytest.raises(errors.SandboxError) as failure:
        _layout(tmp_path, conductors, database='sqlite')
    assert 'mariadb' in str(failure.value)
    assert '%d conductors' % conductors in str(failure.value)


@pytest.mark.parametrize('conductors', [0, -1, 'two', None])
def test_conductors_must_be_a_positive_number(tmp_path, conductors):
    with pytest.raises(errors.SandboxError) as failure:
        _layout(tmp_path, conductors)
    assert 'at least 1' in str(failure.value)


def test_layout_saves_and_loads_the_conductors(tmp_path):
    layout = _layout(tmp_path, 3)
    layout.save()
    again, data = layout_mod.Layout.load(layout.state_dir)
    assert (again.conductors, data['conductors']) == (3, 3)
    assert again.to_dict() == layout.to_dict()


def test_a_sandbox_json_without_conductors_means_one(tmp_path):
    layout = _layout(tmp_path, 1, 'sqlite')
    layout.save()
    with open(layout.info_file) as f:
        data = json.load(f)
    del data['conductors']
    with open(layout.info_file, 'w') as f:
        json.dump(data, f)
    assert layout_mod.Layout.load(layout.state_dir)[0].conductors == 1


# Which Ironic

def test_one_conductor_is_the_combined_process(tmp_path):
    ironic = _ironic(_layout(tmp_path, 1, 'sqlite'))
    assert type(ironic) is ironic_service.Ironic
    assert ironic.process_names() == ['ironic']


def test_sandbox_runs_the_cluster_for_several_conductors(tmp_path):
    box = sandbox_mod.Sandbox(_layout(tmp_path, 3))
    assert isinstance(box.ironic, ironic_cluster.IronicCluster)
    assert box.ironic.process_names() == [
        'ironic-api', 'ironic-conductor-1', 'ironic-conductor-2',
        'ironic-conductor-3']


# Configuration

def test_combined_configuration_is_unchanged(tmp_path):
    ironic = _ironic(_layout(tmp_path, 1, 'sqlite'))
    ironic.write_config()
    options = _options(_read(ironic.conf))
    assert options[('DEFAULT', 'rpc_transport')] == 'none'
    assert options[('DEFAULT', 'host')] == 'sandbox'
    assert options[('database', 'connection')].startswith('sqlite:///')
    assert ('DEFAULT', 'transport_url') not in options
    assert ('DEFAULT', 'hash_ring_reset_interval') not in options


def test_cluster_changes_only_its_own_options(tmp_path):
    layout = _layout(tmp_path)
    combined = _options(ironic_service.Ironic(
        layout, _ironic(layout).procs).config())
    cluster = _options(_ironic(layout).config())
    changed = {key for key in set(combined) | set(cluster)
               if combined.get(key) != cluster.get(key)}
    assert changed <= CLUSTER_CHANGES
    assert cluster[('DEFAULT', 'rpc_transport')] == 'oslo'
    assert cluster[('DEFAULT', 'transport_url')] == layout.transport_url
    assert cluster[('database', 'connection')] == (
        'mysql+pymysql://root@127.0.0.1:%d/ironic?charset=utf8'
        % layout.ports['mariadb'])
    # The API serves where the combined process did.
    assert cluster[('api', 'port')] == str(layout.ports['ironic'])


def test_each_conductor_gets_its_own_host(tmp_path):
    ironic = _ironic(_layout(tmp_path, 3))
    ironic.write_config()
    for number, name in enumerate(ironic.conductor_names(), 1):
        argv = ironic.conductor_argv(name)
        assert argv[1].endswith('/ironic-conductor')
        own = argv[argv.index(ironic.conf) + 2]
        assert argv[argv.index(ironic.conf) + 1] == '--config-file'
        conf = _read(own)
        assert dict(conf.defaults()) == {'host': 'conductor-%d' % number}
        assert conf.sections() == []
        assert _read(ironic.conf, own).get('DEFAULT', 'host') == (
            'conductor-%d' % number)
        assert argv[-1] == ironic.procs.log_path(name)
        assert ironic.host_of(name) == 'conductor-%d' % number
    assert ironic.argv()[1].endswith('/ironic-api')
    assert ironic.argv()[-1] == ironic.procs.log_path('ironic-api')


def test_liveness_moves_a_dead_conductors_nodes_within_a_minute():
    options = ironic_cluster.CLUSTER_OPTIONS
    interval = int(options['conductor']['heartbeat_interval'])
    timeout = int(options['conductor']['heartbeat_timeout'])
    ring = int(options['DEFAULT']['hash_ring_reset_interval'])
    orphans = int(options['conductor']['check_provision_state_interval'])
    # A live conductor touches its row several times per timeout.
    assert interval * 3 <= timeout <= 15
    assert timeout + ring + orphans < 60


def test_cluster_options_are_ironics_own():
    from ironic.conf import opts as ironic_opts
    registered = {}
    for group, opts in ironic_opts.list_opts():
        registered.setdefault(group or 'DEFAULT', set()).update(
            opt.dest for opt in opts)
    for section, options in ironic_cluster.CLUSTER_OPTIONS.items():
        for option in options:
            assert option in registered[section], (section, option)


# Names and commands

def test_unknown_conductor_names_are_refused(tmp_path):
    ironic = _ironic(_layout(tmp_path))
    for call in (ironic.kill_conductor, ironic.start_conductor,
                 ironic.host_of, ironic.log_tail):
        with pytest.raises(errors.SandboxError):
            call('ironic-conductor-3')
    with pytest.raises(errors.SandboxError):
        ironic.kill_conductor('ironic-conductor-1')  # not running


def test_cli_up_takes_the_number_of_conductors():
    args = cli._parser().parse_args(['up', '--database', 'mariadb',
                                     '--conductors', '3'])
    assert (args.database, args.conductors) == ('mariadb', 3)
    assert cli._parser().parse_args(['up']).conductors == 1
