"""The run journal: an append-only record of who ran what, where, when, and how it ended.

One JSON object per line, each written with a single ``write`` on an ``O_APPEND`` file, so a
record is whole or absent even when the process is killed (a torn last line is skipped when
reading). Records that gate a tick are also fsynced first: a tick never outruns the journal.

Events, in the order a run writes them::

    run-start     who, guide, pid, steps, inputs (non-secret values), tabs, transcript
    tab           step, group (file:line), label, how (flag | only | asked | remembered |
                  changed)
    input         name, value (non-secret only) or secret=true, how (asked)
    step-start    step, title                                              (fsynced)
    connect       step, origin, host, choice (connect | by-hand | skip), how (asked |
                  unattended)
    connected     step, host
    action-start  step, origin (file:line), host, kind, tabs
    action-end    step, origin, host, status, outcome, duration, …
    action-confirmed  step, origin, choice (run | skip | by-hand | skip-failed |
                  by-hand-failed), how (asked | option | connection-declined |
                  input-interrupted), option (--accept)
    action-edited step, origin, after (failure, when edited to retry it)
    step-confirmed    step, choice (done | skip), how (asked | option), option (--by-hand)
    step-unknown  step, reason   (its shell's connection dropped mid-block; fsynced)
    step-skipped  step, why (ticked by hand: a person ticked it while the run waited)
    shell-state   step, host, cwd, set, unset, functions, secret, exported  (a host's
                  shell after a block that changed it: what the guide changed there)
    shell-restored  step, host, ok, asked, lost  (that state given to a fresh shell)
    part-start / part-end  step, parts, result, duration  (--only N.M: no step-end)
    step-end      step, result (done | skipped | failed | stopped | interrupted | error),
                  duration                                                 (fsynced)
    tick          step, line              (after the guide's box was written)
    tick-refused  step, reason                                             (fsynced)
    tick-failed   step, reason, guide_sha256  (the guide could not be written; fsynced)
    step-resolved step, choice            (what to do with an unknown outcome; fsynced)
    run-end       result, duration                                         (fsynced)

``runbook check``, ``uncheck`` and ``reset`` write to the same journal, one record per box
they changed, under a run id of their own (no ``run-start``), whether or not a run holds
the guide::

    check         step, how (check), by (the person), sub (the sub-checklist item's number,
                  for ``check N.M``)
    uncheck       step, how (uncheck | reset), by, sub

A click on a box of the page ``runbook serve`` shows writes the same records with how
``serve``.

Every record also carries ``time``, ``run`` (the run id) and ``who`` (``person@host``, the
person as ``runbook.users.person`` names them).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from runbook.errors import LockedError
from runbook.lock import LockHolder, read_holder
from runbook.model import Runbook
from runbook.runtime import folder_of, journal_path, run_lock_file
from runbook.users import person, this_host, who


def now() -> str:
    """Return the current time, ISO 8601 with UTC offset, to the millisecond."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def new_run_id() -> str:
    """Return a short, sortable, unique run id."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


class Journal:
    """Append records for one run."""

    def __init__(
        self,
        path: Path,
        run_id: str,
        *,
        user: str | None = None,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        """Open (creating, private) the journal at ``path`` for run ``run_id``.

        ``redact`` masks secrets in every serialised record: a second line of defence, as
        execution never passes a secret value in the first place.
        """
        self.path = path
        self.run_id = run_id
        self.who = user or who()
        self._redact = redact
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def write(self, event: str, *, sync: bool = False, **fields: Any) -> None:
        """Append one record; with ``sync``, make it durable before returning."""
        if self._fd < 0:
            raise ValueError("the journal is closed")
        record = {"time": now(), "run": self.run_id, "who": self.who, "event": event, **fields}
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        if self._redact is not None:
            line = self._redact(line)
        data = (line + "\n").encode("utf-8", "surrogateescape")
        # One write per record: O_APPEND makes it land whole after every earlier record.
        written = os.write(self._fd, data)
        if written != len(data):  # a full disk; finish the line so later records parse
            os.write(self._fd, data[written:])
        if sync:
            os.fsync(self._fd)

    def close(self) -> None:
        """Close the file (records are already on disk)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the journal's records, skipping a torn last line."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            continue  # a line cut short by a crash
        if isinstance(record, dict):
            yield record


