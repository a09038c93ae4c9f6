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

"""The agent half: runs inside ironic-python-agent on the node only.

Installed with ``ipa-cinder[agent]`` into the ramdisk: the hardware
manager ``cinder`` (install device, device filtering, boot configuration)
and the agent extension ``cinder`` (get_connector, connect_volume,
disconnect_volume, list_connections). It builds on :mod:`ipa_cinder.host`.
"""
