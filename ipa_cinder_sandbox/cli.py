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

"""``ipa-cinder-sandbox up|down|status|env``."""

import argparse
import json
import os
import sys

from oslo_config import cfg
from oslo_log import log as logging

from ipa_cinder.common import noauth
from ipa_cinder_sandbox import errors
from ipa_cinder_sandbox import layout as layout_mod
from ipa_cinder_sandbox import sandbox as sandbox_mod

LOG = logging.getLogger(__name__)


def _parser():
    parser = argparse.ArgumentParser(
        prog='ipa-cinder-sandbox',
        description='Real Cinder, Ironic and IPA on 127.0.0.1, under one '
                    'state directory.')
    parser.add_argument('--state-dir', default=None,
                        help='state directory (default: $%s or ./.sandbox)'
                        % layout_mod.STATE_DIR_ENV)
    parser.add_argument('--port-base', type=int, default=None,
                        help='first of the ten loopback ports used '
                        '(default: $%s or %d)' % (
                            layout_mod.PORT_BASE_ENV,
                            layout_mod.DEFAULT_PORT_BASE))
    parser.add_argument('--debug', action='store_true',
                        help='log what the sandbox does')
    sub = parser.add_subparsers(dest='command', required=True)
    up = sub.add_parser('up', help='start everything (cleans a previous run '
                        'first)')
    up.add_argument('--database', choices=['sqlite', 'mariadb'],
                    default='sqlite',
                    help="Cinder's database (and with --conductors, "
                         "Ironic's): SQLite, or a private MariaDB for "
                         "parallel work")
    up.add_argument('--conductors', type=int, default=1,
                    help='1: one combined ironic process (default); N >= 2: '
                         'ironic-api and N ironic-conductor processes over '
                         'RabbitMQ (needs --database mariadb)')
    sub.add_parser('down', help='stop everything, detach loop devices, '
                   'remove tgt targets and mounts')
    sub.add_parser('status', help='show the processes and endpoints')
    sub.add_parser('env', help='print shell variables for the services')
    agent = sub.add_parser(
        'agent', help='start a confined IPA for a node once it reaches '
        '"wait call-back" (it keeps running until down)')
    agent.add_argument('node', help='node name or UUID')
    agent.add_argument('--device', action='append', default=None,
                       help='sandbox loop device the agent may use '
                            '(repeatable; default: the node\'s root device '
                            'hint "name")')
    agent.add_argument('--timeout', type=int, default=120,
                       help='seconds to wait for "wait call-back"')
    return parser


def _setup_logging(debug):
    conf = cfg.ConfigOpts()
    logging.register_options(conf)
    conf([], project='ipa-cinder-sandbox')
    conf.set_override('debug', debug)
    # stdout is for results (JSON, shell lines); logs go to stderr.
    conf.set_override('use_stderr', True)
    logging.setup(conf, 'ipa-cinder-sandbox')


def env_lines(data):
    """Shell ``export`` lines for a running sandbox's description."""
    values = {
        'IPA_CINDER_SANDBOX_DIR': data['state_dir'],
        'OS_AUTH_TYPE': 'none',
        'OS_ENDPOINT': data['ironic_url'],
        'OS_BAREMETAL_API_VERSION': 'latest',
        'OS_VOLUME_API_VERSION': '3.71',
        'CINDER_ENDPOINT': data['cinder_url'],
        'CINDER_AUTH_TOKEN': noauth.token(data['user_id'],
                                          data['project_id']),
        'IRONIC_URL': data['ironic_url'],
        'SANDBOX_HTTP_URL': data['http_url'],
    }
    return ['export %s=%s' % (k, v) for k, v in sorted(values.items())]


def _conductors(box):
    """{host: alive} of the Ironic cluster, or the reason it is unknown."""
    try:
        return box.ironic.conductors()
    except Exception as e:  # a stopped API fails in many ways
        return {'error': str(e)}


def main(argv=None):
    args = _parser().parse_args(argv)
    _setup_logging(args.debug)
    state_dir = args.state_dir
    try:
        if args.command == 'up':
            if os.geteuid() != 0:
                sys.exit('ipa-cinder-sandbox up needs root (loop devices, '
                         'tgtd)')
            layout = layout_mod.Layout(state_dir, args.port_base,
                                       args.database, args.conductors)
            data = sandbox_mod.Sandbox(layout).up()
            print(json.dumps(data, indent=2, sort_keys=True))
            return 0
        layout, data = layout_mod.Layout.load(state_dir)
        if layout is None:
            print('no sandbox recorded in %s'
                  % (state_dir or layout_mod.default_state_dir()))
            return 0 if args.command in ('down', 'status') else 1
        box = sandbox_mod.Sandbox(layout)
        if args.command == 'down':
            swept = box.down()
            print(json.dumps({'stopped': True, 'swept': swept,
                              'seconds': box.timings['down']}))
        elif args.command == 'status':
            data['processes'] = box.status()
            data['services'] = box.services()
            if layout.conductors > 1:
                data['ironic_conductors'] = _conductors(box)
            print(json.dumps(data, indent=2, sort_keys=True))
        elif args.command == 'env':
            print('\n'.join(env_lines(data)))
        elif args.command == 'agent':
            # Imported here: only this command needs the handle (and the
            # client libraries it loads).
            from ipa_cinder_sandbox import handle as handle_mod
            handle = handle_mod.SandboxHandle(box, data, reused=True)
            agent = handle.start_agent_for_node(args.node, args.device,
                                                timeout=args.timeout)
            print(json.dumps({'name': agent.name, 'url': agent.url,
                              'pid': agent.jail.proc.pid,
                              'log': agent.log_path}))
        return 0
    except errors.SandboxError as e:
        LOG.error('%s', e)
        return 1


if __name__ == '__main__':
    sys.exit(main())