def run_ids(path: Path) -> list[str]:
    """Return the ids of the runs in the journal, oldest first."""
    return [str(r.get("run")) for r in read_records(path) if r.get("event") == "run-start"]


@dataclass(frozen=True)
class StepState:
    """What the journal last says about one step, across all runs."""

    step: int
    """The step number."""
    event: str
    """The latest step event: ``step-start``, ``step-end``, ``step-resolved`` or
    ``tick-refused`` (a ``tick`` or ``tick-failed`` reads as the ``step-end`` it follows)."""
    result: str | None
    """The result of the latest ``step-end`` (``done``, ``failed`` …), when that is the latest."""
    ticked: bool
    """Whether a ``tick`` record follows the latest ``step-end``."""
    run: str
    """The run that wrote the latest record."""
    time: str
    """When the latest record was written."""
    who: str
    """Who wrote it (``user@host``)."""
    guide: str | None = None
    """SHA-256 of the guide's bytes when a ``done`` step ended, before its tick (or when
    its tick failed)."""

    @property
    def unknown(self) -> bool:
        """Whether the step started and its end was never recorded."""
        return self.event == "step-start"

    @property
    def done_unticked(self) -> bool:
        """Whether the step ended ``done`` and the run stopped before recording its tick."""
        return self.event == "step-end" and self.result == "done" and not self.ticked


_STEP_EVENTS = frozenset(
    {"step-start", "step-end", "step-resolved", "tick", "tick-refused", "tick-failed"}
)


def step_states(path: Path) -> dict[int, StepState]:
    """Fold the journal into the latest state of each step."""
    states: dict[int, StepState] = {}
    whom: dict[str, str] = {}
    for rec in read_records(path):
        run = str(rec.get("run"))
        event = rec.get("event")
        if event == "run-start":
            whom[run] = str(rec.get("who", "?"))
        step = rec.get("step")
        if event not in _STEP_EVENTS or not isinstance(step, int) or isinstance(step, bool):
            continue
        previous = states.get(step)
        result: str | None = None
        ticked = False
        guide = rec.get("guide_sha256")
        if event == "tick":
            # A tick keeps the step-end it confirms; it only marks it as recorded.
            if previous is not None and previous.event == "step-end":
                event, result, guide = "step-end", previous.result, previous.guide
            ticked = True
        elif event == "tick-failed":
            # Only a done step is ticked: it stays done, unticked, as of this record, so the
            # next run ticks it when the guide is as this record saw it.
            event, result = "step-end", "done"
        elif event == "step-end":
            result = str(rec.get("result"))
        states[step] = StepState(
            step=step,
            event=str(event),
            result=result,
            ticked=ticked,
            run=run,
            time=str(rec.get("time")),
            who=str(rec.get("who") or whom.get(run, "?")),
            guide=str(guide) if guide else None,
        )
    return states


def shell_states(path: Path, before: int) -> dict[str, dict[str, Any]]:
    """Return each host's last ``shell-state`` record as of the end of the latest step done
    before step ``before`` (the state that step starts from), by host key.

    States recorded inside a step that did not end done are left out: that step runs again
    from its start. A reset forgets them all.
    """
    current: dict[str, dict[str, Any]] = {}
    found: dict[str, dict[str, Any]] = {}
    for rec in read_records(path):
        event = rec.get("event")
        if event == "shell-state" and isinstance(rec.get("host"), str):
            current[rec["host"]] = rec
        elif event == "step-end" and rec.get("result") == "done":
            step = rec.get("step")
            if isinstance(step, int) and step < before:
                found = dict(current)
        elif event == "uncheck" and rec.get("how") == "reset":
            current, found = {}, {}
    return found


def unknown_steps(path: Path) -> list[StepState]:
    """Return the steps whose latest record is a start with no end, by step number."""
    return [s for _, s in sorted(step_states(path).items()) if s.unknown]


