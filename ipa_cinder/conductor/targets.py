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

"""A node's volume targets and volume connectors, as Ironic stores them.

Volume targets say which Cinder volumes a node boots from and uses
(``boot_index`` 0 is the boot volume) and in which mode
(``properties/attach_mode``, default ``rw``). Once attached, a target's
properties also carry the connection data Ironic's boot interfaces read
(iPXE renders ``sanboot`` from them). Volume connectors record the node's
storage identities (``iqn``, ``ip``, ``wwpn``, ``wwnn``) as the agent
reported them.
"""

from ironic.common import exception as ironic_exc
from ironic import objects
from oslo_log import log

from ipa_cinder.common import connection
from ipa_cinder.common import secrets
from ipa_cinder import conf as ipa_conf
from ipa_cinder import exception

LOG = log.getLogger(__name__)
CONF = ipa_conf.CONF

# Ironic volume connector types for the identities of a connector.
_CONNECTOR_TYPES = (('initiator', 'iqn'), ('ip', 'ip'), ('wwpns', 'wwpn'),
                    ('wwnns', 'wwnn'))


def sorted_targets(task):
    """The node's volume targets, boot volume (index 0) first."""
    return sorted(task.volume_targets, key=lambda t: t.boot_index)


def target_mode(node, target):
    """The attach mode of a volume target (``rw`` unless it says ``ro``).

    :raises: VolumeAttachError naming the node, the volume, the target and
        the field.
    """
    mode = (target.properties or {}).get('attach_mode', 'rw')
    if not isinstance(mode, str) or mode not in connection.VALID_MODES:
        raise exception.VolumeAttachError(
            node.uuid, target.volume_id,
            'volume target %s: properties/attach_mode must be rw or ro, got '
            '%s' % (target.uuid, secrets.brief(mode)))
    return mode


def write_properties(target, info):
    """Put the connection data where Ironic's boot interfaces read it.

    iPXE renders ``sanboot`` from ``target_portal``, ``target_iqn``,
    ``target_lun`` and the CHAP credentials of the boot volume target.
    Ironic masks passwords in the API and shows properties only to
    callers allowed ``baremetal:volume:view_target_properties``.
    """
    properties = dict(target.properties or {})
    properties.update(info.get('data') or {})
    properties['driver_volume_type'] = info.get('driver_volume_type')
    target.properties = properties
    target.save()


def clear_properties(target, written_keys):
    """Remove the connection data :func:`write_properties` added.

    :param written_keys: the data keys that were written (recorded with the
        attachment); ``driver_volume_type`` is always removed.
    """
    keys = set(written_keys or ()) | {'driver_volume_type'}
    properties = {k: v for k, v in (target.properties or {}).items()
                  if k not in keys}
    if properties != (target.properties or {}):
        target.properties = properties
        target.save()


def _identities(connector):
    """(Ironic connector type, id) of every identity of a connector."""
    found = []
    for key, ctype in _CONNECTOR_TYPES:
        values = connector.get(key) or []
        if not isinstance(values, list):
            values = [values]
        found.extend((ctype, value) for value in values if value)
    return found


