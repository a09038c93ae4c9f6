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

"""The ``cinder-agent`` deploy interface: boot from Cinder volumes.

A ``direct`` deploy with these steps (names and priorities are a
contract, see doc/source/admin/deploy-steps.rst):

=============================  ===  ======================================
``deploy`` (inherited)         100  boot the ramdisk, wait for it
``cinder_attach_volumes``       90  attachments, agent connections, target
                                    properties
``write_image`` (inherited)     80  onto the boot volume; skipped when
                                    there is no image_source
``cinder_configure_boot``       70  initiator name inside the OS
``prepare_instance_boot``       60  boot interface (iPXE sanboot)
``cinder_disconnect_volumes``   45  flush, disconnect in the ramdisk
``tear_down_agent`` (inherited)  40
``boot_instance`` (inherited)   20
=============================  ===  ======================================

Every step is a conductor step. Steps 90, 70 and 45 do their node-side
work through the agent's ``cinder`` extension, called synchronously (the
agent API waits for the command), so none of them waits for a heartbeat,
and the agent reports no deploy step of its own: deploys of other
interfaces through the same ramdisk never run any of this. ``write_image``
starts the agent's in-band step as ``direct`` does and the node waits for
its agent; for at most ``[ipa_cinder] write_image_wait`` seconds a watch
without the node's lock asks the agent whether the write is over, and
then runs what the agent's next heartbeat would have run.

Undeploy deletes every attachment of the node (reconciled against Cinder)
and keeps the operator's volume targets. The clean step
``cinder_detach_volumes`` (priority 150, above every erase step)
disconnects whatever the agent has connected and deletes leftover
attachments.
"""

from ironic.common import exception as ironic_exc
from ironic.common import metrics_utils
from ironic.common import states
from ironic.conductor import task_manager
from ironic.conductor import utils as manager_utils
from ironic.drivers import base
from ironic.drivers.modules import agent
from ironic.drivers.modules import deploy_utils
from oslo_log import log

from ipa_cinder.common import log_filter
from ipa_cinder.conductor import agent_commands
from ipa_cinder.conductor import agent_steps
from ipa_cinder.conductor import cinder_session
from ipa_cinder.conductor import ramdisk_boot
from ipa_cinder.conductor import targets as targets_mod
from ipa_cinder.conductor import volume_checks
from ipa_cinder.conductor import volumes
from ipa_cinder import conf
from ipa_cinder import exception

LOG = log.getLogger(__name__)
CONF = conf.CONF
METRICS = metrics_utils.get_metrics_logger(__name__)

DETACH_CLEAN_PRIORITY = 150


def has_boot_volume(task):
    return deploy_utils.get_remote_boot_volume(task) is not None


def has_image(task):
    return bool(task.node.instance_info.get('image_source'))