@dataclass(frozen=True)
class LastRun:
    """What the journal says about the most recent run."""

    run: str
    """The run id."""
    who: str
    """``user@host``."""
    pid: int | None
    """The process id of the run on its host."""
    started: str
    """When it started."""
    ended: str | None
    """When it ended, or None if it has no end record (killed, or still running)."""
    result: str | None
    """``done``, ``failed``, ``stopped``, ``interrupted`` …, or None without an end record."""
    duration: float | None
    """Seconds from start to end, when it ended."""
    steps: tuple[tuple[int, str, float], ...]
    """Per step that ended: number, result, seconds, in the order they ended."""
    unknown: tuple[int, ...] = ()
    """Steps of any run whose outcome is unknown (started, no recorded end)."""
    running: bool = False
    """Whether the run still holds the guide's lock (set by the caller, who knows the lock)."""
    in_progress: tuple[int, ...] = ()
    """Steps the live run started and has not ended yet: running, not unknown."""

    def to_json(self) -> dict[str, Any]:
        """Return the run as plain data (``runbook status --json``)."""
        return {
            "run": self.run,
            "who": self.who,
            "pid": self.pid,
            "started": self.started,
            "ended": self.ended,
            "result": self.result,
            "duration": self.duration,
            "steps": [{"number": n, "result": r, "duration": d} for n, r, d in self.steps],
            "unknown": list(self.unknown),
            "running": self.running,
            "in_progress": list(self.in_progress),
        }

    def text(self) -> str:
        """Describe the run for a person, in a few lines."""
        if self.result is not None:
            took = f" in {_seconds(self.duration)}" if self.duration is not None else ""
            head = f"last run: {self.result}{took}, by {self.who} at {self.started}"
        elif self.running:
            head = f"last run: still running (pid {self.pid}), by {self.who} since {self.started}"
        else:
            head = f"last run: ended without a record (killed?), by {self.who} at {self.started}"
        lines = [head]
        if self.steps:
            lines.append(
                "  steps: " + ", ".join(f"{n} {r} ({_seconds(d)})" for n, r, d in self.steps)
            )
        if self.in_progress:
            numbers = ", ".join(str(n) for n in self.in_progress)
            lines.append(f"  running now: step {numbers}")
        if self.unknown:
            numbers = ", ".join(str(n) for n in self.unknown)
            lines.append(
                f"  unknown outcome: step {numbers} started and never recorded an end; "
                "the next exec asks (or --retry-unknown / --skip-unknown)"
            )
        return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:.1f}s"


def last_run(path: Path) -> LastRun | None:
    """Summarise the most recent run in the journal, or None when there is none."""
    current: dict[str, Any] | None = None
    steps: dict[int, tuple[str, float]] = {}
    end: dict[str, Any] | None = None
    for rec in read_records(path):
        event = rec.get("event")
        if event == "run-start":
            current, steps, end = rec, {}, None
        elif current is None or rec.get("run") != current.get("run"):
            continue
        elif event == "step-end" and isinstance(rec.get("step"), int):
            steps.pop(rec["step"], None)  # keep the order steps ended in
            steps[rec["step"]] = (str(rec.get("result")), _float(rec.get("duration")))
        elif event == "run-end":
            end = rec
    if current is None:
        return None
    pid = current.get("pid")
    return LastRun(
        run=str(current.get("run")),
        who=str(current.get("who", "?")),
        pid=pid if isinstance(pid, int) else None,
        started=str(current.get("time")),
        ended=str(end.get("time")) if end else None,
        result=str(end.get("result")) if end else None,
        duration=_float(end.get("duration")) if end else None,
        steps=tuple((n, r, d) for n, (r, d) in steps.items()),
        unknown=tuple(s.step for s in unknown_steps(path)),
    )


