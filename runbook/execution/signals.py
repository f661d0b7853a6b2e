"""Signals: the first Ctrl-C stops the running command and the operator decides (retry,
skip, quit); a second one, or SIGTERM/SIGHUP, ends the run. Neither ever cuts the
bookkeeping of a step in half: those few writes defer the interruption until they are
complete, and once the run is ending, a signal is only noted."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Protocol


class Interruptible(Protocol):
    """A shell whose running command can be stopped from a signal handler."""

    def interrupt(self) -> None:
        """Stop the running command (async-signal-safe)."""


class Signals:
    """How the run answers SIGINT, SIGTERM and SIGHUP."""

    def __init__(self) -> None:
        self._interrupts = 0
        self._running: Interruptible | None = None
        self._critical = 0
        self._deferred = False

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Answer the signals while the block runs; restore the previous handlers after."""

        def on_interrupt(signum: int, frame: FrameType | None) -> None:
            self._interrupts += 1
            if self._running is not None and self._interrupts == 1:
                self._running.interrupt()
                return
            self._end_now()

        def on_terminate(signum: int, frame: FrameType | None) -> None:
            self._end_now()

        wanted = {
            signal.SIGINT: on_interrupt,
            signal.SIGTERM: on_terminate,
            signal.SIGHUP: on_terminate,
        }
        previous = {sig: signal.signal(sig, handler) for sig, handler in wanted.items()}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def running(self, shell: Interruptible) -> Signals:
        """A command runs in ``shell`` until the ``with`` block ends: a first Ctrl-C stops it
        rather than the run. (A plain context manager: it wraps every block run.)"""
        self._interrupts = 0
        self._running = shell
        return self

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        self._running = None

    @contextmanager
    def bookkeeping(self) -> Iterator[None]:
        """Defer an interruption until the enclosed records and tick are complete."""
        self._critical += 1
        try:
            yield
        except BaseException:
            # Already on the way out: the noted interruption adds nothing.
            self._critical -= 1
            raise
        self._critical -= 1
        if not self._critical and self._deferred:
            self._deferred = False
            raise KeyboardInterrupt

    def ending(self) -> None:
        """The run is ending, and its records with it: from now on a signal is only noted."""
        self._critical += 1

    def _end_now(self) -> None:
        if self._critical:
            self._deferred = True
            return
        raise KeyboardInterrupt
