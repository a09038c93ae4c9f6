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

"""What ``ipa-cinder`` shows: results masked, then made into cliff columns.

Every result goes through :func:`prepare` before any formatter sees it:
CHAP user names, passwords and any ``*password*``/``*secret*`` value are
masked unless the user asked for them with ``--show-secrets``. Error
messages are always masked (:mod:`ipa_cinder.cli.errors`).

Nested values become formattable columns: machine formats (JSON, YAML)
get the data as it is, tables get one ``key: value`` line per key.
"""

import json

from cliff import columns

from ipa_cinder.common import secrets


def _text(value):
    """One value of a nested structure, as a table shows it."""
    if value is None:
        return ''
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    return str(value)


class DictColumn(columns.FormattableColumn):
    """A dict (connection info...): one ``key: value`` line per key."""

    def human_readable(self):
        return '\n'.join('%s: %s' % (key, _text(value))
                         for key, value in sorted(self._value.items()))


class ListColumn(columns.FormattableColumn):
    """A list: one line per item; dict items as blocks of key lines."""

    def human_readable(self):
        if all(isinstance(item, dict) for item in self._value):
            return '\n\n'.join(DictColumn(item).human_readable()
                               for item in self._value)
        return '\n'.join(_text(item) for item in self._value)


def prepare(result, show_secrets=False):
    """The result as it may be shown: secrets masked unless asked for."""
    if show_secrets:
        return result
    return secrets.mask(result)


def cell(value):
    """A value as a formatter takes it (nested values as columns)."""
    if isinstance(value, dict):
        return DictColumn(value)
    if isinstance(value, (list, tuple)):
        return ListColumn(list(value))
    return value


def one(result, names=None, show_secrets=False):
    """``(names, values)`` of a dict for a ShowOne command.

    :param names: the fields in display order; default: the dict's keys,
        sorted.
    """
    shown = prepare(result, show_secrets)
    names = tuple(names or sorted(shown))
    return names, tuple(cell(shown.get(name)) for name in names)


def many(results, names, show_secrets=False):
    """``(names, rows)`` of a list of dicts for a Lister command."""
    shown = prepare(list(results), show_secrets)
    return tuple(names), [tuple(cell(row.get(name)) for name in names)
                          for row in shown]
