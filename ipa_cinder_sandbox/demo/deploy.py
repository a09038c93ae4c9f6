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

"""The deploy the demo narrates: enroll, deploy with a real IPA, undeploy.

:class:`Demo` drives a running sandbox through its handle: a boot volume on
Cinder's ``local`` backend, a fake-hardware node with the ``cinder-agent``
deploy interface, a confined agent that Ironic deploys through, then an
undeploy; and, for an iSCSI boot volume that this kernel cannot deploy
onto, the iPXE script Ironic would boot it with. What it shows is
collected in :attr:`Demo.report` (see :mod:`.report`); everything it
creates is removed at the end.
"""

import datetime
import os
import time

from ipa_cinder.common import connection
from ipa_cinder_sandbox.demo import ipxe
from ipa_cinder_sandbox.demo import narration
from ipa_cinder_sandbox.demo import report as report_mod
from ipa_cinder_sandbox.demo import timeline
from ipa_cinder_sandbox import errors
from ipa_cinder_sandbox import polling


class Demo(report_mod.ReportSections):
    """A boot-from-volume deploy through a running sandbox, narrated."""

    def __init__(self, handle, narrate=True):
        self.handle = handle
        self.narrate = narrate
        self.report = {}
        self._cleanups = []

    def say(self, message, *args):
        if self.narrate:
            narration.say(message, *args)

    def show(self, title, value):
        if self.narrate:
            narration.show(title, value)

    def _log(self, name):
        return os.path.join(self.handle.state_dir, 'log', name)

    def _log_windows(self):
        """(Ironic's log, Cinder API's log, now) before a provision."""
        return (timeline.LogWindow(self._log('ironic.log')),
                timeline.LogWindow(self._log('cinder-api.log')),
                datetime.datetime.now())

    def attachments(self, volume_id):
        return self.handle.cinder.get(
            '/attachments/detail?all_tenants=1&volume_id=%s' % volume_id,
            microversion='3.44')['attachments']

    def run(self):
        """Deploy, report, undeploy, render iPXE; clean what it made."""
        try:
            self._deploy_and_report()
            self._ipxe_for_iscsi()
        finally:
            for func, arg in reversed(self._cleanups):
                try:
                    func(arg)
                except Exception as e:  # clean as much as possible
                    self.say('Cleaning %s failed: %s', arg, e)
        return self.report

    def _deploy_and_report(self):
        volume, node, target = self._enroll()
        logs = self._log_windows()
        active, agent_log = self._deploy(node)
        self._report_timeline(logs, node['uuid'])
        self._report_agent_log(agent_log, volume)
        self._report_attachments(volume)
        self._report_checksum(volume)
        self._report_boot(active, target, node)
        self._undeploy(node, volume, target)

    def _enroll(self):
        """The boot volume, the node and its boot volume target."""
        handle, report = self.handle, self.report
        image = handle.image
        url = '%s/%s' % (handle.http_url, image['name'])

        self.say('Creating a 1 GiB boot volume on Cinder\'s "local" backend '
                 '(a sparse file, exported as a loop device)')
        volume = handle.create_volume(size=1, volume_type='local',
                                      name='demo-boot')
        self._cleanups.append((handle.delete_volume, volume['id']))
        self.say('Volume %s is %s', volume['id'], volume['status'])

        self.say('Enrolling a fake-hardware node with deploy interface '
                 'cinder-agent and image %s (%d MiB, sha256 %s...)',
                 url, image['size'] >> 20, image['sha256'][:12])
        node = handle.create_node(
            name='demo-node', deploy_interface='cinder-agent',
            instance_info={'image_source': url,
                           'image_os_hash_algo': 'sha256',
                           'image_os_hash_value': image['sha256'],
                           'image_disk_format': 'raw'},
            properties={'capabilities': 'iscsi_boot:true'})
        self._cleanups.append((handle.delete_node, node['uuid']))
        report['node'] = node['uuid']
        target = handle.ironic.post('/v1/volume/targets', {
            'node_uuid': node['uuid'], 'volume_type': 'local',
            'boot_index': 0, 'volume_id': volume['id'], 'properties': {}})
        self.say('Node %s is %s; boot volume target %s (boot_index 0) '
                 'points at the volume', node['uuid'],
                 node['provision_state'], target['uuid'])
        return volume, node, target

    def _deploy(self, node):
        """Deploy ``node`` with a real agent; returns (node, agent log)."""
        from ipa_cinder_sandbox import device_broker

        handle, report = self.handle, self.report
        clock = time.monotonic()
        self.say('Deploying: baremetal node deploy %s', node['uuid'])
        handle.set_provision_state(node['uuid'], 'active')
        handle.wait_node(node['uuid'], 'wait call-back')
        self.say('Node is in "wait call-back": starting a real IPA 13 in '
                 'its jail; it looks itself up in Ironic by MAC')
        agent = handle.start_agent()
        broker = device_broker.DeviceBroker(
            agent, handle.box.cinder.volumes_dir('local'))
        broker.start()
        try:
            self.say('Agent up in %.1fs; the conductor runs the deploy '
                     'steps', agent.started_in)
            active = self._wait_deployed(node['uuid'])
        finally:
            broker.stop()
            agent_log = agent.read_log()
            handle.stop_agent(agent)
        report['deploy_state'] = active['provision_state']
        report['deploy_seconds'] = round(time.monotonic() - clock, 2)
        self.say('Node %s is %s after %.1fs', node['uuid'],
                 active['provision_state'], report['deploy_seconds'])
        return active, agent_log

    def _wait_deployed(self, node_uuid, timeout=240):
        """Wait for ``active``, narrating each deploy step as it starts."""
        seen = [None]

        def deployed():
            node = self.handle.get_node(node_uuid)
            state = node['provision_state']
            step = (node.get('deploy_step') or {}).get('step')
            if (state, step) != seen[0] and step:
                self.say('  %s: deploy step %s', state, step)
            seen[0] = (state, step)
            if state in ('deploy failed', 'error'):
                raise errors.SandboxError('node %s went to %s: %s' % (
                    node_uuid, state, node.get('last_error')))
            return node if state == 'active' else None

        return polling.wait_until(deployed, timeout,
                                  'deploy of node %s' % node_uuid,
                                  interval=0.25, retry_on=())

    def _undeploy(self, node, volume, target):
        """Undeploy, show what is left, delete the node and the volume."""
        handle, report = self.handle, self.report
        clock = time.monotonic()
        ironic_log, cinder_log, began = self._log_windows()
        self.say('Undeploying: baremetal node undeploy %s', node['uuid'])
        handle.set_provision_state(node['uuid'], 'deleted')
        handle.wait_node(node['uuid'], 'available', timeout=120)
        report['undeploy_seconds'] = round(time.monotonic() - clock, 2)
        report['undeploy_timeline'] = timeline.parse_ironic_log(
            ironic_log.read(), node['uuid'], began)
        report['undeploy_cinder_api'] = timeline.parse_cinder_api_log(
            cinder_log.read())
        if self.narrate:
            timeline.print_timeline(
                report['undeploy_timeline'], report['undeploy_cinder_api'],
                'undeploy: Cinder calls (from Ironic\'s log: start after '
                'the undeploy request, duration)')
        report['attachments_after'] = len(self.attachments(volume['id']))
        report['volume_status_after'] = handle.get_volume(
            volume['id'])['status']
        kept = handle.ironic.get('/v1/volume/targets/%s' % target['uuid'])
        self.say('Node available after %.1fs; volume %s, %d attachment(s); '
                 'the volume target is kept, without connection data (%s)',
                 report['undeploy_seconds'], report['volume_status_after'],
                 report['attachments_after'],
                 ', '.join(sorted(kept['properties'])) or 'no properties')
        # The agent is looked up by this machine's MAC: one node at a time.
        handle.delete_node(node['uuid'])
        handle.delete_volume(volume['id'])

    def _ipxe_for_iscsi(self):
        """Ironic's iPXE sanboot script for an iSCSI boot volume."""
        handle, report = self.handle, self.report
        connector = report.get('connector') or {}
        if not connector.get('initiator'):
            self.say('The agent reported no iSCSI initiator: no iSCSI boot '
                     'configuration to render')
            return
        self.say('An iSCSI boot volume: the agent cannot log in to iSCSI '
                 'on this kernel, so no deploy; but Ironic\'s iPXE script '
                 'for one can be rendered honestly:')
        volume = handle.create_volume(size=1, volume_type='iscsi',
                                      name='demo-iscsi-boot')
        self._cleanups.append((handle.delete_volume, volume['id']))
        node = handle.ironic.post('/v1/nodes', {
            'name': 'demo-ipxe-render', 'driver': 'fake-hardware',
            'deploy_interface': 'cinder-agent'})
        self._cleanups.append((self._delete_enrolled, node['uuid']))
        attachment = handle.cinder.post('/attachments', {'attachment': {
            'volume_uuid': volume['id'], 'instance_uuid': node['uuid'],
            'connector': dict(connector, host=node['uuid']),
            'mode': 'rw'}}, microversion='3.54')['attachment']
        self._cleanups.append((self._delete_attachment, attachment['id']))
        info = connection.from_attachment(attachment['connection_info'])
        self.say('  Cinder attachment %s for the deployed node\'s connector '
                 '(initiator %s), as cinder_attach_volumes creates it: '
                 'tgt target with CHAP', attachment['id'],
                 connector['initiator'])
        # As cinder_attach_volumes writes it into the boot target.
        properties = dict(info.get('data') or {},
                          driver_volume_type=info.get('driver_volume_type'))
        target = handle.ironic.post('/v1/volume/targets', {
            'node_uuid': node['uuid'], 'volume_type': 'iscsi',
            'boot_index': 0, 'volume_id': volume['id'],
            'properties': properties})
        handle.ironic.post('/v1/volume/connectors', {
            'node_uuid': node['uuid'], 'type': 'iqn',
            'connector_id': connector['initiator']})
        self.show('boot volume target properties', properties)
        rendered = ipxe.render_ipxe(handle.box.ironic.conf, node['uuid'],
                                    boot_target=target['uuid'])
        report['ipxe_iscsi'] = rendered
        self.say('  rendered by ironic.common.pxe_utils.'
                 'get_volume_pxe_options and %s:',
                 os.path.basename(rendered['template']))
        if self.narrate:
            narration.show_lines(':boot_iscsi section (CHAP masked)',
                                 rendered['script'].splitlines())

    def _delete_enrolled(self, node_uuid):
        self.handle.ironic.delete('/v1/nodes/%s' % node_uuid,
                                  expect=(204, 404))

    def _delete_attachment(self, attachment_id):
        self.handle.cinder.delete('/attachments/%s' % attachment_id,
                                  microversion='3.44', service=True,
                                  expect=(200, 204, 404))
