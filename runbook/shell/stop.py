"""Stop a running command: stronger signals as time passes, at last the shell itself."""

from __future__ import annotations

import contextlib
import os
import signal

from runbook.model import Outcome
from runbook.shell.process import ShellProcess

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
_STOP_STAGES = 5


class Stop:
    """An attempt to stop what runs in the foreground, escalating every ``grace`` seconds."""

    def __init__(
        self, outcome: Outcome, process: ShellProcess, *, grace: float, local: bool
    ) -> None:
        self.outcome = outcome
        """What the block's outcome is once it stops."""
        self.stage = 0
        self.next_at = 0.0
        """When the next, stronger signal is due (monotonic seconds)."""
        self._process = process
        self._grace = grace
        self._local = local

    def escalate(self, now: float) -> None:
        """Send the next stop signal to whatever runs in the foreground."""
        process = self._process
        shell = process.pid
        if shell is None:
            return
        if self.stage >= _STOP_STAGES:
            # Nothing else stopped it: the shell itself goes, and a fresh one replaces it.
            process.kill_session()
            self.next_at = now + 3600
            return
        try:
            pgrp = os.tcgetpgrp(process.fd)
        except OSError:
            pgrp = shell
        with contextlib.suppress(OSError):
            if pgrp in (shell, 0) or not self._local:
                # Builtins run in the shell itself; an interactive bash drops back to its
                # prompt on SIGINT and ignores the rest. Remote: the ssh client forwards ^C.
                if self._local:
                    os.kill(shell, signal.SIGINT)
                else:
                    os.write(process.fd, b"\x03")
            else:
                os.killpg(pgrp, _STOP_SIGNALS[min(self.stage, len(_STOP_SIGNALS) - 1)])
        self.stage += 1
        self.next_at = now + self._grace
