"""The session: one persistent shell per host that runs a guide's blocks one after another.

It composes the parts of this package: a shell process behind a terminal, the channel that
types lines at its prompt, a delivery for block text, and one ``BlockRun`` per block. Its
own concern is the shell's life: start and set up, replace a dead one, bring a stopped one
back to a prompt it can trust, keep variables across replacements, close.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import BinaryIO

from runbook.errors import RunbookError, UsageError
from runbook.model import Outcome
from runbook.redact import Redactor
from runbook.shell.block import BlockRun, Ending
from runbook.shell.channel import Channel
from runbook.shell.delivery import Delivery
from runbook.shell.interrupt import Interrupts
from runbook.shell.model import Answer, BlockResult, Operator, SessionError
from runbook.shell.output import Output
from runbook.shell.process import ShellGone, ShellProcess
from runbook.shell.protocol import (
    Sentinels,
    block_script,
    check_variable,
    define_lines,
    query_line,
)
from runbook.shell.stop import Stop
from runbook.shell.transport import SHELL_ENV, Transport, local_transport, ssh_transport

# How long a look at the shell between blocks (its state) may take.
_QUERY_TIMEOUT = 10.0


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
        self._process = ShellProcess()
        self._sentinels = Sentinels()
        self._channel = Channel(self._process, self._sentinels, host, self._idle_output)
        self._interrupts = Interrupts()
        self._delivery: Delivery | None = None
        self._defines: dict[str, tuple[str, bool]] = {}
        self._running = False
        self._closed = False
        self._dead = False
        self._stopped = False  # the last block was stopped: check the shell answers first
        self.restarts = 0
        """How many times a dead shell was replaced."""

    # ------------------------------------------------------------------ lifecycle

    @property
    def alive(self) -> bool:
        """Return True while the shell process runs."""
        return self._process.alive

    @property
    def pid(self) -> int | None:
        """Return the process id of the local end of the shell, if started."""
        return self._process.pid

    @property
    def _fd(self) -> int:
        """Master side of the shell's terminal; -1 without a shell."""
        return self._process.fd

    def __enter__(self) -> Session:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the shell (again, if it died); a running shell is left alone."""
        if self._process.alive:
            return
        if self._process.started:
            self._process.discard()
        self._closed = False
        self._dead = False
        self._interrupts.open()
        if self._delivery is None:
            self._delivery = self.transport.delivery()
            self._delivery.open()
        self._spawn(self._delivery)

    def _spawn(self, delivery: Delivery) -> None:
        env = dict(os.environ)
        env.update(self.transport.env)
        env.update(SHELL_ENV)
        env.update(self._env)
        transport = self.transport
        self._process.spawn(
            transport.argv,
            env=env,
            cwd=self._cwd,
            size=self._size,
            local=transport.local,
            host=self.host,
        )
        try:
            setup = self._sentinels.setup_line(delivery.shell_setup())
            status = self._channel.exchange(setup, self._start_timeout, stale=False)
            if status == 0:
                said = bytearray()
                watch = self._sentinels.watch_line()
                self._channel.exchange(watch, self._start_timeout, stale=False, said=said)
                self._sentinels.watch(bytes(said))
        except ShellGone as gone:
            self._process.discard()
            raise SessionError(
                f"the shell on {self.host} exited during setup (status {gone.status})"
                + (f": {gone.said}" if gone.said else ""),
                hint=transport.reach_hint(),
            ) from None
        except SessionError as exc:
            self._process.discard()
            if exc.hint is None and not transport.local:
                raise SessionError(exc.message, hint=transport.reach_hint()) from None
            raise
        if status != 0:
            self._process.discard()
            raise SessionError(f"setting up the shell on {self.host} failed (status {status})")
        self._process.keep_modes()
        for name, (value, export) in self._defines.items():
            self._define(name, value, export)

    def close(self) -> None:
        """End the shell as typing ``exit`` would (what a block started in the background
        lives on); remove temporary files. A shell that is not idle at its prompt is killed
        with everything in its session."""
        if self._closed:
            return
        self._closed = True
        process = self._process
        if process.started:
            cleanup = self._delivery.shell_cleanup() if self._delivery else None
            idle = self.alive and not self._running and not process.unsynced
            if cleanup and idle:
                with contextlib.suppress(RunbookError, ShellGone, OSError):
                    self._channel.exchange(cleanup.encode() + b"\n", 2.0)
            if idle:
                process.leave()
            else:
                process.discard()
        if self._delivery is not None:
            self._delivery.close()
            self._delivery = None
        self._interrupts.close()

    def _idle_output(self) -> Output:
        """Return where output that arrives between blocks goes: the transcript only."""
        return Output(self.redactor, None, self.transcript)

    # ------------------------------------------------------------------ variables

    def define(self, name: str, value: str, *, export: bool = False, secret: bool = False) -> None:
        """Make shell variable ``name`` hold ``value``, never as shell source text.

        The value is read by ``read -r`` from the terminal in chunks below the line
        limit, so its bytes are data, never code. Control characters are refused since
        a terminal would act on them as keystrokes. The value never reaches the output
        or the transcript; ``secret`` also masks it in later output.
        """
        check_variable(name, value)
        if secret:
            self.redactor.add(value)
        if self._running:
            raise UsageError(f"cannot set {name} while a block is running")
        self._prepare()
        self._define(name, value, export)
        self._defines[name] = (value, export)

    def _define(self, name: str, value: str, export: bool) -> None:
        line, payload = define_lines(name, value, export)
        self._channel.drain_idle(None)
        with self._typing(f"setting {name}"):
            timeout = 10.0 + len(payload) / 100_000
            status = self._channel.exchange(line + payload, timeout, stale=False)
        if status != 0:
            raise UsageError(
                f"cannot set shell variable {name} (status {status})",
                hint="it may be read-only in the shell",
            )

    @contextlib.contextmanager
    def _typing(self, doing: str) -> Iterator[None]:
        """Type runbook's own line at the prompt (``doing`` names it), unechoed. A shell
        that ends meanwhile is an error saying so; one that does not answer is discarded,
        as what it was given or was printing (a value, its state) may still sit in the
        terminal's buffers and must never reach a later block or the transcript."""
        try:
            with self._process.no_echo():
                yield
        except ShellGone as gone:
            raise SessionError(
                f"the shell on {self.host} exited while {doing} (status {gone.status})"
            ) from None
        except SessionError:
            self._process.discard()
            self._dead = not self.restart
            raise

    # ------------------------------------------------------------------ running blocks

    def ready(self) -> None:
        """Make sure the shell waits at its prompt before the next block: after a stopped
        block, one that does not answer is replaced (``restarts`` tells)."""
        if self._running:
            raise UsageError("a block is running in this session")
        if self._stopped or self._process.unsynced or self._dead:
            self._prepare()  # else nothing to settle: whether it lives, ``alive`` says

    def query(self, command: str) -> bytes:
        """Run ``command`` at the prompt between blocks (runbook's own: builtins only, one
        line); return what it printed, up to 1 MiB, shown to no one and kept in no transcript.

        Its output sits between two marks of nonces drawn for this call, typed only in
        pieces, and only the prompt after the second one ends the wait: nothing the output
        holds (a variable holding a prompt) can end it early.
        """
        if self._running:
            raise UsageError("cannot look at the shell while a block is running")
        self._prepare()
        line, begin, end = query_line(command)
        said = bytearray()
        self._channel.drain_idle(None)
        with self._typing("runbook looked at it"):
            self._channel.exchange(line, _QUERY_TIMEOUT, stale=False, after=end, said=said)
        _, found, rest = bytes(said).partition(begin + b"\n")
        body, ended, _ = rest.rpartition(b"\n" + end + b"\n")
        return body if found and ended else b""

    def interrupt(self) -> None:
        """Stop the running block (async-signal-safe: sets a flag and wakes ``run``).

        A second call while the stop is under way skips to the next, stronger signal.
        """
        self._interrupts.request()

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
        data = block_script(data)
        for answer in answers:
            if answer.secret:
                self.redactor.add(answer.send)
        self._interrupts.reset()
        output = Output(self.redactor, on_output, self.transcript)
        block = self._block(output, started, restarted, answers, operator)
        deadline = None if timeout is None else started + timeout
        assert self._delivery is not None
        self._running = True
        try:
            return self._conclude(block, block.run(data, self._delivery, deadline))
        finally:
            self._running = False

    def _block(
        self,
        output: Output,
        started: float,
        restarted: bool,
        answers: Sequence[Answer] = (),
        operator: Operator | None = None,
    ) -> BlockRun:
        return BlockRun(
            self._process,
            self._channel,
            self._sentinels,
            self._interrupts,
            detector=self.transport.detector,
            new_stop=self._new_stop,
            output=output,
            started=started,
            restarted=restarted,
            answers=answers,
            operator=operator,
        )

    def _new_stop(self, outcome: Outcome) -> Stop:
        return Stop(outcome, self._process, grace=self.grace, local=self.transport.local)

    def _conclude(self, block: BlockRun, ending: Ending) -> BlockResult:
        """Finish the block's output and say how it ended; replace a shell that died."""
        if ending.died:
            return self._died(block, ending.status)
        self._process.unsynced = False
        self._process.restore_modes()
        block.output.finish()
        if block.stop is not None:
            self._process.reclaim_terminal()
            self._stopped = True
            return block.result(block.stop.outcome, None)
        if not block.marked_end:
            # Its line was cut short before the block's end: check the shell answers, and
            # mute tracing it may have left on, before the next line (see Sentinels).
            self._stopped = True
        status = ending.status
        return block.result(Outcome.OK if status == 0 else Outcome.FAILED, status)

    def _died(self, block: BlockRun, status: int | None) -> BlockResult:
        # Whatever the shell printed before it went away still belongs to the block.
        block.collect_remains()
        self._dead = not self.restart
        if self._process.started:
            status = self._process.discard()
        block.output.finish()
        if self.restart and not self._closed:
            try:
                self.start()
                block.restarted = True
                self.restarts += 1
            except RunbookError:
                pass
        if block.replaced:
            # Not the shell's status: the program that replaced it was killed with it.
            return block.result(Outcome.SHELL_REPLACED, None)
        outcome = block.stop.outcome if block.stop is not None else Outcome.SHELL_DIED
        return block.result(outcome, status)

    # ------------------------------------------------------------------ a shell to trust

    def _prepare(self) -> bool:
        """Make sure a shell waits at its prompt; return True if a dead one was replaced."""
        restarted = False
        alive = self._process.alive
        if self._dead or (self._process.started and not alive):
            if not self.restart:
                raise SessionError(
                    f"the shell on {self.host} has exited",
                    hint="start() a fresh session; directory and variables start over",
                )
            self._process.discard()
            restarted = True
        if restarted or not alive:
            self.start()
        if self._process.unsynced:
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
        block = self._block(self._idle_output(), time.monotonic(), False)
        self._running = True
        try:
            result = self._conclude(block, block.wait(bytearray(), None, Outcome.INTERRUPTED))
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
                self._channel.sync(attempt, 0.5)
                return False
            except RunbookError:
                # The forked command may have taken the terminal only after the prompt.
                self._process.reclaim_terminal()
            except (ShellGone, OSError):
                break
        self._process.kill_session()
        self._process.discard()
        self.start()
        return True
