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

"""Code that runs anywhere: conductor, ramdisk and CLI host alike.

Nothing here needs root, Ironic, ironic-python-agent or os-brick at import
time: secret masking (:mod:`.secrets`, :mod:`.log_filter`), connection
rules (:mod:`.connection`), Cinder's noauth token (:mod:`.noauth`) and the
Cinder attachments client (:mod:`.cinder_client` on
:mod:`.cinder_transport`, with :mod:`.cinder_strays`).
"""
