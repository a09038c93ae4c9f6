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

"""Booting the deploy ramdisk of a node that has a boot volume.

Ironic's agent deploy starts ``prepare`` by marking the node as booting
from its volume as soon as a boot volume target exists
(``deploy_utils.populate_storage_driver_internal_info`` sets
``driver_internal_info['boot_from_volume']`` when the boot interface can
boot iSCSI). Ironic's own ``cinder`` storage interface has attached the
volume by then and never boots a ramdisk for such a node. ``cinder-agent``
does boot one: the agent reports the connector, and the volume is attached
at step 90 and booted at step 60. With the mark set, the ``ipxe`` boot
interface would render a SAN boot of a volume that has no connection data
yet instead of the deploy ramdisk (and fail formatting its LUN).

So a deploy of such a node prepares as the parent does, in its order,
without the mark (removed if an earlier attempt left it);
``cinder_attach_volumes`` sets it once the volume is attached. PXE-based
boot interfaces render a node's configuration once, for the ramdisk, and
for the instance only switch the label it starts from; the SAN-boot
section exists only if the mark was set when it was rendered. So before
``prepare_instance`` the ramdisk's configuration is removed, and the boot
interface renders the volume's.
"""

import contextlib

from ironic.common import pxe_utils
from ironic.common import states
from ironic.common import utils as ironic_utils
from ironic.conductor import utils as manager_utils
from ironic.drivers.modules import deploy_utils
from ironic.drivers.modules import pxe_base
from oslo_config import cfg
from oslo_log import log

LOG = log.getLogger(__name__)
CONF = cfg.CONF

BOOT_MARKS = ('boot_from_volume', 'boot_from_volume_deploy')


def forget_boot_volume(node):
    """Remove the boot-from-volume marks; True if there were any."""
    found = any(node.driver_internal_info.get(key) for key in BOOT_MARKS)
    for key in BOOT_MARKS:
        node.del_driver_internal_info(key)
    return found


def prepare_deploy(deploy, task):
    """``prepare`` of a deploy whose node has a boot volume target.

    :param deploy: the node's deploy interface (a ``CustomAgentDeploy``).
    """
    node = task.node
    if forget_boot_volume(node):
        LOG.debug('Node %s: boot-from-volume mark of an earlier attempt '
                  'removed until the volume is attached again', node.uuid)
    node.save()
    task.driver.network.validate(task)
    fast_track = manager_utils.is_fast_track(task)
    if not fast_track and not node.disable_power_off:
        # As the parent: a known power state before the networks change.
        manager_utils.node_power_action(task, states.POWER_OFF)
    if not fast_track:
        restore = manager_utils.power_on_node_if_needed(task)
    task.driver.network.unconfigure_tenant_networks(task)
    task.driver.network.add_provisioning_network(task)
    if not fast_track:
        manager_utils.restore_power_state_if_needed(task, restore)
    # The image goes onto the volume through the agent: the storage
    # interface (noop, validated) has nothing to attach here.
    task.driver.storage.attach_volumes(task)
    deploy._update_instance_info(task)
    if fast_track:
        return
    if CONF.agent.manage_agent_boot:
        deploy_utils.prepare_agent_boot(task)


def forget_ramdisk_boot_config(task):
    """Remove the ramdisk's PXE/iPXE configuration file of the node.

    Without it, a PXE-based boot interface's ``prepare_instance`` renders
    the node's configuration again, with the boot volume's section.
    """
    boot = task.driver.boot
    if not isinstance(boot, pxe_base.PXEBaseMixin):
        return
    path = pxe_utils.get_pxe_config_file_path(
        task.node.uuid, ipxe_enabled=boot.ipxe_enabled,
        http_boot_enabled=getattr(boot, 'http_boot_enabled', False))
    LOG.debug('Node %s: rendering the boot configuration again for its '
              'boot volume (was %s)', task.node.uuid, path)
    ironic_utils.unlink_without_raise(path)


@contextlib.contextmanager
def only_boot_volume(task):
    """Show the boot interface the node's boot volume target alone.

    Ironic's iPXE template hooks every iSCSI volume target of the node
    (``sanhook``) before it SAN-boots the boot volume, and iPXE describes
    each hooked volume in the iBFT it builds in a fixed area of base memory
    (``XBFTAB_SIZE``; the iBFT format itself has two target slots). With a
    data volume and Cinder's target names that area overflows ("Could not
    describe SAN devices: No space left on device") and the node never
    boots. The OS on the boot volume logs in to its other volumes itself,
    with the initiator name the deploy wrote into it.
    """
    targets = task.volume_targets
    task.volume_targets = [t for t in targets if t.boot_index == 0]
    try:
        yield
    finally:
        task.volume_targets = targets
