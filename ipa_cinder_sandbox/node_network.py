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

"""The network a virtual-machine node sees, and the host's view of it.

A VM node (:mod:`ipa_cinder_sandbox.vm`) has qemu's user-mode network
with ``restrict=on``: it reaches nothing but the forwards qemu makes for
it, each from the fixed service address :data:`SERVICE_ADDRESS` to the
same port on 127.0.0.1 (Ironic's API, the HTTP server, tgt's portal).
Everything Ironic hands to a node therefore names that address: the API
URL on the kernel command line, ``[deploy] http_url`` (iPXE scripts,
kernels, images) and the iSCSI portal of the ``iscsi-node`` Cinder
backend.

The conductor checks some of those URLs itself (an image URL is fetched
with HEAD before a deploy). The host has no route to the service address,
so the sandbox's Ironic sends plain-HTTP requests through the sandbox's
own HTTP server as a proxy (``http_proxy``; loopback stays direct
through ``no_proxy``), and that server answers for the service address
exactly what it serves on loopback (:mod:`ipa_cinder_sandbox.
http_server`). Nothing else is proxied.

Per-VM ports: the layout's fixed offsets end below :data:`FIRST_VM_OFFSET`
and two sandboxes started side by side are 20 ports apart, so VM slot
``n`` (0-9) takes port ``base + 10 + n``: UDP for its BMC, TCP on
127.0.0.1 for the agent's API forwarded into the guest.
"""

SERVICE_ADDRESS = '10.0.2.100'
# The port IPA listens on inside the guest.
AGENT_GUEST_PORT = 9999
FIRST_VM_OFFSET = 10
MAX_VMS = 10
# Services a VM node reaches, by the layout's port names.
FORWARDED = ('ironic', 'http', 'iscsi')


def url(layout, service):
    """``http://<service address>:<port>`` of a layout's service."""
    return 'http://%s:%d' % (SERVICE_ADDRESS, layout.ports[service])


def iscsi_portal(layout):
    """The tgt portal as a VM node reaches it."""
    return '%s:%d' % (SERVICE_ADDRESS, layout.ports['iscsi'])


def guest_forwards(layout):
    """[(port, port)]: service address port -> the same port on loopback."""
    return [(layout.ports[name], layout.ports[name]) for name in FORWARDED]


def vm_port(layout, slot):
    """The BMC (UDP) and agent (TCP) port of VM slot ``slot``."""
    if not 0 <= slot < MAX_VMS:
        raise ValueError('VM slot %r: the sandbox runs at most %d VM nodes'
                         % (slot, MAX_VMS))
    return layout.port_base + FIRST_VM_OFFSET + slot


def proxy_environment(layout, environ):
    """``environ`` plus the proxy settings of a process that reaches nodes.

    Only plain HTTP to the service address goes through the sandbox's
    HTTP server; loopback (Cinder, the agents' HTTPS API) stays direct.
    """
    env = dict(environ)
    for name in ('https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY'):
        env.pop(name, None)
    env['http_proxy'] = env['HTTP_PROXY'] = 'http://127.0.0.1:%d' % (
        layout.ports['http'])
    env['no_proxy'] = env['NO_PROXY'] = '127.0.0.1,localhost'
    return env