def _float(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def last_timer_start(path: Path, name: str) -> tuple[float, int | None] | None:
    """Return when (epoch seconds) and in which step timer ``name`` last started, in any run."""
    began: tuple[float, int | None] | None = None
    for rec in read_records(path):
        if rec.get("event") == "timer" and rec.get("name") == name:
            if rec.get("action") == "start" and isinstance(rec.get("at"), int | float):
                step = rec.get("step")
                began = (float(rec["at"]), step if isinstance(step, int) else None)
            elif rec.get("action") == "stop":
                began = None
    return began


def last_run_of(book: Runbook) -> LastRun | None:
    """Return what the journal says about ``book``'s last run (for ``runbook status``).

    Reads only: creates no folder and takes no lock. ``running`` is set when a live process
    still holds the guide's run lock.
    """
    runtime = folder_of(book)
    found = last_run(journal_path(runtime, book.path))
    if found is None:
        return None
    if found.ended is not None or live_run_holder(book) is None:
        return found
    # The live run's own started step is running, not an unknown outcome.
    unknown = unknown_steps(journal_path(runtime, book.path))
    return replace(
        found,
        running=True,
        unknown=tuple(s.step for s in unknown if s.run != found.run),
        in_progress=tuple(s.step for s in unknown if s.run == found.run),
    )


def live_run_holder(book: Runbook) -> LockHolder | None:
    """Return who holds ``book``'s run lock, when a live process does; reads only.

    A cheap look, not the lock: ``exec`` uses it to refuse a held guide before asking
    anything, and still takes the lock itself before it writes.
    """
    holder = read_holder(run_lock_file(folder_of(book), book.path))
    if holder is None or holder.kind != "run" or holder.is_stale():
        return None
    return holder


def refuse_live_run(book: Runbook) -> None:
    """Refuse ``book`` while another live run holds it, naming the holder (LockedError)."""
    holder = live_run_holder(book)
    if holder is None or (holder.pid == os.getpid() and holder.host == this_host()):
        return
    raise LockedError(
        f"{book.path} is locked by a run: {holder.describe()}",
        path=book.path,
        hint="wait for it to finish (nothing was asked or run); 'runbook status' shows where it is",
    )


@dataclass(frozen=True)
class Mark:
    """Who set a step's box, and how, as the journal records it."""

    how: str
    """``exec`` (a run ticked it), ``check`` (``runbook check``) or ``serve`` (a click on
    the page ``runbook serve`` shows)."""
    by: str
    """The person (``runbook.users.person`` of the process that wrote the record)."""
    at: str
    """When (ISO 8601)."""


def step_marks(path: Path) -> dict[int, Mark]:
    """Return, per step, the record that explains its ticked box: the latest tick or check,
    unless an uncheck (or reset) came after it. A ticked box with no mark was ticked in the
    file itself."""
    marks: dict[int, Mark] = {}
    for rec in read_records(path):
        event, step = rec.get("event"), rec.get("step")
        if not isinstance(step, int) or isinstance(step, bool) or rec.get("sub") is not None:
            continue
        if event in ("tick", "check"):
            by = rec.get("by") or str(rec.get("who", "?")).rpartition("@")[0] or "?"
            how = "exec" if event == "tick" else "serve" if rec.get("how") == "serve" else "check"
            marks[step] = Mark(how=how, by=str(by), at=str(rec.get("time")))
        elif event == "uncheck":
            marks.pop(step, None)
    return marks


def step_marks_of(book: Runbook) -> dict[int, Mark]:
    """Return ``step_marks`` of ``book``'s journal; reads only, creates nothing."""
    return step_marks(journal_path(folder_of(book), book.path))


def record_hand_changes(
    journal: Path, changes: Iterable[tuple[int, int | None, bool]], how: str
) -> None:
    """Append a ``check`` or ``uncheck`` record per changed box: (step, sub-item number or
    None, whether it is now ticked), all made ``how`` (``check``, ``uncheck``, ``reset``)."""
    wanted = list(changes)
    if not wanted:
        return
    records = Journal(journal, new_run_id())
    try:
        for step, sub, checked in wanted:
            extra = {} if sub is None else {"sub": sub}
            event = "check" if checked else "uncheck"
            records.write(event, sync=True, step=step, how=how, by=person(), **extra)
    finally:
        records.close()
