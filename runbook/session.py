"""Persistent shell sessions: run a guide's code blocks in one interactive bash.

A session keeps one ``bash -i`` alive behind a pseudo-terminal, so ``cd``, variables and
functions carry from block to block as they would for a person at the terminal. A block's
text never passes through the terminal as keystrokes: a delivery strategy places it in a
file the shell then sources, and completion plus exit status come from a prompt sentinel.
The transport (argv, delivery, input-wait detection) is pluggable so a remote shell reached
through the OpenSSH client fits the same interface as the local one.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import errno
import fcntl
import os
import platform
import re
import secrets
import select
import shlex
import shutil
import signal
import stat
import tempfile
import termios
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

import pexpect

from runbook.errors import EXIT_STEP_FAILED, RunbookError, UsageError
from runbook.redact import Redactor

__all__ = [
    "LOCAL_SHELL",
    "SHELL_ENV",
    "Answer",
    "Base64Delivery",
    "BlockResult",
    "Delivery",
    "Detector",
    "Exchange",
    "FileDelivery",
    "Operator",
    "Outcome",
    "Probe",
    "PromptHeuristic",
    "Session",
    "SessionError",
    "Transport",
    "TtyReadDetector",
    "local_transport",
    "ssh_transport",
]

LOCAL_SHELL: tuple[str, ...] = ("bash", "--norc", "--noprofile", "--noediting", "-i")
"""The local shell: no startup files, no readline (so no bracketed paste), interactive."""

SHELL_ENV: Mapping[str, str] = {"TERM": "dumb", "PAGER": "cat", "GIT_PAGER": "cat"}
"""Environment that keeps programs from paging or drawing on the terminal."""

# C0 and C1 control characters and DEL: typed into a terminal they act as keystrokes.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ANSI = re.compile(rb"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|.)")
_PROMPT_END = re.compile(rb"[:?>$#\]][ \t]*\Z")

_READ_CHUNK = 65536
_WINDOW = 8192
_VALUE_CHUNK = 1024
_B64_LINE = 2048


class SessionError(RunbookError):
    """The shell could not be started or stopped responding to the session."""

    exit_code = EXIT_STEP_FAILED


class Outcome(enum.StrEnum):
    """How a block ended."""

    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"
    SHELL_DIED = "shell-died"
    NEEDS_INPUT = "needs-input"


def _check_typable(text: str, what: str) -> None:
    """Raise UsageError when ``text`` holds a byte that would act as a keystroke."""
    if _CONTROL.search(text):
        raise UsageError(
            f"{what} contains a control character",
            hint="values typed into a terminal cannot hold newlines, tabs or other "
            "control characters",
        )


@dataclass(frozen=True)
class Answer:
    """An expect/send pair declared on a block."""

    expect: str
    """Text (not a regex) the command prints when it waits for this answer."""
    send: str
    """What to type; it is sent as one line."""
    secret: bool = False
    """Mask ``send`` in all output and transcripts."""

    def __post_init__(self) -> None:
        if not self.expect:
            raise UsageError("an answer needs a non-empty expect text")
        _check_typable(self.expect, f"the expect text {self.expect[:40]!r}")
        _check_typable(self.send, f"the answer to {self.expect[:40]!r}")


@dataclass(frozen=True)
class Operator:
    """A person who can take the keyboard when a command waits for input."""

    fd: int
    """Where the operator's keystrokes come from (a tty is put in raw mode meanwhile)."""
    on_handover: Callable[[str], None] | None = None
    """Called with the command's last output line when the keyboard is handed over."""


@dataclass(frozen=True)
class BlockResult:
    """What running one block did."""

    status: int | None
    """Exit status of the block; None when it did not finish on its own."""
    duration: float
    """Wall-clock seconds from delivery to the shell's next prompt."""
    outcome: Outcome
    """How the block ended (compares equal to its string value, e.g. ``"ok"``)."""
    last_line: str
    """Last non-empty output line, already redacted, for messages."""
    answered: tuple[str, ...] = ()
    """Expect texts that were answered from the block's declared answers, in order."""
    handed_over: bool = False
    """The operator was given the keyboard during the block."""
    restarted: bool = False
    """The shell died and a fresh one replaced it: directory and variables were reset."""
    output_bytes: int = 0
    """Bytes of (redacted) output the block produced."""

    @property
    def ok(self) -> bool:
        """Return True when the block finished with status 0."""
        return self.outcome is Outcome.OK


# --------------------------------------------------------------------------- detection


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


class Detector(Protocol):
    """Tell a command waiting for input from a slow one."""

    @property
    def min_quiet(self) -> float:
        """Seconds without output before the detector is asked."""
        ...

    def waiting(self, probe: Probe) -> bool:
        """Return True when the foreground command waits for terminal input."""
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

    def waiting(self, probe: Probe) -> bool:
        """Return True when the output has been quiet and ends like a prompt."""
        if probe.quiet < self.quiet_for:
            return False
        return _looks_like_prompt(probe.tail) or _ends_with_expect(probe.tail, probe.expects)


_SYSCALLS: dict[str, tuple[frozenset[int], frozenset[int]]] = {
    # (read-like, poll-like) syscall numbers as shown in /proc/PID/syscall.
    "x86_64": (frozenset({0, 17, 19, 295, 327}), frozenset({7, 23, 232, 270, 271, 281, 441})),
    "aarch64": (frozenset({63, 65, 67, 69, 286}), frozenset({22, 72, 73, 441})),
}
_DEV_TTY = (5, 0)


@dataclass(frozen=True)
class _Stat:
    state: str
    pgrp: int
    session: int
    tty_nr: int


def _read_stat(pid: int) -> _Stat:
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read()
    # The command name may contain spaces and parentheses: split after the last ")".
    fields = raw[raw.rindex(b")") + 2 :].split()
    return _Stat(fields[0].decode(), int(fields[2]), int(fields[3]), int(fields[4]))


