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

"""What every benchmark does around its measurements.

A SIGTERM ends the run through ``finally`` blocks, so the sandbox and
what the benchmark created are removed; :func:`run` brings the bench up,
measures and always brings it down; :func:`finish` prints the table,
writes the JSON and says what was skipped or went wrong.
"""

import datetime
import json
import os
import signal
import time
import traceback


def _on_sigterm(signum, frame):
    raise SystemExit('terminated by signal %d' % signum)


def clean_up_on_sigterm():
    signal.signal(signal.SIGTERM, _on_sigterm)


def run(bench, errors):
    """``bench.up()``, ``run()`` and always ``down()``; True if one failed.

    :param errors: the list each failure is appended to.
    """
    failed = False
    try:
        bench.up()
        bench.run()
    except BaseException as e:
        failed = True
        errors.append('%s: %s' % (type(e).__name__, e))
        traceback.print_exc()
    finally:
        try:
            bench.down()
        except BaseException as e:
            failed = True
            errors.append('sandbox down: %s' % e)
            traceback.print_exc()
    return failed


def header(name, began, load_start):
    """The fields every benchmark's JSON document starts with."""
    return {
        'benchmark': name,
        'date': datetime.datetime.now(datetime.timezone.utc).isoformat(),
        'seconds': round(time.monotonic() - began, 1),
        'load_start': load_start, 'load_end': list(os.getloadavg()),
        'cpus': os.cpu_count(),
    }


def finish(document, table, output, failed):
    """Print ``table``, write ``document`` as JSON; the exit status."""
    print(table)
    if output:
        with open(output, 'w') as f:
            json.dump(document, f, indent=2, sort_keys=True, default=str)
        print('\nJSON written to %s' % output)
    if document['skipped']:
        print('\nSkipped (time limit): ' + '; '.join(document['skipped']))
    if document['errors']:
        print('\nErrors:\n  ' + '\n  '.join(document['errors']))
    return 1 if failed or document['errors'] else 0
