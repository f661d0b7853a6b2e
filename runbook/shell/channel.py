"""Talk to the shell at its prompt, between blocks: type a line, wait for the next prompt."""

from __future__ import annotations

import select
import time
from collections.abc import Callable

from runbook.shell.model import SessionError
from runbook.shell.output import Output, append_bounded, last_words
from runbook.shell.process import ShellGone, ShellProcess
from runbook.shell.protocol import Sentinels

SAID_LIMIT = 1 << 20
"""Bytes of a typed line's output kept for the caller (a look at the shell prints less)."""


class Channel:
    """Typed lines and the prompts that answer them, over the session's shell process."""

    def __init__(
        self,
        process: ShellProcess,
        sentinels: Sentinels,
        host: str,
        idle_output: Callable[[], Output],
    ) -> None:
        self._process = process
        self._sentinels = sentinels
        self._host = host
        self._idle_output = idle_output
        """Makes the output that takes what arrives between blocks."""

    def exchange(
        self,
        data: bytes,
        timeout: float,
        *,
        stale: bool = True,
        after: bytes = b"",
        said: bytearray | None = None,
    ) -> int:
        """Type ``data`` at the prompt, discard all output up to the next prompt.

        With ``stale``, output that arrived before typing is kept in the transcript. With
        ``after``, prompts before that text in the output are not the one waited for.
        ``said`` gets the output meanwhile, its first ``SAID_LIMIT`` bytes. Raise ShellGone
        (with the shell discarded) when the shell ends meanwhile.
        """
        if stale:
            self.drain_idle(None)
        process = self._process
        scanner = self._sentinels.prompt
        scanner.reset()
        outbox = bytearray(data)
        seen = b""
        tail = bytearray()  # the last output, to quote when the shell never answers
        deadline = time.monotonic() + timeout
        poller = select.poll()
        while True:
            events = select.POLLIN | (select.POLLOUT if outbox else 0)
            poller.register(process.fd, events)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                words = last_words(bytes(tail))
                raise SessionError(
                    f"the shell on {self._host} did not answer within {timeout:g} s"
                    + (f" (its last output: {words!r})" if words else "")
                )
            ready = poller.poll(min(remaining, 0.1) * 1000)
            if outbox:
                process.write(outbox)
            if not ready:
                if not process.alive:
                    raise self._gone(bytes(tail))
                continue
            chunk = process.read()
            if chunk is None:
                raise self._gone(bytes(tail))
            append_bounded(tail, chunk)
            if said is not None:
                said += chunk[: max(0, SAID_LIMIT - len(said))]
            if after:
                seen = (seen + chunk)[-(len(after) + len(chunk)) :]
                index = seen.find(after)
                if index < 0:
                    continue
                chunk, after = seen[index + len(after) :], b""
                scanner.reset()
            _, status = scanner.feed(chunk)
            if status is not None:
                return status

    def sync(self, attempt: int, timeout: float) -> None:
        """Type a line that prints a unique token; return at the prompt that follows it.

        Lines typed while bash was stopped are run once it wakes, each with its prompt:
        waiting for this attempt's own token keeps their prompts out of the next block.
        """
        line, mark = self._sentinels.sync_line(attempt)
        self.exchange(line, timeout, after=mark)

    def drain_idle(self, output: Output | None) -> None:
        """Pass on output that arrived between blocks (a background job, say).

        It goes to ``output``, or when None to the transcript alone.
        """
        if self._process.fd < 0:
            return
        target = output or self._idle_output()
        while True:
            chunk = self._process.read()
            if not chunk:
                break
            target.feed(chunk)
        if output is None:
            target.finish()

    def _gone(self, tail: bytes) -> ShellGone:
        """Collect the dead shell and its leftovers; return the exception to raise."""
        return ShellGone(self._process.discard(), last_words(tail))
