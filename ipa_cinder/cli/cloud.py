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

"""The Cinder client of ``ipa-cinder``, from the cloud options.

Cloud and credentials come from openstacksdk, as for the ``openstack``
client: clouds.yaml with ``OS_CLOUD``/``--os-cloud``, the ``OS_*``
variables, the ``--os-*`` options. A standalone Cinder without Keystone is
reached with auth type ``none`` and its endpoint; Cinder's noauth
middleware then wants a ``<user>:<project>`` token
(:mod:`ipa_cinder.common.noauth`).
"""

import os

from keystoneauth1 import exceptions as ks_exc
from openstack import config as os_config
from openstack import exceptions as os_exc

from ipa_cinder.cli import errors
from ipa_cinder.common import noauth
from ipa_cinder import conf as ipa_conf
from ipa_cinder import exception

CONF = ipa_conf.CONF
NOAUTH_TYPES = ('none', 'noauth')


class CloudConfig(os_config.OpenStackConfig):
    """openstacksdk's configuration, remembering files it could not parse.

    openstacksdk skips a clouds.yaml (or secure.yaml) that is not valid
    YAML with a log line, then reports the cloud as not found: the
    commands that need a cloud report the file instead.

    :ivar unparsable: paths of the files skipped for their syntax.
    """

    def __init__(self, *args, **kwargs):
        self.unparsable = []
        super().__init__(*args, **kwargs)

    def _load_yaml_json_file(self, filelist):
        # openstacksdk's loader, one file at a time: a readable file that
        # yields nothing was not valid YAML (or JSON).
        for path in filelist:
            loaded = super()._load_yaml_json_file([path])
            if loaded[0] is not None:
                return loaded
            if os.path.isfile(path) and os.access(path, os.R_OK):
                self.unparsable.append(path)
        return None, None


def unparsable_text(cloud_config):
    """What is wrong with the cloud files, or None if they parsed."""
    for path in getattr(cloud_config, 'unparsable', None) or ():
        return ('%s is not valid YAML (or JSON); fix it, or name another '
                'file with OS_CLIENT_CONFIG_FILE' % path)
    return None


def _use_noauth_token(region):
    """Send the noauth token a standalone Cinder reads."""
    auth = region.config.get('auth') or {}
    endpoint = region.get_endpoint('block-storage') or auth.get('endpoint')
    if not endpoint:
        raise exception.CLIError(
            'auth type none needs the Cinder endpoint: set OS_ENDPOINT (or '
            'block_storage_endpoint_override in clouds.yaml)',
            errors.EXIT_USAGE)
    session = region.get_session()
    token = noauth.token_for(endpoint, auth)
    session.auth = noauth.TokenAuth(endpoint, token)
    # Version discovery is unauthenticated: it needs the token too.
    session.additional_headers['X-Auth-Token'] = token


def cinder_client(cloud_config, options):
    """A CinderClient for the cloud the global ``options`` name.

    :param cloud_config: the ``openstack.config.OpenStackConfig`` whose
        options the application's parser holds.
    :param options: the parsed global options.
    :raises: CLIError (usage) when no usable cloud is configured.
    """
    # Imported here: a command that talks to no Cinder does without them.
    import openstack.connection

    from ipa_cinder.common import cinder_client as cinder

    unparsable = unparsable_text(cloud_config)
    if unparsable:
        raise exception.CLIError('cloud configuration: %s' % unparsable,
                                 errors.EXIT_USAGE)
    try:
        region = cloud_config.get_one(argparse=options)
        if not region.config.get('api_timeout'):
            # Every request bounded, openstacksdk's own ones included
            # (version discovery, authentication).
            region.config['api_timeout'] = (
                CONF.ipa_cinder.cinder_request_timeout)
        region.get_session()
        if region.config.get('auth_type') in NOAUTH_TYPES:
            _use_noauth_token(region)
        cloud = openstack.connection.Connection(config=region)
    except (os_exc.ConfigException, ks_exc.AuthPluginException) as e:
        raise exception.CLIError(
            'cloud configuration: %s (configure clouds.yaml and OS_CLOUD, '
            'or the OS_* variables)' % e, errors.EXIT_USAGE)
    return cinder.CinderClient(
        cloud, service_role_header=options.service_role_header)