def _decode_tty_nr(tty_nr: int) -> tuple[int, int] | None:
    if tty_nr == 0:
        return None
    return (tty_nr >> 8) & 0xFFF, (tty_nr & 0xFF) | ((tty_nr >> 12) & 0xFFF00)


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _group_members(pgrp: int) -> Iterator[int]:
    """Yield the processes of a process group, its leader first (scanning only if asked)."""
    yield pgrp
    for pid in _all_pids():
        if pid == pgrp:
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            if _read_stat(pid).pgrp == pgrp:
                yield pid


def _alive(pid: int) -> bool:
    """Tell whether a process exists and is not a zombie waiting to be reaped."""
    try:
        return _read_stat(pid).state not in ("Z", "X")
    except (OSError, ValueError, IndexError):
        return False


def _session_members(sid: int) -> list[int]:
    members = []
    for pid in _all_pids():
        with contextlib.suppress(OSError, ValueError, IndexError):
            if _read_stat(pid).session == sid:
                members.append(pid)
    return members


@dataclass(frozen=True)
class TtyReadDetector:
    """Ask the kernel: is a foreground process blocked reading this terminal?

    Precise for programs that read the terminal (``read``, ``cat``, password prompts,
    ``mysql -p``). A program that puts the terminal in raw mode and waits in ``poll``
    (``ssh`` to another host, a REPL) is only taken as waiting after ``raw_quiet``
    seconds of silence with a prompt-like last line.
    """

    raw_quiet: float = 1.0
    """Silence needed before a raw-mode program polling the terminal counts as waiting."""

    @property
    def min_quiet(self) -> float:
        """Return the silence needed before asking the kernel."""
        return 0.05

    def waiting(self, probe: Probe) -> bool:
        """Return True when a foreground process waits for terminal input."""
        if probe.tty is None:
            return PromptHeuristic().waiting(probe)
        reads, polls = _SYSCALLS.get(platform.machine(), (frozenset(), frozenset()))
        if not reads:
            return PromptHeuristic().waiting(probe)
        try:
            pgrp = os.tcgetpgrp(probe.fd)
        except OSError:
            return False
        raw_mode = self._raw_mode(probe.fd)
        for pid in _group_members(pgrp):
            kind = self._blocked_in(pid, probe.tty, reads, polls)
            if kind == "read":
                return True
            if (
                kind == "poll"
                and raw_mode
                and probe.quiet >= self.raw_quiet
                and (_looks_like_prompt(probe.tail) or _ends_with_expect(probe.tail, probe.expects))
            ):
                return True
        return False

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


# --------------------------------------------------------------------------- delivery

Exchange = Callable[[bytes, float], int]
"""Type bytes at the shell prompt, wait for the next prompt, return its exit status."""


class Delivery(Protocol):
    """Put a block's text where the shell can source it as ``$__rb_file``."""

    def open(self) -> None:
        """Acquire local resources; called once before the first shell starts."""
        ...

    def shell_setup(self) -> str:
        """Return shell code, one line without control characters, run in each new shell."""
        ...

    def put(self, script: bytes, exchange: Exchange) -> None:
        """Make ``$__rb_file`` hold exactly ``script``."""
        ...

    def shell_cleanup(self) -> str | None:
        """Return shell code that removes what the shell side created, if anything."""
        ...

    def close(self) -> None:
        """Release local resources."""
        ...


def _memory_backed_root() -> str:
    """Return a writable temporary root, preferring ones kept in memory.

    Rewriting a file on a disk-backed filesystem can cost milliseconds (freeing blocks,
    with ``discard`` even more) per block; in tmpfs it costs microseconds, and block
    text never reaches a disk.
    """
    for root in (os.environ.get("XDG_RUNTIME_DIR"), "/dev/shm"):
        if root and os.path.isdir(root) and os.access(root, os.W_OK | os.X_OK):
            return root
    return tempfile.gettempdir()


class FileDelivery:
    """Write the block to a file in a private temporary directory (mode 0700)."""

    def __init__(self, root: str | None = None) -> None:
        self._root = root
        self._dir: str | None = None

    @property
    def path(self) -> str:
        """Return the block file's path."""
        if self._dir is None:
            raise SessionError("the delivery directory is not open")
        return os.path.join(self._dir, "block.sh")

    def open(self) -> None:
        """Create the private directory."""
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="runbook-", dir=self._root or _memory_backed_root())
            os.chmod(self._dir, 0o700)

    def shell_setup(self) -> str:
        """Point ``$__rb_file`` at the block file."""
        path = self.path
        _check_typable(path, "the temporary directory path")
        return f"__rb_file={shlex.quote(path)}; builtin readonly __rb_file"

    def put(self, script: bytes, exchange: Exchange) -> None:
        """Write the block file."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(script)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)

    def shell_cleanup(self) -> str | None:
        """Return nothing: the directory is local and removed by ``close``."""
        return None

    def close(self) -> None:
        """Remove the private directory."""
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


class Base64Delivery:
    """Send the block as base64 through short typed lines into a file made by the shell.

    Needs nothing on the shell's machine but ``mktemp`` and ``base64``, and no file
    written from here, so it works over a remote terminal. Lines stay far below the
    terminal's 4095-byte line limit.
    """

    def __init__(self, line_length: int = _B64_LINE) -> None:
        if not 4 <= line_length <= 3000:
            raise UsageError("base64 line length must be between 4 and 3000")
        self._line = line_length

    def open(self) -> None:
        """Acquire nothing: everything lives on the shell's side."""

    def shell_setup(self) -> str:
        """Create a private directory on the shell's side and the receiving function."""
        return (
            '__rb_dir=$(umask 077 && command mktemp -d "${TMPDIR:-/tmp}/runbook.XXXXXXXX"); '
            "__rb_file=$__rb_dir/block.sh; "
            "builtin readonly __rb_dir __rb_file; "
            "__rb_recv() { local __rb_l __rb_i; "
            "for ((__rb_i = 0; __rb_i < $1; __rb_i++)); do "
            'IFS= builtin read -r __rb_l || builtin return 1; builtin printf "%s\\n" "$__rb_l"; '
            'done >| "$__rb_file.b64" && command base64 -d < "$__rb_file.b64" >| "$__rb_file"; }; '
            "builtin readonly -f __rb_recv"
        )

    def put(self, script: bytes, exchange: Exchange) -> None:
        """Type the encoded block and have the shell decode it."""
        encoded = base64.b64encode(script)
        lines = [encoded[i : i + self._line] for i in range(0, len(encoded), self._line)]
        payload = b"".join(line + b"\n" for line in lines)
        timeout = 10.0 + len(payload) / 100_000
        status = exchange(f"__rb_recv {len(lines)}\n".encode() + payload, timeout)
        if status != 0:
            raise SessionError(f"the shell could not receive the block (status {status})")

    def shell_cleanup(self) -> str | None:
        """Remove the shell-side directory."""
        return 'command rm -rf -- "$__rb_dir"'

    def close(self) -> None:
        """Release nothing."""


