"""One block's run: deliver it, start it, pump the terminal until the prompt returns.

Meanwhile a quiet command is checked for waiting on input, and answered from the block's
declared answers, handed to the operator, or stopped. Only a certain wait is ever stopped:
a guess from the output's shape (all there is over SSH) may be a slow command showing a
label, so without an answer or a person it keeps running until it ends or its timeout
stops it. A timeout or an interrupt stops any command. The run never replaces the shell:
when the shell dies it says so, and the session decides what comes next.
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

from runbook.inputs import CONTROL_RE
from runbook.model import Outcome
from runbook.shell.channel import Channel
from runbook.shell.delivery import Delivery
from runbook.shell.detect import Detector, Probe, Wait
from runbook.shell.handover import Handover
from runbook.shell.interrupt import Interrupts
from runbook.shell.model import Answer, BlockResult, Operator
from runbook.shell.output import Output
from runbook.shell.process import ShellGone, ShellProcess
from runbook.shell.protocol import Sentinels
from runbook.shell.sentinel import EchoStripper, SentinelScanner
from runbook.shell.stop import Stop

_READABLE = select.POLLIN | select.POLLHUP | select.POLLERR


class Ending(NamedTuple):
    """How waiting for a block ended."""

    status: int | None
    """Status the prompt carried; None when the block never ran or the shell died."""
    died: bool = False
    """The shell ended (it is discarded when ``status`` came from delivering the block)."""


class BlockRun:
    """The state of one block's run, from delivery to the prompt that ends it.

    ``run`` delivers and starts the block and ``wait`` pumps the terminal until the prompt
    (called alone, it stops a block an earlier caller abandoned); both return an
    ``Ending``. The session then finishes the output, or first ``collect_remains`` of a
    shell that died, and takes the ``result``. One instance serves one block.
    """

    def __init__(
        self,
        process: ShellProcess,
        channel: Channel,
        sentinels: Sentinels,
        interrupts: Interrupts,
        *,
        detector: Detector,
        new_stop: Callable[[Outcome], Stop],
        output: Output,
        started: float,
        restarted: bool,
        answers: Sequence[Answer] = (),
        operator: Operator | None = None,
    ) -> None:
        self._process = process
        self._channel = channel
        self._sentinels = sentinels
        self._interrupts = interrupts
        self._detector = detector
        self._new_stop = new_stop
        self._operator = operator
        self._unused = list(answers)
        self.output = output
        self.started = started
        """When the block was asked for (monotonic seconds): its duration counts from here."""
        self.restarted = restarted
        """A fresh shell replaced a dead one for (or during) this block."""
        self.answered: list[str] = []
        self.handed_over = False
        self.stop: Stop | None = None
        """The stop under way, if the block is being (or was) stopped."""
        self._echo: EchoStripper | None = None
        self._begun = True
        """Whether the shell has started executing the block (it prints a marker first)."""
        self._handover: Handover | None = None
        self._handover_certain = False
        """The hand-over answers a certain wait: the end of the operator's input stops it."""
        self._end: SentinelScanner | None = None
        """Finds the mark this block's line prints when the block returns (see Sentinels)."""
        self._ended: int | None = None
        """The status the end mark carried; the prompt after it is then awaited."""
        self._prompt_status: int | None = None
        """The status of a prompt the output last ended with, before any end mark."""
        self._held = b""
        """The output from that prompt on, held back: if the block ends there, it is not
        the block's output."""
        self._at_prompt = False
        """The shell was found idle at that prompt: the block ended without its mark."""
        self.replaced = False
        """The block replaced the shell with another program (``exec bash``)."""
        self._poller = select.poll()
        self._last_io = started
        self._next_probe = started
        self._seen_interrupts = 0

    def run(self, data: bytes, delivery: Delivery, deadline: float | None) -> Ending:
        """Deliver ``data``, have the shell source it, and wait for the prompt after it."""
        self._channel.drain_idle(self.output)
        try:
            delivery.put(data, self._channel.exchange)
        except ShellGone as gone:
            return Ending(gone.status, died=True)
        if self._interrupts.count:
            # Stopped before it started: nothing runs yet, so nothing to signal.
            self.stop = self._new_stop(Outcome.INTERRUPTED)
            return Ending(None)
        line, self._end = self._sentinels.block()
        self._echo = EchoStripper(line)
        self._begun = False
        self._sentinels.begin.reset()
        self._process.unsynced = True
        outbox = bytearray(line + b"\n")
        self._process.write(outbox)  # what the terminal does not take now waits for the poll
        return self.wait(outbox, deadline)

    def wait(
        self, outbox: bytearray, deadline: float | None, stop_now: Outcome | None = None
    ) -> Ending:
        """Pump input and output until the prompt returns, stopping the command if asked."""
        self._sentinels.prompt.reset()
        if self._sentinels.replaced is not None:
            self._sentinels.replaced.reset()
        self._seen_interrupts = self._interrupts.count
        now = time.monotonic()
        if stop_now is not None:
            self._begin_stop(stop_now, now)
        self._last_io = now
        self._next_probe = now
        self._poller.register(self._interrupts.fd, select.POLLIN)
        try:
            while True:
                ending = self._turn(outbox, deadline)
                if ending is not None:
                    return ending
        finally:
            if self._handover is not None:
                self._handover.close()

    def collect_remains(self) -> None:
        """Pass on whatever a shell that went away printed before it did."""
        scanner = self._sentinels.prompt
        echo = self._echo
        self.output.feed(self._release())
        while self._process.fd >= 0:
            chunk = self._process.read()
            if not chunk:
                break
            self.output.feed(scanner.feed(echo.feed(chunk) if echo else chunk)[0])
        self.output.feed(scanner.flush())

    @property
    def marked_end(self) -> bool:
        """Whether the block's own end mark ended it (its line ran to its end)."""
        return self._ended is not None

    def result(self, outcome: Outcome, status: int | None) -> BlockResult:
        """Return what the run did, ``outcome`` and ``status`` being how it ended."""
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

    # ------------------------------------------------------------------ one turn of the pump

    def _turn(self, outbox: bytearray, deadline: float | None) -> Ending | None:
        """Wait for the terminal, move bytes both ways; return an ending once there is one."""
        process = self._process
        fd = process.fd
        self._poller.register(fd, select.POLLIN | (select.POLLOUT if outbox else 0))
        ready = dict(self._poller.poll(max(self._poll_time(deadline), 0.0) * 1000))
        now = time.monotonic()
        if outbox and ready.get(fd, 0) & select.POLLOUT:
            process.write(outbox)
            self._last_io = now
        handover = self._handover
        if handover is not None and handover.fd in ready and not handover.pump(outbox):
            self._end_handover(handover, now)
        if ready.get(fd, 0) & _READABLE:
            chunk = process.read()
            if chunk is None:
                return Ending(None, died=True)
            if chunk:
                self._last_io = now
                status = self._take(chunk)
                if status is not None:
                    return Ending(status)
                if self.replaced:
                    return Ending(None, died=True)
        elif not ready and not process.alive:
            return Ending(None, died=True)
        if self._interrupts.fd in ready:
            self._interrupts.clear()
        self._watch(outbox, deadline, now)
        if self._at_prompt:
            return Ending(self._prompt_status)
        if self.replaced:
            return Ending(None, died=True)
        return None

    def _pass_on(self, output: bytes) -> None:
        """Pass on the block's output, holding back a prompt that it ends with.

        A command killed by SIGINT, or a read-only variable of runbook's, make bash drop
        the rest of the typed line, end mark included, and print its prompt; that prompt
        ends the block once the shell is found idle at it (``_watch``), and is not shown.
        Output after it means it was the block's own. Such a prompt always carries a
        failure: one with status 0 is output imitating it (``${PS1@P}``) and ends nothing,
        so no block can fake its own success.
        """
        if self._held:
            output, self._held = self._held + output, b""
        cut, status = self._sentinels.prompt.trailing(output)
        self._prompt_status = status or None
        if status == 0:
            cut = len(output)
        self._held = output[cut:]
        self.output.feed(output[:cut])

    def _release(self) -> bytes:
        """Return the output held back, which was the block's own after all."""
        held, self._held = self._held, b""
        return held

    def _poll_time(self, deadline: float | None) -> float:
        """Return how long the next poll may wait: until the next thing due, at most 0.1 s."""
        now = time.monotonic()
        wait = 0.1
        stop = self.stop
        if deadline is not None and stop is None:
            wait = min(wait, deadline - now)
        if stop is not None:
            wait = min(wait, stop.next_at - now)
        elif self._handover is None:
            due = max(self._last_io + self._detector.min_quiet, self._next_probe)
            wait = min(wait, due - now)
        return wait

    def _take(self, chunk: bytes) -> int | None:
        """Pass on output read from the terminal; return the prompt's status once seen."""
        data = self._echo.feed(chunk) if self._echo else chunk
        watch = self._sentinels.replaced
        if watch is not None:
            # The shell's watch says it was replaced: what follows is another program's.
            data, gone, _ = watch.split(data)
            self.replaced = self.replaced or gone
        if not self._begun:
            before, self._begun, after = self._sentinels.begin.split(data)
            data = before + after
        if self._end is not None and self._ended is None:
            # Only the end mark ends a running block: its output may print a prompt.
            before, self._ended, data = self._end.take(data)
            if self._ended is None and self.stop is not None:
                # Being stopped, bash may drop the rest of the line, end mark included, and
                # print its prompt; a command that ends (sudo, at Ctrl-C) lets the mark come.
                text, status = self._sentinels.prompt.feed(self._release() + before)
                self.output.feed(text)
                return status
            if self._ended is None:
                self._pass_on(before)
                return None
            self.output.feed(self._release() + before)
        if self._ended is not None:
            # The shell prints nothing between the end mark and its prompt.
            return self._ended if self._sentinels.prompt.feed(data)[1] is not None else None
        text, status = self._sentinels.prompt.feed(data)
        self.output.feed(text)
        return status

    def _watch(self, outbox: bytearray, deadline: float | None, now: float) -> None:
        """Act on interrupts, the deadline and a stop under way; else look for input waits."""
        if self._interrupts.count > self._seen_interrupts:
            self._seen_interrupts = self._interrupts.count
            if self.stop is None:
                self._begin_stop(Outcome.INTERRUPTED, now)
            else:
                self.stop.next_at = now
        if self.stop is None and deadline is not None and now >= deadline:
            self._begin_stop(Outcome.TIMEOUT, now)
        if self.stop is not None:
            if now >= self.stop.next_at:
                self.stop.escalate(now)
            return
        if (
            self._handover is not None
            or now - self._last_io < self._detector.min_quiet
            or not self._begun
            or now < self._next_probe
        ):
            return
        # Back off on long quiet stretches: each probe may scan /proc.
        self._next_probe = now + min(1.0, max(0.2, (now - self._last_io) / 5))
        wait = self._waits_for_input(now)
        if wait is None:
            return
        if self._process.replaced():
            self.replaced = True  # `exec bash`: our shell, its prompt and state are gone
        elif self._prompt_status is not None:
            self._at_prompt = True  # bash itself reads at its prompt
        else:
            self._respond(outbox, now, wait)

    def _waits_for_input(self, now: float) -> Wait | None:
        """Ask the detector whether (and how surely) the quiet command waits for input."""
        process = self._process
        probe = Probe(
            fd=process.fd,
            shell_pid=process.pid if process.pid is not None else -1,
            tty=process.tty,
            quiet=now - self._last_io,
            tail=self.output.window,
            expects=tuple(a.expect.encode() for a in self._unused),
        )
        # A probe can race the prompt: the sentinel is written before bash reads again.
        wait = self._detector.detect(probe)
        return None if wait is None or process.pending_output() else wait

    def _respond(self, outbox: bytearray, now: float, wait: Wait) -> None:
        """Answer a command waiting for input, hand it to the operator, or stop it.

        Only a certain wait is stopped: a guess may be a busy command that printed a
        label, and interrupting it on a guess could leave a migration half done.
        """
        if self._answer(outbox):
            self._last_io = time.monotonic()  # asking for an answer may have taken a while
        elif self._operator is not None:
            self._handover = Handover(self._operator)
            self._handover_certain = wait is Wait.CERTAIN
            self.handed_over = True
            self._poller.register(self._handover.fd, select.POLLIN)
            if self._operator.on_handover is not None:
                self._operator.on_handover(self.output.last_line())
        elif wait is Wait.CERTAIN:
            self._begin_stop(Outcome.NEEDS_INPUT, now)

    def _answer(self, outbox: bytearray) -> bool:
        """Type the answer declared for the prompt shown, if any; return True once typed.

        An answer used is gone: a prompt that comes back (a wrong password) is not typed
        into again, so it cannot lock an account.
        """
        window = self.output.window
        answer = next((a for a in self._unused if a.expect.encode() in window), None)
        if answer is None:
            return False
        self._unused.remove(answer)
        send = answer.send if answer.ask is None else answer.ask(self.output.last_line())
        if send is None or CONTROL_RE.search(send):
            return False
        if answer.secret:
            self.output.mask(send)
        self.answered.append(answer.expect)
        outbox += send.encode() + b"\n"
        self.output.forget()
        return True

    def _end_handover(self, handover: Handover, now: float) -> None:
        """The operator's input ended: give the terminal back; stop a certain wait only.

        A guessed wait goes on as if nobody were there (its end or its timeout decides),
        and the operator, whose input is gone, is not handed the keyboard again.
        """
        self._poller.unregister(handover.fd)
        handover.close()
        self._handover = None
        self._operator = None
        if self.stop is None and self._handover_certain:
            self._begin_stop(Outcome.NEEDS_INPUT, now)

    def _begin_stop(self, outcome: Outcome, now: float) -> None:
        self.stop = self._new_stop(outcome)
        self.stop.next_at = now
        self.stop.escalate(now)
