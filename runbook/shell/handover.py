"""Hand the keyboard to the operator while a command waits for input."""

from __future__ import annotations

import contextlib
import os
import termios
from typing import Any

from runbook.shell.model import Operator


class Handover:
    """The operator's keyboard, connected to the running command."""

    def __init__(self, operator: Operator) -> None:
        self.fd = operator.fd
        self._saved: list[Any] | None = None
        try:
            saved = termios.tcgetattr(self.fd)
        except termios.error:
            return
        self._saved = list(saved)
        raw = termios.tcgetattr(self.fd)
        # Input raw (keys, ^C included, go to the command); output processing stays on,
        # since the same terminal usually shows the command's output.
        raw[0] &= ~(termios.BRKINT | termios.ICRNL | termios.INPCK | termios.ISTRIP | termios.IXON)
        raw[3] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN | termios.ISIG)
        raw[6][termios.VMIN] = 1
        raw[6][termios.VTIME] = 0
        termios.tcsetattr(self.fd, termios.TCSADRAIN, raw)

    def pump(self, outbox: bytearray) -> bool:
        """Move the operator's keystrokes to the command; False at end of input."""
        try:
            data = os.read(self.fd, 1024)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False
        outbox += data
        return True

    def close(self) -> None:
        """Give the operator's terminal its settings back."""
        if self._saved is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None
