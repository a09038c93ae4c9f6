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

"""Fuzzing the parameter validators of the agent's ``cinder`` extension.

IPA runs a command's validator before the command and answers HTTP 400 to
InvalidCommandParamsError; any other exception is a 500. For any
parameters (unknown names, wrong types, huge or deeply nested values,
planted CHAP credentials) each validator passes or raises
InvalidCommandParamsError with a short message free of secrets.
"""

from hypothesis import given
from hypothesis import strategies as st
from ironic_python_agent import errors

from ipa_cinder.agent import params as agent_params
from tests.unit.fuzz import strategies as fz

bools = st.one_of(st.booleans(), st.sampled_from(
    ('true', 'False', 'yes', 'off', '1', '0', 1, 0, 2, ' on ', 'maybe', '')),
    fz.any_value)

# Parameter names: the real ones, then anything a JSON object can hold.
names = st.one_of(
    st.sampled_from(('volume_id', 'attachment_id', 'connection_info', 'mode',
                     'boot', 'multipath', 'force', 'enforce_multipath',
                     'initiator', 'auth_password', 'self')),
    fz.text)

CONNECT = {
    'volume_id': fz.ids, 'attachment_id': fz.ids,
    'connection_info': st.one_of(fz.connection_infos(), fz.any_value),
    'mode': st.one_of(st.sampled_from(('rw', 'ro')), fz.any_value),
    'boot': bools, 'multipath': bools}
# One volume of cinder.connect_volumes: some fields, maybe unknown ones.
one_volume = st.one_of(
    st.fixed_dictionaries({}, optional=CONNECT),
    st.dictionaries(names, fz.json_values, max_size=3), fz.any_value)

VALIDATORS = {
    'connect': (agent_params.validate_connect, CONNECT),
    'connect_volumes': (agent_params.validate_connect_volumes, {
        'volumes': st.one_of(st.lists(one_volume, max_size=4),
                             fz.any_value)}),
    'disconnect': (agent_params.validate_disconnect, {
        'volume_id': st.one_of(st.none(), fz.ids),
        'attachment_id': st.one_of(st.none(), fz.ids), 'force': bools}),
    'get_connector': (agent_params.validate_get_connector, {
        'multipath': bools, 'enforce_multipath': bools,
        'initiator': st.one_of(
            st.none(), st.just('iqn.2004-10.org.openstack:node-1'),
            fz.text, fz.any_value)}),
    'configure_boot': (agent_params.validate_configure_boot, {
        'initiator': st.one_of(
            st.none(), st.just('iqn.2004-10.org.openstack:node-1'),
            fz.text, fz.any_value)}),
}


@st.composite
def calls(draw):
    """(validator, params): known parameters, some left out, unknown ones."""
    name = draw(st.sampled_from(sorted(VALIDATORS)))
    validator, known = VALIDATORS[name]
    params = {key: draw(strategy) for key, strategy in known.items()
              if draw(st.integers(0, 3))}
    if not draw(st.integers(0, 3)):
        params.update(draw(st.dictionaries(
            names.filter(lambda n: n != 'self'), fz.json_values,
            max_size=3)))
    return validator, params


def run(validator, params):
    try:
        validator(None, **params)
        return None
    except errors.InvalidCommandParamsError as e:
        return e


def message(error):
    return '%s %s' % (error.message, error.details)


@given(call=calls())
@fz.counted
def test_validators(call):
    validator, params = call
    error = run(validator, params)
    if error is None:
        return
    assert error.status_code == 400
    assert len(message(error)) <= fz.MAX_MESSAGE_LENGTH
    if fz.is_shallow(params):
        swapped = run(validator, fz.swap_secrets(params))
        assert swapped is not None and message(swapped) == message(error)
        for secret in fz.planted_secrets(params):
            assert (secret not in message(error)
                    or secret in message(swapped))


@given(name=st.sampled_from(('boot', 'multipath', 'force')), value=bools)
@fz.counted
def test_bool(name, value):
    try:
        result = agent_params.bool_param(name, value)
    except errors.InvalidCommandParamsError as e:
        assert name in e.details
        assert len(e.details) <= fz.MAX_MESSAGE_LENGTH
    else:
        assert result in (True, False)