# --------------------------------------------------------------------------- transports


@dataclass(frozen=True)
class Transport:
    """How to reach a shell: the command that starts it and how to talk to it."""

    name: str
    """``local`` when the shell's processes run on this machine (so signals and /proc
    reach them); any other label, such as ``ssh``, means they are out of reach."""
    argv: tuple[str, ...]
    """Command line that starts an interactive bash on the far end of a terminal."""
    delivery: Callable[[], Delivery]
    """Makes the per-session strategy that puts a block's text on the shell's side."""
    detector: Detector
    """Decides whether a quiet command waits for input."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Extra environment for the process started here."""


def local_transport() -> Transport:
    """Return the transport for a bash on this machine."""
    return Transport("local", LOCAL_SHELL, FileDelivery, TtyReadDetector())


def ssh_transport(host: str, *, options: Sequence[str] = ()) -> Transport:
    """Return a transport for bash on ``host`` through the system's OpenSSH client."""
    if not host or host.startswith("-") or _CONTROL.search(host) or " " in host:
        raise UsageError(f"invalid host name {host!r}")
    remote = " ".join(
        ["exec", "env", *(f"{k}={shlex.quote(v)}" for k, v in SHELL_ENV.items()), *LOCAL_SHELL]
    )
    # BatchMode: a password or host-key question from ssh itself fails at once, naming the
    # reason, instead of swallowing what is typed for the shell. ssh takes the first value
    # given for an option, so the guide's options can still set it otherwise.
    argv = ("ssh", "-tt", *options, "-o", "BatchMode=yes", "--", host, remote)
    return Transport("ssh", argv, Base64Delivery, PromptHeuristic())


# --------------------------------------------------------------------------- stream parts


class _EchoStripper:
    """Drop the terminal's echo of the line just typed, when the terminal echoes."""

    def __init__(self, line: bytes) -> None:
        self._forms = (line + b"\r\n", line + b"\n")
        self._held = b""
        self._done = False

    def feed(self, data: bytes) -> bytes:
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


class _SentinelScanner:
    """Find the prompt sentinel in a stream, passing on everything before it."""

    def __init__(self, prefix: bytes, suffix: bytes) -> None:
        self._prefix = prefix
        self._suffix = suffix
        self._pattern = re.compile(re.escape(prefix) + rb"(\d{1,3})" + re.escape(suffix))
        self._longest = len(prefix) + 3 + len(suffix)
        self._held = b""

    def reset(self) -> None:
        self._held = b""

    def feed(self, data: bytes) -> tuple[bytes, int | None]:
        """Return (output before any sentinel, status when the sentinel was seen)."""
        buf = self._held + data if self._held else data
        match = self._pattern.search(buf)
        if match:
            self._held = b""
            return buf[: match.start()], int(match.group(1))
        cut = self._partial_start(buf)
        self._held = buf[cut:]
        return buf[:cut], None

    def split(self, data: bytes) -> tuple[bytes, bool, bytes]:
        """Return (output before the sentinel, whether it was seen, output after it)."""
        buf = self._held + data if self._held else data
        match = self._pattern.search(buf)
        if match:
            self._held = b""
            return buf[: match.start()], True, buf[match.end() :]
        cut = self._partial_start(buf)
        self._held = buf[cut:]
        return buf[:cut], False, b""

    def flush(self) -> bytes:
        """Return what was held back as a possible start of the sentinel."""
        held, self._held = self._held, b""
        return held

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


class _Output:
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

    @property
    def window(self) -> bytes:
        """Return raw output since the last answer was sent (bounded)."""
        return bytes(self._window[-_WINDOW:])

    def forget(self) -> None:
        """Start a new window: an answer was just sent."""
        self._window.clear()

    def feed(self, data: bytes) -> None:
        if not data:
            return
        _append_bounded(self._window, data)
        self._out(self._redactor.feed(data))

    def finish(self) -> None:
        self._out(self._redactor.flush())
        if self._transcript is not None:
            self._transcript.flush()

    def _out(self, data: bytes) -> None:
        if not data:
            return
        self.count += len(data)
        _append_bounded(self._tail, data)
        if self._on_output is not None:
            self._on_output(data)
        if self._transcript is not None:
            self._transcript.write(data)

    def last_line(self) -> str:
        return _last_line(bytes(self._tail[-_WINDOW:]))


def _append_bounded(buf: bytearray, data: bytes) -> None:
    """Append, keeping at most the last 2 * _WINDOW bytes (trimmed in amortized O(1))."""
    if len(data) >= _WINDOW:
        buf[:] = data[-_WINDOW:]
        return
    buf += data
    if len(buf) > 2 * _WINDOW:
        del buf[: len(buf) - _WINDOW]


