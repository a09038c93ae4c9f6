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

"""Unit tests of the Cinder attachments client.

The client runs on a real openstacksdk Connection and keystoneauth session;
only the HTTP transport is replaced (a requests adapter mounted on the
session) with scripted answers, so the headers, microversions and bodies
checked here are the ones that would go on the wire.
"""

import json
import time
from unittest import mock

import fixtures
from keystoneauth1 import adapter as ks_adapter
import openstack.connection
from oslo_config import cfg
import requests
from requests import adapters
import testtools

from ipa_cinder.common import cinder_client as cinder
from ipa_cinder.common import cinder_transport
from ipa_cinder.common import secrets
from ipa_cinder.conductor import cinder_session
from ipa_cinder import conf as ipa_conf
from ipa_cinder import exception

ENDPOINT = 'http://cinder.test:8776/v3'
VOLUME = '2d4b3f02-6a3c-4c8f-9a51-9d3bd1a6c1a1'
NODE = '1be26c0b-03f2-4d2e-ae87-c02d7f33c123'
ATT = 'b5b8a0f4-7a55-4b8a-9d8e-1a8c0c6f6d01'
ATT2 = 'c7a1e3de-2f4c-4a9e-8a8b-4a5f3a9f2e02'
CONNECTOR = {'host': 'node-1', 'initiator': 'iqn.2004-10.com.x:node-1',
             'ip': '127.0.0.1', 'platform': 'x86_64', 'os_type': 'linux',
             'multipath': False}
# As the attachments API returns it: the driver's "data" flattened.
CONNECTION_INFO = {
    'driver_volume_type': 'iscsi', 'attachment_id': ATT,
    'target_iqn': 'iqn.2010-10.org.openstack:volume-1',
    'target_portal': '127.0.0.1:3260', 'target_lun': 1,
    'auth_method': 'CHAP', 'auth_username': 'chapuser42',
    'auth_password': 'chapsecret42',
    'discovery_auth_username': 'discuser42',
    'discovery_auth_password': 'discsecret42'}
SECRETS = ('chapuser42', 'chapsecret42', 'discuser42', 'discsecret42')

VERSION_DOC = {'version': {
    'id': 'v3.0', 'status': 'CURRENT', 'version': '3.71',
    'min_version': '3.0',
    'links': [{'rel': 'self', 'href': ENDPOINT + '/'}]}}


def attachment(att_id=ATT, instance=NODE, mode='rw', status='attaching'):
    return {'id': att_id, 'status': status, 'instance': instance,
            'volume_id': VOLUME, 'attach_mode': mode,
            'attached_at': None, 'detached_at': None,
            'connection_info': CONNECTION_INFO}


class FakeTransport(adapters.BaseAdapter):
    """Scripted HTTP answers for the block-storage endpoint.

    ``script[(method, path)]`` is a list of answers consumed in order (the
    last one repeats): ``(status, body)`` tuples, or exceptions to raise
    as the transport would (connection refused...).
    """

    def __init__(self):
        super().__init__()
        self.script = {}
        self.sent = []
        self.timeouts = []
        # Connection errors to raise for the version document first.
        self.discovery_failures = 0

    def add(self, method, path, *answers):
        self.script.setdefault((method, path), []).extend(answers)

    def calls(self, method=None, path=None):
        return [r for r in self.sent
                if (method is None or r.method == method)
                and (path is None
                     or r.path_url.split('?')[0] == '/v3' + path)]

    def send(self, request, **kwargs):
        path = request.path_url.split('?')[0]
        if request.method == 'GET' and path.rstrip('/') == '/v3':
            if self.discovery_failures:
                self.discovery_failures -= 1
                raise requests.exceptions.ConnectionError('refused')
            return self._response(request, 200, VERSION_DOC)
        self.sent.append(request)
        self.timeouts.append(kwargs.get('timeout'))
        path = path[len('/v3'):]
        answers = self.script.get((request.method, path))
        if not answers:
            return self._response(request, 599, {'error': 'unscripted'})
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return self._response(request, *answer)

    @staticmethod
    def _response(request, status, body):
        response = requests.Response()
        response.status_code = status
        response.reason = 'Scripted'
        response.url = request.url
        response.request = request
        if body is not None:
            response._content = json.dumps(body).encode()
            response.headers['Content-Type'] = 'application/json'
        else:
            response._content = b''
        return response

    def close(self):
        pass


