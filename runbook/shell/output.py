"""A block's output: redacted, passed on live and to the transcript, bounded tails kept.

Nothing here grows with the output: the window a detector looks at and the tail the last
line comes from are bounded, whatever a block prints.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import BinaryIO

from runbook.inputs import CONTROL_RE
from runbook.redact import Redactor

WINDOW = 8192
"""Bytes of recent output kept for detectors and messages."""

_ANSI = re.compile(rb"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|.)")


class Output:
    """Where a block's output goes: redaction, callback, transcript, bounded tails."""

    def __init__(
        self,
        redactor: Redactor,
        on_output: Callable[[bytes], None] | None,
        transcript: BinaryIO | None,
    ) -> None:
        self._redactor = redactor
        self._on_output = on_output
        self._transcript = transcript
        self._window = bytearray()
        self._tail = bytearray()
        self.count = 0
        """Bytes passed on so far (after redaction)."""

    @property
    def window(self) -> bytes:
        """Return raw output since the last answer was sent (bounded)."""
        return bytes(self._window[-WINDOW:])

    def mask(self, secret: str) -> None:
        """Mask ``secret`` in what is passed on from now on."""
        self._redactor.add(secret)

    def forget(self) -> None:
        """Start a new window: an answer was just sent."""
        self._window.clear()

    def feed(self, data: bytes) -> None:
        """Take raw output of the block."""
        if not data:
            return
        append_bounded(self._window, data)
        self._out(self._redactor.feed(data))

    def finish(self) -> None:
        """Pass on what the redactor held back; flush the transcript."""
        self._out(self._redactor.flush())
        if self._transcript is not None:
            self._transcript.flush()

    def _out(self, data: bytes) -> None:
        if not data:
            return
        self.count += len(data)
        append_bounded(self._tail, data)
        if self._on_output is not None:
            self._on_output(data)
        if self._transcript is not None:
            self._transcript.write(data)

    def last_line(self) -> str:
        """Return the last non-empty line passed on, without escapes, for messages."""
        return last_line(bytes(self._tail[-WINDOW:]))


def append_bounded(buf: bytearray, data: bytes) -> None:
    """Append, keeping at most the last 2 * WINDOW bytes (trimmed in amortized O(1))."""
    if len(data) >= WINDOW:
        buf[:] = data[-WINDOW:]
        return
    buf += data
    if len(buf) > 2 * WINDOW:
        del buf[: len(buf) - WINDOW]


def last_line(tail: bytes, limit: int = 400, *, skip: tuple[bytes, ...] = ()) -> str:
    """Return the last line of ``tail`` with text, without escapes, cut to ``limit``."""
    end = len(tail)
    while end >= 0:
        # From the end, one line at a time: most output ends with its last line.
        start = max(tail.rfind(b"\n", 0, end), tail.rfind(b"\r", 0, end))
        line, end = tail[start + 1 : end], start
        if any(mark in line for mark in skip):
            continue
        text = _ANSI.sub(b"", line).decode("utf-8", "replace")
        text = CONTROL_RE.sub("", text).strip()
        if text:
            return text if len(text) <= limit else text[: limit - 1] + "…"
    return ""


def last_words(output: bytes) -> str:
    """Return the last line a dying shell (or ssh) printed, passing over our own typing."""
    return last_line(output, skip=(b"__rb", b"__RB"))
