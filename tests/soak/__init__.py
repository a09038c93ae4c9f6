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

"""Soak: many attach / detach and deploy / undeploy cycles, then leaks.

``python -m tests.soak --cycles-cli N --cycles-deploy M`` (``make soak``)
brings up its own sandbox; ``tests/functional/faults/test_soak_short.py``
runs a short one on the test session's sandbox.
"""
