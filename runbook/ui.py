"""What the operator sees: step headers, live output, a spinner, questions and a summary.

On a terminal it uses colour and a spinner with elapsed time; otherwise it prints plain
lines, so logs and CI output stay readable.
"""

from __future__ import annotations

import getpass
import os
import sys
import threading
import time
from collections.abc import Sequence
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


def format_duration(seconds: float) -> str:
    """Return ``1.2s``, ``3m04s`` or ``1h02m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Console:
    """Print to the operator; thread-safe so the spinner and live output never interleave."""

    def __init__(self, out: TextIO | None = None, *, tty: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self.color = self.tty and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
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
            self.out.write(self.style(text, *styles) + "\n")
            self.out.flush()
            self._at_line_start = True

    def header(self, number: int, total: int, title: str) -> None:
        """Announce a step."""
        self.line()
        label = f"Step {number}/{total} · {title}" if total else f"Step {number} · {title}"
        self.line(
            ("━━ " + label + " ").ljust(72, "━") if self.tty else f"== {label}", "bold", "blue"
        )

    def output(self, chunk: bytes) -> None:
        """Write live command output as it arrives."""
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
        self._spin_stop.clear()
        started = time.monotonic()
        self._last_output = started

        def spin() -> None:
            frame = 0
            while not self._spin_stop.wait(0.1):
                with self._lock:
                    quiet = time.monotonic() - self._last_output
                    if quiet < 1.0 or not self._at_line_start:
                        continue
                    elapsed = format_duration(time.monotonic() - started)
                    text = f"{_SPIN[frame % len(_SPIN)]} {label} · {elapsed}"
                    self.out.write("\r" + self.style(text, "dim") + "\x1b[K")
                    self.out.flush()
                    self._spin_line = True
                    frame += 1

        self._spinner = threading.Thread(target=spin, daemon=True)
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

    def _clear_spinner(self) -> None:
        if self._spin_line:
            self.out.write("\r\x1b[K")
            self._spin_line = False

    # -- questions -------------------------------------------------------------------------

    def choose(self, question: str, choices: Sequence[tuple[str, str]]) -> str:
        """Ask until one of ``choices`` (key, label) is picked; return its key."""
        keys = {k for k, _ in choices}
        prompt = (
            question
            + " "
            + " / ".join(
                f"[{k}]{label[len(k) :] if label.startswith(k) else ' ' + label}"
                for k, label in choices
            )
            + " "
        )
        while True:
            self.line()
            with self._lock:
                self.out.write(self.style(prompt, "bold"))
                self.out.flush()
            try:
                answer = input().strip().lower()
            except EOFError:
                return "q" if "q" in keys else next(iter(keys))
            self._at_line_start = True
            if answer in keys:
                return answer
            for key, label in choices:
                if answer and label.lower().startswith(answer):
                    return key

    def ask_value(self, name: str, secret: bool) -> str:
        """Ask for an input's value (without echo when secret)."""
        prompt = self.style(f"Value for <{name}>{' (hidden)' if secret else ''}: ", "bold")
        with self._lock:
            self._clear_spinner()
        if secret:
            return getpass.getpass(prompt)
        self.out.write(prompt)
        self.out.flush()
        return input()

    def pick(self, question: str, options: Sequence[str]) -> str:
        """Ask to pick one of ``options`` by number or name."""
        self.line(question, "bold")
        for i, option in enumerate(options, start=1):
            self.line(f"  {i}) {option}")
        while True:
            with self._lock:
                self.out.write(self.style("Choice: ", "bold"))
                self.out.flush()
            try:
                answer = input().strip()
            except EOFError:
                raise KeyboardInterrupt from None
            if answer.isdigit() and 1 <= int(answer) <= len(options):
                return options[int(answer) - 1]
            for option in options:
                if answer and option.lower() == answer.lower():
                    return option
