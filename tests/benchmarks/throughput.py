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

"""Image write throughput: the agent's stream against ``dd``.

The anchor: ``dd if=<image> of=<a fresh sandbox loop device> bs=1M
conv=fsync``, run from the benchmark's process, the same image and the
same kind of device as a boot volume of Cinder's ``local`` backend (a
buffered loop device over a sparse file, 1 GiB). Then, to find where the
confined agent loses time, the same writes under parts of the jail, each
an experiment only (the jail the agent runs in is never changed):

* ``dd`` inside the whole jail (namespaces, private /dev, capabilities
  dropped, seccomp, devices cgroup);
* ``dd`` with only the jail's seccomp filter, or only its devices cgroup;
* ``dd`` onto a loop device switched to direct I/O (``--direct-io=on``);
* IPA's own stream code (``standby``), outside and inside the jail, and
  a Python copy of it (HTTP GET of the image from the sandbox's
  server, sha256 of each 1 MiB chunk, written to the device opened
  ``wb+``, as ``standby._stream_raw_image_onto_device`` does), outside
  and inside the jail.
"""

import os
import re
import statistics
import subprocess
import sys
import time

from ipa_cinder_sandbox import commands
from ipa_cinder_sandbox.jail import devices as jail_devices
from ipa_cinder_sandbox.jail import host as jail_host

MiB = 1048576.0
_DD_RESULT = re.compile(r'(\d+) bytes .* copied, ([\d.]+) s')
_IPA_RESULT = re.compile(r'Image streamed onto device \S+ in ([\d.]+) '
                         r'seconds for (\d+) bytes')

_SECCOMP_THEN = ('import os, sys\n'
                 'from ipa_cinder_sandbox.jail import lockdown\n'
                 'lockdown.load_seccomp()\n'
                 'os.execvp(sys.argv[1], sys.argv[1:])\n')
_CGROUP_THEN = ('import os, sys\n'
                'from ipa_cinder_sandbox.jail import devices\n'
                'devices.join_cgroup(sys.argv[1])\n'
                'os.execvp(sys.argv[2], sys.argv[2:])\n')
# IPA's stream, reduced to what it does per chunk.
_STREAM = ('import hashlib, sys, time, requests\n'
           'began = time.monotonic()\n'
           'digest = hashlib.sha256()\n'
           'size = 0\n'
           'response = requests.get(sys.argv[1], stream=True, timeout=60)\n'
           'with open(sys.argv[2], "wb+") as f:\n'
           '    for chunk in response.iter_content(1024 * 1024):\n'
           '        digest.update(chunk)\n'
           '        f.write(chunk)\n'
           '        size += len(chunk)\n'
           'print("%d bytes (stream) copied, %.6f s"\n'
           '      % (size, time.monotonic() - began), file=sys.stderr)\n')

# IPA's own stream (standby), in a plain process: its log line is parsed.
# What follows the stream (GPT fix-up, partition UUIDs) needs a node and
# an agent, and is not measured.
_IPA_STREAM = ('import logging, sys\n'
               'logging.basicConfig(level=logging.INFO)\n'
               'from oslo_config import cfg\n'
               'from ironic_python_agent import config  # noqa\n'
               'from ironic_python_agent.extensions import standby\n'
               'cfg.CONF([], project="ironic-python-agent")\n'
               'info = {"id": "bench", "urls": [sys.argv[1]],\n'
               '        "os_hash_algo": "sha256",\n'
               '        "os_hash_value": sys.argv[3]}\n'
               'try:\n'
               '    standby.StandbyExtension._stream_raw_image_onto_device(\n'
               '        None, info, sys.argv[2])\n'
               'except Exception:\n'
               '    pass\n')


def _dd(device, image):
    return ['dd', 'if=%s' % image, 'of=%s' % device, 'bs=1M',
            'conv=fsync']


def _rate(stderr):
    """MiB/s from dd's (or the stream's) summary line."""
    match = _DD_RESULT.search(stderr)
    if match:
        size, seconds = int(match.group(1)), float(match.group(2))
    else:
        match = _IPA_RESULT.search(stderr)
        if not match:
            raise RuntimeError('no transfer summary in: %s' % stderr[-300:])
        size, seconds = int(match.group(2)), float(match.group(1))
    if not seconds:
        raise RuntimeError('a transfer of no time: %s' % stderr[-300:])
    return size / MiB / seconds


