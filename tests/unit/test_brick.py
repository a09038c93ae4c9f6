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

"""os-brick's set-up on a host (host/brick.py)."""

import os
from unittest import mock

from oslo_config import cfg

from ipa_cinder.host import brick


def test_os_brick_gets_a_lock_path_under_the_state_dir(state_dir):
    """Without one, every os-brick iSCSI login fails on its lock."""
    conf = cfg.CONF
    conf.clear_override('lock_path', group='oslo_concurrency')
    conf.set_default('lock_path', None, group='oslo_concurrency')
    with mock.patch.object(brick, '_setup_done', False):
        brick.setup()
    expected = os.path.join(str(state_dir), 'locks')
    assert conf.oslo_concurrency.lock_path == expected
    assert conf.os_brick.lock_path == expected


def test_an_operators_lock_path_wins(state_dir, tmp_path):
    conf = cfg.CONF
    conf.set_override('lock_path', str(tmp_path / 'mine'),
                      group='oslo_concurrency')
    try:
        with mock.patch.object(brick, '_setup_done', False):
            brick.setup()
        assert conf.os_brick.lock_path == str(tmp_path / 'mine')
    finally:
        conf.clear_override('lock_path', group='oslo_concurrency')
