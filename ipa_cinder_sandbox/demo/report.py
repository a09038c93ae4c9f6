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

"""What the demo shows of a deployed node, section by section.

Each section narrates what it finds and keeps it in the demo's ``report``
(what :func:`ipa_cinder_sandbox.demo.run` returns and the functional test
checks): the timeline, the agent's own words, Cinder's attachment and the
volume's status, the image's checksum on the volume, and the boot
configuration Ironic's boot interface reads.
"""

import json

from ipa_cinder.common import secrets as secrets_mod
from ipa_cinder_sandbox.demo import checksums
from ipa_cinder_sandbox.demo import ipxe
from ipa_cinder_sandbox.demo import timeline

# The test image's GPT backup header (last 34 sectors) is rewritten by IPA
# for the larger disk: the checksum covers the partition only.
_GPT_BACKUP_BYTES = 34 * 512


class ReportSections(object):
    """The report's sections, for :class:`.deploy.Demo`.

    Expects ``handle``, ``report``, ``narrate``, ``say``, ``show`` and
    ``attachments(volume_id)`` of the demo.
    """

    def _report_timeline(self, logs, node_uuid):
        """Deploy steps and Cinder calls, from the logs opened before."""
        ironic_log, cinder_log, began = logs
        events = timeline.parse_ironic_log(ironic_log.read(), node_uuid,
                                           began)
        cinder_api = timeline.parse_cinder_api_log(cinder_log.read())
        self.report['timeline'] = events
        self.report['cinder_api'] = cinder_api
        if self.narrate:
            timeline.print_timeline(events, cinder_api)

    def _report_agent_log(self, agent_log, volume):
        for line in ('Install device is the boot volume %s' % volume['id'],
                     'cinder.disconnect_all: disconnected 1 volume'):
            if line in agent_log:
                self.say('Agent log: "%s"', line)

    def _report_attachments(self, volume):
        attachments = self.attachments(volume['id'])
        self.report['attachments'] = [
            {'id': a['id'], 'status': a['status'],
             'attach_mode': a.get('attach_mode'),
             'instance': a.get('instance'),
             'connection_info': secrets_mod.mask(a.get('connection_info'))}
            for a in attachments]
        self.say('Cinder has %d attachment(s) of the volume', len(
            attachments))
        for attachment in self.report['attachments']:
            self.show('attachment', attachment)
        self.report['volume_status_active'] = self.handle.get_volume(
            volume['id'])['status']
        self.say('Volume status: %s', self.report['volume_status_active'])

    def _report_checksum(self, volume):
        """The image's partition, as written, against the volume's file."""
        report, image = self.report, self.handle.image
        volume_file = self.handle.volume_file(volume)
        start = image['partition_offset']
        end = image['size'] - _GPT_BACKUP_BYTES
        report['image_sha256'] = checksums.sha256_of(
            image['path'], end - start, offset=start)
        report['volume_sha256'] = checksums.sha256_of(
            volume_file, end - start, offset=start)
        report['checksum_match'] = (report['image_sha256']
                                    == report['volume_sha256'])
        self.say('The image\'s partition (bytes %d-%d) on the volume file '
                 '%s:', start, end, volume_file)
        self.say('  sha256 of the image  %s', report['image_sha256'])
        self.say('  sha256 on the volume %s  -> %s',
                 report['volume_sha256'], 'match' if
                 report['checksum_match'] else 'MISMATCH')

    def _report_boot(self, active, target, node):
        """What Ironic's boot interface reads to boot the node."""
        report = self.report
        info = active['driver_internal_info']
        properties = self.handle.ironic.get('/v1/volume/targets/%s'
                                            % target['uuid'])['properties']
        report['boot_from_volume'] = info.get('boot_from_volume')
        report['target_properties'] = secrets_mod.mask(properties)
        report['connector'] = info.get('cinder_connector') or {}
        self.say('Boot configuration: driver_internal_info boot_from_volume '
                 '= %s (the boot target)', info.get('boot_from_volume'))
        self.show('boot volume target properties (what the boot interface '
                  'reads)', properties)
        rendered = ipxe.render_ipxe(self.handle.box.ironic.conf,
                                    node['uuid'])
        report['ipxe_local'] = rendered
        self.say('Ironic\'s get_volume_pxe_options for this node: %s: iPXE '
                 'sanboots iSCSI targets only; a "local" volume is a disk '
                 'the node boots from directly',
                 json.dumps(rendered['pxe_options']))
