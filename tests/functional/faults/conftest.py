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

"""Fault injection in front of the sandbox's real cinder-api.

``fault_proxy`` (once for the package) starts an
:class:`ipa_cinder_sandbox.faults.FaultProxy` on cinder-api and restarts
Ironic with its ``[cinder]`` endpoint on it and short retry bounds; at the
end Ironic gets its own configuration back. ``faults`` gives a test the
proxy with no rule; ``cli`` runs ``ipa-cinder`` through it; ``deployer``
is the conductor suite's :class:`Deployer`; ``baseline`` is the set of
processes before the test, for :func:`leaks.assert_no_leaks`.
"""

import os
import sys

import pytest

from ipa_cinder_sandbox import faults as faults_mod
from tests.functional.conductor import conftest as conductor_conftest
from tests.functional.faults import leaks
from tests.functional import test_cli

#: Retry bounds for Ironic and the CLI: 3 attempts within 6 s.
RETRY = {'cinder_retry_attempts': 3, 'cinder_retry_max_time': 6,
         'cinder_retry_initial_delay': 0.2, 'cinder_retry_max_delay': 1,
         'cinder_request_timeout': 30}


@pytest.fixture(scope='package')
def fault_proxy(sandbox):
    upstream = sandbox.cinder_url.split('/v3')[0]
    proxy = faults_mod.FaultProxy(upstream).start()
    try:
        faults_mod.route_ironic(sandbox.box, proxy, retry=RETRY)
        yield proxy
    finally:
        faults_mod.restore_ironic(sandbox.box)
        proxy.close()


@pytest.fixture
def faults(fault_proxy):
    fault_proxy.clear()
    yield fault_proxy
    fault_proxy.clear()


@pytest.fixture
def baseline(sandbox):
    return leaks.process_baseline(sandbox)


class FaultyRunner(test_cli.Runner):
    """``ipa-cinder`` with Cinder behind the fault proxy."""

    def __init__(self, sandbox, tmp_path, proxy):
        super().__init__(sandbox, tmp_path)
        self.env['OS_ENDPOINT'] = proxy.endpoint(sandbox.cinder_url)
        self.config = str(tmp_path / 'ipa-cinder.conf')
        with open(self.config, 'w') as f:
            f.write('[ipa_cinder]\n' + ''.join(
                '%s = %s\n' % item for item in RETRY.items()))

    def run(self, *args, **kwargs):
        return super().run(*(args + ('--config-file', self.config)),
                           **kwargs)


@pytest.fixture
def cli(sandbox, tmp_path, faults):
    if not os.path.exists(test_cli.CLI):
        pytest.skip('ipa-cinder is not installed in this virtualenv')
    return FaultyRunner(sandbox, tmp_path, faults)


@pytest.fixture(scope='package')
def os_image(sandbox):
    image = conductor_conftest.build_os_image(
        sandbox.layout.path('images', 'faults-os.raw'))
    image['url'] = '%s/%s' % (sandbox.http_url, image['name'])
    return image


@pytest.fixture
def deployer(sandbox, os_image, faults):
    deployer = conductor_conftest.Deployer(sandbox, os_image)
    before = set(sandbox._volumes)
    yield deployer
    faults.clear()
    deployer.remove_created(before)
    sys.stdout.flush()