def _last_line(tail: bytes, limit: int = 400, *, skip: tuple[bytes, ...] = ()) -> str:
    for line in reversed(re.split(rb"[\r\n]", tail)):
        if any(mark in line for mark in skip):
            continue
        text = _ANSI.sub(b"", line).decode("utf-8", "replace")
        text = _CONTROL.sub("", text).strip()
        if text:
            return text if len(text) <= limit else text[: limit - 1] + "…"
    return ""


def _last_words(output: bytes) -> str:
    """Return the last line a dying shell (or ssh) printed, passing over our own typing."""
    return _last_line(output, skip=(b"__rb", b"__RB"))


# --------------------------------------------------------------------------- the session


class _ShellGone(Exception):
    """The shell process ended."""

    def __init__(self, status: int | None, said: str = "") -> None:
        super().__init__(status)
        self.status = status
        self.said = said
        """Its last line of output (ssh's reason, say), when it was collected."""


@dataclass
class _Stop:
    """An attempt to stop the running command, escalating over time."""

    outcome: Outcome
    stage: int
    next_at: float


@dataclass
class _Block:
    """Bookkeeping of the block being run."""

    output: _Output
    started: float
    restarted: bool
    answered: list[str] = field(default_factory=list)
    handed_over: bool = False
    stop: _Stop | None = None
    echo: _EchoStripper | None = None
    begun: bool = True
    """Whether the shell has started executing the block (it prints a marker first)."""

    def result(self, outcome: Outcome, status: int | None) -> BlockResult:
        return BlockResult(
            status=status,
            duration=time.monotonic() - self.started,
            outcome=outcome,
            last_line=self.output.last_line(),
            answered=tuple(self.answered),
            handed_over=self.handed_over,
            restarted=self.restarted,
            output_bytes=self.output.count,
        )


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
_STOP_STAGES = 5


