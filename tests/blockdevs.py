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

"""Block-device facts of this host that tests need."""


def unregistered_block_major():
    """A block major no driver has registered: opening it gives ENXIO."""
    with open('/proc/devices') as f:
        text = f.read()
    used = {int(line.split()[0]) for line in
            text.split('Block devices:', 1)[1].splitlines() if line.strip()}
    return next(m for m in range(240, 255) if m not in used)
