"""Requests to stop the running block, safe to make from a signal handler."""

from __future__ import annotations

import contextlib
import fcntl
import os


class Interrupts:
    """A count of stop requests and a pipe that wakes the block's poll on each one."""

    def __init__(self) -> None:
        self.count = 0
        """Requests since the running block started."""
        self.fd = -1
        """The end to poll: readable after a request."""
        self._write = -1

    def open(self) -> None:
        """Make the pipe, once."""
        if self.fd < 0:
            self.fd, self._write = os.pipe()
            for fd in (self.fd, self._write):
                os.set_blocking(fd, False)
                fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)

    def request(self) -> None:
        """Count a request and wake the poll (async-signal-safe)."""
        self.count += 1
        if self._write >= 0:
            with contextlib.suppress(OSError):
                os.write(self._write, b"!")

    def reset(self) -> None:
        """Forget earlier requests: a new block starts."""
        requested, self.count = self.count, 0
        if requested:
            self.clear()

    def clear(self) -> None:
        """Empty the pipe."""
        with contextlib.suppress(OSError):
            while os.read(self.fd, 512):
                pass

    def close(self) -> None:
        """Close the pipe."""
        for fd in (self.fd, self._write):
            if fd >= 0:
                os.close(fd)
        self.fd = self._write = -1
