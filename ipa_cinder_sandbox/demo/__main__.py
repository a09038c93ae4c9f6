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

"""``python -m ipa_cinder_sandbox.demo``: the whole demo, as root.

Act 1 runs the agent alone; act 2 brings a sandbox up (locked: a second
demo at the same time takes the next slot) and runs
:func:`ipa_cinder_sandbox.demo.run` on it (a fast fake-hardware deploy);
act 3, the main act, deploys a VM node over iSCSI and boots it from its
volume (:mod:`.vm_act`, 5-10 minutes; ``--skip-vm`` when time is short).
The sandbox is torn down at the end, also on failure, Ctrl-C or SIGTERM;
the exit status is 0 only if every act that ran did what it should.
"""

import argparse
import importlib.util
import os
import shutil
import signal
import sys
import tempfile

from ipa_cinder.common import secrets as secrets_mod
from ipa_cinder_sandbox import demo
from ipa_cinder_sandbox.demo import agent_act
from ipa_cinder_sandbox.demo import ipxe
from ipa_cinder_sandbox.demo import narration
from ipa_cinder_sandbox.demo import vm_act

DEFAULT_PORT_BASE = 18600


def _parser():
    parser = argparse.ArgumentParser(
        prog='python -m ipa_cinder_sandbox.demo',
        description='A boot-from-volume deploy with real Ironic, IPA and '
        'Cinder, narrated; tears everything down at the end.')
    # Not under ``.sandbox``: ``ipa-cinder-sandbox up``/``down`` there stops
    # every process naming a path below it, the demo's services included.
    parser.add_argument('--state-dir', default=os.path.join(
        os.getcwd(), '.sandbox-demo'))
    parser.add_argument('--port-base', type=int, default=DEFAULT_PORT_BASE)
    parser.add_argument('--skip-agent-act', action='store_true',
                        help='skip act 1 (the agent alone)')
    parser.add_argument('--skip-vm', action='store_true',
                        help='skip act 3, the VM node deployed over iSCSI '
                        'and booted from its volume (5-10 minutes; more '
                        'when the ramdisk must be built): when time is '
                        'short')
    parser.add_argument('--database', choices=('sqlite', 'mariadb'),
                        help='Cinder\'s and Ironic\'s database (default: a '
                        'private MariaDB when the VM act runs and MariaDB is '
                        'installed, else SQLite)')
    parser.add_argument('--render-ipxe', nargs='+', help=argparse.SUPPRESS)
    return parser


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt('signal %d' % signum)


def _agent_act(state_dir):
    # In the state directory: the sandbox's start-up detaches any loop
    # device a crashed earlier run left there.
    os.makedirs(state_dir, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix='demo-agent-', dir=state_dir)
    try:
        agent_act.agent_demo(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _database(args):
    """The sandbox's database: ``--database``, else the one that holds up.

    The VM act keeps the sandbox busy for minutes while three
    cinder-volume services report every few seconds; on a loaded machine
    SQLite then answers "database is locked" (HTTP 500) to a volume
    create. A private MariaDB never does.
    """
    from ipa_cinder_sandbox import database as database_mod

    if args.database:
        return args.database
    if (not args.skip_vm and os.path.exists(database_mod.MARIADBD)
            and importlib.util.find_spec('pymysql') is not None):
        return 'mariadb'
    return 'sqlite'


def _sandbox_up(state_dir, port_base, database):
    from ipa_cinder_sandbox import handle as handle_mod

    narration.say('Act 2: bringing the sandbox up in %s (ports from %d): '
                  'RabbitMQ, %stgtd, Cinder 29, Ironic 39, image server',
                  state_dir, port_base,
                  'MariaDB, ' if database == 'mariadb' else '')
    # Locked: a second demo at the same time takes <dir>-1, ports +20.
    handle = handle_mod.SandboxHandle.start_exclusive(
        state_dir, port_base, database=database, attempts=3)
    narration.say(
        'Sandbox up in %.1fs in %s, ports %d-%d (%s)',
        handle.startup_seconds, handle.state_dir, handle.layout.port_base,
        handle.layout.port_base + 9, ', '.join(
            '%s %.1fs' % (k, v) for k, v in sorted(handle.timings.items())
            if k != 'total' and isinstance(v, (int, float)) and v >= 0.5))
    return handle


def _deploy_act(handle):
    """Run the deploy; returns the exit status it deserves."""
    report = demo.run(handle)
    ok = (report.get('deploy_state') == 'active'
          and report.get('checksum_match')
          and report.get('volume_status_after') == 'available'
          and report.get('attachments_after') == 0)
    narration.say('Deploy %s in %.1fs, undeploy in %.1fs; %s',
                  report.get('deploy_state'),
                  report.get('deploy_seconds', 0),
                  report.get('undeploy_seconds', 0),
                  'everything as expected' if ok else 'SOMETHING IS WRONG')
    return 0 if ok else 1


def _vm_act(handle):
    """Run the VM node's act; returns the exit status it deserves."""
    report = vm_act.run(handle)
    ok = (report.get('deploy_state') == 'active'
          and report.get('marker_ok')
          and report.get('attachments_after') == 0)
    narration.say('VM node %s, booted from its volume: %s, initiator %s, '
                  '%s attachment(s) left; %s', report.get('deploy_state'),
                  'yes' if report.get('marker_ok') else 'NO',
                  report.get('initiator'), report.get('attachments_after'),
                  'everything as expected' if ok else 'SOMETHING IS WRONG')
    return 0 if ok else 1


def _tear_down(handle, state_dir):
    clock = narration.elapsed()
    narration.say('Tearing the sandbox down (every process by PID, loop '
                  'devices, tgt targets)')
    try:
        handle.close()
        narration.say('Sandbox down in %.1fs', narration.elapsed() - clock)
    except KeyboardInterrupt:
        narration.say('Interrupted again: run ipa-cinder-sandbox '
                      '--state-dir %s down', state_dir)


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.render_ipxe:
        ipxe.render_main(*args.render_ipxe)
        return 0
    if os.geteuid() != 0:
        sys.exit('The demo needs root: it creates loop devices, namespaces '
                 'and services.')
    # Ctrl-C and SIGTERM both end in the teardown below (SIGINT also when
    # the demo was started with it ignored, e.g. in the background).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    status, handle = 0, None
    try:
        if not args.skip_agent_act:
            _agent_act(args.state_dir)
        handle = _sandbox_up(args.state_dir, args.port_base,
                             _database(args))
        status = _deploy_act(handle)
        if not args.skip_vm:
            status = _vm_act(handle) or status
    except KeyboardInterrupt:
        narration.say('Interrupted: cleaning up')
        status = 130
    except Exception as e:
        narration.say('FAILED: %s', secrets_mod.mask_text(str(e)))
        status = 1
    finally:
        if handle is not None:
            _tear_down(handle, args.state_dir)
        narration.say('Done in %.1fs.', narration.elapsed())
    return status


if __name__ == '__main__':
    sys.exit(main())
