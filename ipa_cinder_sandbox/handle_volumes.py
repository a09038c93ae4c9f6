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

"""The Cinder half of :class:`ipa_cinder_sandbox.handle.SandboxHandle`.

Sessions and adapters for the noauth Cinder, test connectors, and volumes
that are created, awaited and deleted for a test (and removed on close).
Waiting for a volume is openstacksdk's: its block-storage proxy polls the
volume until it reaches a status, fails at once on an error status, and
waits for a deletion.
"""

import configparser
import os

from keystoneauth1 import adapter as ks_adapter
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from openstack.block_storage.v3 import volume as sdk_volume
import openstack.connection
from openstack import exceptions as sdk_exceptions
from oslo_log import log as logging
import sqlalchemy

from ipa_cinder.common import noauth
from ipa_cinder_sandbox import errors
from ipa_cinder_sandbox import layout as layout_mod

LOG = logging.getLogger(__name__)

#: Initiator name the test connectors use (a name, no kernel initiator).
TEST_INITIATOR = 'iqn.2004-10.org.openstack.ipa-cinder:sandbox-tests'

# A volume in one of these will not reach the awaited status.
_VOLUME_FAILURES = ['error', 'error_deleting', 'error_extending',
                    'error_restoring', 'error_managing']
# Seconds between two looks at a volume.
_POLL_INTERVAL = 0.2


