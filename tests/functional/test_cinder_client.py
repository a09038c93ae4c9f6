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

"""The Cinder attachments client against the sandbox's real Cinder 29.

The client runs on a keystoneauth adapter of the sandbox's noauth Cinder
(``X-Auth-Token: <user>:<project>``, the ``admin_token`` way), so it is told
to send ``X-Service-Roles: service`` explicitly: auto-detection only knows
keystoneauth's ``none`` plugin.
"""

import json
import logging
import threading
import time
import uuid

import openstack.connection
from oslo_config import cfg
import pytest

from ipa_cinder.common import cinder_client as cinder
from ipa_cinder.common import secrets as secrets_mod
from ipa_cinder.conductor import cinder_session
from ipa_cinder import conf as ipa_conf
from ipa_cinder import exception


@pytest.fixture
def conf():
    conf = cfg.ConfigOpts()
    ipa_conf.register_opts(conf)
    conf([], project='ipa-cinder-functional')
    conf.set_override('cinder_retry_initial_delay', 0.2, group='ipa_cinder')
    conf.set_override('cinder_retry_max_delay', 2.0, group='ipa_cinder')
    conf.set_override('cinder_retry_attempts', 30, group='ipa_cinder')
    conf.set_override('cinder_retry_max_time', 60.0, group='ipa_cinder')
    return conf


@pytest.fixture
def nodes():
    """Node UUIDs of a test; their attachments are deleted after it."""
    return []


@pytest.fixture
def node(nodes):
    nodes.append(str(uuid.uuid4()))
    return nodes[0]


@pytest.fixture
def new_volume(sandbox):
    """Create volumes for one test; deleted after it (quota is small)."""
    created = []

    def create(volume_type='local'):
        volume = sandbox.create_volume(volume_type=volume_type)
        created.append(volume['id'])
        return volume

    yield create
    for volume_id in created:
        sandbox.delete_volume(volume_id)


@pytest.fixture
def client(sandbox, conf, nodes, node, new_volume):
    client = cinder.CinderClient(sandbox.cinder_adapter(), node=node,
                                 service_role_header=True, conf=conf)
    yield client
    # A failed test must not leave attachments (and reserved volumes).
    for uuid_ in nodes:
        for attachment in client.list_attachments(instance_uuid=uuid_):
            client.delete_attachment(attachment['id'])


def _attach(client, sandbox, volume, node, mode=None, protocol='local'):
    return client.create_attachment(
        volume['id'], sandbox.connector('host-%s' % node[:8]),
        instance_uuid=node, mode=mode, protocol=protocol)


@pytest.mark.parametrize('mode', ['rw', 'ro', None])
def test_attach_complete_detach(sandbox, new_volume, client, node, mode):
    volume = new_volume('local')
    attachment = _attach(client, sandbox, volume, node, mode=mode)
    # The mode shows in attach_mode (3.54), not in connection_info. Without
    # a mode (3.44) Cinder records the string "null": read-write.
    assert attachment['attach_mode'] == (mode or 'null')
    assert attachment['instance'] == node
    assert attachment['connection_info']['driver_volume_type'] == 'local'

    client.complete_attachment(attachment['id'], volume_id=volume['id'])
    found = client.get_volume(volume['id'])
    assert found['status'] == 'in-use'
    assert [a['id'] for a in client.list_attachments(instance_uuid=node)] \
        == [attachment['id']]
    assert client.get_attachment(attachment['id'])['status'] == 'attached'

    # Deleting an attachment with instance and connection info needs the
    # service role: the client sends it, Cinder does not ask Nova.
    assert client.delete_attachment(attachment['id'],
                                    volume_id=volume['id']) is True
    assert sandbox.wait_volume(volume['id'], 'available')
    assert client.list_attachments(volume_id=volume['id']) == []
    # Twice: already gone is success.
    assert client.delete_attachment(attachment['id'],
                                    volume_id=volume['id']) is False


