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

"""SIGINT, SIGTERM and SIGHUP while an ``ipa-cinder`` command runs.

While a command runs, each of these signals becomes :class:`Interrupted`,
a ``KeyboardInterrupt``: libraries that catch ``Exception`` (os-brick,
keystoneauth, tenacity) let it through, and ``local-attach`` undoes what
it did exactly as after any other failure. The exit code is 128 plus the
signal number, as a shell reports a process killed by it: 130 for SIGINT
(Ctrl-C), 143 for SIGTERM, 129 for SIGHUP.

Two rules keep an interrupt from leaving anything behind:

* A step whose outcome matters runs in a :meth:`Guard.deferred` section: a
  signal that arrives meanwhile is recorded, the step finishes (every
  Cinder request and os-brick call is bounded), and the interrupt takes
  effect at the next :meth:`Guard.check` or at the end of the section.
  Breaking off an attachment create half-way would leave Cinder working
  on an attachment nobody will delete; breaking off a connect would leave
  a device nobody recorded.
* Only the first signal interrupts. Later ones are logged and ignored, so
  that a second Ctrl-C never stops the clean-up half-way; SIGKILL remains
  for a process that must die at once.
"""

import contextlib
import signal

from oslo_log import log

LOG = log.getLogger(__name__)

SIGINT = signal.SIGINT
#: The signals a command turns into :class:`Interrupted`.
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def signal_name(signum):
    try:
        return signal.Signals(signum).name
    except ValueError:
        return 'signal %d' % signum


class Interrupted(KeyboardInterrupt):
    """A command stopped by a signal.

    :ivar signum: the signal number.
    :ivar exit_code: 128 + the signal number.
    """

    def __init__(self, signum):
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__('interrupted by %s' % signal_name(signum))


class Guard(object):
    """The signal handlers of a running command and its critical sections.

    :ivar received: the first signal received, or None.
    """

    def __init__(self):
        self.received = None
        self._raised = False
        self._sections = []
        self._previous = {}

    def install(self):
        """Handle the signals of :data:`SIGNALS` (main thread only)."""
        self.received = None
        self._raised = False
        self._sections = []
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def restore(self):
        """Put back the handlers :meth:`install` replaced."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _on_signal(self, signum, frame):
        name = signal_name(signum)
        if self.received is not None:
            LOG.warning('%s received while stopping: ignored, the clean-up '
                        'goes on', name)
            return
        self.received = signum
        if self._sections:
            LOG.warning('%s received while %s: finishing that step, then '
                        'undoing what was done', name, self._sections[-1])
            return
        self._raised = True
        raise Interrupted(signum)

    @property
    def interrupted(self):
        """Whether a signal was received."""
        return self.received is not None

    def check(self):
        """Raise :class:`Interrupted` if a signal is waiting to act."""
        if self.received is not None and not self._raised:
            self._raised = True
            raise Interrupted(self.received)

    @contextlib.contextmanager
    def deferred(self, doing, check=True):
        """A section that a signal does not break off.

        :param doing: what the section does, for the log ("creating the
            attachment").
        :param check: raise a signal received meanwhile when the section
            ends normally (False: a clean-up, which runs to its end and
            lets the error that caused it be reported).
        """
        self._sections.append(doing)
        try:
            yield
        finally:
            self._sections.pop()
        if check and not self._sections:
            self.check()


#: The guard of this process (signal handlers are per process).
GUARD = Guard()
