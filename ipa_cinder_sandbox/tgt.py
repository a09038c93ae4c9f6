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

"""The userspace iSCSI target daemon (tgtd), private to the sandbox.

tgtd gets its own control port (the name of its management socket), its own
iSCSI portal on 127.0.0.1 and its own configuration, which includes the
directory where Cinder's TgtAdm helper writes one file per exported volume.
Cinder calls plain ``tgt-admin`` and ``tgtadm``: wrappers placed first on
cinder-volume's PATH add ``-C <control port>`` (and the private
configuration), so the system's tgtd, if any, is never touched.
"""

import os
import re

from oslo_log import log as logging

from ipa_cinder_sandbox import commands
from ipa_cinder_sandbox import errors
from ipa_cinder_sandbox import polling
from ipa_cinder_sandbox import process

LOG = logging.getLogger(__name__)

TGTD = '/usr/sbin/tgtd'
TGTADM = '/usr/sbin/tgtadm'
TGT_ADMIN = '/usr/sbin/tgt-admin'

_TGTADM_WRAPPER = """#!/bin/sh
# tgtadm for the ipa-cinder sandbox: talk to its tgtd only.
for arg in "$@"; do
    case "$arg" in
        -C|--control-port|--control-port=*) exec %(tgtadm)s "$@";;
    esac
done
exec %(tgtadm)s -C %(port)d "$@"
"""

_TGT_ADMIN_WRAPPER = """#!/bin/sh
# tgt-admin for the ipa-cinder sandbox: its tgtd and its configuration.
exec %(tgt_admin)s -C %(port)d -c %(conf)s "$@"
"""

_TARGET_RE = re.compile(r'^Target (\d+): (\S+)$', re.MULTILINE)


class Tgt(object):
    """Start, inspect and stop the sandbox's tgtd."""

    def __init__(self, layout, procs):
        self.layout = layout
        self.procs = procs
        self.base = layout.path('tgt')
        self.volumes_dir = os.path.join(self.base, 'volumes')
        self.conf = os.path.join(self.base, 'targets.conf')
        self.bin_dir = layout.path('bin')
        self.control_port = layout.ports['tgt_control']
        self.iscsi_port = layout.ports['iscsi']

    def write_files(self):
        """The private configuration and the two wrappers."""
        os.makedirs(self.volumes_dir, exist_ok=True)
        os.makedirs(self.bin_dir, exist_ok=True)
        with open(self.conf, 'w') as f:
            f.write('default-driver iscsi\ninclude %s/*\n' % self.volumes_dir)
        wrappers = {
            'tgtadm': _TGTADM_WRAPPER % {'tgtadm': TGTADM,
                                         'port': self.control_port},
            'tgt-admin': _TGT_ADMIN_WRAPPER % {'tgt_admin': TGT_ADMIN,
                                               'port': self.control_port,
                                               'conf': self.conf},
        }
        for name, text in wrappers.items():
            path = os.path.join(self.bin_dir, name)
            with open(path, 'w') as f:
                f.write(text)
            os.chmod(path, 0o755)

    def start(self):
        if not os.path.exists(TGTD):
            raise errors.SandboxError('%s is missing: install the tgt '
                                      'package (make system-deps)' % TGTD)
        self.write_files()
        self.procs.start('tgtd', [
            TGTD, '-f', '-C', str(self.control_port),
            '--iscsi', 'portal=127.0.0.1:%d' % self.iscsi_port])

    def wait(self, timeout=20):
        polling.wait_until(
            lambda: (self._tgtadm('--op', 'show', '--mode', 'sys',
                                  check=False).exit_code == 0
                     and process.port_open(self.iscsi_port)),
            timeout, 'tgtd', on_tick=lambda: self.procs.ensure_alive('tgtd'))

    def _tgtadm(self, *args, check=True):
        return commands.run(TGTADM, '-C', self.control_port, *args,
                            check=check)

    def targets(self):
        """{tid: iqn} of the targets tgtd serves now ({} if not running)."""
        result = self._tgtadm('--lld', 'iscsi', '--op', 'show', '--mode',
                              'target', check=False)
        if result.exit_code:
            return {}
        return {int(tid): iqn for tid, iqn in
                _TARGET_RE.findall(result.stdout)}

    def show(self):
        """tgtadm's full description of the targets (LUNs, accounts)."""
        return self._tgtadm('--lld', 'iscsi', '--op', 'show', '--mode',
                            'target', check=False).stdout

    def delete_targets(self):
        """Remove every target (tgtd ignores SIGTERM while any exists)."""
        for tid, iqn in self.targets().items():
            LOG.debug('Deleting tgt target %d (%s)', tid, iqn)
            self._tgtadm('--lld', 'iscsi', '--op', 'delete', '--mode',
                         'target', '--tid', str(tid), '--force', check=False)

    def stop(self):
        """Delete targets, ask tgtd to exit, then stop it by PID."""
        if self.procs.alive('tgtd'):
            self.delete_targets()
            self._tgtadm('--op', 'delete', '--mode', 'system', check=False)
            try:
                polling.wait_until(lambda: not self.procs.alive('tgtd'), 5,
                                   'tgtd exit')
            except errors.SandboxError:
                LOG.warning('tgtd did not exit on request; signalling it')
        self.procs.stop('tgtd', timeout=5)