def _run(argv, timeout=300):
    result = subprocess.run(argv, capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode:
        raise RuntimeError('%s failed (%d): %s' % (argv[0], result.returncode,
                                                   result.stderr[-300:]))
    return _rate(result.stderr)


class Throughput(object):
    """The experiments above on fresh sandbox loop devices."""

    def __init__(self, sandbox, repeat, log, size_mib=1024):
        self.sandbox = sandbox
        self.repeat = repeat
        self.log = log
        self.size_mib = size_mib
        self.image = sandbox.image['path']
        self.image_url = '%s/%s' % (sandbox.http_url,
                                    sandbox.image['name'])
        self.sha256 = sandbox.image['sha256']
        self.workdir = sandbox.layout.path('agent', 'bench-throughput')
        self._count = 0

    def _fresh(self, direct_io=False):
        device = self.sandbox.create_loop_device(size_mib=self.size_mib)
        if direct_io:
            commands.run('losetup', '--direct-io=on', device)
        return device

    def _each(self, write, direct_io=False):
        """Median MiB/s of ``write(device)``, a fresh device each time."""
        rates = []
        for _ in range(self.repeat):
            device = self._fresh(direct_io)
            try:
                rates.append(write(device))
            finally:
                self.sandbox.remove_loop_device(device)
        return {'mib_per_s': round(statistics.median(rates), 1),
                'all': [round(r, 1) for r in rates]}

    def host_dd(self, device):
        return _run(_dd(device, self.image))

    def jailed(self, device, argv):
        self._count += 1
        name = 'bench-dd-%d-%d' % (os.getpid(), self._count)
        jail = jail_host.Jail(name, os.path.join(self.workdir, name),
                              devices=[device], writable=[self.workdir])
        out_path = os.path.join(self.workdir, name + '.out')
        os.makedirs(self.workdir, exist_ok=True)
        with open(out_path, 'w') as out:
            proc = jail.start(argv, stdout=out, stderr=subprocess.STDOUT)
            try:
                code = proc.wait(300)
            finally:
                jail.stop()
        with open(out_path) as f:
            text = f.read()
        if code:
            raise RuntimeError('jailed %s failed (%d): %s'
                               % (argv[0], code, text[-300:]))
        return _rate(text)

    def seccomp_dd(self, device):
        return _run([sys.executable, '-c', _SECCOMP_THEN]
                    + _dd(device, self.image))

    def cgroup_dd(self, device):
        self._count += 1
        cgroup = jail_devices.create_cgroup(
            'bench-dd-%d-%d' % (os.getpid(), self._count), [device])
        if cgroup is None:
            raise RuntimeError('no devices cgroup on this kernel')
        try:
            return _run([sys.executable, '-c', _CGROUP_THEN, cgroup]
                        + _dd(device, self.image))
        finally:
            jail_devices.remove_cgroup(cgroup)

    def stream(self, device):
        return _run([sys.executable, '-c', _STREAM, self.image_url, device])

    def ipa_argv(self, device):
        return [sys.executable, '-c', _IPA_STREAM, self.image_url, device,
                self.sha256]

    def experiments(self):
        """(name, function, direct_io) of every measurement, anchor first."""
        return [
            ('dd, host (anchor)', self.host_dd, False),
            ('dd, host, loop --direct-io=on', self.host_dd, True),
            ('dd, whole jail', lambda d: self.jailed(
                d, _dd(d, self.image)), False),
            ('dd, seccomp filter only', self.seccomp_dd, False),
            ('dd, devices cgroup only', self.cgroup_dd, False),
            ('IPA-like stream, host', self.stream, False),
            ('IPA-like stream, whole jail', lambda d: self.jailed(
                d, [sys.executable, '-c', _STREAM, self.image_url, d]),
                False),
            ('IPA-like stream, host, loop --direct-io=on', self.stream,
             True),
            ('IPA\'s own stream code, host',
             lambda d: _run(self.ipa_argv(d)), False),
            ('IPA\'s own stream code, whole jail',
             lambda d: self.jailed(d, self.ipa_argv(d)), False),
        ]

    def measure(self):
        """{name: {'mib_per_s', 'all'} or {'error'}}, in order."""
        results = {}
        for name, write, direct_io in self.experiments():
            began = time.monotonic()
            try:
                results[name] = self._each(write, direct_io)
            except Exception as e:  # an experiment, not the benchmark
                results[name] = {'error': str(e)}
            self.log('throughput: %s: %s (%.1f s)'
                     % (name, results[name], time.monotonic() - began))
        return results
