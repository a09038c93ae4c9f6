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

"""Configuration options of both halves and of the command-line tool.

Every option lives in the ``[ipa_cinder]`` group, in the configuration file
of the process that loads this code: ironic-python-agent on the node,
ironic-conductor on the conductor, ``/etc/ipa-cinder/ipa-cinder.conf`` for
the ``ipa-cinder`` command. Options may be registered after the service
parsed its configuration files; oslo.config reads them lazily.
"""

from oslo_config import cfg

GROUP = 'ipa_cinder'

agent_opts = [
    cfg.StrOpt('state_dir',
               default='/var/lib/ipa-cinder',
               help='Directory where connected volumes are recorded, so '
                    'that a restarted agent (or ipa-cinder command) can '
                    'still list and disconnect them. One JSON file per '
                    'connection, readable by root only because it holds '
                    'the connection info.'),
    cfg.StrOpt('initiator_file',
               default='/etc/iscsi/initiatorname.iscsi',
               help='open-iscsi\'s initiator name file on the node. The '
                    'agent writes the node\'s own initiator name there '
                    '(and restarts a running iscsid) before it reports the '
                    'connector, so a ramdisk image shared by many nodes '
                    'never logs in with one baked-in name.'),
    cfg.BoolOpt('use_multipath',
                default=False,
                help='Default for the "multipath" argument of get_connector '
                     'and connect_volume when the caller does not give '
                     'one.'),
    cfg.FloatOpt('device_wait_timeout',
                 default=10.0, min=0,
                 help='How long, in seconds, to wait for the block device of '
                      'a "local" connection to appear before giving up: the '
                      'export of a volume and the device node may lag behind '
                      'the attachment (udev, a storage network).'),
    cfg.BoolOpt('privsep_in_process',
                default=True,
                help='Run os-brick\'s privileged calls inside this process '
                     'instead of spawning a privsep daemon. The agent runs '
                     'as root already, so a daemon adds nothing but a '
                     'start-up cost and a dependency on sudo; set to False '
                     'to use [privsep_osbrick] helper_command instead.'),
]

cinder_opts = [
    cfg.IntOpt('cinder_retry_attempts',
               default=6, min=1,
               help='How many times a Cinder API call is tried in all when '
                    'it fails with a connection error or HTTP 500, 502, 503 '
                    'or 504. Calls that fail with 400, 403, 404 or 409 are '
                    'never retried.'),
    cfg.FloatOpt('cinder_retry_max_time',
                 default=60.0, min=0,
                 help='Upper bound, in seconds, of the time spent retrying '
                      'one Cinder API call, whatever the number of '
                      'attempts left.'),
    cfg.FloatOpt('cinder_retry_initial_delay',
                 default=0.5, min=0,
                 help='Delay before the first retry of a Cinder API call, '
                      'in seconds; doubled for every further retry, with '
                      'random jitter.'),
    cfg.FloatOpt('cinder_request_timeout',
                 default=60.0, min=1,
                 help='Longest wait, in seconds, for one answer of the '
                      'Cinder API; a request that takes longer counts as a '
                      'connection failure (retried within '
                      'cinder_retry_max_time). Applies whatever the session '
                      'says (Ironic\'s [cinder] timeout has no default).'),
    cfg.FloatOpt('cinder_retry_max_delay',
                 default=10.0, min=0,
                 help='Longest delay between two attempts of a Cinder API '
                      'call, in seconds.'),
]


common_opts = [
    cfg.StrOpt('initiator_iqn_prefix',
               default='iqn.2010-10.org.openstack.ipa-cinder',
               help='Prefix of the iSCSI initiator name given to a node '
                    'that has none of its own: the name is '
                    '"<prefix>:<node UUID>", the same on every deploy. A '
                    'name in the node\'s properties/iscsi_initiator_iqn, '
                    'or an iqn volume connector of the node, wins. Read by '
                    'the conductor and by the agent: keep them equal.'),
]

conductor_opts = [
    cfg.IntOpt('attach_concurrency',
               default=4, min=1, max=32,
               help='How many of a node\'s volumes the conductor prepares '
                    'in Cinder at the same time (volume checks, attachment '
                    'create and complete) during cinder_attach_volumes. '
                    'The agent then connects them all in one command. 1 '
                    'prepares one volume after another.'),
    cfg.IntOpt('agent_command_timeout',
               default=600, min=1,
               help='Longest wait, in seconds, for one cinder command on '
                    'the agent (connecting all of a node\'s volumes, '
                    'disconnecting them), counted from when it was sent. '
                    'Ironic\'s [agent] command_timeout bounds one HTTP '
                    'request to the agent; a command still running then '
                    '(many volumes, an iSCSI login that is retried) is '
                    'waited for until this bound, by a request that the '
                    'agent answers at its end. A command still running '
                    'after it fails the step; the agent keeps what it '
                    'connected until cleaning disconnects it.'),
    cfg.FloatOpt('write_image_wait',
                 default=5.0, min=0, max=60,
                 help='For how long, in seconds, after the write_image '
                      'deploy step of cinder-agent has started the image '
                      'write on the agent, the conductor waits for the '
                      'agent to answer that it is over (one request that '
                      'the agent answers at the end of the write, or a '
                      'look every 0.5 s at an agent that cannot answer so; '
                      'without holding the node\'s lock), and if so '
                      'processes its end at once, as the agent\'s next '
                      'heartbeat would. A write '
                      'that ends within it saves up to one heartbeat '
                      'interval; a longer one is reported by the heartbeat '
                      'as in a direct deploy. 0 turns this off.'),
]


def register_opts(conf):
    conf.register_opts(agent_opts, group=GROUP)
    conf.register_opts(cinder_opts, group=GROUP)
    conf.register_opts(conductor_opts, group=GROUP)
    conf.register_opts(common_opts, group=GROUP)


CONF = cfg.CONF
register_opts(CONF)


def list_opts():
    """Options of ipa-cinder, for oslo-config-generator."""
    return [(GROUP, agent_opts + cinder_opts + conductor_opts
             + common_opts)]
