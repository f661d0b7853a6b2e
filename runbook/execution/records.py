"""The run's records, in their safe order: the journal, the transcript and the guide's ticks.

For every action: journal start → run → journal end. For every step: journal end (fsynced)
→ tick → tick record. A tick therefore never outruns the journal, and a run killed between
the end record and the tick is finished by the next run (the journal says the step was
done). What the journal says about earlier runs (unknown outcomes, unticked steps, timers)
is read here too.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any, BinaryIO

from runbook import runtime
from runbook.checklist import snapshot
from runbook.errors import ConcurrentEditError, StateError
from runbook.execution.shellstate import State
from runbook.journal import (
    Journal,
    StepState,
    last_timer_start,
    new_run_id,
    run_ids,
    shell_states,
    step_states,
)
from runbook.lock import Lock, lock_name
from runbook.model import Action, Runbook, Step
from runbook.state import (
    Snapshot,
    Tick,
    apply_ticks,
    check_writable,
    digest,
    file_digest,
    item_now,
)


class Records:
    """The journal and transcript of one run of a guide, and the ticks it makes."""

    def __init__(self, book: Runbook, redact: Callable[[str], str]) -> None:
        """Prepare the records of ``book``; ``redact`` masks secrets in every record."""
        self.book = book
        self._redact = redact
        # Ticks always name lines of the guide as loaded; apply_ticks follows edits from there.
        self._snapshot = snapshot(book)
        self._journal: Journal | None = None
        self.transcript: BinaryIO | None = None
        """The transcript, once open: the shells write the raw output there."""
        self.transcript_path: Path | None = None
        """Where the transcript is, once open."""
        # The guide as last read for hand ticks, by its file's (inode, size, mtime).
        self._seen: tuple[tuple[int, int, int], Snapshot] | None = None

    def check_writable(self) -> None:
        """Refuse a guide whose checklist this run could not write, before anything runs.

        Found out at the first tick, step 1 would already have run. Only the guide's own
        file is written (the overview of a guide spanning pages), and only when it has an
        item to tick.
        """
        lines = [s.item.origin.line for s in self.book.steps if s.item is not None]
        if lines:
            check_writable(self.book.path, line=min(lines))

    def lock(self, command: str) -> Lock:
        """Return the lock that keeps a second run of the guide out."""
        return Lock(
            runtime.locks(runtime.prepare(self.book)),
            lock_name(self.book.path, "run"),
            kind="run",
            subject=self.book.path,
            command=command,
        )

    def open(self, **start: Any) -> None:
        """Open the journal and a new transcript; record the run's start (fsynced) with the
        fields ``start`` (steps, inputs, tabs …)."""
        folder = runtime.prepare(self.book)
        run_id = new_run_id()
        self._journal = Journal(
            runtime.journal_path(folder, self.book.path), run_id, redact=self._redact
        )
        path = runtime.transcript_path(folder, run_id)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self.transcript = os.fdopen(fd, "ab", buffering=0)
        self.transcript_path = path
        self._journal.write(
            "run-start",
            sync=True,
            guide=str(self.book.path),
            pid=os.getpid(),
            **start,
            transcript=str(path),
        )

    @property
    def journal(self) -> Journal:
        """The open journal."""
        if self._journal is None:
            raise RuntimeError("the journal is not open")
        return self._journal

    def write(self, event: str, *, sync: bool = False, **fields: Any) -> None:
        """Append one record; with ``sync``, make it durable before returning."""
        self.journal.write(event, sync=sync, **fields)

    def confirmed(self, step: Step, action: Action, choice: str, **how: Any) -> None:
        """Record what became of a block a person (or an option) decided about."""
        self.write(
            "action-confirmed", step=step.number, origin=str(action.origin), choice=choice, **how
        )

    def mark(self, text: str) -> None:
        """Write a marker line into the transcript, so its output can be told apart."""
        if self.transcript is not None:
            # A host's key holds its ssh line's values, which may be secret.
            self.transcript.write(f"\n##### runbook: {self._redact(text)}\n".encode())

    def close(self) -> None:
        """Close the journal and the transcript (their records are already written)."""
        if self._journal is not None:
            self._journal.close()
        if self.transcript is not None:
            self.transcript.close()

    # -- steps ------------------------------------------------------------------------------------

    def end_step(self, step: Step, result: str, duration: float) -> None:
        """Record that ``step`` ended, durably, before any tick."""
        # The guide as it is before the tick: a later run knows exactly whether anyone
        # changed it since, should this run die before ticking.
        extra = {"guide_sha256": file_digest(self.book.path)} if result == "done" else {}
        self.write(
            "step-end",
            sync=True,
            step=step.number,
            result=result,
            duration=round(duration, 3),
            **extra,
        )

    def tick(self, step: Step) -> bool:
        """Tick ``step`` in the guide, then record the tick; False when it has no item.

        Raise ConcurrentEditError (recorded, fsynced) when its item changed meanwhile, and
        a StateError (recorded as ``tick-failed``, fsynced) when the guide could not be
        written: the step stays done, so the next run that can write it ticks it.
        """
        if step.item is None:
            return False
        tick = Tick(step.item.origin.path, step.item.origin.line, True, step.item.text)
        try:
            written = apply_ticks(
                self.book.path,
                [tick],
                snapshot=self._snapshot,
                lock_dir=runtime.locks(runtime.prepare(self.book)),
            )
            # The guide as this tick left it: the next look for hand ticks need not read it.
            with suppress(OSError):
                done = os.stat(self.book.path)
                self._seen = ((done.st_ino, done.st_size, done.st_mtime_ns), written)
        except ConcurrentEditError as exc:
            self.write("tick-refused", sync=True, step=step.number, reason=exc.message)
            raise
        except StateError as exc:
            # The guide as it is now: unchanged when the next run comes, that run ticks
            # the step without asking, and without running it again.
            self.write(
                "tick-failed",
                sync=True,
                step=step.number,
                reason=exc.message,
                guide_sha256=file_digest(self.book.path),
            )
            raise StateError(
                f"step {step.number} is done (its end is in the journal), but its box could "
                f"not be ticked: {exc.message}",
                path=exc.path,
                line=exc.line,
                hint=f"{exc.hint or 'fix that'}; the next run then ticks step "
                f"{step.number} without running it again",
            ) from exc
        self.write("tick", step=step.number, line=step.item.origin.line)
        return True

    def ticked_meanwhile(self, step: Step) -> bool:
        """Whether a person ticked ``step`` in the guide since the run read it (in an
        editor, while the run waited); unsure (the item is gone or unreadable) is False."""
        if step.item is None or step.item.checked:
            # Ticked when the run began: --redo, --from or --only run it on purpose.
            return False
        current = self._current()
        if current is None:
            return False
        tick = Tick(step.item.origin.path, step.item.origin.line, True, step.item.text)
        try:
            return item_now(tick, self._snapshot, current).checked
        except ConcurrentEditError:
            return False

    def _current(self) -> Snapshot | None:
        """Return the guide as it is now; read again only when its file changed."""
        try:
            stat = os.stat(self.book.path)
            seen = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
            if self._seen is None or seen != self._seen[0]:
                self._seen = (seen, Snapshot.read(self.book.path))
        except (OSError, StateError):
            return None
        return self._seen[1]

    def shell_states(self, before: int) -> dict[str, State]:
        """Return the state each host's shell had when step ``before`` last could start:
        what the guide had changed there by the end of the latest step done before it."""
        found = {}
        for host, record in shell_states(self.journal.path, before).items():
            state = State.of(record)
            if state is not None:
                found[host] = state
        return found

    def states(self) -> dict[int, StepState]:
        """Return what the journal last says about each step, across runs."""
        return step_states(self.journal.path)

    def unfinished(self, steps: Sequence[Step]) -> Iterator[tuple[Step, StepState, bool]]:
        """Yield the steps the previous run completed without ticking them, as (step, its
        state, whether the guide changed since), settling the simpler cases as it goes.

        A step recorded ``done`` by the previous run without a tick record (the run was
        killed before the tick, or the tick failed: ``tick-failed``) was done. When the
        guide has not changed since that record, the tick never happened: the caller
        ticks it. When its box is ticked, only the record was missing: it is written here.
        When the guide changed since (a person may have cleared the box on purpose), the
        step is like an unknown outcome: asked about, never guessed. Older runs are not
        trusted for this: a reset since then must stand. An unknown outcome whose box a
        person ticked is settled here too.
        """
        runs = run_ids(self.journal.path)
        previous = runs[-2] if len(runs) >= 2 else None
        states = self.states()
        for step in steps:
            state = states.get(step.number)
            if state is None or step.item is None:
                continue
            if state.unknown and step.checked:
                # A person looked and ticked it: the unknown outcome is settled.
                self.write("step-resolved", sync=True, step=step.number, choice="checked-by-hand")
                continue
            if not state.done_unticked or state.run != previous:
                continue
            if step.checked:
                self.write("tick", step=step.number, line=step.item.origin.line)
                continue
            current = digest(self.book.rendered.source)
            changed = (
                state.guide != current
                if state.guide
                else _modified_after(self.book.path, state.time)
            )
            yield step, state, changed

    def timer_start(self, name: str) -> tuple[float, int | None] | None:
        """Return when and in which step timer ``name`` last started, in any run."""
        return last_timer_start(self.journal.path, name)


def _modified_after(path: Path, when: str) -> bool:
    """Whether ``path`` was modified at or after the journal time ``when`` (or it is unclear)."""
    try:
        stamp = dt.datetime.fromisoformat(when).timestamp()
        return os.stat(path).st_mtime >= stamp
    except (OSError, ValueError):
        return True
