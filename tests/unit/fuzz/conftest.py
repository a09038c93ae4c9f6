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

"""Hypothesis profiles of the fuzz properties, and their summary line.

``quick`` (the default, part of every unit run): a few hundred cases per
property, derandomized so that CI runs the same cases every time, the
whole set in well under a minute. ``full`` (``make fuzz``): random cases,
over 10,000 in total. Choose with ``--hypothesis-profile=full`` or the
``HYPOTHESIS_PROFILE`` environment variable.

Deadlines are generous for a loaded 2-core machine: a case takes
milliseconds, and a super-linear parser given one of the 20,000-character
strings takes seconds to minutes, so a slow machine is not mistaken for a
bug and a bug is not missed. Bounded time on megabyte inputs is checked
separately (test_fuzz_linear_time.py).

No example database: it would be written into the checkout; a failure
prints the blob that replays it (``@reproduce_failure``).
"""

import datetime
import os
import time

from hypothesis import HealthCheck
from hypothesis import settings
import pytest

from tests.unit.fuzz import strategies

_COMMON = dict(
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.large_base_example],
)

settings.register_profile(
    'quick', max_examples=150, derandomize=True,
    deadline=datetime.timedelta(seconds=2), **_COMMON)
settings.register_profile(
    'full', max_examples=1200, derandomize=False,
    deadline=datetime.timedelta(seconds=5), **_COMMON)

_elapsed = {'seconds': 0.0}


def pytest_configure(config):
    # Hypothesis' own plugin has already applied --hypothesis-profile when
    # this (non-root) conftest is loaded, and it reads no environment
    # variable: decide here, the command-line option first.
    profile = (config.getoption('hypothesis_profile', default=None)
               or os.environ.get('HYPOTHESIS_PROFILE') or 'quick')
    settings.load_profile(profile)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    start = time.monotonic()
    yield
    if getattr(item.obj, 'is_hypothesis_test', False):
        _elapsed['seconds'] += time.monotonic() - start


def pytest_terminal_summary(terminalreporter):
    total = sum(strategies.CASES.values())
    if not total:
        return
    terminalreporter.write_line(
        'fuzz: %d cases over %d properties in %.1f s (hypothesis profile '
        '%s)' % (total, len(strategies.CASES), _elapsed['seconds'],
                 settings.get_current_profile_name()))