class VolumeHelpers(object):
    """Cinder helpers of the sandbox handle.

    Expects of the handle: ``layout``, ``box``, ``cinder_url``, ``cinder``
    (a :class:`ipa_cinder_sandbox.rest.CinderClient`), ``name()``,
    ``_forget()``, ``_fetch_or_forget()`` and the ``_volumes`` it removes
    on close.
    """

    _sdk_connection = None

    def cinder_session(self, user=layout_mod.USER_ID,
                       project=layout_mod.PROJECT_ID):
        """A keystoneauth session for Cinder under noauth.

        It sends ``X-Auth-Token: <user>:<project>`` and uses the sandbox's
        Cinder endpoint whatever the service type asked for.
        """
        auth = token_endpoint.Token(self.cinder_url,
                                    noauth.token(user, project))
        return ks_session.Session(auth=auth)

    def cinder_adapter(self, service_role=False, **kwargs):
        """A keystoneauth adapter of block-storage v3 on that session.

        :param service_role: add ``X-Service-Roles: service`` to every
            request (a service request, as with a service token).
        """
        headers = {'X-Service-Roles': 'service'} if service_role else {}
        return ks_adapter.Adapter(
            self.cinder_session(**kwargs), service_type='block-storage',
            endpoint_override=self.cinder_url, additional_headers=headers)

    @property
    def block_storage(self):
        """openstacksdk's block-storage proxy on the sandbox's Cinder."""
        if self._sdk_connection is None:
            session = self.cinder_session()
            # keystoneauth asks for the version document without a token,
            # and noauth Cinder answers that with an empty 204: this
            # session sends the token with every request.
            session.additional_headers['X-Auth-Token'] = noauth.token(
                layout_mod.USER_ID, layout_mod.PROJECT_ID)
            # A 500 while the database is busy is retried, as any poll of
            # Cinder is.
            self._sdk_connection = openstack.connection.Connection(
                session=session,
                block_storage_endpoint_override=self.cinder_url,
                block_storage_api_version='3',
                block_storage_status_code_retries=3,
                block_storage_retriable_status_codes=[500, 503])
        return self._sdk_connection.block_storage

    def connector(self, host, **extra):
        """An os-brick style connector for ``host`` (always with host)."""
        connector = {'host': host, 'initiator': TEST_INITIATOR,
                     'ip': '127.0.0.1', 'platform': 'x86_64',
                     'os_type': 'linux', 'multipath': False,
                     'do_local_attach': False}
        connector.update(extra)
        return connector

    def attach_completed(self, volume_id, instance_uuid, connector,
                         mode='rw'):
        """A completed attachment, as a service creates one (3.54).

        What a test sets up as "left behind" (by an undeploy that lost
        Cinder, a node's previous life): returns Cinder's attachment,
        connection_info included.
        """
        attachment = self.cinder.post('/attachments', {'attachment': {
            'volume_uuid': volume_id, 'instance_uuid': instance_uuid,
            'connector': connector, 'mode': mode}},
            microversion='3.54')['attachment']
        self.cinder.post('/attachments/%s/action' % attachment['id'],
                         {'os-complete': None}, microversion='3.44',
                         expect=(200, 204))
        return attachment

    def create_volume(self, size=1, volume_type='local', name=None,
                      timeout=60, **fields):
        """Create a volume and wait until it is available; returns it.

        A 500 (SQLite's "database is locked" under concurrent writes) is
        retried once, unless the volume was created all the same.
        """
        body = dict(fields, size=size, volume_type=volume_type,
                    name=name or self.name('volume'))
        try:
            volume = self.cinder.post('/volumes', {'volume': body},
                                      microversion='3.0')['volume']
        except errors.APIError as e:
            if e.status != 500:
                raise
            LOG.warning('Volume create failed (%s); retrying', e)
            found = self.cinder.get('/volumes?name=%s' % body['name'],
                                    microversion='3.0')['volumes']
            volume = found[0] if found else self.cinder.post(
                '/volumes', {'volume': body}, microversion='3.0')['volume']
        self._volumes.append(volume['id'])
        return self.wait_volume(volume['id'], 'available', timeout)

    def get_volume(self, volume_id):
        return self.cinder.get('/volumes/%s' % volume_id,
                               microversion='3.54')['volume']

    def wait_volume(self, volume_id, status, timeout=60):
        """Wait until the volume is ``status``; raise if it goes to error.

        :returns: the volume, as Cinder's API shows it.
        """
        self._sdk_wait('volume %s %s' % (volume_id, status), timeout,
                       self.block_storage.wait_for_status,
                       sdk_volume.Volume.new(id=volume_id), status,
                       failures=_VOLUME_FAILURES, interval=_POLL_INTERVAL,
                       wait=timeout)
        return self.get_volume(volume_id)

    @staticmethod
    def _sdk_wait(what, timeout, waiter, *args, **kwargs):
        """Run an openstacksdk waiter; its errors become the sandbox's."""
        try:
            return waiter(*args, **kwargs)
        except sdk_exceptions.ResourceFailure as e:
            raise errors.SandboxError('%s: %s' % (what, e))
        except sdk_exceptions.ResourceTimeout:
            raise errors.SandboxError('%s not ready after %ss'
                                      % (what, timeout))
        except sdk_exceptions.HttpException as e:
            raise errors.APIError(e.method or 'GET', e.url, e.status_code,
                                  str(e.details or e))

    def delete_volume(self, volume_id, timeout=60):
        """Delete (attachments first, as a service) and wait until gone."""
        volume = self._fetch_or_forget(self.get_volume, self._volumes,
                                       volume_id)
        if volume is None:
            return
        for attachment in volume.get('attachments', []):
            self.cinder.delete('/attachments/%s'
                               % attachment['attachment_id'],
                               microversion='3.44', service=True,
                               expect=(200, 204, 404))
        if volume['status'] not in ('available', 'error', 'deleting'):
            self.wait_volume(volume_id, 'available', timeout)
        self.cinder.delete('/volumes/%s' % volume_id,
                           expect=(202, 204, 404))
        self._sdk_wait('deletion of volume %s' % volume_id, timeout,
                       self.block_storage.wait_for_delete,
                       sdk_volume.Volume.new(id=volume_id),
                       interval=_POLL_INTERVAL, wait=timeout)
        self._forget(self._volumes, volume_id)

    def export_chap(self, volume_id):
        """(user, password) of a volume's iSCSI export, from Cinder's DB.

        Cinder's API never shows them outside an attachment: tests that
        look for leaks read them where Cinder keeps them (SQLite or the
        private MariaDB, through the sandbox's cinder.conf).
        """
        conf = configparser.ConfigParser(interpolation=None)
        conf.read(os.path.join(self.state_dir, 'etc', 'cinder.conf'))
        engine = sqlalchemy.create_engine(conf['database']['connection'])
        try:
            with engine.connect() as conn:
                row = conn.execute(
                    sqlalchemy.text('SELECT provider_auth FROM volumes '
                                    'WHERE id = :id'),
                    {'id': volume_id}).fetchone()
        finally:
            engine.dispose()
        if not row or not row[0]:
            raise errors.SandboxError('volume %s has no CHAP credentials'
                                      % volume_id)
        _method, user, password = row[0].split()
        return user, password

    def volume_file(self, volume):
        """The sparse file holding ``volume`` (its backend's directory)."""
        backend = volume['os-vol-host-attr:host'].split('@')[1].split('#')[0]
        return os.path.join(self.box.cinder.volumes_dir(backend),
                            'volume-%s' % volume['id'])