def test_delete_without_service_role_is_refused(sandbox, new_volume, client,
                                                conf, node):
    volume = new_volume('local')
    attachment = _attach(client, sandbox, volume, node)
    client.complete_attachment(attachment['id'])
    conf.set_override('cinder_retry_attempts', 1, group='ipa_cinder')
    plain = cinder.CinderClient(sandbox.cinder_adapter(), node=node,
                                service_role_header=False, conf=conf)
    with pytest.raises(exception.CinderUnavailable) as exc:
        plain.delete_attachment(attachment['id'], volume_id=volume['id'])
    assert exc.value.status_code == 500
    assert 'X-Service-Roles' in str(exc.value)
    assert attachment['id'] in str(exc.value)
    # Refused: the attachment is still there, and the service may delete.
    assert client.get_attachment(attachment['id'])['id'] == attachment['id']
    assert client.delete_attachment(attachment['id']) is True
    sandbox.wait_volume(volume['id'], 'available')


def test_bad_connector_refused_without_leftover(sandbox, new_volume, client,
                                                node):
    volume = new_volume('iscsi')
    no_host = sandbox.connector('x')
    del no_host['host']
    with pytest.raises(exception.InvalidConnector, match='connector.host'):
        client.create_attachment(volume['id'], no_host, instance_uuid=node,
                                 mode='rw')
    no_initiator = sandbox.connector('host-%s' % node[:8])
    del no_initiator['initiator']
    with pytest.raises(exception.InvalidConnector,
                       match='connector.initiator') as exc:
        client.create_attachment(volume['id'], no_initiator,
                                 instance_uuid=node, protocol='iscsi')
    assert volume['id'] in str(exc.value) and node in str(exc.value)
    assert client.list_attachments(volume_id=volume['id']) == []
    assert client.get_volume(volume['id'])['status'] == 'available'


def test_iscsi_secrets_masked(sandbox, new_volume, client, node, caplog):
    # Everything logged at any level, keystoneauth's request logs included.
    caplog.set_level(logging.DEBUG)
    volume = new_volume('iscsi')
    attachment = _attach(client, sandbox, volume, node, mode='rw',
                         protocol='iscsi')
    try:
        # The attachment API flattens the driver's "data" into
        # connection_info, next to driver_volume_type.
        data = attachment['connection_info']
        assert data['driver_volume_type'] == 'iscsi'
        secrets = [data[k] for k in ('auth_username', 'auth_password')]
        assert all(secrets)
        masked = json.dumps(secrets_mod.mask(attachment))
        for secret in secrets:
            assert secret not in masked
        assert data['target_iqn'] in masked
        client.get_attachment(attachment['id'])
        client.list_attachments(volume_id=volume['id'])
        for secret in secrets:
            assert secret not in caplog.text
    finally:
        assert client.delete_attachment(attachment['id']) is True
    sandbox.wait_volume(volume['id'], 'available')


def test_second_rw_attach_refused_without_retry(sandbox, new_volume, client,
                                                node, nodes, caplog):
    volume = new_volume('local')
    first = _attach(client, sandbox, volume, node, mode='rw')
    client.complete_attachment(first['id'])
    other = str(uuid.uuid4())
    nodes.append(other)
    caplog.clear()
    with pytest.raises(exception.CinderBadRequest) as exc:
        _attach(client, sandbox, volume, other, mode='rw')
    assert 'retrying' not in caplog.text  # 400 is never retried
    assert exc.value.status_code == 400
    assert volume['id'] in str(exc.value)
    assert [a['id'] for a in client.list_attachments(
        volume_id=volume['id'])] == [first['id']]
    client.delete_attachment(first['id'])
    sandbox.wait_volume(volume['id'], 'available')


def test_openstacksdk_noauth_connection(sandbox, new_volume, conf, node):
    """The CLI's way: openstacksdk with ``auth_type: none``.

    keystoneauth's none plugin sends the token ``notused`` (user and
    project ``notused`` for a noauth Cinder), so the endpoint must not
    carry a project id; the client detects the plugin and sends the
    service role with deletes by itself.
    """
    conn = openstack.connection.Connection(
        auth_type='none',
        block_storage_endpoint_override='http://127.0.0.1:%d/v3'
        % sandbox.ports['cinder'],
        block_storage_api_version='3')
    client = cinder.CinderClient(conn, node=node, conf=conf)
    assert client.service_role_header is True
    volume = new_volume('local')
    attachment = _attach(client, sandbox, volume, node, mode='rw')
    try:
        client.complete_attachment(attachment['id'])
        assert client.get_volume(volume['id'])['status'] == 'in-use'
        # Created in another project: seen thanks to all_tenants.
        assert [a['id'] for a in client.list_attachments(
            instance_uuid=node)] == [attachment['id']]
    finally:
        assert client.delete_attachment(attachment['id']) is True
    sandbox.wait_volume(volume['id'], 'available')


