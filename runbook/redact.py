"""Mask secret values in text and in byte streams, including across chunk boundaries."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = b"********"
"""What every occurrence of a secret becomes."""

MASK_TEXT = MASK.decode("ascii")


class Redactor:
    """Replace every occurrence of every secret with ``********``.

    Matching is leftmost-longest and non-overlapping, so the streaming and the one-shot
    forms give the same result for any chunking of the same bytes. A secret made of mask
    characters (``*``) can still be seen in the mask itself; nothing else leaks.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[bytes] = set()
        self._pattern: re.Pattern[bytes] | None = None
        self._longest = 0
        self._held = b""
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        """Start masking ``secret`` (empty strings are ignored)."""
        raw = secret.encode("utf-8", "surrogateescape")
        if not raw or raw in self._secrets:
            return
        self._secrets.add(raw)
        # Longest first: Python's alternation takes the first branch that matches, which
        # makes the match at each position the longest secret starting there.
        ordered = sorted(self._secrets, key=lambda s: (-len(s), s))
        self._pattern = re.compile(b"|".join(re.escape(s) for s in ordered))
        self._longest = len(ordered[0])

    def __len__(self) -> int:
        return len(self._secrets)

    def __contains__(self, secret: object) -> bool:
        if not isinstance(secret, str):
            return False
        return secret.encode("utf-8", "surrogateescape") in self._secrets

    @property
    def pending(self) -> int:
        """Return how many bytes ``feed`` currently holds back."""
        return len(self._held)

    @property
    def holdback(self) -> int:
        """Return the most bytes ``feed`` may keep back (longest secret minus one)."""
        return max(self._longest - 1, 0)

    def redact_bytes(self, data: bytes) -> bytes:
        """Return ``data`` with every secret masked (stateless)."""
        if self._pattern is None:
            return data
        return self._pattern.sub(MASK, data)

    def redact_text(self, text: str) -> str:
        """Return ``text`` with every secret masked."""
        if self._pattern is None:
            return text
        raw = text.encode("utf-8", "surrogateescape")
        return self._pattern.sub(MASK, raw).decode("utf-8", "surrogateescape")

    def feed(self, chunk: bytes) -> bytes:
        """Take the next chunk of a stream; return what can already be passed on, masked."""
        if self._pattern is None:
            if not self._held:
                return chunk
            chunk, self._held = self._held + chunk, b""
            return chunk
        buf = self._held + chunk if self._held else chunk
        # Positions before `safe` have their longest possible match fully inside `buf`,
        # so any decision about them is final; later ones wait for more bytes.
        safe = len(buf) - self.holdback
        out: list[bytes] = []
        cursor = 0
        for match in self._pattern.finditer(buf):
            if match.start() >= safe:
                break
            out.append(buf[cursor : match.start()])
            out.append(MASK)
            cursor = match.end()
        cut = max(cursor, safe)
        out.append(buf[cursor:cut])
        self._held = buf[cut:]
        return b"".join(out)

    def flush(self) -> bytes:
        """End the stream: return whatever was held back, masked."""
        held, self._held = self._held, b""
        return self.redact_bytes(held)
