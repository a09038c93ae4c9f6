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

"""Output of the ``ipa-cinder`` command: JSON documents and text tables.

Every result goes through :func:`prepare` first, which masks CHAP user
names, passwords and any ``*password*``/``*secret*`` value unless the user
asked for secrets with ``--show-secrets``. Error messages are always
masked, whatever the flag.
"""

import json

from ipa_cinder.common import secrets

FORMATS = ('table', 'json')


def prepare(result, show_secrets=False):
    """The result as it may be shown: secrets masked unless asked for."""
    if show_secrets:
        return result
    return secrets.mask(result)


def safe_text(text):
    """An error or log text with every secret masked (always)."""
    return secrets.safe_text(text)


def _cell(value):
    """The text of one cell; a dict becomes one ``key: value`` per line."""
    if value is None:
        return ''
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, dict):
        return '\n'.join('%s: %s' % (k, json.dumps(v) if isinstance(
            v, (dict, list)) else _cell(v)) for k, v in sorted(value.items()))
    if isinstance(value, (list, tuple)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def table(rows, columns):
    """A text table of ``rows`` (dicts) with the given column keys.

    Cells may span several lines (dicts are shown one key per line).
    """
    cells = [[_cell(row.get(col)).split('\n') for col in columns]
             for row in rows]
    widths = [max([len(col)] + [len(line) for r in cells for line in r[i]])
              for i, col in enumerate(columns)]
    rule = '+' + '+'.join('-' * (w + 2) for w in widths) + '+'

    def lines(values):
        height = max(len(v) for v in values)
        return ['| ' + ' | '.join(
            (v[n] if n < len(v) else '').ljust(w)
            for v, w in zip(values, widths)) + ' |' for n in range(height)]

    out = [rule] + lines([[c] for c in columns]) + [rule]
    for r in cells:
        out += lines(r)
    out.append(rule)
    return '\n'.join(out)


def field_table(mapping):
    """A two-column Field/Value table of a dict, keys sorted."""
    return table([{'Field': k, 'Value': mapping[k]}
                  for k in sorted(mapping)], ['Field', 'Value'])


def render(result, fmt, show_secrets=False, sections=None):
    """The text to print for ``result``.

    :param result: a dict (one object) or a dict of lists.
    :param fmt: ``json`` or ``table``.
    :param show_secrets: do not mask secrets.
    :param sections: for tables, ``[(title, key, columns)]`` rendering
        ``result[key]`` (a list of dicts) as one table each; the remaining
        scalar keys are shown as a Field/Value table first.
    """
    shown = prepare(result, show_secrets)
    if fmt == 'json':
        return json.dumps(shown, indent=2, sort_keys=True)
    if not sections:
        return field_table(shown)
    used = {key for _title, key, _cols in sections}
    parts = []
    rest = {k: v for k, v in shown.items() if k not in used}
    if rest:
        parts.append(field_table(rest))
    for title, key, columns in sections:
        rows = shown.get(key) or []
        parts.append('%s (%d)' % (title, len(rows)))
        if rows:
            parts.append(table(rows, columns))
    return '\n'.join(parts)


def render_error(code, kind, message, fmt):
    """The JSON error document printed on stdout with ``--format json``.

    Returns None for tables: the message goes to stderr only.
    """
    if fmt != 'json':
        return None
    return json.dumps({'error': {'exit_code': code, 'kind': kind,
                                 'message': safe_text(message)}},
                      indent=2, sort_keys=True)
