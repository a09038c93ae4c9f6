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

"""The test disk image and the loopback HTTP server that serves it.

The image is built from local tools, no download: a GPT with one Linux
partition holding a real ext4 filesystem with a marker file. The kernel
here cannot read partition tables, so the filesystem is written straight
at the partition's offset in the file (``mke2fs -E offset=``).
"""

import hashlib
import os
import re
import sys
import tempfile

from oslo_log import log as logging

from ipa_cinder_sandbox import commands
from ipa_cinder_sandbox import errors
from ipa_cinder_sandbox import polling
from ipa_cinder_sandbox import process

LOG = logging.getLogger(__name__)

SGDISK = '/usr/sbin/sgdisk'
MKE2FS = '/usr/sbin/mke2fs'
IMAGE_NAME = 'sandbox-disk.raw'
IMAGE_SIZE_MIB = 32
MARKER_PATH = '/etc/ipa-cinder-sandbox'
MARKER_TEXT = 'written by the ipa-cinder sandbox test image\n'
SECTOR = 512


def partition_range(path, number=1):
    """(first, last) sector of partition ``number`` of a GPT image."""
    out = commands.run(SGDISK, '-i', number, path).stdout
    first = re.search(r'First sector: (\d+)', out)
    last = re.search(r'Last sector: (\d+)', out)
    if not first or not last:
        raise errors.SandboxError('no partition %d in %s: %s'
                                  % (number, path, out))
    return int(first.group(1)), int(last.group(1))


def build_image(directory):
    """Build the image in ``directory``; return its description.

    :returns: dict with ``path``, ``name``, ``size``, ``sha256``,
        ``marker_path``, ``marker_text`` and ``partition_offset``.
    """
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, IMAGE_NAME)
    tmp = path + '.tmp'
    try:
        with open(tmp, 'wb') as f:
            f.truncate(IMAGE_SIZE_MIB * 1024 * 1024)
        commands.run(SGDISK, '--clear', '--new=1:2048:0',
                     '--typecode=1:8300', '--change-name=1:sandbox-root', tmp)
        first, last = partition_range(tmp)
        with tempfile.TemporaryDirectory() as root:
            marker = os.path.join(root, MARKER_PATH.lstrip('/'))
            os.makedirs(os.path.dirname(marker))
            with open(marker, 'w') as f:
                f.write(MARKER_TEXT)
            size_kib = (last - first + 1) * SECTOR // 1024
            commands.run(MKE2FS, '-q', '-F', '-t', 'ext4', '-L',
                         'sandbox-root', '-d', root, '-E',
                         'offset=%d' % (first * SECTOR), tmp,
                         '%dk' % size_kib)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    info = {'path': path, 'name': IMAGE_NAME,
            'size': os.path.getsize(path), 'sha256': digest.hexdigest(),
            'marker_path': MARKER_PATH, 'marker_text': MARKER_TEXT,
            'partition_offset': first * SECTOR}
    with open(path + '.sha256', 'w') as f:
        f.write('%s  %s\n' % (info['sha256'], IMAGE_NAME))
    return info


class HTTPServer(object):
    """The images directory over HTTP on 127.0.0.1 (:mod:`.http_server`)."""

    def __init__(self, layout, procs):
        self.layout = layout
        self.procs = procs
        self.root = layout.path('images')

    def start(self):
        os.makedirs(self.root, exist_ok=True)
        self.procs.start('http', [
            sys.executable, '-m', 'ipa_cinder_sandbox.http_server',
            '--directory', self.root, '--port',
            str(self.layout.ports['http'])])

    def wait(self, timeout=15):
        polling.wait_until(
            lambda: process.port_open(self.layout.ports['http']), timeout,
            'HTTP server', on_tick=lambda: self.procs.ensure_alive('http'))

    def url(self, name):
        return '%s/%s' % (self.layout.http_url, name)

    def stop(self):
        self.procs.stop('http', timeout=5)
