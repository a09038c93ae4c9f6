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

"""Loop devices over files of the sandbox.

The sandbox only ever touches loop devices whose backing file lies under
its own state directory; ``losetup`` is the record of which those are, so a
crashed sandbox's devices are found again by the next ``down`` or ``up``.
"""

import json
import os

from oslo_log import log as logging

from ipa_cinder_sandbox import commands
from ipa_cinder_sandbox import errors

LOG = logging.getLogger(__name__)

LOSETUP = '/usr/sbin/losetup'
PARTX = '/usr/bin/partx'


def list_devices():
    """{device: backing file} of every loop device in use."""
    out = commands.run(LOSETUP, '--list', '--json', '--output',
                       'NAME,BACK-FILE', check=False).stdout
    if not out.strip():
        return {}
    devices = json.loads(out).get('loopdevices', [])
    return {d['name']: (d.get('back-file') or '').replace(' (deleted)', '')
            for d in devices}


def devices_under(directory):
    """Loop devices whose backing file lies under ``directory``."""
    prefix = os.path.abspath(directory).rstrip('/') + '/'
    return sorted(dev for dev, back in list_devices().items()
                  if back.startswith(prefix))


def devices_of(path):
    """Loop devices backed by ``path``."""
    path = os.path.abspath(path)
    return sorted(dev for dev, back in list_devices().items()
                  if back == path)


def attach(path, read_only=False, partitions=False):
    """A new loop device over ``path``; returns its /dev path.

    :param partitions: also create the partition devices with partx (the
        kernel here does not scan partition tables itself).
    """
    options = ['--read-only'] if read_only else []
    device = commands.run(LOSETUP, '--find', '--show', *options,
                          os.path.abspath(path)).stdout.strip()
    if partitions:
        try:
            commands.run(PARTX, '--add', device)
        except errors.ExecutionError:
            detach(device)
            raise
    LOG.debug('Attached %s to %s', path, device)
    return device


def refresh_capacity(device):
    """Make ``device`` see the new size of its grown backing file."""
    commands.run(LOSETUP, '--set-capacity', device)


def detach(device):
    """Remove partition devices created with partx, then the loop device."""
    commands.run(PARTX, '--delete', device, check=False)
    commands.run(LOSETUP, '--detach', device, check=False)
    LOG.debug('Detached %s', device)


def detach_all_under(directory):
    """Detach every loop device backed by a file under ``directory``."""
    devices = devices_under(directory)
    for device in devices:
        detach(device)
    return devices
