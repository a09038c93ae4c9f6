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

"""Hostile parameters sent to a real agent's ``cinder`` commands over HTTP.

The unit properties (tests/unit/fuzz) call the validators directly; this
checks the same promise where it is kept: IPA's REST API answers 400,
never a 500, and neither the answer nor the agent's log (debug level: IPA
logs every command's arguments) shows a CHAP secret planted in the
parameters.

Only parameters that the validators refuse are sent: each case is checked
against the same validator code first and skipped if it would pass, so
that nothing here can make the agent connect, disconnect or write
anything.
"""

import functools
import importlib
import json

from hypothesis import assume
from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
from ironic_python_agent import config as ipa_config
from ironic_python_agent import errors
from oslo_config import cfg
import requests

from tests.unit.fuzz import strategies as fz

#: Planted secrets start with this, so that a search of the answers and
#: the log cannot match anything else.
MARK = 'Zq7'
SENT = []

# JSON cannot nest as deep as fz.any_value does (the encoder's own
# recursion limit); everything else is as hostile.
_json_safe_values = st.one_of(fz.json_values, fz.huge_containers, fz.text,
                              st.builds(fz.nest, fz.scalars,
                                        st.integers(20, 100),
                                        st.sampled_from(('list', 'dict'))))
marked_secrets = fz.secret_values.map(lambda s: MARK + s)


@functools.cache
def validators():
    """The unit properties' validators and strategies, imported late.

    The extension imports IPA's modules, which read IPA's options at
    import time: registered here first, as IPA's main() would.
    """
    try:
        cfg.CONF.disk_utils
    except cfg.NoSuchOptError:
        ipa_config.populate_config()
    return importlib.import_module(
        'tests.unit.fuzz.test_fuzz_agent_validators')


def commands():
    known = validators().VALIDATORS
    return {'cinder.connect_volume': known['connect'],
            'cinder.disconnect_volume': known['disconnect'],
            'cinder.get_connector': known['get_connector'],
            'cinder.configure_boot': known['configure_boot']}


@st.composite
def requests_to_refuse(draw):
    """(command, params) that the command's validator refuses."""
    name = draw(st.sampled_from(sorted(commands())))
    validator, known = commands()[name]
    params = {}
    for key, strategy in known.items():
        if draw(st.integers(0, 3)):
            params[key] = draw(st.one_of(strategy, _json_safe_values)
                               if key != 'connection_info'
                               else fz.connection_infos())
    if not draw(st.integers(0, 3)):
        params.update(draw(st.dictionaries(validators().names,
                                           fz.json_values, max_size=3)))
    params.pop('self', None)
    # The unit strategies nest deeper than JSON (and hypothesis' own
    # reports) can: those cases are for the unit properties.
    assume(fz.is_shallow(params, max_depth=120, max_dicts=10 ** 6))
    for target in fz.dicts_in(params)[:3]:
        if draw(st.booleans()):
            target[draw(st.sampled_from(fz.SECRET_KEYS))] = draw(
                marked_secrets)
    try:
        validator(None, **params)
    except errors.InvalidCommandParamsError:
        return name, params
    assume(False)  # it would run: never sent


def post(agent, name, params):
    body = json.dumps({'name': name, 'params': params})  # NaN allowed
    query = {'wait': 'true'}
    if agent.token:
        query['agent_token'] = agent.token
    return requests.post(agent.url + '/v1/commands/', params=query,
                         data=body, timeout=60,
                         headers={'Content-Type': 'application/json'})


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow,
                                 HealthCheck.data_too_large,
                                 HealthCheck.filter_too_much])
@given(request=requests_to_refuse())
def _fuzz(agent, request):
    name, params = request
    response = post(agent, name, params)
    SENT.append(fz.planted_secrets(params))
    assert response.status_code == 400, (name, response.text[:500])
    for secret in fz.planted_secrets(params):
        # (unmarked values under secret keys may also be sent elsewhere
        # in the same request: the unit properties judge those)
        assert not secret.startswith(MARK) or secret not in response.text


def test_refused_with_400_and_no_secret(agent):
    SENT.clear()
    validators()  # imported before the cases run: it defines @given tests
    log_start = len(agent.read_log())
    _fuzz(agent=agent)
    assert len(SENT) >= 100
    log = agent.read_log()[log_start:]
    # IPA logs each refused command at ERROR level with its traceback:
    # those are the only errors, and no request ended in a 500.
    errors_logged = [line for line in log.splitlines() if ' ERROR ' in line]
    assert errors_logged
    assert all('Invalid content error: Invalid command parameters' in line
               for line in errors_logged), errors_logged[:3]
    assert ' - 500 (' not in log
    # Only the marked ones: short values under secret keys, drawn by the
    # generic strategies ('0000'...), also occur in timestamps and ids.
    planted = {s for s in set().union(*SENT) if s.startswith(MARK)}
    assert planted, 'no secret was planted'
    shown = [s for s in planted if s in log]
    assert not shown, shown[:3]