def test_ironic_client_noauth(sandbox, new_volume, node):
    """The conductor's way: Ironic's [cinder] section, auth_type none."""
    from ironic.conf import CONF as IRONIC_CONF

    overrides = {'auth_type': 'none',
                 'endpoint_override': 'http://127.0.0.1:%d/v3'
                 % sandbox.ports['cinder']}
    for name, value in overrides.items():
        IRONIC_CONF.set_override(name, value, group='cinder')
    try:
        client = cinder_session.cinder_client(None, node=node)
        assert client.service_role_header is True
        volume = new_volume('local')
        attachment = _attach(client, sandbox, volume, node, mode='ro')
        client.complete_attachment(attachment['id'])
        assert attachment['attach_mode'] == 'ro'
        assert client.delete_attachment(attachment['id']) is True
        sandbox.wait_volume(volume['id'], 'available')
    finally:
        for name in overrides:
            IRONIC_CONF.clear_override(name, group='cinder')


def test_volume_lookup(sandbox, new_volume, client, caplog):
    volume = new_volume('local')
    by_name = client.find_volume(volume['name'])
    assert by_name['id'] == volume['id']
    by_id = client.find_volume(volume['id'])
    assert cinder.volume_project_id(by_id) == sandbox.project_id
    assert by_id['multiattach'] is False
    caplog.clear()
    with pytest.raises(exception.CinderNotFound):
        client.get_volume(str(uuid.uuid4()))
    with pytest.raises(exception.CinderNotFound):
        client.find_volume('no-such-volume-%s' % uuid.uuid4())
    assert 'retrying' not in caplog.text  # 404 is never retried


def _restart_api_later(sandbox, delay):
    """Stop cinder-api now; start it again after ``delay`` seconds."""
    procs = sandbox.box.procs
    record = procs.get('cinder-api')
    procs.stop('cinder-api', timeout=20)

    def start():
        time.sleep(delay)
        procs.start('cinder-api', record['argv'],
                    env=sandbox.box.cinder._env())

    thread = threading.Thread(target=start, daemon=True)
    thread.start()
    return thread


def test_api_down_ridden_through(sandbox, new_volume, client, node, caplog):
    volume = new_volume('local')
    # A client built now: its proxy is already known to work.
    client.get_volume(volume['id'])
    thread = _restart_api_later(sandbox, 4)
    try:
        attachment = _attach(client, sandbox, volume, node, mode='ro')
    finally:
        thread.join()
        # Whatever happened, the API must be back for the next tests.
        sandbox.box.cinder.wait()
    assert attachment['attach_mode'] == 'ro'
    # The first call of the create (the look-up of existing attachments)
    # rode through the outage.
    assert 'Connection refused' in caplog.text
    assert 'retrying' in caplog.text
    # Exactly one attachment for (node, volume), however many attempts.
    assert [a['id'] for a in client.list_attachments(
        volume_id=volume['id'])] == [attachment['id']]
    client.complete_attachment(attachment['id'])
    assert client.delete_attachment(attachment['id']) is True
    sandbox.wait_volume(volume['id'], 'available')


def test_api_down_too_long_bounded(sandbox, conf, node, caplog):
    conf.set_override('cinder_retry_max_time', 2.0, group='ipa_cinder')
    client = cinder.CinderClient(sandbox.cinder_adapter(), node=node,
                                 service_role_header=True, conf=conf)
    thread = _restart_api_later(sandbox, 6)
    try:
        caplog.clear()
        with pytest.raises(exception.CinderUnavailable,
                           match='cannot reach Cinder'):
            client.get_volume(str(uuid.uuid4()))
        # The time budget, not the attempts, ended the retries.
        retries = caplog.text.count('retrying in')
        assert 1 <= retries < conf.ipa_cinder.cinder_retry_attempts - 1
    finally:
        thread.join()
        sandbox.box.cinder.wait()
