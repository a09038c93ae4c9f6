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

"""Code that runs as root on the host that attaches volumes.

That host is a node's ramdisk (called by the agent half) or any Linux host
(called by the ``ipa-cinder`` command): os-brick set-up and connectors
(:mod:`.brick`), block-device ioctls (:mod:`.blockdev`), the mount table
(:mod:`.mounts`), the on-disk record of connections (:mod:`.registry`) and
connecting or disconnecting volumes (:mod:`.connections`).
"""
