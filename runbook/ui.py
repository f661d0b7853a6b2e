"""What the operator sees: step headers, live output, a spinner, questions and a summary.

On a terminal it uses colour and a spinner with elapsed time; otherwise it prints plain
lines without escape sequences, so logs and CI output stay readable. Every line of its own
goes through ``redact`` first, so a secret cannot reach the screen through a message.
"""

from __future__ import annotations

import getpass
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import TextIO

_SPIN = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_COLORS = {
    "bold": "1",
    "dim": "2",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "cyan": "36",
}
# Quiet seconds before the spinner shows: quick commands never flicker.
_SPIN_AFTER = 1.0


def format_duration(seconds: float) -> str:
    """Return ``0.4s``, ``3m04s`` or ``1h02m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Console:
    """Print to the operator; thread-safe so the spinner and live output never interleave."""

    def __init__(
        self,
        out: TextIO | None = None,
        *,
        tty: bool | None = None,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self.color = self.tty and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
        self.redact = redact or (lambda text: text)
        self._lock = threading.Lock()
        self._at_line_start = True
        self._spinner: threading.Thread | None = None
        self._spin_stop = threading.Event()
        self._spin_line = False
        self._last_output = 0.0

    # -- text ----------------------------------------------------------------------------

    def style(self, text: str, *names: str) -> str:
        """Wrap ``text`` in ANSI styles when colour is on."""
        if not self.color or not names:
            return text
        codes = ";".join(_COLORS[n] for n in names)
        return f"\x1b[{codes}m{text}\x1b[0m"

    def line(self, text: str = "", *styles: str) -> None:
        """Print one line (ending any partial output line first)."""
        with self._lock:
            self._clear_spinner()
            if not self._at_line_start:
                self.out.write("\n")
            self.out.write(self.style(self.redact(text), *styles) + "\n")
            self.out.flush()
            self._at_line_start = True

    @property
    def width(self) -> int:
        """Columns to wrap prose to: the terminal's (at most 100), else 80."""
        if not self.tty:
            return 80
        return min(shutil.get_terminal_size((80, 24)).columns, 100)

    def header(self, number: int, total: int, title: str) -> None:
        """Announce a step."""
        self.line()
        label = f"Step {number}/{total} · {title}" if total else f"Step {number} · {title}"
        self.line(
            ("━━ " + label + " ").ljust(72, "━") if self.tty else f"== {label}", "bold", "blue"
        )

    def output(self, chunk: bytes) -> None:
        """Write live command output (already masked by the session) as it arrives."""
        if not chunk:
            return
        with self._lock:
            self._clear_spinner()
            self._last_output = time.monotonic()
            buffer = getattr(self.out, "buffer", None)
            if buffer is not None:
                self.out.flush()
                buffer.write(chunk)
                buffer.flush()
            else:
                self.out.write(chunk.decode("utf-8", "replace"))
                self.out.flush()
            self._at_line_start = chunk.endswith(b"\n")

    # -- spinner ---------------------------------------------------------------------------

    def start_spinner(self, label: str) -> None:
        """Show a spinner with elapsed time while a command is quiet (terminal only)."""
        if not self.tty:
            return
        self.stop_spinner()
        self._spin_stop.clear()
        started = time.monotonic()
        self._last_output = started

        def spin() -> None:
            frame = 0
            while not self._spin_stop.wait(0.1):
                with self._lock:
                    quiet = time.monotonic() - self._last_output
                    # Drawing over a partial line would hide a prompt the command printed.
                    if quiet < _SPIN_AFTER or not self._at_line_start:
                        continue
                    elapsed = format_duration(time.monotonic() - started)
                    text = f"{_SPIN[frame % len(_SPIN)]} {label} · {elapsed}"
                    self.out.write("\r" + self.style(text, "dim") + "\x1b[K")
                    self.out.flush()
                    self._spin_line = True
                    frame += 1

        self._spinner = threading.Thread(target=spin, name="runbook-spinner", daemon=True)
        self._spinner.start()

    def stop_spinner(self) -> None:
        """Stop and erase the spinner."""
        if self._spinner is None:
            return
        self._spin_stop.set()
        self._spinner.join()
        self._spinner = None
        with self._lock:
            self._clear_spinner()
            self.out.flush()

    def _clear_spinner(self) -> None:
        if self._spin_line:
            self.out.write("\r\x1b[K")
            self._spin_line = False

    # -- questions -------------------------------------------------------------------------

    def _prompt(self, text: str) -> None:
        with self._lock:
            self._clear_spinner()
            if not self._at_line_start:
                self.out.write("\n")
            self.out.write(self.style(self.redact(text), "bold"))
            self.out.flush()
            # The operator's Enter ends the line.
            self._at_line_start = True

    def choose(
        self, question: str, choices: Sequence[tuple[str, str]], *, default: str = ""
    ) -> str:
        """Ask until one of ``choices`` (key, label) is picked; return its key. An empty
        answer picks ``default`` when there is one.

        End of input counts as ``q`` when that is a choice (else the first key).
        """
        keys = [k for k, _ in choices]
        prompt = (
            question
            + " "
            + " / ".join(
                f"[{k}]{label[len(k) :] if label.startswith(k) else ' ' + label}"
                + (" (Enter)" if k == default else "")
                for k, label in choices
            )
            + " "
        )
        while True:
            self._prompt(prompt)
            try:
                answer = input().strip().lower()
            except EOFError:
                return "q" if "q" in keys else keys[0]
            if not answer and default:
                return default
            if answer in keys:
                return answer
            for key, label in choices:
                if answer and label.lower().startswith(answer):
                    return key

    def ask_value(self, name: str, secret: bool) -> str:
        """Ask for an input's value; a secret one without echo. Raise EOFError at end of input."""
        prompt = self.style(f"Value for <{name}>{' (hidden)' if secret else ''}: ", "bold")
        if secret:
            with self._lock:
                self._clear_spinner()
                self.out.flush()
            return getpass.getpass(prompt)
        self._prompt(prompt)
        return input()

    def pick(self, question: str, options: Sequence[str]) -> str | None:
        """Ask to pick one of ``options`` by number or name; None for ``q`` (unless an
        option is named so) or at end of input."""
        self.line(question, "bold")
        for i, option in enumerate(options, start=1):
            self.line(f"  {i}) {option}")
        self.line("  q) quit")
        while True:
            self._prompt("Choice: ")
            try:
                answer = input().strip()
            except EOFError:
                return None
            if answer.isdigit() and 1 <= int(answer) <= len(options):
                return options[int(answer) - 1]
            for option in options:
                if answer and option.lower() == answer.lower():
                    return option
            if answer.lower() == "q":
                return None

    def edit(self, text: str, *, suffix: str = ".sh") -> str | None:
        """Open ``text`` in the operator's editor; return the result, None when unchanged.

        ``$VISUAL``, then ``$EDITOR``, then ``vi``. The file is private and removed after.
        """
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        fd, path = tempfile.mkstemp(prefix="runbook-edit-", suffix=suffix)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            # The editor owns the terminal meanwhile; its exit status only says it ran.
            subprocess.run([*shlex.split(editor), path], check=False)
            with open(path, encoding="utf-8") as handle:
                edited = handle.read()
        finally:
            os.unlink(path)
        return None if edited == text else edited
