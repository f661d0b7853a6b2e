"""Tell a command waiting for input from a slow one, and say how sure that is.

A detector is asked only after the terminal has been quiet for its ``min_quiet``; the
kernel's view (a foreground process blocked reading the terminal) is certain where /proc
reaches the shell's processes. The prompt heuristic is what is left elsewhere, and it is
only a guess: ``printf 'Migrating schema: '; sleep 60`` looks exactly like a question.
"""

from __future__ import annotations

import os
import platform
import re
import stat
import termios
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from runbook.shell.procfs import group_members

_PROMPT_END = re.compile(rb"[:?>$#\]][ \t]*\Z")

_SYSCALLS: dict[str, tuple[frozenset[int], frozenset[int]]] = {
    # (read-like, poll-like) syscall numbers as shown in /proc/PID/syscall.
    "x86_64": (frozenset({0, 17, 19, 295, 327}), frozenset({7, 23, 232, 270, 271, 281, 441})),
    "aarch64": (frozenset({63, 65, 67, 69, 286}), frozenset({22, 72, 73, 441})),
}
_DEV_TTY = (5, 0)


@dataclass(frozen=True)
class Probe:
    """What a detector may look at to decide whether a command waits for input."""

    fd: int
    """Master side of the session's pseudo-terminal."""
    shell_pid: int
    """Process id of the local end of the session (bash, or the ssh client)."""
    tty: tuple[int, int] | None
    """Major and minor device number of the shell's terminal, when known."""
    quiet: float
    """Seconds since the last byte was read from or written to the terminal."""
    tail: bytes
    """Recent output since the last answer (bounded), not redacted."""
    expects: tuple[bytes, ...]
    """Expect texts of answers not used yet."""


class Wait(Enum):
    """How sure a detector is that the quiet command waits for input."""

    CERTAIN = "certain"
    """The kernel shows a foreground process blocked reading the terminal."""
    GUESS = "guess"
    """Only the output's shape says so: quiet, and the last line looks like a question."""


class Detector(Protocol):
    """Tell a command waiting for input from a slow one."""

    @property
    def min_quiet(self) -> float:
        """Seconds without output before the detector is asked."""
        ...

    def detect(self, probe: Probe) -> Wait | None:
        """Return how sure it is that the foreground command waits; None when it does not."""
        ...


def _looks_like_prompt(tail: bytes) -> bool:
    """Return True when the output ends in an unterminated line that looks like a prompt."""
    if not tail or tail.endswith((b"\n", b"\r")):
        return False
    line = re.split(rb"[\r\n]", tail)[-1]
    return bool(line.strip()) and bool(_PROMPT_END.search(line))


def _ends_with_expect(tail: bytes, expects: Sequence[bytes]) -> bool:
    stripped = tail.rstrip()
    return any(e.strip() and stripped.endswith(e.strip()) for e in expects)


def _prompt_shaped(probe: Probe) -> bool:
    return _looks_like_prompt(probe.tail) or _ends_with_expect(probe.tail, probe.expects)


@dataclass(frozen=True)
class PromptHeuristic:
    """Guess from the output alone: quiet, and the last line looks like a question.

    The only signal available when the command runs on another machine.
    """

    quiet_for: float = 1.0
    """Seconds of silence before an unterminated prompt-like line counts as waiting."""

    @property
    def min_quiet(self) -> float:
        """Return the silence needed before deciding."""
        return self.quiet_for

    def detect(self, probe: Probe) -> Wait | None:
        """Guess a wait when the output has been quiet and ends like a prompt."""
        if probe.quiet >= self.quiet_for and _prompt_shaped(probe):
            return Wait.GUESS
        return None

    def waiting(self, probe: Probe) -> bool:
        """Return True when ``detect`` guesses a wait (the yes/no form of it)."""
        return self.detect(probe) is not None


@dataclass(frozen=True)
class TtyReadDetector:
    """Ask the kernel: is a foreground process blocked reading this terminal?

    Certain for programs that read the terminal (``read``, ``cat``, password prompts,
    ``mysql -p``). A program that puts the terminal in raw mode and waits in ``poll``
    (``ssh`` to another host, a REPL) may as well be busy with a timer or the network, so
    ``raw_quiet`` seconds of silence with a prompt-like last line only make it a guess;
    so is everything where the kernel cannot be asked.
    """

    raw_quiet: float = 1.0
    """Silence needed before a raw-mode program polling the terminal counts as waiting."""

    @property
    def min_quiet(self) -> float:
        """Return the silence needed before asking the kernel."""
        return 0.05

    def detect(self, probe: Probe) -> Wait | None:
        """Return CERTAIN when the kernel shows a read of the terminal, GUESS from the shape."""
        if probe.tty is None:
            return PromptHeuristic().detect(probe)
        reads, polls = _SYSCALLS.get(platform.machine(), (frozenset(), frozenset()))
        if not reads:
            return PromptHeuristic().detect(probe)
        try:
            pgrp = os.tcgetpgrp(probe.fd)
        except OSError:
            return None
        raw_mode = self._raw_mode(probe.fd)
        found: Wait | None = None
        for pid in group_members(pgrp):
            kind = self._blocked_in(pid, probe.tty, reads, polls)
            if kind == "read":
                return Wait.CERTAIN
            if (
                kind == "poll"
                and raw_mode
                and probe.quiet >= self.raw_quiet
                and _prompt_shaped(probe)
            ):
                found = Wait.GUESS  # keep looking: another member may read, which is certain
        return found

    @staticmethod
    def _raw_mode(fd: int) -> bool:
        try:
            return not termios.tcgetattr(fd)[3] & termios.ICANON
        except termios.error:
            return False

    @staticmethod
    def _blocked_in(
        pid: int, tty: tuple[int, int], reads: frozenset[int], polls: frozenset[int]
    ) -> str | None:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            return None
        found: str | None = None
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/syscall", "rb") as f:
                    fields = f.read().split()
            except OSError:
                continue
            if len(fields) < 2 or not fields[0].lstrip(b"-").isdigit():
                continue  # "running" or not in a syscall
            number = int(fields[0])
            if number in reads:
                try:
                    target = os.stat(f"/proc/{pid}/fd/{int(fields[1], 16)}")
                except (OSError, ValueError):
                    continue
                if stat.S_ISCHR(target.st_mode):
                    device = (os.major(target.st_rdev), os.minor(target.st_rdev))
                    if device in (tty, _DEV_TTY):
                        return "read"
            elif number in polls:
                found = "poll"
        return found