class Session:
    """One persistent interactive shell that runs blocks one after another."""

    def __init__(
        self,
        *,
        host: str = "local",
        transport: Transport | None = None,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        redactor: Redactor | None = None,
        transcript: BinaryIO | None = None,
        grace: float = 2.0,
        restart: bool = True,
        size: tuple[int, int] = (24, 160),
        start_timeout: float = 15.0,
    ) -> None:
        """Prepare a session; nothing starts until ``start`` (or the first ``run``)."""
        if transport is None:
            transport = local_transport() if host == "local" else ssh_transport(host)
        self.host = host
        """Name of the machine the shell runs on, for messages."""
        self.transport = transport
        self.redactor = redactor if redactor is not None else Redactor()
        """Masks secrets; the session owns its streaming state between blocks."""
        self.transcript = transcript
        self.grace = grace
        """Seconds each stop signal gets before the next, stronger one."""
        self.restart = restart
        """Start a fresh shell by itself when a block kills the current one."""
        self._cwd = os.fspath(cwd) if cwd is not None else None
        self._env = dict(env or {})
        self._size = size
        self._start_timeout = start_timeout
        self._child: pexpect.spawn | None = None
        self._fd = -1
        self._tty: tuple[int, int] | None = None
        self._delivery: Delivery | None = None
        self._defines: dict[str, tuple[str, bool]] = {}
        self._wake_r = -1
        self._wake_w = -1
        self._interrupts = 0
        self._running = False
        self._closed = False
        self._dead = False
        self._unsynced = False
        self._stopped = False  # the last block was stopped: check the shell answers first
        token = secrets.token_hex(8)
        self._token = token
        self._scanner = _SentinelScanner(f"__RB{token}:".encode(), b";")
        # Printed by the shell when it starts a block: until then a read on the terminal
        # is bash reading the typed line, not a command waiting for input.
        self._begin = _SentinelScanner(f"__RG{token}:".encode(), b";")
        self.restarts = 0
        """How many times a dead shell was replaced."""

    # ------------------------------------------------------------------ lifecycle

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

    def __enter__(self) -> Session:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the shell (again, if it died); a running shell is left alone."""
        if self.alive:
            return
        if self._child is not None:
            self._discard_child()
        self._closed = False
        self._dead = False
        if self._wake_r < 0:
            self._wake_r, self._wake_w = os.pipe()
            for fd in (self._wake_r, self._wake_w):
                os.set_blocking(fd, False)
                fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
        if self._delivery is None:
            self._delivery = self.transport.delivery()
            self._delivery.open()
        self._spawn()

    def _spawn(self) -> None:
        env = dict(os.environ)
        env.update(self.transport.env)
        env.update(SHELL_ENV)
        env.update(self._env)
        argv = self.transport.argv
        try:
            child = pexpect.spawn(
                argv[0],
                list(argv[1:]),
                env=env,
                cwd=self._cwd,
                encoding=None,
                echo=True,
                dimensions=self._size,
                timeout=None,
            )
        except (pexpect.ExceptionPexpect, OSError) as exc:
            raise SessionError(
                f"cannot start a shell on {self.host}: {exc}",
                hint=f"check that {argv[0]} is installed and the directory exists",
            ) from exc
        child.delayafterclose = 0.0
        child.ptyproc.delayafterclose = 0.0
        child.ptyproc.delayafterterminate = 0.05
        self._child = child
        self._fd = child.child_fd
        os.set_blocking(self._fd, False)
        self._tty = None
        if self.transport.name == "local":
            with contextlib.suppress(OSError, ValueError, IndexError):
                self._tty = _decode_tty_nr(_read_stat(child.pid).tty_nr)
        try:
            status = self._exchange(self._setup_line(), self._start_timeout, stale=False)
        except _ShellGone as gone:
            self._discard_child()
            raise SessionError(
                f"the shell on {self.host} exited during setup (status {gone.status})"
                + (f": {gone.said}" if gone.said else ""),
                hint=self._reach_hint(),
            ) from None
        except SessionError as exc:
            self._discard_child()
            if exc.hint is None and self.transport.name != "local":
                raise SessionError(exc.message, hint=self._reach_hint()) from None
            raise
        if status != 0:
            self._discard_child()
            raise SessionError(f"setting up the shell on {self.host} failed (status {status})")
        for name, (value, export) in self._defines.items():
            self._define(name, value, export)

    def _reach_hint(self) -> str | None:
        """Say how to check a remote host's login, for failures before its shell answers."""
        if self.transport.name == "local":
            return None
        return (
            f"check that '{shlex.join(self.transport.argv[:-1])} true' works from this "
            "machine without a prompt: log in by key or agent, and accept the host key once"
        )

    def _setup_line(self) -> bytes:
        assert self._delivery is not None
        token = self._token
        # The empty \[\] pair renders as nothing, so only the printed prompt, never the
        # echo of this line, contains the token in one piece.
        ps1 = f"'__RB{token[:8]}\\[\\]{token[8:]}:$?;'"
        trap = (
            '__rb_s=$?; if [[ $BASHPID != "$__rb_pid" ]]; then builtin exit "$__rb_s"; '
            'elif ((${#BASH_SOURCE[@]})); then builtin return "$__rb_s"; fi'
        )
        define = (
            "__rb_define() { local __rb_l __rb_v= __rb_i; "
            "for ((__rb_i = 0; __rb_i < $2; __rb_i++)); do "
            "IFS= builtin read -r __rb_l || builtin return 1; __rb_v+=$__rb_l; done; "
            'builtin printf -v "$1" %s "$__rb_v" || builtin return 1; '
            'if [[ ${3-} == x ]]; then builtin export "$1"; fi; }'
        )
        parts = [
            f"PS1={ps1}; PS2=''; PS0=''; PS4='+ '",
            "unset PROMPT_COMMAND MAILCHECK HISTFILE",
            "set +o history +H",
            "stty -opost 2>/dev/null",
            "__rb_pid=$BASHPID",
            f"__rb_arm() {{ builtin trap {shlex.quote(trap)} ERR; builtin set -E; }}",
            define,
            self._delivery.shell_setup(),
            "builtin readonly PS1 PS2 PS0 __rb_pid",
            "builtin readonly -f __rb_arm __rb_define",
            # Last, so its status is the setup's: the block file's directory must exist.
            "[[ -d ${__rb_file%/*} && -w ${__rb_file%/*} ]]",
        ]
        line = "; ".join(parts)
        _check_typable(line, "the shell setup")
        return line.encode() + b"\n"

    def close(self) -> None:
        """Stop the shell and everything it started; remove temporary files."""
        if self._closed:
            return
        self._closed = True
        if self._child is not None:
            cleanup = self._delivery.shell_cleanup() if self._delivery else None
            if cleanup and self.alive and not self._running and not self._unsynced:
                with contextlib.suppress(RunbookError, _ShellGone, OSError):
                    self._exchange(cleanup.encode() + b"\n", 2.0)
            self._discard_child()
        if self._delivery is not None:
            self._delivery.close()
            self._delivery = None
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1

    def _discard_child(self) -> int | None:
        """Kill the shell's whole session, reap the shell, return its exit status."""
        child = self._child
        if child is None:
            return None
        pid = int(child.pid)
        if not child.ptyproc.terminated:
            # Not reaped yet, so these numbers are still the shell's. Background jobs get
            # their own process groups but stay in the shell's session.
            for member in [pid, *_session_members(pid)]:
                with contextlib.suppress(OSError):
                    os.kill(member, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            # A member forking as the kill lands leaves a child the scan above missed
            # (seen with `(sleep 1 &)` on a loaded machine): scan until only the dead remain.
            for _ in range(50):
                alive = [m for m in _session_members(pid) if m != pid and _alive(m)]
                if not alive:
                    break
                for member in alive:
                    with contextlib.suppress(OSError):
                        os.kill(member, signal.SIGKILL)
                time.sleep(0.005)
        with contextlib.suppress(pexpect.ExceptionPexpect, OSError):
            child.wait()
        with contextlib.suppress(pexpect.ExceptionPexpect, OSError):
            child.close(force=True)
        self._child = None
        self._fd = -1
        self._unsynced = False
        return _exit_status(child)

    # ------------------------------------------------------------------ low-level I/O

    def _read(self) -> bytes | None:
        """Return what the terminal has (possibly nothing); None at end of file.

        A terminal hands out at most 4 KiB per read: gather a burst so the rest of the
        pipeline runs once per burst rather than once per read.
        """
        parts: list[bytes] = []
        size = 0
        while size < _READ_CHUNK:
            try:
                data = os.read(self._fd, _READ_CHUNK)
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
        return b"".join(parts)

    def _write(self, outbox: bytearray) -> None:
        try:
            written = os.write(self._fd, outbox[:4096])
        except BlockingIOError:
            return
        del outbox[:written]

    def _gone(self, tail: bytes = b"") -> _ShellGone:
        """Collect the dead shell and its leftovers; return the exception to raise."""
        return _ShellGone(self._discard_child(), _last_words(tail))

    def _exchange(
        self, data: bytes, timeout: float, *, stale: bool = True, after: bytes = b""
    ) -> int:
        """Type ``data`` at the prompt, discard all output up to the next prompt.

        With ``stale``, output that arrived before typing is kept in the transcript. With
        ``after``, prompts before that text in the output are not the one waited for.
        """
        if stale:
            self._drain_idle(None)
        scanner = self._scanner
        scanner.reset()
        outbox = bytearray(data)
        seen = b""
        tail = bytearray()  # the last output, to quote when the shell never answers
        deadline = time.monotonic() + timeout
        poller = select.poll()
        while True:
            events = select.POLLIN | (select.POLLOUT if outbox else 0)
            poller.register(self._fd, events)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                said = _last_words(bytes(tail))
                raise SessionError(
                    f"the shell on {self.host} did not answer within {timeout:g} s"
                    + (f" (its last output: {said!r})" if said else "")
                )
            ready = poller.poll(min(remaining, 0.1) * 1000)
            if outbox:
                self._write(outbox)
            if not ready:
                if not self.alive:
                    raise self._gone(bytes(tail))
                continue
            chunk = self._read()
            if chunk is None:
                raise self._gone(bytes(tail))
            _append_bounded(tail, chunk)
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

    def _drain_idle(self, output: _Output | None) -> None:
        """Pass on output that arrived between blocks (a background job, say)."""
        if self._fd < 0:
            return
        target = output or _Output(self.redactor, None, self.transcript)
        while True:
            chunk = self._read()
            if not chunk:
                break
            target.feed(chunk)
        if output is None:
            target.finish()

    # ------------------------------------------------------------------ variables

    def define(self, name: str, value: str, *, export: bool = False, secret: bool = False) -> None:
        """Make shell variable ``name`` hold ``value``, never as shell source text.

        The value is read by ``read -r`` from the terminal in chunks below the line
        limit, so its bytes are data, never code. Control characters are refused since
        a terminal would act on them as keystrokes. The value never reaches the output
        or the transcript; ``secret`` also masks it in later output.
        """
        if not _NAME.match(name) or name.startswith("__rb"):
            raise UsageError(
                f"{name!r} is not a usable shell variable name",
                hint="use letters, digits and underscores, not starting with a digit",
            )
        if _CONTROL.search(value):
            raise UsageError(
                f"the value for {name} contains a control character",
                hint="values cannot hold newlines, tabs or other control characters",
            )
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(f"the value for {name} is not valid text") from None
        if secret:
            self.redactor.add(value)
        if self._running:
            raise UsageError(f"cannot set {name} while a block is running")
        self._prepare()
        self._define(name, value, export)
        self._defines[name] = (value, export)

    def _define(self, name: str, value: str, export: bool) -> None:
        chunks = _chunks(value, _VALUE_CHUNK)
        flag = " x" if export else ""
        payload = b"".join(chunk + b"\n" for chunk in chunks)
        line = f"__rb_define {name} {len(chunks)}{flag}\n".encode()
        self._drain_idle(None)
        try:
            with self._no_echo():
                status = self._exchange(line + payload, 10.0 + len(payload) / 100_000, stale=False)
        except _ShellGone as gone:
            raise SessionError(
                f"the shell on {self.host} exited while setting {name} (status {gone.status})"
            ) from None
        except SessionError:
            # The value may still sit in the terminal's buffers: never let a later block
            # read it into the transcript. A fresh shell replaces this one.
            self._discard_child()
            self._dead = not self.restart
            raise
        if status != 0:
            raise UsageError(
                f"cannot set shell variable {name} (status {status})",
                hint="it may be read-only in the shell",
            )

    @contextlib.contextmanager
    def _no_echo(self) -> Iterator[None]:
        """Keep the local terminal from echoing what is typed meanwhile."""
        try:
            attrs = termios.tcgetattr(self._fd)
        except termios.error:
            yield
            return
        was = attrs[3] & termios.ECHO
        attrs[3] &= ~termios.ECHO
        # On Linux the master side shares the terminal settings of the shell's side.
        termios.tcsetattr(self._fd, termios.TCSANOW, attrs)
        try:
            yield
        finally:
            if was and self._fd >= 0:
                with contextlib.suppress(termios.error):
                    attrs = termios.tcgetattr(self._fd)
                    attrs[3] |= termios.ECHO
                    termios.tcsetattr(self._fd, termios.TCSANOW, attrs)

    # ------------------------------------------------------------------ interrupt

    def interrupt(self) -> None:
        """Stop the running block (async-signal-safe: sets a flag and wakes ``run``).

        A second call while the stop is under way skips to the next, stronger signal.
        """
        self._interrupts += 1
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"!")

    # ------------------------------------------------------------------ running blocks

    def run(
        self,
        script: str | bytes,
        *,
        timeout: float | None,
        answers: Sequence[Answer] = (),
        on_output: Callable[[bytes], None] | None = None,
        operator: Operator | None = None,
    ) -> BlockResult:
        """Run one block in the shell and wait for it to end.

        The block stops at its first failing command (as ``set -e`` would, also inside
        subshells and command substitutions) without killing the shell; its status is
        that command's. Output goes, redacted, to ``on_output`` and the transcript as
        it arrives.
        """
        if self._running:
            raise UsageError("a block is already running in this session")
        started = time.monotonic()
        restarted = self._prepare()
        data = script.encode("utf-8", "surrogateescape") if isinstance(script, str) else script
        for answer in answers:
            if answer.secret:
                self.redactor.add(answer.send)
        self._interrupts = 0
        self._clear_wake()
        block = _Block(_Output(self.redactor, on_output, self.transcript), started, restarted)
        self._running = True
        try:
            return self._run(block, data, timeout, answers, operator)
        finally:
            self._running = False

    def _prepare(self) -> bool:
        """Make sure a shell waits at its prompt; return True if a dead one was replaced."""
        restarted = False
        if self._dead or (self._child is not None and not self.alive):
            if not self.restart:
                raise SessionError(
                    f"the shell on {self.host} has exited",
                    hint="start() a fresh session; directory and variables start over",
                )
            self._discard_child()
            restarted = True
        self.start()
        if self._unsynced:
            restarted = self._resync() or restarted
        elif self._stopped:
            restarted = self._settle() or restarted
        if restarted:
            self.restarts += 1
        return restarted

    def _resync(self) -> bool:
        """Stop what an abandoned block left running; return True if the shell was replaced.

        A block whose caller stopped waiting (an exception in ``on_output``, a second
        Ctrl-C) may still run: typing the next block into it would feed it as input.
        """
        block = _Block(_Output(self.redactor, None, self.transcript), time.monotonic(), False)
        self._running = True
        try:
            result = self._wait(block, bytearray(), None, None, (), None, Outcome.INTERRUPTED)
        finally:
            self._running = False
        if result.restarted or self._dead:
            return True
        return self._settle()

    def _settle(self) -> bool:
        """Make sure the shell answers after a stopped block; return True if it was replaced.

        Only a shell that answers a no-op is trusted with the next block.
        """
        self._stopped = False
        for attempt in range(4):
            try:
                self._sync(attempt, 0.5)
                return False
            except RunbookError:
                # The forked command may have taken the terminal only after the prompt.
                self._reclaim_terminal()
            except (_ShellGone, OSError):
                break
        if self._child is not None:
            self._kill_session(int(self._child.pid))
        self._discard_child()
        self.start()
        return True

    def _sync(self, attempt: int, timeout: float) -> None:
        """Type a line that prints a unique token; return at the prompt that follows it.

        Lines typed while bash was stopped are run once it wakes, each with its prompt:
        waiting for this attempt's own token keeps their prompts out of the next block.
        """
        tag = f"{self._token[:6]}x{attempt}"
        # Printed through %s, so the echo of the typed line never holds the token.
        line = f"builtin printf '__RBSYNC%s\\n' {tag}\n".encode()
        self._exchange(line, timeout, after=f"__RBSYNC{tag}".encode())

    def _run(
        self,
        block: _Block,
        data: bytes,
        timeout: float | None,
        answers: Sequence[Answer],
        operator: Operator | None,
    ) -> BlockResult:
        assert self._delivery is not None
        self._drain_idle(block.output)
        try:
            self._delivery.put(data, self._exchange)
        except _ShellGone as gone:
            return self._died(block, gone.status)
        if self._interrupts:
            block.stop = _Stop(Outcome.INTERRUPTED, 0, 0.0)
            return self._finished(block, None)
        # The token is printed through %s so the echo of this line never holds the marker.
        line = (
            b'builtin printf "__RG%s:0;" '
            + self._token.encode()
            + b'; __rb_arm; builtin source "$__rb_file"'
        )
        block.echo = _EchoStripper(line)
        block.begun = False
        self._begin.reset()
        deadline = None if timeout is None else block.started + timeout
        self._unsynced = True
        return self._wait(block, bytearray(line + b"\n"), deadline, block.echo, answers, operator)

    def _wait(
        self,
        block: _Block,
        outbox: bytearray,
        deadline: float | None,
        echo: _EchoStripper | None,
        answers: Sequence[Answer],
        operator: Operator | None,
        stop_now: Outcome | None = None,
    ) -> BlockResult:
        """Pump input and output until the prompt returns, stopping the command if asked."""
        scanner = self._scanner
        scanner.reset()
        detector = self.transport.detector
        unused = list(answers)
        output = block.output
        handover: _Handover | None = None
        seen_interrupts = self._interrupts
        now = time.monotonic()
        if stop_now is not None:
            block.stop = self._begin_stop(stop_now, now)
        last_io = now
        next_probe = now
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        try:
            while True:
                now = time.monotonic()
                wait = 0.1
                stop = block.stop
                if deadline is not None and stop is None:
                    wait = min(wait, deadline - now)
                if stop is not None:
                    wait = min(wait, stop.next_at - now)
                elif handover is None:
                    wait = min(wait, max(last_io + detector.min_quiet, next_probe) - now)
                poller.register(self._fd, select.POLLIN | (select.POLLOUT if outbox else 0))
                ready = dict(poller.poll(max(wait, 0.0) * 1000))
                now = time.monotonic()
                if outbox and ready.get(self._fd, 0) & select.POLLOUT:
                    self._write(outbox)
                    last_io = now
                if handover is not None and handover.fd in ready and not handover.pump(outbox):
                    poller.unregister(handover.fd)
                    handover.close()
                    handover = None
                    if block.stop is None:
                        block.stop = self._begin_stop(Outcome.NEEDS_INPUT, now)
                if ready.get(self._fd, 0) & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    chunk = self._read()
                    if chunk is None:
                        return self._died(block, None)
                    if chunk:
                        last_io = now
                        data = echo.feed(chunk) if echo else chunk
                        if not block.begun:
                            before, block.begun, after = self._begin.split(data)
                            data = before + after
                        text, status = scanner.feed(data)
                        output.feed(text)
                        if status is not None:
                            return self._finished(block, status)
                elif not ready and not self.alive:
                    return self._died(block, None)
                if self._wake_r in ready:
                    self._clear_wake()
                if self._interrupts > seen_interrupts:
                    seen_interrupts = self._interrupts
                    if block.stop is None:
                        block.stop = self._begin_stop(Outcome.INTERRUPTED, now)
                    else:
                        block.stop.next_at = now
                if block.stop is None and deadline is not None and now >= deadline:
                    block.stop = self._begin_stop(Outcome.TIMEOUT, now)
                if block.stop is not None:
                    if now >= block.stop.next_at:
                        self._escalate(block.stop, now)
                    continue
                if handover is not None or now - last_io < detector.min_quiet:
                    continue
                if not block.begun:
                    continue
                if now < next_probe:
                    continue
                # Back off on long quiet stretches: each probe may scan /proc.
                next_probe = now + min(1.0, max(0.2, (now - last_io) / 5))
                probe = Probe(
                    fd=self._fd,
                    shell_pid=int(self._child.pid) if self._child else -1,
                    tty=self._tty,
                    quiet=now - last_io,
                    tail=output.window,
                    expects=tuple(a.expect.encode() for a in unused),
                )
                if not detector.waiting(probe) or self._pending_output():
                    continue
                window = output.window
                answer = next((a for a in unused if a.expect.encode() in window), None)
                if answer is not None:
                    unused.remove(answer)
                    block.answered.append(answer.expect)
                    outbox += answer.send.encode() + b"\n"
                    output.forget()
                    last_io = now
                elif operator is not None:
                    handover = _Handover(operator)
                    block.handed_over = True
                    poller.register(handover.fd, select.POLLIN)
                    if operator.on_handover is not None:
                        operator.on_handover(output.last_line())
                else:
                    block.stop = self._begin_stop(Outcome.NEEDS_INPUT, now)
        finally:
            if handover is not None:
                handover.close()

    def _pending_output(self) -> bool:
        # A probe can race the prompt: the sentinel is written before bash reads again.
        return bool(select.select([self._fd], [], [], 0)[0])

    def _clear_wake(self) -> None:
        with contextlib.suppress(OSError):
            while os.read(self._wake_r, 512):
                pass

    def _reclaim_terminal(self) -> None:
        """Give the terminal back to bash after a stopped block.

        A command forked just as the stop signal reached bash can still own the terminal
        after the prompt returns; bash, now in the background, would stop on its next
        read. End that command and wake bash.
        """
        if self._child is None:
            return
        shell = int(self._child.pid)
        with contextlib.suppress(OSError):
            pgrp = os.tcgetpgrp(self._fd)
            if pgrp not in (shell, 0):
                os.killpg(pgrp, signal.SIGKILL)
                os.kill(shell, signal.SIGCONT)

    def _finished(self, block: _Block, status: int | None) -> BlockResult:
        self._unsynced = False
        block.output.finish()
        if block.stop is not None:
            self._reclaim_terminal()
            self._stopped = True
            outcome, final = block.stop.outcome, None
        else:
            outcome, final = (Outcome.OK if status == 0 else Outcome.FAILED), status
        return block.result(outcome, final)

    def _died(self, block: _Block, status: int | None) -> BlockResult:
        output = block.output
        echo = block.echo
        # Whatever the shell printed before it went away still belongs to the block.
        while self._fd >= 0:
            chunk = self._read()
            if not chunk:
                break
            output.feed(self._scanner.feed(echo.feed(chunk) if echo else chunk)[0])
        output.feed(self._scanner.flush())
        self._dead = not self.restart
        if self._child is not None:
            status = self._discard_child()
        output.finish()
        if self.restart and not self._closed:
            try:
                self.start()
                block.restarted = True
                self.restarts += 1
            except RunbookError:
                pass
        outcome = block.stop.outcome if block.stop is not None else Outcome.SHELL_DIED
        return block.result(outcome, status)

    # ------------------------------------------------------------------ stopping

    def _begin_stop(self, outcome: Outcome, now: float) -> _Stop:
        stop = _Stop(outcome, 0, now)
        self._escalate(stop, now)
        return stop

    def _escalate(self, stop: _Stop, now: float) -> None:
        """Send the next stop signal to whatever runs in the foreground."""
        child = self._child
        if child is None:
            return
        shell = int(child.pid)
        if stop.stage >= _STOP_STAGES:
            # Nothing else stopped it: the shell itself goes, and a fresh one replaces it.
            self._kill_session(shell)
            stop.next_at = now + 3600
            return
        try:
            pgrp = os.tcgetpgrp(self._fd)
        except OSError:
            pgrp = shell
        with contextlib.suppress(OSError):
            if pgrp in (shell, 0) or self.transport.name != "local":
                # Builtins run in the shell itself; an interactive bash drops back to its
                # prompt on SIGINT and ignores the rest. Remote: the ssh client forwards ^C.
                if self.transport.name == "local":
                    os.kill(shell, signal.SIGINT)
                else:
                    os.write(self._fd, b"\x03")
            else:
                os.killpg(pgrp, _STOP_SIGNALS[min(stop.stage, len(_STOP_SIGNALS) - 1)])
        stop.stage += 1
        stop.next_at = now + self.grace

    @staticmethod
    def _kill_session(shell: int) -> None:
        for member in [shell, *_session_members(shell)]:
            with contextlib.suppress(OSError):
                os.kill(member, signal.SIGKILL)


