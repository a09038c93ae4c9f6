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

"""The soak, short: 20 CLI cycles and 5 deploy cycles, zero leaks.

The long one is ``make soak`` (``python -m tests.soak``). Here Ironic
reaches Cinder through the package's fault proxy, with no fault set.
"""

from tests.soak import soak


def test_short_soak_leaks_nothing(sandbox, os_image, faults, tmp_path):
    rows, found = soak.Soak(sandbox, str(tmp_path)).run(20, 5, os_image)
    print('\n' + soak.table(rows))
    assert not soak.leaked(rows), soak.table(rows)
    assert not any(found.values()), found
