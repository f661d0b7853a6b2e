"""Scan the shell's output stream: the prompt sentinel that ends a block, the typed echo.

Both work on raw terminal bytes as they arrive, in chunks that may split a sentinel or an
echoed line anywhere, and hold back only what the next bytes may still complete.
"""

from __future__ import annotations


class EchoStripper:
    """Drop the terminal's echo of the line just typed, when the terminal echoes."""

    def __init__(self, line: bytes) -> None:
        self._forms = (line + b"\r\n", line + b"\n")
        self._held = b""
        self._done = False

    def feed(self, data: bytes) -> bytes:
        """Return ``data`` without the echo (held back while it may still be the echo)."""
        if self._done:
            return data
        buf = self._held + data
        for form in self._forms:
            if buf.startswith(form):
                self._done = True
                return buf[len(form) :]
        if any(form.startswith(buf) for form in self._forms):
            self._held = buf
            return b""
        self._done = True
        self._held = b""
        return buf


class SentinelScanner:
    """Find the prompt sentinel in a stream, passing on everything before it."""

    def __init__(self, prefix: bytes, suffix: bytes) -> None:
        self._prefix = prefix
        self._suffix = suffix
        self._longest = len(prefix) + 3 + len(suffix)
        self._held = b""

    def reset(self) -> None:
        """Forget what was held back."""
        self._held = b""

    def feed(self, data: bytes) -> tuple[bytes, int | None]:
        """Return (output before any sentinel, status when the sentinel was seen)."""
        buf = self._held + data if self._held else data
        match = self._search(buf)
        if match:
            self._held = b""
            return buf[: match[0]], match[1]
        cut = self._partial_start(buf)
        self._held = buf[cut:]
        return buf[:cut], None

    def trailing(self, data: bytes) -> tuple[int, int | None]:
        """Return where a sentinel that ends ``data`` starts, and its status.

        A whole sentinel ends ``data`` when nothing but whitespace follows it; else a
        start of one that the next bytes may complete (status None), else ``len(data)``.
        """
        last, found = None, self._search(data)
        while found is not None:
            last, found = found, self._search(data, found[2])
        if last is not None and not data[last[2] :].strip():
            return last[0], last[1]
        return self._partial_start(data), None

    def take(self, data: bytes) -> tuple[bytes, int | None, bytes]:
        """Return (output before the sentinel, its status when seen, output after it)."""
        buf = self._held + data if self._held else data
        match = self._search(buf)
        if match:
            self._held = b""
            return buf[: match[0]], match[1], buf[match[2] :]
        cut = self._partial_start(buf)
        self._held = buf[cut:]
        return buf[:cut], None, b""

    def split(self, data: bytes) -> tuple[bytes, bool, bytes]:
        """Return (output before the sentinel, whether it was seen, output after it)."""
        buf = self._held + data if self._held else data
        match = self._search(buf)
        if match:
            self._held = b""
            return buf[: match[0]], True, buf[match[2] :]
        cut = self._partial_start(buf)
        self._held = buf[cut:]
        return buf[:cut], False, b""

    def flush(self) -> bytes:
        """Return what was held back as a possible start of the sentinel."""
        held, self._held = self._held, b""
        return held

    def _search(self, buf: bytes, start: int = 0) -> tuple[int, int, int] | None:
        """Find the first sentinel from ``start``: (where it starts, its status, where it
        ends). By hand, not a regular expression: each block's sentinel carries a nonce of
        its own, and compiling a pattern per block was most of a block's own cost."""
        prefix, suffix = self._prefix, self._suffix
        at = buf.find(prefix, start)
        while at != -1:
            digits = at + len(prefix)
            # Up to three digits, the longest that the suffix follows.
            for end in range(min(digits + 3, len(buf)), digits, -1):
                if buf[digits:end].isdigit() and buf.startswith(suffix, end):
                    return at, int(buf[digits:end]), end + len(suffix)
            at = buf.find(prefix, at + 1)
        return None

    def _partial_start(self, buf: bytes) -> int:
        """Return where a sentinel that the next bytes may complete could begin."""
        first = self._prefix[:1]
        start = max(0, len(buf) - self._longest + 1)
        pos = buf.find(first, start)
        while pos != -1:
            if self._could_start(buf[pos:]):
                return pos
            pos = buf.find(first, pos + 1)
        return len(buf)

    def _could_start(self, tail: bytes) -> bool:
        prefix = self._prefix
        if len(tail) <= len(prefix):
            return prefix.startswith(tail)
        if not tail.startswith(prefix):
            return False
        rest = tail[len(prefix) :]
        digits = len(rest) - len(rest.lstrip(b"0123456789"))
        return digits <= 3 and self._suffix.startswith(rest[digits:])