class CinderAgentDeploy(agent.AgentDeploy):
    """Direct deploy onto Cinder volumes attached through the agent."""

    def __init__(self):
        super().__init__()
        log_filter.install()

    def _cinder(self, task):
        return cinder_session.cinder_client(task.context, node=task.node.uuid)

    @METRICS.timer('CinderAgentDeploy.validate')
    def validate(self, task):
        """Validate the node, its volume targets and (if any) its image."""
        self._validate_volumes(task)
        if has_boot_volume(task) and not has_image(task):
            # The boot volume already holds an operating system: there is
            # no image to validate, only the agent's own requirements.
            agent.CustomAgentDeploy.validate(self, task)
            return
        super().validate(task)

    @staticmethod
    def _validate_volumes(task):
        """Volume targets, storage and boot interfaces that can work."""
        node = task.node
        for target in task.volume_targets:
            try:
                targets_mod.target_mode(node, target)
            except exception.VolumeAttachError as e:
                raise ironic_exc.InvalidParameterValue(str(e))
        if not task.volume_targets:
            return
        if node.storage_interface == 'cinder':
            # Ironic's own cinder storage interface would attach the same
            # volumes a second time, the legacy way, at every power on.
            raise ironic_exc.InvalidParameterValue(
                'Node %s: storage_interface "cinder" attaches volumes itself; '
                'cinder-agent needs storage_interface "noop"' % node.uuid)
        boot = deploy_utils.get_remote_boot_volume(task)
        if boot is None:
            raise ironic_exc.InvalidParameterValue(
                'Node %s has volume targets but none with boot_index 0; '
                'cinder-agent needs a boot volume' % node.uuid)
        capabilities = getattr(task.driver.boot, 'capabilities', None) or ()
        if (boot.volume_type.lower() == 'iscsi'
                and node.boot_interface != 'fake'
                and 'iscsi_volume_boot' not in capabilities):
            raise ironic_exc.InvalidParameterValue(
                'Node %(node)s: boot volume target %(target)s is iSCSI, but '
                'boot interface "%(boot)s" cannot boot from iSCSI (use ipxe '
                'or another interface with iscsi_volume_boot)'
                % {'node': node.uuid, 'target': boot.uuid,
                   'boot': node.boot_interface})

    def _update_instance_info(self, task):
        if has_boot_volume(task) and not has_image(task):
            LOG.debug('Node %s boots an existing volume: no image '
                      'information to build', task.node.uuid)
            return
        super()._update_instance_info(task)

    @METRICS.timer('CinderAgentDeploy.prepare')
    @task_manager.require_exclusive_lock
    def prepare(self, task):
        """Prepare the deployment: the deploy ramdisk boots first.

        A node with a boot volume boots it only once it is attached (see
        :mod:`ipa_cinder.conductor.ramdisk_boot`).
        """
        if (task.node.provision_state == states.DEPLOYING
                and has_boot_volume(task)):
            return ramdisk_boot.prepare_deploy(self, task)
        return super().prepare(task)

    @METRICS.timer('CinderAgentDeploy.cinder_attach_volumes')
    @base.deploy_step(priority=90)
    @task_manager.require_exclusive_lock
    def cinder_attach_volumes(self, task):
        """Attach the node's volume targets through the agent.

        The agent reports the connector; each volume target gets one
        Cinder attachment for it (reused if it exists), the agent connects
        it, the attachment is completed and the connection data goes into
        the target's properties. Any failure undoes all of it.
        """
        node = task.node
        if not task.volume_targets:
            LOG.info('Node %s has no volume targets: nothing to attach',
                     node.uuid)
            return
        try:
            # The connector comes from the agent; Cinder's reads (the
            # node's attachments, the volumes) run meanwhile.
            done = volumes.NodeVolumes(task, self._cinder(task)).attach_all(
                lambda: self._node_connector(task))
        except (exception.VolumeAttachError, exception.CinderError) as e:
            raise ironic_exc.InstanceDeployFailure(str(e))
        boot = deploy_utils.get_remote_boot_volume(task)
        node.set_driver_internal_info('boot_from_volume', boot.uuid)
        node.save()
        for target, attachment, result in done:
            LOG.info('Node %(node)s: volume %(vol)s attached (attachment '
                     '%(att)s) as %(dev)s on the agent%(boot)s',
                     {'node': node.uuid, 'vol': target.volume_id,
                      'att': attachment['id'],
                      'dev': result.get('device_path'),
                      'boot': ', boot volume' if target.boot_index == 0
                      else ''})

    @staticmethod
    def _node_connector(task):
        """The node's connector, with its own initiator name, recorded.

        The name is claimed as the node's iqn volume connector before the
        agent makes it open-iscsi's and reports the connector; the
        identities the agent reports become the node's volume connectors.
        """
        node = task.node
        owned = list(node.driver_internal_info.get(
            volumes.CONNECTORS_KEY) or ())
        initiator = targets_mod.node_initiator(task, owned)
        if targets_mod.claim_initiator(task, initiator):
            owned.append(['iqn', initiator])
        try:
            connector = agent_commands.run(task, 'cinder.get_connector',
                                           {'initiator': initiator})
        except exception.AgentCommandError as e:
            raise ironic_exc.InstanceDeployFailure(
                'Node %s: cannot get the storage connector from the agent: '
                '%s' % (node.uuid, e))
        owned = targets_mod.record_connectors(task, connector, owned)
        node.set_driver_internal_info(volumes.CONNECTORS_KEY, owned)
        node.set_driver_internal_info(volumes.CONNECTOR_KEY, connector)
        node.save()
        return connector

    @METRICS.timer('CinderAgentDeploy.write_image')
    @base.deploy_step(priority=80)
    @task_manager.require_exclusive_lock
    def write_image(self, task):
        """Write the image onto the boot volume, unless there is none.

        The write is the agent's in-band step: Ironic learns its end only
        at a heartbeat, up to a heartbeat interval later. A short write is
        seen here instead (see :mod:`ipa_cinder.conductor.agent_steps`).
        """
        if has_boot_volume(task) and not has_image(task):
            LOG.info('Node %s: no image_source, the boot volume keeps the '
                     'operating system it holds; not writing an image',
                     task.node.uuid)
            return None
        result = super().write_image(task)
        if result == states.DEPLOYWAIT:
            # The node waits for its agent as in a direct deploy; a short
            # write is noticed before the next heartbeat would report it.
            agent_steps.watch(task, CONF.ipa_cinder.write_image_wait)
        return result

    @METRICS.timer('CinderAgentDeploy.cinder_configure_boot')
    @base.deploy_step(priority=70)
    @task_manager.require_exclusive_lock
    def cinder_configure_boot(self, task):
        """Give the OS on the boot volume the node's initiator name.

        The OS logs in to its iSCSI target with the identity Cinder
        granted: the initiator of the connector the attachments were made
        for. The agent edits the written OS (no mount, nothing executed).
        """
        node = task.node
        if not has_boot_volume(task):
            return
        recorded = node.driver_internal_info.get(volumes.ATTACHMENTS_KEY)
        try:
            volume_checks.check_still_attached(node, self._cinder(task),
                                               recorded or {})
        except exception.IpaCinderError as e:
            raise ironic_exc.InstanceDeployFailure(str(e))
        connector = node.driver_internal_info.get(
            volumes.CONNECTOR_KEY) or {}
        try:
            result = agent_commands.run(
                task, 'cinder.configure_boot',
                {'initiator': connector.get('initiator')})
        except exception.AgentCommandError as e:
            raise ironic_exc.InstanceDeployFailure(
                'Node %s: cannot configure the OS on the boot volume: %s'
                % (node.uuid, e))
        LOG.info('Node %(node)s: boot configuration %(what)s (%(why)s)',
                 {'node': node.uuid,
                  'what': 'written' if result.get('configured')
                  else 'left as it is', 'why': result.get('reason')})

    @METRICS.timer('CinderAgentDeploy.prepare_instance_boot')
    @base.deploy_step(priority=60)
    @task_manager.require_exclusive_lock
    def prepare_instance_boot(self, task):
        """Prepare the boot interface to boot the boot volume."""
        if not has_boot_volume(task):
            return super().prepare_instance_boot(task)
        # The operating system lives on the volume, with its bootloader:
        # nothing to install, the boot interface boots the volume (iPXE
        # renders sanboot from the boot target's properties).
        ramdisk_boot.forget_ramdisk_boot_config(task)
        with ramdisk_boot.only_boot_volume(task):
            task.driver.boot.prepare_instance(task)

    @METRICS.timer('CinderAgentDeploy.cinder_disconnect_volumes')
    @base.deploy_step(priority=45)
    @task_manager.require_exclusive_lock
    def cinder_disconnect_volumes(self, task):
        """Flush and disconnect the volumes in the ramdisk.

        The attachments stay: the deployed OS (or the firmware) logs in to
        the volumes itself once the node boots.
        """
        node = task.node
        if not (task.volume_targets or node.driver_internal_info.get(
                volumes.ATTACHMENTS_KEY)):
            return
        try:
            gone = volumes.NodeVolumes(task, None).disconnect_on_agent()
        except exception.AgentCommandError as e:
            raise ironic_exc.InstanceDeployFailure(
                'Node %s: cannot disconnect volumes on the agent: %s'
                % (node.uuid, e))
        LOG.info('Node %(node)s: the agent disconnected %(count)d '
                 'volume(s); the attachments stay for the deployed OS',
                 {'node': node.uuid, 'count': len(gone)})

    @METRICS.timer('CinderAgentDeploy.tear_down')
    @task_manager.require_exclusive_lock
    def tear_down(self, task):
        """Power off and delete every Cinder attachment of the node.

        Unlike the parent, the volume targets are kept: they are the
        operator's description of the node; only the connection data this
        interface wrote into them is removed.
        """
        node = task.node
        if not node.disable_power_off:
            manager_utils.node_power_action(task, states.POWER_OFF)
        self._delete_attachments(task)
        ramdisk_boot.forget_boot_volume(node)
        node.save()
        with manager_utils.power_state_for_network_configuration(task):
            task.driver.network.unconfigure_tenant_networks(task)
            task.driver.network.remove_provisioning_network(task)
        return states.DELETED

    def _delete_attachments(self, task, known_in_cinder=False):
        """Delete the node's attachments, reconciled against Cinder.

        :param known_in_cinder: the node is known to have volumes (the
            agent had some connected), whatever Ironic recorded.
        """
        node = task.node
        if not (known_in_cinder or task.volume_targets
                or node.driver_internal_info.get(volumes.ATTACHMENTS_KEY)):
            # Nothing says this node ever had a volume: a Cinder outage
            # must not fail its undeploy or cleaning.
            LOG.debug('Node %s has no volume targets, no recorded '
                      'attachments and no connected volume: not asking '
                      'Cinder', node.uuid)
            return []
        try:
            deleted = volumes.NodeVolumes(
                task, self._cinder(task)).delete_all()
        except (exception.VolumeAttachError, exception.CinderError) as e:
            raise ironic_exc.StorageError(str(e))
        LOG.info('Node %(node)s: deleted %(count)d Cinder attachment(s)',
                 {'node': task.node.uuid, 'count': len(deleted)})
        return deleted

    # Cleaning: the parent only knows the agent's in-band steps; this
    # interface adds its own conductor-side step.

    @METRICS.timer('CinderAgentDeploy.cinder_detach_volumes')
    @base.clean_step(priority=DETACH_CLEAN_PRIORITY)
    def cinder_detach_volumes(self, task):
        """Disconnect Cinder volumes on the agent and delete attachments.

        Runs before every erase step, so an erase never reaches a volume.
        The agent also logs out every iSCSI session it has no record of
        (the firmware's iBFT login, which IPA repeats at start-up): a
        session it cannot log out fails the step, naming portal and
        target, rather than leave a SAN disk to the erase steps.
        """
        node = task.node
        try:
            gone = volumes.NodeVolumes(task, None).disconnect_on_agent(
                all_iscsi_sessions=True)
        except exception.AgentCommandError as e:
            raise ironic_exc.NodeCleaningFailure(
                node=node.uuid, reason='cannot disconnect volumes or log '
                'out of iSCSI sessions on the agent; no erase step may run '
                'while a SAN disk is visible: %s' % e)
        LOG.info('Node %(node)s: agent disconnected %(count)d volume(s)',
                 {'node': node.uuid, 'count': len(gone)})
        try:
            # Volumes the agent had connected belong to attachments in
            # Cinder, recorded or not: they go too, or their exports would
            # stay reachable to the erase steps that follow.
            self._delete_attachments(task, known_in_cinder=bool(gone))
        except ironic_exc.StorageError as e:
            raise ironic_exc.NodeCleaningFailure(node=node.uuid,
                                                 reason=str(e))

    def get_clean_steps(self, task):
        steps = super().get_clean_steps(task)
        own = base.DeployInterface.get_clean_steps(self, task)
        names = {s['step'] for s in own}
        return [s for s in steps if s['step'] not in names] + list(own)

    def execute_clean_step(self, task, step):
        if step['step'] in {s['step'] for s in self.clean_steps}:
            return base.DeployInterface.execute_clean_step(self, task, step)
        return super().execute_clean_step(task, step)
