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

"""Ironic's real ``ipxe`` boot interface with ``cinder-agent``.

A node with an iSCSI boot volume boots the deploy ramdisk first: the
volume is attached only at step 90, and iPXE must not be told to SAN-boot
it before (Ironic's agent deploy marks the node as booting from its volume
as soon as a boot volume target exists). VM nodes (tests/functional/vm)
go on to boot the volume; this checks the rendering with fake power, in
seconds.
"""

import os

from ipa_cinder_sandbox import node_network


def _ipxe_config(sandbox, node):
    mac = sandbox.ironic.get('/v1/ports?node=%s' % node['uuid'])[
        'ports'][0]['address']
    path = sandbox.layout.path('images', 'pxelinux.cfg',
                               mac.replace(':', '-'))
    with open(path) as f:
        return f.read()


def test_node_with_a_boot_volume_boots_the_deploy_ramdisk(sandbox, deployer):
    images = sandbox.layout.path('images')
    for name in ('fake-kernel', 'fake-ramdisk'):
        with open(os.path.join(images, name), 'wb') as f:
            f.write(b'not a real %s\n' % name.encode())
    volume = sandbox.create_volume(size=1, volume_type='iscsi')
    node = deployer.create_node(
        boot_interface='ipxe',
        driver_info={'deploy_kernel': '%s/fake-kernel' % sandbox.http_url,
                     'deploy_ramdisk': '%s/fake-ramdisk' % sandbox.http_url},
        properties={'capabilities': 'iscsi_boot:true'})
    deployer.add_target(node, volume, volume_type='iscsi')

    sandbox.set_provision_state(node['uuid'], 'active')
    waiting = sandbox.wait_node(node['uuid'], 'wait call-back')
    assert 'boot_from_volume' not in waiting['driver_internal_info']
    script = _ipxe_config(sandbox, node)
    http = node_network.url(sandbox.layout, 'http')
    assert 'kernel --timeout' in script
    assert '%s/%s/deploy_kernel' % (http, node['uuid']) in script
    assert 'ipa-api-url=%s' % node_network.url(sandbox.layout,
                                               'ironic') in script
    deploy_section = script.split(':deploy', 1)[1].split(':retry', 1)[0]
    assert 'sanboot' not in deploy_section
    assert 'goto deploy' in script.split(':deploy', 1)[0]

    sandbox.set_provision_state(node['uuid'], 'deleted')
    sandbox.wait_node(node['uuid'], 'available')
    assert deployer.attachments(volume['id']) == []
