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

"""The checkout's IPA ramdisk, for VM nodes: found in its cache or built.

``tools/ramdisk/build-ramdisk`` (``make ramdisk``) keeps each build under
``.cache/ramdisk/<key>/``, the key a hash of its inputs, and builds when
the checkout's key has no build yet (5-10 minutes here). During
development, ``$IPA_CINDER_RAMDISK`` may name a directory holding an
``ipa-cinder.kernel`` and ``ipa-cinder.initramfs`` to use instead (for
example an older build while only conductor code changed); the tests say
so in their output.
"""

import json
import os

from ipa_cinder_sandbox import commands
from ipa_cinder_sandbox import errors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, 'tools', 'ramdisk', 'build-ramdisk')
OVERRIDE_ENV = 'IPA_CINDER_RAMDISK'
BUILD_TIMEOUT = 45 * 60
KERNEL = 'ipa-cinder.kernel'
INITRAMFS = 'ipa-cinder.initramfs'


def _from_directory(directory):
    paths = {'kernel': os.path.join(directory, KERNEL),
             'initramfs': os.path.join(directory, INITRAMFS)}
    for what, path in paths.items():
        if not os.path.isfile(path):
            raise errors.SandboxError('%s=%s: no %s at %s'
                                      % (OVERRIDE_ENV, directory, what, path))
    return dict(paths, directory=directory, reused=True, key=None,
                build_seconds=0.0, override=True)


def find_or_build(timeout=BUILD_TIMEOUT):
    """The ramdisk: ``{kernel, initramfs, directory, reused, ...}``."""
    override = os.environ.get(OVERRIDE_ENV)
    if override:
        return _from_directory(os.path.abspath(override))
    try:
        out = commands.run(BUILD, '--json', timeout=timeout).stdout
    except errors.ExecutionError as e:
        raise errors.SandboxError('the ramdisk build failed: %s'
                                  % str(e)[-4000:])
    result = json.loads(out.strip().splitlines()[-1])
    result['override'] = False
    return result


def publish(ramdisk, http_root):
    """Link kernel and initramfs into the HTTP root; returns their names.

    Ironic downloads a node's deploy kernel and ramdisk from these URLs
    (on loopback) into its own cache.
    """
    directory = os.path.join(http_root, 'ramdisk')
    os.makedirs(directory, exist_ok=True)
    names = {}
    for what in ('kernel', 'initramfs'):
        link = os.path.join(directory, os.path.basename(ramdisk[what]))
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(ramdisk[what], link)
        names[what] = 'ramdisk/' + os.path.basename(link)
    return names
