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

"""``python -m ipa_cinder_sandbox.jail``: the launcher, then the jail's init.

Run by :class:`ipa_cinder_sandbox.jail.host.Jail`, never by hand. Outside, the
launcher joins the jail's devices cgroup and re-runs itself with
``--inside`` under ``unshare`` in new mount, PID, IPC and UTS namespaces
(layer 3). Inside, as PID 1, it builds the filesystem, drops capabilities,
loads the seccomp filter, then runs the confined command and reaps. The
host name it sets, when the spec names one, is the jail's own (UTS
namespace): seccomp forbids changing it afterwards.
"""

import argparse
import json
import os
import signal
import socket
import sys

from ipa_cinder_sandbox.jail import devices


def _launch(spec_path, argv):
    with open(spec_path) as f:
        spec = json.load(f)
    if spec.get('cgroup'):
        devices.join_cgroup(spec['cgroup'])
    # --kill-child: if this launcher dies, the kernel kills the jail's init
    # and with it every process of the PID namespace.
    os.execvp('unshare', [
        'unshare', '--mount', '--pid', '--ipc', '--uts', '--fork',
        '--kill-child', '--propagation', 'private', '--',
        sys.executable, '-m', 'ipa_cinder_sandbox.jail', '--inside',
        '--spec', spec_path, '--'] + argv)


def _init(spec_path, argv):
    """PID 1 of the jail: build it, confine, run the command, reap."""
    with open(spec_path) as f:
        spec = json.load(f)
    try:
        # Imported here: the launcher, outside, has no use for them.
        from ipa_cinder_sandbox.jail import filesystem
        from ipa_cinder_sandbox.jail import lockdown

        filesystem.build(spec)
        if spec.get('hostname'):
            socket.sethostname(spec['hostname'])
        lockdown.drop_capabilities()
        lockdown.load_seccomp()
    except Exception as e:
        sys.stderr.write('jail: refusing to start the agent: %s\n' % e)
        return 70
    child = os.fork()
    if child == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)

    def forward(signum, _frame):
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    status = 0
    while True:
        try:
            pid, wstatus = os.wait()
        except ChildProcessError:
            return status
        except InterruptedError:
            continue
        if pid == child:
            status = os.waitstatus_to_exitcode(wstatus)
            # Returning ends PID 1, and the kernel kills what is left.
            return status if status >= 0 else 128 - status


def main():
    parser = argparse.ArgumentParser(prog='ipa_cinder_sandbox.jail')
    parser.add_argument('--spec', required=True)
    parser.add_argument('--inside', action='store_true')
    parser.add_argument('argv', nargs=argparse.REMAINDER)
    args = parser.parse_args()
    argv = args.argv[1:] if args.argv[:1] == ['--'] else args.argv
    if not argv:
        parser.error('no command to run')
    if args.inside:
        sys.exit(_init(args.spec, argv))
    _launch(args.spec, argv)


if __name__ == '__main__':
    main()
