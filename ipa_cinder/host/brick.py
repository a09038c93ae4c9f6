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

"""os-brick, set up to run as root without sudo.

IPA (and the ``ipa-cinder`` command) run as root, so os-brick's privileged
calls run in this process by default instead of through a privsep daemon
started with sudo (``[ipa_cinder] privsep_in_process``). os-brick still
wants a root helper string; with in-process privsep it only reaches
commands that already run as root, so ``env`` (a no-op prefix) is given.
"""

import json
import os
import socket
import threading

import os_brick
from os_brick.initiator import connector as brick_connector
from os_brick import privileged as brick_privileged
from oslo_concurrency import lockutils  # noqa: F401 (its options)
from oslo_concurrency import processutils
from oslo_log import log

from ipa_cinder import conf as ipa_conf
from ipa_cinder import exception

LOG = log.getLogger(__name__)
CONF = ipa_conf.CONF

ROOT_HELPER = 'env'

_setup_lock = threading.Lock()
_setup_done = False


def setup():
    """Prepare os-brick once per process."""
    global _setup_done
    with _setup_lock:
        if _setup_done:
            return
        if not CONF.oslo_concurrency.lock_path:
            # os-brick serialises logins and scans with external locks;
            # without a lock path each of them fails ("value required for
            # option lock_path"). The state directory is root's already.
            CONF.set_default('lock_path',
                             os.path.join(CONF.ipa_cinder.state_dir, 'locks'),
                             group='oslo_concurrency')
        os_brick.setup(CONF)
        if CONF.ipa_cinder.privsep_in_process:
            if os.geteuid() != 0:
                LOG.warning('privsep_in_process is set but this process '
                            'is not root: os-brick calls that need root '
                            'will fail')
            for context in (brick_privileged.default,
                            brick_privileged.brick_privsep_hide_output):
                context.set_client_mode(False)
        _setup_done = True


def local_ip():
    """The IPv4 address of the interface that holds the default route.

    Read from the routing table; no packet is sent anywhere. Falls back to
    the address the host name resolves to, then to None.
    """
    try:
        out, _err = processutils.execute('ip', '-j', '-4', 'route', 'show',
                                         'default')
        routes = json.loads(out or '[]')
        for route in routes:
            if route.get('prefsrc'):
                return route['prefsrc']
            if route.get('dev'):
                out, _err = processutils.execute(
                    'ip', '-j', '-4', 'addr', 'show', 'dev', route['dev'])
                for link in json.loads(out or '[]'):
                    for addr in link.get('addr_info', []):
                        if addr.get('local'):
                            return addr['local']
    except (processutils.ProcessExecutionError, OSError, ValueError) as e:
        LOG.debug('Cannot read the default route: %s', e)
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return None


def get_connector(host, ip=None, multipath=False, enforce_multipath=False,
                  initiator=None):
    """This host's connector, as Cinder wants it in an attachment.

    :param host: the value of ``connector["host"]`` (Cinder locks on it).
    :param ip: the address to report; found from the routing table if None.
    :param initiator: the iSCSI initiator name to report, when the caller
        has made it this host's (see :mod:`ipa_cinder.host.initiator`);
        os-brick reads open-iscsi's default file otherwise.
    :raises: NoStorageIdentity when no protocol could use this host.
    """
    setup()
    ip = ip or local_ip()
    props = brick_connector.get_connector_properties(
        ROOT_HELPER, ip, multipath, enforce_multipath, host=host)
    props['host'] = host
    if initiator:
        props['initiator'] = initiator
    identities = ('initiator', 'nqn', 'wwpns', 'ip')
    if not any(props.get(key) for key in identities):
        raise exception.NoStorageIdentity(
            'host %s has no storage identity: no iSCSI initiator name '
            '(/etc/iscsi/initiatorname.iscsi), no NVMe host NQN '
            '(/etc/nvme/hostnqn), no Fibre Channel HBA and no IP '
            'address' % host)
    missing = [key for key in ('initiator', 'nqn', 'wwpns')
               if not props.get(key)]
    if missing:
        LOG.info('Connector of host %s has no %s; volumes needing them '
                 'cannot be attached here', host, ', '.join(missing))
    return props


def make_connector(protocol, multipath=False, enforce_multipath=False):
    """An os-brick connector object for ``protocol``."""
    setup()
    return brick_connector.InitiatorConnector.factory(
        protocol.upper(), ROOT_HELPER, use_multipath=multipath,
        enforce_multipath=enforce_multipath, device_scan_attempts=3)
