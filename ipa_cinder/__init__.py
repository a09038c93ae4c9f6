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

"""ipa-cinder: boot bare-metal nodes from Cinder volumes, without Nova.

One distribution, two halves that run on two different machines, and a
command for any Linux host. Which subpackage runs where:

``common``
    Runs anywhere: secret masking, connection_info and connector rules,
    the Cinder attachments client (client, transport with retries,
    strays of a retried create).
``host``
    Runs as root on the host that attaches volumes (a node's ramdisk or a
    CLI host): os-brick set-up, block-device ioctls, the mount table, the
    on-disk connection registry and the connections themselves.
``agent``
    Runs inside ironic-python-agent only (``ipa-cinder[agent]``): the
    hardware manager, the ``cinder`` extension, OS configuration.
``conductor``
    Runs inside ironic-conductor only (``ipa-cinder[conductor]``): the
    ``cinder-agent`` deploy interface, hardware types, a node's volumes,
    agent commands and Ironic's ``[cinder]`` session.
``cli``
    Runs on any Linux host: the ``ipa-cinder`` command.

``conf`` holds the options of every part, ``exception`` the errors.
"""
