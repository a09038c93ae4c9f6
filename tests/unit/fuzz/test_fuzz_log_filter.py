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

"""Fuzzing the log filter with the log calls that see connection info.

* IPA's own ``execute_command`` logs every command's arguments before any
  validation: whatever the parameters and whatever characters the CHAP
  values hold, the line does not depend on the secret values at all;
* os-brick's trace of a connector call and its result show no
  8-character run of a secret, remembered or not;
* ordinary words are never masked, even when a short or plain CHAP value
  equals one of them.
"""

import io
import logging

from hypothesis import given
from hypothesis import strategies as st
from ironic_python_agent.extensions import base
from os_brick import utils as brick_utils

from ipa_cinder.common import log_filter
from ipa_cinder.common import secrets
from tests.unit.fuzz import strategies as fz


class _Agent(base.ExecuteCommandMixin):
    def get_extension(self, name):
        raise KeyError(name)


class _Connector(object):
    @brick_utils.trace
    def connect_volume(self, connection_properties):
        return dict(connection_properties, path='/dev/loop0')


def _logged(call, *args, **kwargs):
    """What the filtered root handler writes while ``call`` runs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter('%(message)s'))
    handler.addFilter(log_filter.SecretsFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        call(*args, **kwargs)
    except Exception:
        pass
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    return stream.getvalue()


def _execute(params):
    _Agent().execute_command('cinder.connect_volume', **params)


params = st.fixed_dictionaries(
    {'volume_id': fz.ids, 'attachment_id': fz.ids,
     'connection_info': fz.connection_infos()},
    optional={'mode': fz.short_text, 'boot': fz.json_values,
              'auth_password': fz.secret_values})


@given(params=params)
@fz.counted
def test_ipa_command_line_independent_of_secrets(params):
    if not fz.is_shallow(params):
        return
    with fz.isolated_memory():
        shown = _logged(_execute, params)
        swapped = _logged(_execute, fz.swap_secrets(params))
    assert 'Executing command: cinder.connect_volume' in shown
    assert shown == swapped


@given(data=fz.planted(st.dictionaries(fz.keys, fz.json_values, max_size=4)),
       remember=st.booleans())
@fz.counted
def test_os_brick_trace_shows_no_secret(data, remember):
    if not fz.is_shallow(data):
        return
    with fz.isolated_memory():
        if remember:
            secrets.remember({'data': data})
        shown = _logged(_Connector().connect_volume, data)
        context = _logged(_Connector().connect_volume, fz.swap_secrets(data))
    assert '==> connect_volume: call' in shown
    for secret in fz.planted_secrets(data):
        fz.assert_no_window(secret, shown, context)


ORDINARY = ('true', 'false', 'cinder', 'volume', 'cinder-volume', 'wait',
            'wait=true', 'disconnect_volume', 'os_brick', 'ISCSIConnector',
            'local', 'node', 'password', 'secret', 'token', 'user',
            'refused', 'secret-ish', 'token-based', 'the', 'a', 'chap',
            'is', 'up', '/dev/loop0', 'iqn.2010-10.org.openstack:volume-1',
            '(attachment', ')', ',', '.', ':', 'rw', 'ro', '0', '42')


@given(words=st.lists(st.sampled_from(ORDINARY), min_size=1, max_size=20),
       separators=st.sampled_from((' ', '.', ' - ', ', ', '\n')),
       chosen=st.lists(st.sampled_from(ORDINARY), max_size=3))
@fz.counted
def test_ordinary_words_never_masked(words, separators, chosen):
    text = separators.join(words)
    # (a key word directly followed by ":" or "=" is a field: not prose)
    if any(w in ('password', 'secret', 'token', 'user') and nxt in (':', ',')
           for w, nxt in zip(words, words[1:])):
        return
    chosen = [w for w in chosen if not secrets.is_distinctive(w)]
    with fz.isolated_memory():
        secrets.remember({'auth_username': chosen[0] if chosen else 'x',
                          'auth_password': chosen[-1] if chosen else 'y'})
        assert secrets.scrub(text) == text
        assert secrets.safe_text(text) == text
        assert _logged(logging.getLogger('ordinary').info, '%s',
                       text) == text + '\n'
