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

"""What the demo prints, and how.

Narrated lines are stamped with the seconds since the demo started; values
are shown as indented JSON with every secret masked.
"""

import json
import time

from ipa_cinder.common import secrets as secrets_mod

_T0 = time.monotonic()


def elapsed():
    """Seconds since the demo started."""
    return time.monotonic() - _T0


def say(message, *args):
    """One narrated line, with the seconds since the demo started."""
    print('[%6.2fs] %s' % (elapsed(), message % args if args else message),
          flush=True)


def show(title, value):
    """Print ``value`` as indented JSON under ``title``, secrets masked."""
    text = json.dumps(secrets_mod.mask(value), indent=2, sort_keys=True)
    print('          %s:\n%s' % (title, '\n'.join(
        '            ' + line for line in text.splitlines())), flush=True)


def show_lines(title, lines):
    """Print ``lines`` indented under ``title``."""
    print('          %s:' % title, flush=True)
    for line in lines:
        print('            ' + line, flush=True)
