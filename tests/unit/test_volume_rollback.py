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

"""The attach step's rollback meeting a busy agent (conductor/volumes.py).

An agent still running a command that outlived the conductor's bound
cannot be made here with a deploy (tests/functional/agent/
test_long_commands.py makes one with a real agent, and the rollback's
other paths run in the functional fault suites): the agent's answers to
the rollback are given.
"""

import logging
import types
from unittest import mock

from ipa_cinder.conductor import volumes

NODE = '6f0d2c43-2a55-4d7e-9a7c-1c2b3d4e5f60'


def _prepared(count):
    items = []
    for i in range(count):
        item = volumes._Prepared(types.SimpleNamespace(
            volume_id='vol-%d' % i, boot_index=i), 'rw')
        item.attachment, item.created = {'id': 'att-%d' % i}, True
        item.connected = True
        items.append(item)
    return items


def test_busy_agent_is_asked_once_and_cinder_still_cleaned(caplog):
    caplog.set_level(logging.ERROR)
    node = mock.MagicMock(uuid=NODE, driver_internal_info={})
    cinder = mock.Mock()
    attach = volumes.NodeVolumes(types.SimpleNamespace(node=node), cinder)
    with mock.patch.object(volumes.agent_volumes, 'disconnect_one',
                           autospec=True, return_value=False) as disconnect:
        attach._rollback(_prepared(3))
    disconnect.assert_called_once()
    busy = [r.getMessage() for r in caplog.records if 'busy' in
            r.getMessage()]
    assert len(busy) == 1
    assert NODE in busy[0] and all('vol-%d' % i in busy[0] for i in range(3))
    # Cinder's attachments are deleted whatever the agent said.
    assert sorted(c.args[0] for c in cinder.delete_attachment.call_args_list
                  ) == ['att-0', 'att-1', 'att-2']


def test_free_agent_disconnects_every_volume(caplog):
    node = mock.MagicMock(uuid=NODE, driver_internal_info={})
    attach = volumes.NodeVolumes(types.SimpleNamespace(node=node),
                                 mock.Mock())
    with mock.patch.object(volumes.agent_volumes, 'disconnect_one',
                           autospec=True, return_value=True) as disconnect:
        attach._rollback(_prepared(3))
    assert [c.args[1] for c in disconnect.call_args_list] == [
        'vol-2', 'vol-1', 'vol-0']
    assert 'busy' not in caplog.text
