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

"""``python -m tests.soak --cycles-cli N --cycles-deploy M``.

Brings up a private sandbox (state directory ``--state-dir``, default
``<tmp>/ipa-cinder-soak``, ports from ``--port-base``, default 18900),
runs the cycles, prints the leak table, takes the sandbox down. Exits 1
when anything leaked.
"""

import argparse
import os
import shutil
import sys
import tempfile

from ipa_cinder_sandbox import handle as sandbox_handle
from tests.functional.conductor import conftest as conductor_conftest
from tests.functional import conftest as functional_conftest
from tests.soak import soak


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m tests.soak')
    parser.add_argument('--cycles-cli', type=int, default=200)
    parser.add_argument('--cycles-deploy', type=int, default=50)
    parser.add_argument('--state-dir', default=os.path.join(
        tempfile.gettempdir(), 'ipa-cinder-soak'))
    parser.add_argument('--port-base', type=int, default=18900)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error('the sandbox needs root (loop devices, tgtd)')
    sandbox = sandbox_handle.SandboxHandle.start_exclusive(
        args.state_dir, args.port_base,
        database=functional_conftest._database())
    print('sandbox up in %.1fs (%s)' % (sandbox.startup_seconds,
                                        sandbox.state_dir))
    workdir = soak.workdir()
    try:
        image = conductor_conftest.build_os_image(
            sandbox.layout.path('images', 'soak-os.raw'))
        image['url'] = '%s/%s' % (sandbox.http_url, image['name'])
        rows, found = soak.Soak(sandbox, workdir).run(
            args.cycles_cli, args.cycles_deploy, image)
    finally:
        sandbox.close()
        shutil.rmtree(workdir, ignore_errors=True)
    print(soak.table(rows))
    bad = soak.leaked(rows) or [k for k, v in found.items() if v]
    if bad:
        print('LEAKED: %s' % (bad,))
        return 1
    print('no leaks')
    return 0


if __name__ == '__main__':
    sys.exit(main())
