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

"""Shared set-up of the unit tests."""

import os
import subprocess

from ironic_python_agent import config as ipa_config
from oslo_config import cfg
import pytest

# IPA registers its options in its own main(); its modules read them at
# import time.
try:
    cfg.CONF.disk_utils
except cfg.NoSuchOptError:
    ipa_config.populate_config()


@pytest.fixture
def state_dir(tmp_path):
    """A fresh ipa-cinder state directory, set as the configured one."""
    path = tmp_path / 'state'
    cfg.CONF.set_override('state_dir', str(path), group='ipa_cinder')
    yield str(path)
    cfg.CONF.clear_override('state_dir', group='ipa_cinder')


@pytest.fixture
def loop_device(tmp_path):
    """A loop device over a sparse file this test owns: (device, file)."""
    if os.geteuid() != 0:
        pytest.skip('loop devices need root')
    backing = tmp_path / 'volume.img'
    with open(backing, 'wb') as f:
        f.truncate(4 * 1024 * 1024)
    device = subprocess.run(['losetup', '--find', '--show', str(backing)],
                            check=True, capture_output=True,
                            text=True).stdout.strip()
    try:
        yield device, str(backing)
    finally:
        subprocess.run(['losetup', '--detach', device], check=False)