class Base(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.conf = cfg.ConfigOpts()
        ipa_conf.register_opts(self.conf)
        self.conf([], project='ipa-cinder-test')
        self.conf.set_override('cinder_retry_initial_delay', 0.01,
                               group='ipa_cinder')
        self.conf.set_override('cinder_retry_max_delay', 0.05,
                               group='ipa_cinder')
        self.transport = FakeTransport()
        self.conn = openstack.connection.Connection(
            auth_type='none', block_storage_endpoint_override=ENDPOINT,
            block_storage_api_version='3')
        self.conn.session.session.mount('http://cinder.test', self.transport)
        self.sleeps = []
        self.log = self.useFixture(fixtures.FakeLogger(level='DEBUG'))

    def client(self, **kwargs):
        kwargs.setdefault('node', NODE)
        kwargs.setdefault('conf', self.conf)
        kwargs.setdefault('sleep', self.sleeps.append)
        return cinder.CinderClient(self.conn, **kwargs)

    def body(self, request):
        return json.loads(request.body)

    def assertNoSecret(self, text):
        for secret in SECRETS:
            self.assertNotIn(secret, text)


class TestCreateAttachment(Base):

    def setUp(self):
        super().setUp()
        self.transport.add('GET', '/attachments/detail',
                           (200, {'attachments': []}))

    def test_mode_uses_354(self):
        self.transport.add('POST', '/attachments',
                           (200, {'attachment': attachment(mode='ro')}))
        result = self.client().create_attachment(
            VOLUME, CONNECTOR, instance_uuid=NODE, mode='ro',
            protocol='iscsi')
        self.assertEqual('ro', result['attach_mode'])
        post, = self.transport.calls('POST', '/attachments')
        self.assertEqual('volume 3.54', post.headers['OpenStack-API-Version'])
        self.assertEqual({'attachment': {'volume_uuid': VOLUME,
                                         'instance_uuid': NODE,
                                         'connector': CONNECTOR,
                                         'mode': 'ro'}}, self.body(post))

    def test_no_mode_uses_344(self):
        self.transport.add('POST', '/attachments',
                           (200, {'attachment': attachment()}))
        self.client().create_attachment(VOLUME, CONNECTOR,
                                        instance_uuid=NODE)
        post, = self.transport.calls('POST', '/attachments')
        self.assertEqual('volume 3.44', post.headers['OpenStack-API-Version'])
        self.assertNotIn('mode', self.body(post)['attachment'])

    def test_bad_mode(self):
        self.assertRaises(exception.InvalidInput,
                          self.client().create_attachment, VOLUME,
                          CONNECTOR, mode='wo')
        self.assertEqual([], self.transport.sent)

    def test_connector_without_host_refused_before_cinder(self):
        connector = dict(CONNECTOR)
        del connector['host']
        exc = self.assertRaises(exception.InvalidConnector,
                                self.client().create_attachment, VOLUME,
                                connector, instance_uuid=NODE)
        self.assertIn('connector.host', str(exc))
        self.assertIn(VOLUME, str(exc))
        self.assertIn(NODE, str(exc))
        self.assertEqual([], self.transport.sent)

    def test_iscsi_connector_without_initiator_refused(self):
        connector = dict(CONNECTOR)
        del connector['initiator']
        exc = self.assertRaises(exception.InvalidConnector,
                                self.client().create_attachment, VOLUME,
                                connector, protocol='iscsi')
        self.assertIn('connector.initiator', str(exc))
        self.assertEqual([], self.transport.sent)
        # Other protocols do not need an initiator.
        self.transport.add('POST', '/attachments',
                           (200, {'attachment': attachment()}))
        self.client().create_attachment(VOLUME, connector, protocol='local')

    def test_not_a_dict_connector(self):
        self.assertRaises(exception.InvalidConnector,
                          self.client().create_attachment, VOLUME, None)

    def test_retry_on_503_then_success(self):
        self.transport.add('POST', '/attachments',
                           (503, {'overLimit': {'message': 'busy'}}),
                           (200, {'attachment': attachment()}))
        result = self.client().create_attachment(VOLUME, CONNECTOR,
                                                 instance_uuid=NODE)
        self.assertEqual(ATT, result['id'])
        self.assertEqual(2, len(self.transport.calls('POST', '/attachments')))
        self.assertEqual(1, len(self.sleeps))
        self.assertIn('create_attachment', self.log.output)
        self.assertIn('attempt 1 of 6', self.log.output)
        self.assertIn('HTTP 503', self.log.output)

    def test_retried_create_deletes_attachment_left_by_lost_attempt(self):
        # First answer lost (500) although Cinder created ATT2; the retry
        # creates ATT. ATT2 must not leak.
        self.transport.script[('GET', '/attachments/detail')] = [
            (200, {'attachments': []}),
            (200, {'attachments': [attachment(ATT2, status='reserved')]}),
            (200, {'attachments': [attachment(ATT)]}),
        ]
        self.transport.add('POST', '/attachments',
                           (500, {'computeFault': {'message': 'oops'}}),
                           (200, {'attachment': attachment()}))
        self.transport.add('DELETE', '/attachments/%s' % ATT2,
                           (200, {'attachments': []}))
        result = self.client().create_attachment(VOLUME, CONNECTOR,
                                                 instance_uuid=NODE)
        self.assertEqual(ATT, result['id'])
        self.assertEqual(
            1, len(self.transport.calls('DELETE', '/attachments/%s' % ATT2)))
        self.assertEqual([], self.transport.calls('DELETE',
                                                  '/attachments/%s' % ATT))
        lists = self.transport.calls('GET', '/attachments/detail')
        self.assertIn('instance_id=%s' % NODE, lists[0].url)
        self.assertIn('volume_id=%s' % VOLUME, lists[0].url)

    def test_existing_attachment_not_deleted(self):
        # An attachment that existed before the create is not ours.
        self.transport.script[('GET', '/attachments/detail')] = [
            (200, {'attachments': [attachment(ATT2)]})]
        self.transport.add('POST', '/attachments', (502, None),
                           (200, {'attachment': attachment()}))
        self.client().create_attachment(VOLUME, CONNECTOR,
                                        instance_uuid=NODE)
        self.assertEqual([], self.transport.calls('DELETE'))

    def test_failed_create_cleans_up(self):
        # A driver error: 500 every time, with a reserved attachment left.
        self.transport.script[('GET', '/attachments/detail')] = [
            (200, {'attachments': []}),
            (200, {'attachments': [attachment(ATT2, status='reserved')]}),
            (200, {'attachments': []}),
        ]
        self.transport.add('POST', '/attachments',
                           (500, {'computeFault': {'message': 'driver'}}))
        self.transport.add('DELETE', '/attachments/%s' % ATT2, (200, None))
        self.conf.set_override('cinder_retry_attempts', 2,
                               group='ipa_cinder')
        exc = self.assertRaises(exception.CinderUnavailable,
                                self.client().create_attachment, VOLUME,
                                CONNECTOR, instance_uuid=NODE)
        self.assertEqual(500, exc.status_code)
        self.assertIn('driver', str(exc))
        self.assertEqual(
            1, len(self.transport.calls('DELETE', '/attachments/%s' % ATT2)))

    def test_no_retry_on_400(self):
        self.transport.add('POST', '/attachments', (400, {'badRequest': {
            'message': 'Invalid volume: Volume status must be available or '
                       'downloading to reserve, but the current status is '
                       'in-use.', 'code': 400}}))
        exc = self.assertRaises(exception.CinderBadRequest,
                                self.client().create_attachment, VOLUME,
                                CONNECTOR, instance_uuid=NODE)
        self.assertEqual(1, len(self.transport.calls('POST')))
        self.assertEqual([], self.sleeps)
        self.assertIn('status must be available', str(exc))
        self.assertIn(VOLUME, str(exc))
        self.assertIn(NODE, str(exc))
        self.assertIn('HTTP 400', str(exc))

    def test_missing_volume(self):
        self.transport.add('POST', '/attachments', (404, {'itemNotFound': {
            'message': 'Volume %s could not be found.' % VOLUME}}))
        self.assertRaises(exception.CinderNotFound,
                          self.client().create_attachment, VOLUME, CONNECTOR)
        self.assertEqual(1, len(self.transport.calls('POST')))


class TestRetryPolicy(Base):

    def test_no_retry_on_4xx(self):
        for status, error in ((400, exception.CinderBadRequest),
                              (403, exception.CinderForbidden),
                              (404, exception.CinderNotFound),
                              (409, exception.CinderConflict)):
            self.transport.sent = []
            self.transport.script = {}
            self.transport.add('GET', '/attachments/%s' % ATT,
                               (status, {'x': {'message': 'no'}}))
            self.assertRaises(error, self.client().get_attachment, ATT)
            self.assertEqual(1, len(self.transport.sent), status)
        self.assertEqual([], self.sleeps)

    def test_attempts_bound(self):
        self.conf.set_override('cinder_retry_attempts', 3,
                               group='ipa_cinder')
        self.transport.add('GET', '/volumes/%s' % VOLUME, (504, None))
        exc = self.assertRaises(exception.CinderUnavailable,
                                self.client().get_volume, VOLUME)
        self.assertEqual(3, len(self.transport.sent))
        self.assertIn('3 attempt(s)', str(exc))
        # Exponential backoff: each delay at least the previous base.
        self.assertEqual(2, len(self.sleeps))
        self.assertGreaterEqual(self.sleeps[0], 0.01)
        self.assertGreaterEqual(self.sleeps[1], 0.02)

    def test_delays_capped(self):
        self.conf.set_override('cinder_retry_attempts', 8,
                               group='ipa_cinder')
        self.transport.add('GET', '/volumes/%s' % VOLUME, (502, None))
        self.assertRaises(exception.CinderUnavailable,
                          self.client().get_volume, VOLUME)
        self.assertEqual(7, len(self.sleeps))
        self.assertTrue(all(s <= 0.05 for s in self.sleeps), self.sleeps)

    def test_total_time_bound(self):
        self.conf.set_override('cinder_retry_attempts', 1000,
                               group='ipa_cinder')
        self.conf.set_override('cinder_retry_max_time', 0.3,
                               group='ipa_cinder')
        self.transport.add('GET', '/volumes/%s' % VOLUME, (503, None))
        client = self.client(sleep=time.sleep)
        start = time.monotonic()
        self.assertRaises(exception.CinderUnavailable, client.get_volume,
                          VOLUME)
        elapsed = time.monotonic() - start
        self.assertLess(elapsed, 0.3 + 0.2)
        self.assertGreater(len(self.transport.sent), 2)
        self.assertLess(len(self.transport.sent), 1000)

    def test_retry_on_connection_error_then_success(self):
        self.transport.add(
            'GET', '/volumes/%s' % VOLUME,
            requests.exceptions.ConnectionError('refused'),
            (200, {'volume': {'id': VOLUME, 'status': 'available'}}))
        volume = self.client().get_volume(VOLUME)
        self.assertEqual('available', volume['status'])
        self.assertEqual(1, len(self.sleeps))
        self.assertIn('get_volume', self.log.output)

    def test_no_version_discovery(self):
        # openstacksdk's proxy reads Cinder's version document without a
        # token; a noauth Cinder answers 204, or Cinder is down: the client
        # then uses the configured endpoint as it is.
        self.transport.discovery_failures = 1
        self.transport.add('GET', '/volumes/%s' % VOLUME,
                           requests.exceptions.ConnectionError('refused'),
                           (200, {'volume': {'id': VOLUME}}))
        client = self.client()
        self.assertEqual(VOLUME, client.get_volume(VOLUME)['id'])
        self.assertIsInstance(client.proxy, ks_adapter.Adapter)
        get = self.transport.calls('GET', '/volumes/%s' % VOLUME)[-1]
        self.assertEqual('volume 3.44', get.headers['OpenStack-API-Version'])
        self.assertIn('X-Auth-Token', get.headers)
        self.assertEqual(1, len(self.sleeps))

    def test_connection_error_exhausted(self):
        self.conf.set_override('cinder_retry_attempts', 2,
                               group='ipa_cinder')
        self.transport.add('GET', '/volumes/%s' % VOLUME,
                           requests.exceptions.ConnectionError('refused'))
        exc = self.assertRaises(exception.CinderUnavailable,
                                self.client().get_volume, VOLUME)
        self.assertIsNone(exc.status_code)
        self.assertIn('cannot reach Cinder after 2 attempt(s)', str(exc))

    def test_metrics_timer(self):
        metrics = mock.MagicMock()
        self.transport.add('POST', '/attachments/%s/action' % ATT,
                           (204, None))
        self.client(metrics=metrics).complete_attachment(ATT)
        metrics.timer.assert_called_once_with(
            'CinderClient.complete_attachment')
        metrics.timer.return_value.__enter__.assert_called_once_with()


class TestDeleteAndComplete(Base):

    def test_complete(self):
        self.transport.add('POST', '/attachments/%s/action' % ATT,
                           (204, None))
        self.client().complete_attachment(ATT, volume_id=VOLUME)
        post, = self.transport.sent
        self.assertEqual({'os-complete': None}, self.body(post))
        self.assertEqual('volume 3.44', post.headers['OpenStack-API-Version'])

    def test_delete(self):
        self.transport.add('DELETE', '/attachments/%s' % ATT,
                           (200, {'attachments': []}))
        self.assertTrue(self.client().delete_attachment(ATT))

    def test_delete_404_is_success(self):
        self.transport.add('DELETE', '/attachments/%s' % ATT, (404, {
            'itemNotFound': {'message': 'not found'}}))
        self.assertFalse(self.client().delete_attachment(ATT))
        self.assertEqual(1, len(self.transport.sent))

    def test_retried_delete_then_404_is_success(self):
        self.transport.add('DELETE', '/attachments/%s' % ATT,
                           requests.exceptions.ConnectionError('reset'),
                           (404, {'itemNotFound': {'message': 'gone'}}))
        self.assertFalse(self.client().delete_attachment(ATT))

    def test_service_role_header_with_noauth(self):
        self.transport.add('DELETE', '/attachments/%s' % ATT, (200, None))
        client = self.client()
        self.assertTrue(client.service_role_header)
        client.delete_attachment(ATT)
        delete, = self.transport.sent
        self.assertEqual('service', delete.headers['X-Service-Roles'])

    def test_service_role_header_only_on_delete(self):
        self.transport.add('GET', '/attachments/%s' % ATT,
                           (200, {'attachment': attachment()}))
        self.client().get_attachment(ATT)
        self.assertNotIn('X-Service-Roles', self.transport.sent[0].headers)

    def test_service_role_header_off(self):
        self.transport.add('DELETE', '/attachments/%s' % ATT, (200, None))
        self.client(service_role_header=False).delete_attachment(ATT)
        self.assertNotIn('X-Service-Roles', self.transport.sent[0].headers)

    def test_no_service_role_header_with_keystone_auth(self):
        adapter = mock.Mock(spec=['auth', 'session'])
        adapter.auth = None
        adapter.session.auth = mock.Mock()  # e.g. a password plugin
        self.assertFalse(cinder_transport.uses_noauth(adapter))

    def test_delete_500_hints_at_service_role(self):
        self.conf.set_override('cinder_retry_attempts', 1,
                               group='ipa_cinder')
        self.transport.add('DELETE', '/attachments/%s' % ATT, (500, None))
        exc = self.assertRaises(exception.CinderUnavailable,
                                self.client().delete_attachment, ATT,
                                volume_id=VOLUME)
        self.assertIn('X-Service-Roles', str(exc))
        self.assertIn(ATT, str(exc))
        self.assertIn(VOLUME, str(exc))


class TestQueries(Base):

    def test_list_filters(self):
        other = attachment(ATT2, instance='another-node')
        self.transport.add('GET', '/attachments/detail',
                           (200, {'attachments': [attachment(), other]}))
        result = self.client().list_attachments(instance_uuid=NODE)
        self.assertEqual([ATT], [a['id'] for a in result])
        get, = self.transport.sent
        self.assertIn('instance_id=%s' % NODE, get.url)
        self.assertIn('all_tenants=1', get.url)

    def test_find_volume_by_id(self):
        self.transport.add('GET', '/volumes/%s' % VOLUME, (200, {'volume': {
            'id': VOLUME, 'name': 'boot', 'multiattach': False,
            'os-vol-tenant-attr:tenant_id': 'p1'}}))
        volume = self.client().find_volume(VOLUME)
        self.assertEqual('p1', cinder.volume_project_id(volume))

    def test_find_volume_by_name(self):
        self.transport.add('GET', '/volumes/detail', (200, {'volumes': [
            {'id': VOLUME, 'name': 'boot'}]}))
        self.assertEqual(VOLUME, self.client().find_volume('boot')['id'])
        self.assertIn('name=boot', self.transport.sent[0].url)

    def test_find_volume_missing_or_ambiguous(self):
        self.transport.add('GET', '/volumes/detail',
                           (200, {'volumes': []}),
                           (200, {'volumes': [{'id': 'a', 'name': 'x'},
                                              {'id': 'b', 'name': 'x'}]}))
        self.assertRaises(exception.CinderNotFound,
                          self.client().find_volume, 'x')
        exc = self.assertRaises(exception.CinderConflict,
                                self.client().find_volume, 'x')
        self.assertIn('a, b', str(exc))

    def test_list_volumes_reads_every_page(self):
        self.useFixture(fixtures.MockPatchObject(cinder, 'VOLUMES_PAGE_SIZE',
                                                 2))
        self.transport.add('GET', '/volumes/detail',
                           (200, {'volumes': [{'id': 'a'}, {'id': 'b'}]}),
                           (200, {'volumes': [{'id': 'c'}]}))
        volumes = self.client().list_volumes()
        self.assertEqual(['a', 'b', 'c'], [v['id'] for v in volumes])
        first, second = self.transport.sent
        self.assertIn('limit=2', first.url)
        self.assertNotIn('marker', first.url)
        self.assertIn('marker=b', second.url)

    def test_list_volumes_is_bounded(self):
        self.useFixture(fixtures.MockPatchObject(cinder, 'VOLUMES_PAGE_SIZE',
                                                 1))
        self.useFixture(fixtures.MockPatchObject(cinder, 'VOLUMES_MAX_PAGES',
                                                 3))
        # An endpoint that never stops answering full pages.
        self.transport.add('GET', '/volumes/detail',
                           (200, {'volumes': [{'id': 'same'}]}))
        exc = self.assertRaises(exception.CinderUnavailable,
                                self.client().list_volumes)
        self.assertIn('did not end after 3 pages', str(exc))
        self.assertEqual(3, len(self.transport.sent))

    def test_every_request_has_a_time_bound(self):
        self.conf.set_override('cinder_request_timeout', 7.5,
                               group='ipa_cinder')
        self.transport.add('GET', '/attachments/detail',
                           (200, {'attachments': []}))
        self.client().list_attachments(volume_id=VOLUME)
        self.assertEqual([7.5], self.transport.timeouts)

    def test_a_hung_request_is_retried_then_reported(self):
        self.conf.set_override('cinder_retry_attempts', 2,
                               group='ipa_cinder')
        self.transport.add('GET', '/volumes/%s' % VOLUME,
                           requests.exceptions.ReadTimeout('read timed out'))
        exc = self.assertRaises(exception.CinderUnavailable,
                                self.client().get_volume, VOLUME)
        self.assertIn('after 2 attempt', str(exc))


class TestSecrets(Base):

    def test_mask_connection_info(self):
        masked = secrets.mask(CONNECTION_INFO)
        self.assertNoSecret(json.dumps(masked))
        self.assertEqual('127.0.0.1:3260', masked['target_portal'])
        # The original is untouched.
        self.assertEqual('chapsecret42', CONNECTION_INFO['auth_password'])
        # Nested (legacy shape) too.
        nested = {'driver_volume_type': 'iscsi', 'data': CONNECTION_INFO}
        self.assertNoSecret(json.dumps(secrets.mask(nested)))

    def test_mask_text(self):
        text = ('connection_info %s failed; auth_username=chapuser42 '
                'auth_password=chapsecret42' % json.dumps(CONNECTION_INFO))
        self.assertNoSecret(secrets.mask(text))
        self.assertIn('target_portal', secrets.mask(text))

    def test_error_text_from_cinder_masked(self):
        message = ('Unable to create attachment for volume (connection '
                   'info %s).' % json.dumps(CONNECTION_INFO))
        self.transport.add('GET', '/attachments/detail',
                           (200, {'attachments': []}))
        self.transport.add('POST', '/attachments',
                           (400, {'badRequest': {'message': message}}))
        exc = self.assertRaises(exception.CinderBadRequest,
                                self.client().create_attachment, VOLUME,
                                CONNECTOR, instance_uuid=NODE)
        self.assertIn('Unable to create attachment', str(exc))
        self.assertNoSecret(str(exc))
        self.assertNoSecret(self.log.output)

    def test_retry_log_masked(self):
        message = 'driver said auth_password: chapsecret42'
        self.transport.add('GET', '/attachments/%s' % ATT,
                           (500, {'computeFault': {'message': message}}),
                           (200, {'attachment': attachment()}))
        self.client().get_attachment(ATT)
        self.assertIn('retrying', self.log.output)
        self.assertNoSecret(self.log.output)


class TestIronicClient(testtools.TestCase):
    """The conductor's client: Ironic's session, a service token always."""

    def setUp(self):
        super().setUp()
        from ironic.common import cinder as ironic_cinder
        from ironic.common import keystone
        from ironic.conf import CONF as ironic_conf
        self.ironic_conf = ironic_conf
        self.proxy = mock.Mock(spec=ks_adapter.Adapter)
        self.proxy.auth = None
        self.proxy.session = mock.Mock(auth=None)
        self.get_client = self.useFixture(fixtures.MockPatchObject(
            ironic_cinder, 'get_client', return_value=self.proxy)).mock
        self.service_auth = mock.Mock()
        self.useFixture(fixtures.MockPatchObject(
            keystone, 'get_auth', return_value=self.service_auth))

    def test_service_token_added_without_user_token(self):
        from keystoneauth1 import service_token
        self.ironic_conf.set_override('auth_type', 'password',
                                      group='cinder')
        self.addCleanup(self.ironic_conf.clear_override, 'auth_type',
                        group='cinder')
        context = mock.Mock(auth_token=None)
        client = cinder_session.cinder_client(context, node=NODE)
        self.assertIs(self.proxy, client.proxy)
        self.assertIsInstance(self.proxy.auth,
                              service_token.ServiceTokenAuthWrapper)
        self.assertIs(self.service_auth, self.proxy.auth.service_auth)
        self.assertEqual(NODE, client.node)
        # With Keystone, roles come from the service token only.
        self.assertFalse(client.service_role_header)

    def test_user_token_keeps_ironic_session(self):
        self.ironic_conf.set_override('auth_type', 'password',
                                      group='cinder')
        self.addCleanup(self.ironic_conf.clear_override, 'auth_type',
                        group='cinder')
        cinder_session.cinder_client(mock.Mock(auth_token='user-token'))
        self.assertIsNone(self.proxy.auth)

    def test_noauth(self):
        self.ironic_conf.set_override('auth_type', 'none', group='cinder')
        self.addCleanup(self.ironic_conf.clear_override, 'auth_type',
                        group='cinder')
        cinder_session.cinder_client(None)
        self.assertIsNone(self.proxy.auth)

    def test_keystone_discovery_failure(self):
        from keystoneauth1 import exceptions as ks_exc
        self.ironic_conf.set_override('auth_type', 'password',
                                      group='cinder')
        self.addCleanup(self.ironic_conf.clear_override, 'auth_type',
                        group='cinder')
        self.get_client.side_effect = ks_exc.DiscoveryFailure('down')
        exc = self.assertRaises(exception.CinderUnavailable,
                                cinder_session.cinder_client, None, node=NODE)
        self.assertIn(NODE, str(exc))

    def test_noauth_discovery_failure_uses_endpoint(self):
        from ironic.common import keystone
        from keystoneauth1 import exceptions as ks_exc
        self.ironic_conf.set_override('auth_type', 'none', group='cinder')
        self.addCleanup(self.ironic_conf.clear_override, 'auth_type',
                        group='cinder')
        self.get_client.side_effect = ks_exc.DiscoveryFailure('204')
        self.useFixture(fixtures.MockPatchObject(
            keystone, 'get_session'))
        self.useFixture(fixtures.MockPatchObject(
            keystone, 'get_endpoint', return_value=ENDPOINT))
        client = cinder_session.cinder_client(None, node=NODE)
        self.assertIsInstance(client.proxy, ks_adapter.Adapter)
        self.assertEqual(ENDPOINT, client.proxy.endpoint_override)
        self.assertTrue(client.service_role_header)

    def test_requests_bounded_without_cinder_timeout(self):
        # Ironic's [cinder] timeout has no default: openstacksdk's version
        # discovery in get_client would wait forever for a frozen Cinder.
        self.ironic_conf.set_override('auth_type', 'none', group='cinder')
        self.addCleanup(self.ironic_conf.clear_override, 'auth_type',
                        group='cinder')
        self.ironic_conf.set_default('timeout', None, group='cinder')
        self.addCleanup(self.ironic_conf.set_default, 'timeout', None,
                        group='cinder')
        ipa_conf.CONF.set_override('cinder_request_timeout', 7.5,
                                   group='ipa_cinder')
        self.addCleanup(ipa_conf.CONF.clear_override,
                        'cinder_request_timeout', group='ipa_cinder')
        cinder_session.cinder_client(None)
        self.assertEqual(8, self.ironic_conf.cinder.timeout)

    def test_operators_cinder_timeout_wins(self):
        self.ironic_conf.set_override('timeout', 3, group='cinder')
        self.addCleanup(self.ironic_conf.clear_override, 'timeout',
                        group='cinder')
        self.assertEqual(3, cinder_session.bound_requests())
