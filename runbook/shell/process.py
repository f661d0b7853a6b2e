"""The shell's process behind its pseudo-terminal: start, read, write, kill, reap.

The only module that uses pexpect. Killing works on the shell's whole session, since
background jobs get process groups of their own but stay in it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import termios
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pexpect

from runbook.shell.model import SessionError
from runbook.shell.procfs import alive, decode_tty_nr, read_stat, session_members

_READ_CHUNK = 65536
_BURST_END = 2048  # a read shorter than this emptied the terminal's 4 KiB buffer


class ShellGone(Exception):
    """The shell process ended."""

    def __init__(self, status: int | None, said: str = "") -> None:
        super().__init__(status)
        self.status = status
        self.said = said
        """Its last line of output (ssh's reason, say), when it was collected."""


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return b""


class ShellProcess:
    """One shell at a time behind a terminal: none until spawned, none again once discarded."""

    def __init__(self) -> None:
        self._child: pexpect.spawn | None = None
        self.fd = -1
        """Master side of the terminal, non-blocking; -1 without a shell."""
        self.tty: tuple[int, int] | None = None
        """The terminal's device number as the shell sees it, when it runs here."""
        self.unsynced = False
        """A block was typed and the prompt after it not seen: the shell may still run it."""
        self._cmdline = b""
        self._modes: list[Any] | None = None

    @property
    def started(self) -> bool:
        """Return True from spawning until the shell is discarded."""
        return self._child is not None

    @property
    def alive(self) -> bool:
        """Return True while the shell process runs."""
        child = self._child
        if child is None:
            return False
        # Look without reaping: until the shell is reaped its pid (and the session id
        # its jobs carry) cannot be reused, so killing by those numbers stays safe.
        try:
            return os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
        except ChildProcessError:
            return False

    @property
    def pid(self) -> int | None:
        """Return the process id of the local end of the shell, if started."""
        return int(self._child.pid) if self._child is not None else None

    def spawn(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str | None,
        size: tuple[int, int],
        local: bool,
        host: str,
    ) -> None:
        """Start ``argv`` on a new terminal; ``local`` when it runs on this machine."""
        try:
            child = pexpect.spawn(
                argv[0],
                list(argv[1:]),
                env=dict(env),
                cwd=cwd,
                encoding=None,
                echo=True,
                dimensions=size,
                timeout=None,
            )
        except (pexpect.ExceptionPexpect, OSError) as exc:
            raise SessionError(
                f"cannot start a shell on {host}: {exc}",
                hint=f"check that {argv[0]} is installed and the directory exists",
            ) from exc
        child.delayafterclose = 0.0
        child.ptyproc.delayafterclose = 0.0
        child.ptyproc.delayafterterminate = 0.05
        self._child = child
        self.fd = child.child_fd
        os.set_blocking(self.fd, False)
        self.tty = None
        self._cmdline = b""
        if local:
            with contextlib.suppress(OSError, ValueError, IndexError):
                self.tty = decode_tty_nr(read_stat(child.pid).tty_nr)
            self._cmdline = _cmdline(child.pid)

    def keep_modes(self) -> None:
        """Remember the terminal's modes as the set-up left them (a local shell only)."""
        self._modes = None
        if self.tty is not None:
            with contextlib.suppress(termios.error, OSError):
                self._modes = termios.tcgetattr(self.fd)

    def restore_modes(self) -> None:
        """Put back the terminal's modes a block changed (stty raw, -icanon, intr …)."""
        if self._modes is None:
            return
        with contextlib.suppress(termios.error, OSError):
            if termios.tcgetattr(self.fd) != self._modes:
                termios.tcsetattr(self.fd, termios.TCSANOW, self._modes)

    def replaced(self) -> bool:
        """Tell whether the shell ran ``exec`` of another program (here, where it can be seen)."""
        pid = self.pid
        return bool(self._cmdline) and pid is not None and _cmdline(pid) not in (b"", self._cmdline)

    def read(self) -> bytes | None:
        """Return what the terminal has (possibly nothing); None at end of file.

        A terminal hands out at most 4 KiB per read: gather a burst so the rest of the
        pipeline runs once per burst rather than once per read. A read well short of that
        ends the burst, saving the read that would find nothing more.
        """
        parts: list[bytes] = []
        size = 0
        while size < _READ_CHUNK:
            try:
                data = os.read(self.fd, _READ_CHUNK)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                data = b""
            if not data:
                if parts:
                    break  # end of file is reported by the next read
                return None
            parts.append(data)
            size += len(data)
            if len(data) < _BURST_END:
                break
        return b"".join(parts)

    def write(self, outbox: bytearray) -> None:
        """Write what the terminal takes now from the front of ``outbox``."""
        try:
            written = os.write(self.fd, outbox[:4096])
        except BlockingIOError:
            return
        del outbox[:written]

    def pending_output(self) -> bool:
        """Return True when output waits to be read."""
        return bool(select.select([self.fd], [], [], 0)[0])

    @contextlib.contextmanager
    def no_echo(self) -> Iterator[None]:
        """Keep the local terminal from echoing what is typed meanwhile."""
        try:
            attrs = termios.tcgetattr(self.fd)
        except termios.error:
            yield
            return
        was = attrs[3] & termios.ECHO
        attrs[3] &= ~termios.ECHO
        # On Linux the master side shares the terminal settings of the shell's side.
        termios.tcsetattr(self.fd, termios.TCSANOW, attrs)
        try:
            yield
        finally:
            if was and self.fd >= 0:
                with contextlib.suppress(termios.error):
                    attrs = termios.tcgetattr(self.fd)
                    attrs[3] |= termios.ECHO
                    termios.tcsetattr(self.fd, termios.TCSANOW, attrs)

    def reclaim_terminal(self) -> None:
        """Give the terminal back to bash after a stopped block.

        A command forked just as the stop signal reached bash can still own the terminal
        after the prompt returns; bash, now in the background, would stop on its next
        read. End that command and wake bash.
        """
        if self._child is None:
            return
        shell = int(self._child.pid)
        with contextlib.suppress(OSError):
            pgrp = os.tcgetpgrp(self.fd)
            if pgrp not in (shell, 0):
                os.killpg(pgrp, signal.SIGKILL)
                os.kill(shell, signal.SIGCONT)

    def kill_session(self) -> None:
        """Kill the shell and every process of its session (the shell stays unreaped)."""
        if self._child is not None:
            _kill_all(int(self._child.pid))

    def leave(self) -> int | None:
        """End an idle shell as a person typing ``exit`` would: jobs it started in the
        background (``nohup``, daemons, plain ``&``) keep running; only the shell ends. A
        shell that does not exit at once (stopped jobs hold it) is killed with its session."""
        child = self._child
        if child is None:
            return None
        if not child.ptyproc.terminated:
            with contextlib.suppress(OSError):
                os.write(self.fd, b"builtin exit 0\n")
            deadline = time.monotonic() + 2.0
            while child.isalive() and time.monotonic() < deadline:
                time.sleep(0.01)
        return self.discard() if child.isalive() else self._reap(child)

    def discard(self) -> int | None:
        """Kill the shell's whole session, reap the shell, return its exit status."""
        child = self._child
        if child is None:
            return None
        pid = int(child.pid)
        if not child.ptyproc.terminated:
            # Not reaped yet, so these numbers are still the shell's. Background jobs get
            # their own process groups but stay in the shell's session.
            _kill_all(pid)
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            # A member forking as the kill lands leaves a child the scan above missed
            # (seen with `(sleep 1 &)` on a loaded machine): scan until only the dead remain.
            for _ in range(50):
                left = [m for m in session_members(pid) if m != pid and alive(m)]
                if not left:
                    break
                for member in left:
                    with contextlib.suppress(OSError):
                        os.kill(member, signal.SIGKILL)
                time.sleep(0.005)
        return self._reap(child)

    def _reap(self, child: pexpect.spawn) -> int | None:
        """Collect the ended shell and close its terminal; return its exit status."""
        with contextlib.suppress(pexpect.ExceptionPexpect, OSError):
            child.wait()
        with contextlib.suppress(pexpect.ExceptionPexpect, OSError):
            child.close(force=True)
        self._child = None
        self.fd = -1
        self.unsynced = False
        return _exit_status(child)


def _kill_all(shell: int) -> None:
    for member in [shell, *session_members(shell)]:
        with contextlib.suppress(OSError):
            os.kill(member, signal.SIGKILL)


def _exit_status(child: pexpect.spawn) -> int | None:
    if child.exitstatus is not None:
        return int(child.exitstatus)
    if child.signalstatus is not None:
        return 128 + int(child.signalstatus)
    return None