def record_connectors(task, connector, recorded_before=()):
    """Record the connector's identities as the node's volume connectors.

    Existing connectors of the node are kept, never duplicated. Those this
    interface recorded earlier (``recorded_before``) that the agent no
    longer reports (an ``ip`` from an earlier deploy) are deleted;
    connectors the operator created are never touched. An identity already
    recorded for another node is skipped with a warning (Ironic keeps
    them unique).

    :returns: the (type, id) pairs this interface now owns on the node.
    """
    node = task.node
    existing = {(c.type, c.connector_id): c for c in
                objects.VolumeConnector.list_by_node_id(task.context,
                                                        node.id)}
    current = _identities(connector)
    owned = [tuple(pair) for pair in recorded_before
             if tuple(pair) in existing]
    for pair in owned:
        if pair not in current:
            existing[pair].destroy()
            LOG.info('Node %(node)s: removed volume connector %(type)s '
                     '%(id)s of an earlier deploy', {'node': node.uuid,
                                                     'type': pair[0],
                                                     'id': pair[1]})
    owned = [pair for pair in owned if pair in current]
    for ctype, value in current:
        if (ctype, value) in existing:
            continue
        vc = objects.VolumeConnector(task.context, node_id=node.id,
                                     type=ctype, connector_id=value)
        try:
            vc.create()
        except ironic_exc.VolumeConnectorTypeAndIdAlreadyExists:
            LOG.warning('Node %(node)s: volume connector %(type)s %(id)s '
                        'belongs to another node; not recorded',
                        {'node': node.uuid, 'type': ctype, 'id': value})
            continue
        owned.append((ctype, value))
        LOG.info('Node %(node)s: recorded volume connector %(type)s %(id)s',
                 {'node': node.uuid, 'type': ctype, 'id': value})
    if connector.get('nqn'):
        LOG.debug('Node %s: Ironic has no connector type for NVMe NQNs; '
                  '%s kept in driver_internal_info only', node.uuid,
                  connector['nqn'])
    return [list(pair) for pair in owned]


def node_initiator(task, owned=()):
    """The iSCSI initiator name the node must use.

    In this order: the operator's (``properties/iscsi_initiator_iqn``); an
    ``iqn`` volume connector of the node that the operator created; the
    one this interface recorded on an earlier deploy (``owned``), so a
    redeploy keeps its name; else ``<initiator_iqn_prefix>:<node UUID>``.

    :raises: InvalidParameterValue for an operator's name that is not an
        iSCSI name.
    """
    node = task.node
    if (node.properties or {}).get(connection.INITIATOR_PROPERTY):
        try:
            return connection.node_initiator(node.uuid, node.properties)
        except exception.InvalidConnectionInfo as e:
            raise ironic_exc.InvalidParameterValue(
                'Node %s: %s' % (node.uuid, e))
    iqns = [c.connector_id for c in task.volume_connectors
            if c.type == 'iqn']
    mine = {tuple(pair) for pair in owned}
    theirs = [iqn for iqn in iqns if ('iqn', iqn) not in mine]
    if theirs or iqns:
        return sorted(theirs or iqns)[0]
    return connection.node_initiator(node.uuid, None,
                                     CONF.ipa_cinder.initiator_iqn_prefix)


def _holder(context, ctype, connector_id):
    """UUID of the node that holds a volume connector, or None."""
    for found in objects.VolumeConnector.list(context):
        if found.type == ctype and found.connector_id == connector_id:
            return objects.Node.get_by_id(context, found.node_id).uuid
    return None


def claim_initiator(task, initiator):
    """Record ``initiator`` as the node's ``iqn`` volume connector.

    :returns: True when this call created the connector.
    :raises: InstanceDeployFailure naming both nodes when another node
        holds the name: two nodes with one name would share every export
        Cinder makes for it.
    """
    node = task.node
    if any(c.type == 'iqn' and c.connector_id == initiator
           for c in task.volume_connectors):
        return False
    connector = objects.VolumeConnector(task.context, node_id=node.id,
                                        type='iqn', connector_id=initiator)
    try:
        connector.create()
    except ironic_exc.VolumeConnectorTypeAndIdAlreadyExists:
        raise ironic_exc.InstanceDeployFailure(
            'Node %(node)s: its iSCSI initiator name %(iqn)s is already the '
            'iqn volume connector of node %(other)s; two nodes with one '
            'name would see each other\'s volumes. Give one of them another '
            'name (properties/%(prop)s or its volume connectors)'
            % {'node': node.uuid, 'iqn': initiator,
               'other': _holder(task.context, 'iqn', initiator),
               'prop': connection.INITIATOR_PROPERTY})
    LOG.info('Node %(node)s: iSCSI initiator name %(iqn)s recorded as its '
             'iqn volume connector', {'node': node.uuid, 'iqn': initiator})
    return True