class _Handover:
    """The operator's keyboard, connected to the running command."""

    def __init__(self, operator: Operator) -> None:
        self.fd = operator.fd
        self._saved: list[Any] | None = None
        try:
            saved = termios.tcgetattr(self.fd)
        except termios.error:
            return
        self._saved = list(saved)
        raw = termios.tcgetattr(self.fd)
        # Input raw (keys, ^C included, go to the command); output processing stays on,
        # since the same terminal usually shows the command's output.
        raw[0] &= ~(termios.BRKINT | termios.ICRNL | termios.INPCK | termios.ISTRIP | termios.IXON)
        raw[3] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN | termios.ISIG)
        raw[6][termios.VMIN] = 1
        raw[6][termios.VTIME] = 0
        termios.tcsetattr(self.fd, termios.TCSADRAIN, raw)

    def pump(self, outbox: bytearray) -> bool:
        """Move the operator's keystrokes to the command; False at end of input."""
        try:
            data = os.read(self.fd, 1024)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False
        outbox += data
        return True

    def close(self) -> None:
        if self._saved is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None


def _exit_status(child: pexpect.spawn) -> int | None:
    if child.exitstatus is not None:
        return int(child.exitstatus)
    if child.signalstatus is not None:
        return 128 + int(child.signalstatus)
    return None


def _chunks(value: str, limit: int) -> list[bytes]:
    """Split ``value`` into UTF-8 pieces of at most ``limit`` bytes, on character bounds."""
    chunks: list[bytes] = []
    current = bytearray()
    for char in value:
        encoded = char.encode("utf-8")
        if len(current) + len(encoded) > limit:
            chunks.append(bytes(current))
            current.clear()
        current += encoded
    if current:
        chunks.append(bytes(current))
    return chunks
