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

"""Does this host have the identity a volume's protocol needs?

Cinder answers 500 to an iSCSI attachment create whose connector has no
``initiator`` (and leaves a reserved attachment behind), the same status
as a passing outage: retried, it costs the whole retry budget and ends
in a misleading "Cinder unavailable". ``local-attach`` therefore learns,
before it creates anything, which protocol the volume's back end
exports, whenever this host lacks one of the identities a protocol needs
(an iSCSI initiator name, Fibre Channel WWPNs, an NVMe host NQN), and
refuses at once when the volume needs the missing one.

The protocol is the ``storage_protocol`` Cinder's scheduler reports for
the volume's pool (``os-vol-host-attr:host``, an admin field;
``GET /scheduler-stats/get_pools``, admin by default). A caller that may
not see either gets no early check: the create then goes ahead as
before.
"""

from oslo_log import log

from ipa_cinder.cli import errors
from ipa_cinder import exception

LOG = log.getLogger(__name__)

#: Pool filters (``name``) need microversion 3.28.
MV_POOL_FILTER = '3.28'
POOL_FIELD = 'os-vol-host-attr:host'

#: Cinder's storage_protocol spellings -> driver_volume_type.
_PROTOCOLS = {
    'iscsi': 'iscsi', 'iser': 'iser',
    'fc': 'fibre_channel', 'fibre_channel': 'fibre_channel',
    'nvme-of': 'nvmeof', 'nvmeof': 'nvmeof', 'nvme-roce': 'nvmeof',
    'nvme-tcp': 'nvmeof', 'nvme-fc': 'nvmeof',
}

#: What each protocol needs in the connector, and how to give it.
_IDENTITIES = {
    'iscsi': ('initiator', 'iSCSI', 'an iSCSI initiator name',
              '/etc/iscsi/initiatorname.iscsi is missing or has no '
              'InitiatorName= line (install open-iscsi, or write one)'),
    'iser': ('initiator', 'iSER', 'an iSCSI initiator name',
             '/etc/iscsi/initiatorname.iscsi is missing or has no '
             'InitiatorName= line (install open-iscsi, or write one)'),
    'fibre_channel': ('wwpns', 'Fibre Channel', 'Fibre Channel WWPNs',
                      'no Fibre Channel HBA port was found'),
    'nvmeof': ('nqn', 'NVMe-oF', 'an NVMe host NQN',
               '/etc/nvme/hostnqn is missing or empty (install nvme-cli, '
               'or write one)'),
}


def lacks_identity(connector):
    """Whether the connector misses any protocol's identity."""
    return any(not connector.get(key)
               for key, _name, _what, _why in _IDENTITIES.values())


def volume_protocol(client, volume):
    """The volume's ``driver_volume_type`` by its pool, or None.

    None when Cinder does not say (no admin view of the volume's host or
    of the pools, a back end that reports no protocol, any error): the
    caller then goes on without the early check.
    """
    pool = volume.get(POOL_FIELD)
    if not pool:
        return None
    try:
        result, _attempts = client.transport.call(
            'get_pools', 'GET', '/scheduler-stats/get_pools',
            microversion=MV_POOL_FILTER,
            params={'detail': 'True', 'name': pool}, retry=False,
            volume=volume['id'])
    except exception.CinderError as e:
        LOG.debug('Cannot learn the protocol of volume %s from its pool '
                  '%s: %s', volume['id'], pool, e)
        return None
    for found in result.get('pools') or []:
        if found.get('name') != pool:
            continue
        reported = (found.get('capabilities') or {}).get('storage_protocol')
        if isinstance(reported, str):
            return _PROTOCOLS.get(reported.lower())
    return None


def check_connector(client, volume, connector):
    """Refuse at once a volume this host has no identity for.

    :returns: the volume's protocol (``driver_volume_type``) when it was
        learnt, else None.
    :raises: CLIError (usage or configuration error) naming the volume,
        its protocol and the missing identity.
    """
    if not lacks_identity(connector):
        return None
    protocol = volume_protocol(client, volume)
    needed = _IDENTITIES.get(protocol)
    if needed is None or connector.get(needed[0]):
        return protocol
    key, name, what, why = needed
    raise exception.CLIError(
        'volume %s is exported over %s, which needs %s, but this host has '
        'none (connector key "%s" is empty: %s). Nothing was created in '
        'Cinder' % (volume['id'], name, what, key, why), errors.EXIT_USAGE)
