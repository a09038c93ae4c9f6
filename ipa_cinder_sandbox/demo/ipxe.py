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

"""The iPXE script Ironic's boot interface renders, by Ironic's own code.

Ironic's configuration is global to a process, and the caller may be a
test run with a configuration of its own: the rendering runs in a child
process (``python -m ipa_cinder_sandbox.demo --render-ipxe ...``) on the
sandbox Ironic's database, read only.
"""

import json
import sys

from ipa_cinder.common import secrets as secrets_mod
from ipa_cinder_sandbox import commands
from ipa_cinder_sandbox import errors


def render_ipxe(ironic_config, node_uuid, boot_target=None):
    """What Ironic's iPXE boot interface renders for ``node_uuid``.

    Runs Ironic's ``pxe_utils.get_volume_pxe_options`` and its iPXE
    template in a child process (see the module documentation).

    :param boot_target: volume target UUID to use as
        ``driver_internal_info['boot_from_volume']`` (in memory only) when
        the node has not been deployed.
    :returns: dict with ``pxe_options`` and ``script`` (the
        ``:boot_iscsi`` section), every secret masked.
    """
    argv = [sys.executable, '-W', 'ignore', '-m', 'ipa_cinder_sandbox.demo',
            '--render-ipxe', ironic_config, node_uuid] + (
                [boot_target] if boot_target else [])
    result = commands.run(*argv, check=False, timeout=120)
    if result.exit_code:
        raise errors.SandboxError(
            'rendering iPXE with Ironic\'s code failed: %s'
            % secrets_mod.mask_text(result.stderr.strip()[-2000:]))
    return json.loads(result.stdout.strip().splitlines()[-1])


def render_main(ironic_config, node_uuid, boot_target=None):
    """The child process of :func:`render_ipxe`: prints JSON on stdout."""
    import types

    from ironic.common import context as ironic_context
    from ironic.common import pxe_utils
    from ironic.common import utils as ironic_utils
    from ironic.conf import CONF
    from ironic.drivers.modules import deploy_utils
    from ironic import objects

    CONF(['--config-file', ironic_config], project='ironic')
    objects.register_all()
    ctx = ironic_context.get_admin_context()
    node = objects.Node.get_by_uuid(ctx, node_uuid)
    if boot_target:
        node.set_driver_internal_info('boot_from_volume', boot_target)
    # The objects a TaskManager loads for the boot interface.
    task = types.SimpleNamespace(
        context=ctx, node=node,
        volume_targets=objects.VolumeTarget.list_by_node_id(ctx, node.id),
        volume_connectors=objects.VolumeConnector.list_by_node_id(
            ctx, node.id))
    secrets = set()
    for target in task.volume_targets:
        secrets |= secrets_mod.secret_values(target.properties or {})
    options = pxe_utils.get_volume_pxe_options(task)
    params = dict(options, ipxe_timeout=CONF.pxe.ipxe_timeout * 1000)
    template = deploy_utils.get_ipxe_config_template(node)
    script = ironic_utils.render_template(
        template, {'pxe_options': params, 'ROOT': '{{ ROOT }}',
                   'DISK_IDENTIFIER': ''})
    section = []
    if ':boot_iscsi' in script:
        section = script[script.index(':boot_iscsi'):].split(
            ':fail_iscsi_retry')[0].strip().splitlines()
    text = '\n'.join(line for line in section if line.strip())
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, secrets_mod.MASK)
    print(json.dumps({'pxe_options': secrets_mod.mask(options),
                      'template': template, 'script': text}))
