"""``runbook exec``: walk a guide step by step, run what may run, ask about the rest.

The runner owns the bookkeeping (lock, journal, ticks, summary) and the conversation with
the operator; shells belong to ``runbook.session``. Order of records for every action:
journal start → run → journal end; for every step: journal end (fsynced) → tick → tick
record. A tick therefore never outruns the journal, and a run killed between the end record
and the tick is finished by the next run (the journal says the step was done).

Signals: the first Ctrl-C stops the running command and the operator decides (retry, skip,
quit); a second one, or SIGTERM/SIGHUP, ends the run. Neither ever cuts the bookkeeping of a
step in half: those few writes defer the interruption until they are complete.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import os
import re
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import BinaryIO

from runbook.actions import is_secret, prompt_commands
from runbook.checklist import runtime_dir, snapshot
from runbook.errors import (
    EXIT_INTERRUPTED,
    EXIT_NEEDS_OPERATOR,
    EXIT_OK,
    ConcurrentEditError,
    GuideError,
    Interrupted,
    NeedsOperator,
    RunbookError,
    StepFailed,
    UsageError,
)
from runbook.inputs import check_value, placeholders_in, preview, shell_var, substitute
from runbook.journal import (
    Journal,
    StepState,
    journal_path,
    last_timer_start,
    new_run_id,
    run_ids,
    step_states,
    transcript_path,
)
from runbook.lock import Lock, lock_name
from runbook.model import (
    Action,
    Directive,
    Origin,
    Placeholder,
    Runbook,
    Step,
    TabRef,
    rel,
)
from runbook.redact import Redactor
from runbook.shell import (
    Answer,
    BlockResult,
    Operator,
    Outcome,
    Session,
    SessionError,
    local_transport,
    ssh_transport,
)
from runbook.site import Site
from runbook.state import Tick, apply_ticks
from runbook.ui import Console, format_duration

# Output kept per `$ ` command for comparison; longer output fails the comparison.
_CAPTURE_LIMIT = 1 << 20
# Step results, as the journal's step-end records and the summary name them.
_MARKS = {"done": "✓", "failed": "✗", "skipped": "–", "stopped": "■", "interrupted": "■"}
_COLOURS = {
    "done": "green",
    "failed": "red",
    "interrupted": "red",
    "error": "red",
    "stopped": "yellow",
    "skipped": "yellow",
}


@dataclass(frozen=True)
class ExecOptions:
    """How to run a guide."""

    sets: Mapping[str, str] = field(default_factory=dict)
    """Values for placeholders (``--set``)."""
    tabs: tuple[str, ...] = ()
    """Tab labels chosen ahead (``--tab``), ``*`` wildcards allowed."""
    from_step: int | None = None
    """Start at this step; it and every later step run, ticked or not (``--from``)."""
    only: tuple[int, ...] = ()
    """Run just these steps, ticked or not (``--only``)."""
    redo: bool = False
    """Run ticked steps again (``--redo``)."""
    interactive: bool = True
    """Whether a person can be asked (a terminal and no ``--yes``)."""
    dry_run: bool = False
    """Show the plan, run nothing."""
    timeout: float | None = None
    """Default seconds per block (``--timeout``); a block's own ``timeout`` wins."""
    retry_unknown: bool = False
    """Run steps with an unknown outcome again without asking."""
    skip_unknown: bool = False
    """Skip steps with an unknown outcome without asking."""
    cwd: Path | None = None
    """Folder the shells start in; None for the site root (the folder of ``mkdocs.yml``, or
    of a lone guide), so relative paths in a guide mean the same wherever exec is started."""


@dataclass(frozen=True)
class StepResult:
    """How one step went, for the summary."""

    number: int
    """The step number."""
    title: str
    """The step title."""
    result: str
    """``done``, ``skipped``, ``failed``, ``stopped``, ``interrupted``, ``error`` or
    ``already done``."""
    duration: float = 0.0
    """Seconds the step took in this run."""
    note: str = ""
    """A short remark for the summary (``tick refused``, ``unknown outcome`` …)."""


@dataclass(frozen=True)
class _Unit:
    """What one shell round trip runs: a whole block, or one command of a ``$ `` block."""

    action: Action
    """The block it comes from."""
    index: int
    """Its position in the block (0 for a whole block)."""
    origin: Origin
    """Where failures point: the block's fence, or the ``$ `` command's line."""
    code: str
    """Shell code, placeholders replaced by variable references."""
    expected: list[str] | None
    """Output lines it must print (``$ `` blocks), else None."""


class _Quit(Exception):
    """The operator chose to stop the run."""

    def __init__(self, code: int = EXIT_NEEDS_OPERATOR) -> None:
        super().__init__(code)
        self.code = code


class Runner:
    """Run one guide once."""

    def __init__(
        self,
        book: Runbook,
        site: Site,
        options: ExecOptions,
        console: Console | None = None,
        guide_arg: str = "",
    ) -> None:
        """Prepare a run; ``console`` is given the runner's secret masking."""
        self.book = book
        self.site = site
        self.options = options
        self.redactor = Redactor()
        self.console = console or Console()
        self.console.redact = self.redactor.redact_text
        self.guide_arg = guide_arg or rel(book.path)
        self.values: dict[str, str] = {}
        self._secret_names = {p.name for p in book.inputs if p.secret}
        self.tab_choice: dict[Origin, str] = {}
        self._tab_how: dict[Origin, str] = {}
        self._tabs_journaled: set[Origin] = set()
        self.labels: list[str] = list(options.tabs)
        self._asked_labels: set[str] = set()
        self.sessions: dict[str, Session] = {}
        self._defined: dict[str, set[str]] = {}
        self.results: list[StepResult] = []
        # Ticks always name lines of the guide as loaded; apply_ticks follows edits from there.
        self.snapshot = snapshot(book)
        self.journal: Journal | None = None
        self.transcript: BinaryIO | None = None
        self._transcript_path: Path | None = None
        self._interrupts = 0
        self._running: Session | None = None
        self._critical = 0
        self._deferred = False
        self._skipped_failure = False
        self._unsure: dict[int, StepState] = {}
        self.subguides: dict[Path, Runbook] = {}
        self.timers: dict[str, tuple[float, int | None]] = {}
        self.timed: list[tuple[str, float, str]] = []  # name, seconds, where
        self._context: list[str] = []  # "repeating step 4", "Installation, step 3" …
        self._outer: Step | None = None  # the guide's step being run

    # -- entry point --------------------------------------------------------------------------

    def run(self) -> int:
        """Run the guide; return the exit code or raise a RunbookError saying what stopped it."""
        self._check_guide()
        self._load_subguides()
        self._check_tab_flags()
        steps = self._select()
        self._collect_values(steps)
        if self.options.dry_run:
            self._dry_run(steps)
            return EXIT_OK
        lock = Lock(
            runtime_dir(self.book) / "locks",
            lock_name(self.book.path, "run"),
            kind="run",
            subject=self.book.path,
            command=f"runbook exec {self.guide_arg}",
        )
        with lock, self._signals():
            self._open_records(steps)
            journal = self._journal
            started = time.monotonic()
            failure: BaseException | None = None
            try:
                self._recover_ticks()
                steps = [self.book.step(s.number) or s for s in steps]
                self._run_steps(self._resolve_unknown(steps))
            except BaseException as exc:  # recorded below, then raised again
                failure = exc
            result = "done" if failure is None else _result_of(failure)
            total = time.monotonic() - started
            # From here on a signal only gets noted: the run is ending and its records with it.
            self._critical += 1
            try:
                self._close_sessions()
            finally:
                journal.write("run-end", sync=True, result=result, duration=round(total, 3))
                self._close_records()
        self._summary(total)
        if failure is None:
            return EXIT_OK
        if isinstance(failure, _Quit):
            self._quiet_line(f"stopped; run '{self._resume_command()}' to go on")
            return failure.code
        if isinstance(failure, KeyboardInterrupt):
            failure = Interrupted(
                "interrupted; the running step was not ticked", hint=self._resume_hint()
            )
        if isinstance(failure, RunbookError):
            raise self._masked(failure) from None
        raise failure

    # -- planning ------------------------------------------------------------------------------

    def _check_guide(self) -> None:
        errors = self.book.errors
        if errors:
            first = errors[0]
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise GuideError(
                first.message + more,
                path=first.origin.path if first.origin else self.book.path,
                line=first.origin.line if first.origin else None,
                hint=f"run 'runbook lint {self.guide_arg}' to see every problem",
            )
        for step in self.book.steps:
            for action in step.actions:
                if (
                    action.executable
                    and action.host != "local"
                    and action.host not in self.site.hosts
                ):
                    raise GuideError(
                        f"host {action.host!r} is not defined",
                        path=action.origin.path,
                        line=action.origin.line,
                        hint="add it under 'plugins: - runbook: hosts:' in mkdocs.yml "
                        "(e.g. new: {ssh: admin@10.0.0.5}, or new: local)",
                    )

    def _all_labels(self) -> list[str]:
        labels: dict[str, None] = {}
        for step in self.book.steps:
            for path in step.tab_paths:
                labels.setdefault(path[-1].label, None)
        return list(labels)

    def _check_tab_flags(self) -> None:
        """Refuse a ``--tab`` that matches no tab: a typo would otherwise pass unnoticed."""
        labels = self._all_labels()
        for flag in self.options.tabs:
            if not any(label == flag or fnmatch.fnmatchcase(label, flag) for label in labels):
                known = ", ".join(_quote_label(label) for label in labels) or "none"
                raise UsageError(
                    f"--tab {_quote_label(flag)} matches no content tab of the guide "
                    f"(tabs: {known})",
                    path=self.book.path,
                    hint="give one of the labels above (wildcards like 'My*' work)",
                )

    def _select(self) -> list[Step]:
        steps = list(self.book.steps)
        numbers = {s.number for s in steps}
        if not steps:
            raise GuideError(
                "the guide has no numbered steps to run",
                path=self.book.path,
                hint=f"see 'runbook list {self.guide_arg}' for what was found",
            )
        asked = [*self.options.only]
        if self.options.from_step is not None:
            asked.append(self.options.from_step)
        for n in asked:
            if n not in numbers:
                raise UsageError(
                    f"no step {n} (steps: {', '.join(map(str, sorted(numbers)))})",
                    path=self.book.path,
                )
        if self.options.only:
            return [s for s in steps if s.number in self.options.only]
        if self.options.from_step is not None:
            return [s for s in steps if s.number >= self.options.from_step]
        return steps

    def _pending(self, step: Step) -> bool:
        return (
            not step.checked
            or self.options.redo
            or bool(self.options.only)
            or self.options.from_step is not None
        )

    def _secret(self, name: str) -> bool:
        return name in self._secret_names or is_secret(name)

    def _chosen(self, tabs: Sequence[TabRef]) -> bool | None:
        """Whether actions inside ``tabs`` are in the chosen alternatives; None if undecided."""
        for tab in tabs:
            choice = self.tab_choice.get(tab.group)
            if choice is None:
                return None
            if choice != tab.label:
                return False
        return True

    @staticmethod
    def _groups(step: Step) -> dict[Origin, tuple[tuple[TabRef, ...], list[str]]]:
        """Each set of alternatives of ``step``: its enclosing tabs and its labels, in order."""
        groups: dict[Origin, tuple[tuple[TabRef, ...], list[str]]] = {}
        # Every tab counts, prose-only ones too: choosing one means a person does that part.
        for path in step.tab_paths:
            for depth, tab in enumerate(path):
                _, labels = groups.setdefault(tab.group, (path[:depth], []))
                if tab.label not in labels:
                    labels.append(tab.label)
        return groups

    def _choose_tabs(self, step: Step, *, ask: bool) -> None:
        """Decide each set of alternatives of ``step``, outer sets first."""
        for group, (outer, labels) in self._groups(step).items():
            if group in self.tab_choice:
                continue
            # A nested set only matters when its enclosing tabs are chosen.
            if self._chosen(outer) is False:
                continue
            # Exact labels first, then patterns, each in the order given or chosen.
            picked = next((label for label in self.labels if label in labels), None)
            if picked is None:
                picked = next(
                    (
                        label
                        for pattern in self.labels
                        for label in labels
                        if fnmatch.fnmatchcase(label, pattern)
                    ),
                    None,
                )
            how = "remembered" if picked in self._asked_labels else "flag"
            if picked is None and len(labels) == 1:
                picked, how = labels[0], "only"
            if picked is None:
                if not ask or not self.options.interactive:
                    raise NeedsOperator(
                        f"{self._named(step)} offers alternatives: {' | '.join(labels)}",
                        path=group.path,
                        line=group.line,
                        hint=f"pick one with --tab {_quote_label(labels[0])} (or another label)",
                    )
                picked = self.console.pick(
                    f"Step {step.number} offers alternatives. Which one?", labels
                )
                if picked is None:
                    raise _Quit
                how = "asked"
                # Remembered by label: later steps offering the same tab take it unasked.
                self.labels.append(picked)
                self._asked_labels.add(picked)
            self.tab_choice[group] = picked
            self._tab_how[group] = how

    def _actions(self, step: Step) -> list[Action]:
        return [a for a in step.actions if self._chosen(a.tabs) is not False]

    def _expanded(self, step: Step, depth: int = 0) -> list[tuple[Step, str]]:
        """Return ``step`` and every step its directives run, with the label each runs as."""
        from runbook.guide import exec_target

        found = [(step, "")]
        if depth > 8:
            return found
        for d in step.directives:
            inner: list[tuple[Step, str]] = []
            if d.name == "repeat":
                inner = [(s, f"repeating step {n}") for n in d.steps if (s := self.book.step(n))]
            elif d.name == "exec" and exec_target(d) in self.subguides:
                sub = self.subguides[exec_target(d)]
                inner = [(s, f"{sub.title}, step {s.number}") for s in sub.steps]
            for s, label in inner:
                found.extend((x, x_label or label) for x, x_label in self._expanded(s, depth + 1))
        return found

    @contextmanager
    def _as_part_of(self, outer: Step, label: str) -> Iterator[None]:
        """Name messages about a nested step by the guide's step that runs it."""
        saved = (self._outer, list(self._context))
        self._outer = outer
        self._context = [label] if label else []
        try:
            yield
        finally:
            self._outer, self._context = saved[0], saved[1]

    def _needed_inputs(self, steps: Sequence[Step]) -> list[tuple[Placeholder, Step, Action]]:
        needed: dict[str, tuple[Placeholder, Step, Action]] = {}
        for step in [x for s in steps if self._pending(s) for x, _ in self._expanded(s)]:
            for action in self._actions(step):
                if action.kind != "run":
                    continue
                for ph in action.placeholders:
                    needed.setdefault(ph.name, (ph, step, action))
        return list(needed.values())

    def _collect_values(self, steps: Sequence[Step]) -> None:
        defaults = dict(self.site.inputs)
        meta = self.book.rendered.front_matter.get("inputs")
        if isinstance(meta, Mapping):
            defaults.update({str(k): str(v) for k, v in meta.items()})
        defaults.update(self.options.sets)
        for name, value in defaults.items():
            if self._secret(name):
                self.redactor.add(value)
            check_value(name, value)
            self.values[name] = value
        if self.options.interactive or self.options.dry_run:
            return
        # Non-interactive: decide every tab set and know every input before running anything.
        outer_of: dict[int, tuple[Step, str]] = {}
        for step in steps:
            if self._pending(step):
                for inner, label in self._expanded(step):
                    outer_of.setdefault(id(inner), (step, label))
                    with self._as_part_of(step, label):
                        self._choose_tabs(inner, ask=False)
        missing = [item for item in self._needed_inputs(steps) if item[0].name not in self.values]
        if missing:
            _, step, action = missing[0]
            names = ", ".join(f"<{p.name}>" for p, _, _ in missing)
            with self._as_part_of(*outer_of.get(id(step), (step, ""))):
                named = self._named(step)
            raise NeedsOperator(
                f"{named} needs {names}, and a non-interactive run cannot ask",
                path=action.origin.path,
                line=action.origin.line,
                hint="give " + " ".join(f"--set {p.name}=…" for p, _, _ in missing),
            )

    # -- records -------------------------------------------------------------------------------

    @property
    def _journal(self) -> Journal:
        if self.journal is None:
            raise RuntimeError("the journal is not open")
        return self.journal

    def _open_records(self, steps: Sequence[Step]) -> None:
        runtime = runtime_dir(self.book)
        run_id = new_run_id()
        self.journal = Journal(
            journal_path(runtime, self.book.path), run_id, redact=self.redactor.redact_text
        )
        path = transcript_path(runtime, run_id)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self.transcript = os.fdopen(fd, "ab", buffering=0)
        self._transcript_path = path
        self.journal.write(
            "run-start",
            sync=True,
            guide=str(self.book.path),
            pid=os.getpid(),
            cwd=str(self._cwd()),
            steps=[s.number for s in steps],
            inputs={k: v for k, v in self.values.items() if not self._secret(k)},
            secret_inputs=sorted(k for k in self.values if self._secret(k)),
            tabs=list(self.options.tabs),
            interactive=self.options.interactive,
            transcript=str(path),
        )

    def _close_records(self) -> None:
        if self.journal is not None:
            self.journal.close()
        if self.transcript is not None:
            self.transcript.close()

    def _mark(self, text: str) -> None:
        """Write a marker line into the transcript, so its output can be told apart."""
        if self.transcript is not None:
            self.transcript.write(f"\n##### runbook: {text}\n".encode())

    # -- unknown outcomes and unfinished ticks --------------------------------------------------

    def _recover_ticks(self) -> None:
        """Finish the bookkeeping of the previous run when it was killed mid-way.

        A step whose end was recorded ``done`` by the previous run without a tick record
        was done. When the guide has not changed since that record, the tick never
        happened: tick it now. When its box is ticked, only the record is missing. When the
        guide changed since (a person may have cleared the box on purpose), the step is
        treated like an unknown outcome: asked about, never guessed. Older runs are not
        trusted for this: a reset since then must stand.
        """
        runs = run_ids(self._journal.path)
        previous = runs[-2] if len(runs) >= 2 else None
        states = step_states(self._journal.path)
        for step in self.book.steps:
            state = states.get(step.number)
            if state is None or step.item is None:
                continue
            if state.unknown and step.checked:
                # A person looked and ticked it: the unknown outcome is settled.
                self._journal.write(
                    "step-resolved", sync=True, step=step.number, choice="checked-by-hand"
                )
                continue
            if not state.done_unticked or state.run != previous:
                continue
            if step.checked:
                self._journal.write("tick", step=step.number, line=step.item.origin.line)
                continue
            current = hashlib.sha256(self.book.rendered.source).hexdigest()
            changed = (
                state.guide != current
                if state.guide
                else _modified_after(self.book.path, state.time)
            )
            if changed:
                self._unsure[step.number] = state
                continue
            self.console.line(
                f"· step {step.number} was completed by run {state.run} ({state.who}), "
                "which ended before ticking it: ticking it now",
                "dim",
            )
            with self._bookkeeping():
                self._tick(step)
            self.book = _with_checked(self.book, step.number)

    def _resolve_unknown(self, steps: list[Step]) -> list[Step]:
        states = step_states(self._journal.path)
        kept: list[Step] = []
        for step in steps:
            state = self._unsure.get(step.number) or states.get(step.number)
            if state is None or not (state.unknown or state.done_unticked) or step.checked:
                kept.append(step)
                continue
            if state.unknown:
                what = (
                    f"step {step.number} ({step.title}) was started by {state.who} at "
                    f"{state.time} (run {state.run}) but its end was not recorded: its "
                    "outcome is unknown"
                )
            else:
                what = (
                    f"step {step.number} ({step.title}) was recorded done by {state.who} at "
                    f"{state.time} (run {state.run}), which ended before ticking it, and the "
                    "guide has changed since: whether it should count as done is unknown"
                )
            if self.options.retry_unknown:
                choice = "r"
            elif self.options.skip_unknown:
                choice = "s"
            elif not self.options.interactive:
                raise NeedsOperator(
                    what,
                    path=step.origin.path,
                    line=step.origin.line,
                    hint="check what it did, then rerun with --retry-unknown (run it again) "
                    "or --skip-unknown (leave it), or tick it with "
                    f"'runbook check {self.guide_arg} {step.number}' if it is done",
                )
            else:
                self.console.line("! " + what, "yellow")
                choice = self.console.choose(
                    "Run it again?",
                    [
                        ("r", "run it again"),
                        ("s", "skip it"),
                        ("d", "done: tick it"),
                        ("q", "quit"),
                    ],
                )
            self._journal.write(
                "step-resolved",
                sync=True,
                step=step.number,
                choice={"r": "retry", "s": "skip", "d": "done", "q": "quit"}[choice],
                unknown_run=state.run,
            )
            if choice == "q":
                raise _Quit
            if choice == "s":
                self.results.append(
                    StepResult(step.number, step.title, "skipped", note="unknown outcome")
                )
                continue
            if choice == "d":
                with self._bookkeeping():
                    self._tick(step)
                self.results.append(
                    StepResult(step.number, step.title, "done", note="ticked by the operator")
                )
                continue
            kept.append(step)
        return kept

    # -- running -------------------------------------------------------------------------------

    def _run_steps(self, steps: Sequence[Step]) -> None:
        total = len(self.book.steps)
        for step in steps:
            if not self._pending(step):
                self.results.append(StepResult(step.number, step.title, "already done"))
                continue
            self.console.header(step.number, total, step.title)
            started = time.monotonic()
            self._journal.write("step-start", sync=True, step=step.number, title=step.title)
            self._outer = step
            try:
                result, note = self._run_step(step)
            except BaseException as exc:
                with self._bookkeeping():
                    self._end_step(step, _result_of(exc), started, "")
                raise
            with self._bookkeeping():
                self._end_step(step, result, started, note)

    def _end_step(self, step: Step, result: str, started: float, note: str) -> None:
        """Record the step's end (durably), then tick it when done."""
        duration = time.monotonic() - started
        # The guide as it is before the tick: a later run knows exactly whether anyone
        # changed it since, should this run die before ticking.
        extra = {"guide_sha256": _sha256_of(self.book.path)} if result == "done" else {}
        self._journal.write(
            "step-end",
            sync=True,
            step=step.number,
            result=result,
            duration=round(duration, 3),
            **extra,
        )
        if result == "done":
            try:
                self._tick(step)
            except ConcurrentEditError:
                self.results.append(
                    StepResult(step.number, step.title, "done", duration, "tick refused")
                )
                raise
        self.results.append(StepResult(step.number, step.title, result, duration, note))

    def _run_step(self, step: Step) -> tuple[str, str]:
        """Run one step; return its result (``done`` or ``skipped``) and a note."""
        self._choose_tabs(step, ask=True)
        self._journal_tabs(step)
        for adm in step.admonitions:
            if adm.kind in ("danger", "warning") and self._chosen(adm.tabs) is not False:
                label = adm.kind.upper() + (f": {adm.title}" if adm.title else "")
                self.console.line(f"! {label}", "red" if adm.kind == "danger" else "yellow", "bold")
                for text in adm.text.split("\n"):
                    self.console.line(f"  {text}", "yellow")
        directives = [d for d in step.directives if self._chosen(d.tabs) is not False]
        actions = self._actions(step)
        executable = [a for a in actions if a.executable]
        if not executable and not any(d.name in ("exec", "repeat") for d in directives):
            # A manual step: timers that start run before the person acts, stops after.
            for d in directives:
                if d.args[:1] == ("start",):
                    self._directive(step, d)
            result = self._manual(step)
            for d in directives:
                if d.args[:1] != ("start",):
                    self._directive(step, d)
            return result
        suggested = next((a for a in executable if a.kind == "suggested"), None)
        if suggested is not None and not self.options.interactive:
            # Stop before running anything of the step, so a rerun does not repeat half of it.
            raise NeedsOperator(
                f"{self._named(step)} ({step.title}) offers a command that needs a person's yes",
                path=suggested.origin.path,
                line=suggested.origin.line,
                hint="run interactively to confirm it, mark the block { .run } if it is safe "
                f"to run unattended, or do the step by hand and 'runbook check "
                f"{self.guide_arg} {step.number}'",
            )
        self._skipped_failure = False
        ran = 0
        waiting = sorted(directives, key=lambda d: d.after)
        for index, action in enumerate(step.actions):
            while waiting and waiting[0].after <= index:
                ran += self._directive(step, waiting.pop(0))
            if self._chosen(action.tabs) is False:
                continue
            if action.kind == "shown":
                self._show(action)
            elif action.kind == "suggested":
                ran += self._offer(step, action)
            else:
                self._execute(step, action)
                ran += 1
        for directive in waiting:
            ran += self._directive(step, directive)
        if self._skipped_failure:
            return "skipped", "a failed block was skipped"
        if not ran:
            return "skipped", "every block was skipped"
        return "done", ""

    # -- directives ------------------------------------------------------------------------------

    def _load_subguides(self) -> None:
        """Load every guide an ``exec`` directive runs, so its errors show before anything runs."""
        from runbook.guide import exec_target, load
        from runbook.site import load_site

        todo = [self.book]
        while todo:
            book = todo.pop()
            for step in book.steps:
                for d in step.directives:
                    if d.name != "exec":
                        continue
                    target = exec_target(d)
                    if target in self.subguides or target == self.book.path:
                        continue
                    sub = load(target, sets=self.options.sets, site=load_site(target))
                    if sub.errors:
                        first = sub.errors[0]
                        raise GuideError(
                            f"{first.message} (in {rel(target)}, which step {step.number} runs)",
                            path=first.origin.path if first.origin else target,
                            line=first.origin.line if first.origin else None,
                            hint=f"run 'runbook lint {rel(target)}'",
                        )
                    self.subguides[target] = sub
                    todo.append(sub)

    def _directive(self, step: Step, directive: Directive) -> int:
        """Carry out a directive; return 1 when it ran steps, 0 for bookkeeping ones."""
        if directive.name == "timer":
            self._timer(step, directive)
            return 0
        if directive.name == "repeat":
            for number in directive.steps:
                again = self.book.step(number)
                if again is not None:
                    self._nested(step, again, f"repeating step {number}", self.book)
            return 1
        from runbook.guide import exec_target

        sub = self.subguides[exec_target(directive)]
        for inner in sub.steps:
            self._nested(step, inner, f"{sub.title}, step {inner.number}", sub)
        return 1

    def _nested(self, step: Step, inner: Step, label: str, book: Runbook) -> None:
        """Run ``inner`` (a repeated step, or a step of another guide) as part of ``step``."""
        self.console.line()
        self.console.line(f"↳ step {step.number}, {label}: {inner.title}", "bold", "blue")
        guide = str(book.path) if book is not self.book else None
        self._journal.write(
            "nested-start", step=step.number, inner=inner.number, label=label, guide=guide
        )
        saved = self._skipped_failure
        started = time.monotonic()
        self._context.append(label)
        try:
            result, _ = self._run_step(inner)
        except RunbookError as exc:
            self._journal.write(
                "nested-end",
                step=step.number,
                inner=inner.number,
                result=_result_of(exc),
                guide=guide,
            )
            raise
        finally:
            self._context.pop()
        self._journal.write(
            "nested-end",
            step=step.number,
            inner=inner.number,
            result=result,
            duration=round(time.monotonic() - started, 3),
            guide=guide,
        )
        self._skipped_failure = saved or self._skipped_failure or result != "done"

    def _named(self, step: Step) -> str:
        """Name ``step`` in messages: nested steps by the step that runs them."""
        if not self._context or self._outer is None:
            return f"step {step.number}"
        return f"step {self._outer.number} ({', '.join(self._context)})"

    def _resume_step(self, step: Step) -> int:
        return self._outer.number if self._context and self._outer else step.number

    def _timer(self, step: Step, directive: Directive) -> None:
        action, name = directive.args
        now = time.time()
        if action == "start":
            self.timers[name] = (now, step.number)
            self._journal.write("timer", step=step.number, name=name, action="start", at=now)
            self.console.line(f"⏱ {name} starts (step {step.number})", "yellow")
            return
        # Started by an earlier run that stopped in between: the journal knows when.
        began = self.timers.get(name) or last_timer_start(self._journal.path, name)
        if began is None:
            self.console.line(f"⏱ {name}: no start recorded, nothing to measure", "dim")
            return
        seconds = now - began[0]
        self._journal.write(
            "timer", step=step.number, name=name, action="stop", at=now, seconds=round(seconds, 3)
        )
        since = f"from step {began[1]} " if began[1] is not None else ""
        self.timed.append((name, seconds, f"{since}to step {step.number}"))
        self.console.line(f"⏱ {name} ends: {format_duration(seconds)}", "yellow")

    def _journal_tabs(self, step: Step) -> None:
        for group in self._groups(step):
            if group in self.tab_choice and group not in self._tabs_journaled:
                self._tabs_journaled.add(group)
                self._journal.write(
                    "tab",
                    step=step.number,
                    group=str(group),
                    label=self.tab_choice[group],
                    how=self._tab_how.get(group, "flag"),
                )
                self.console.line(f"  tab: {self.tab_choice[group]}", "dim")

    def _manual(self, step: Step) -> tuple[str, str]:
        if not self.options.interactive:
            raise NeedsOperator(
                f"{self._named(step)} ({step.title}) is done by a person",
                path=step.origin.path,
                line=step.origin.line,
                hint=f"do it, then 'runbook check {self.guide_arg} {step.number}' and run again; "
                "or run interactively to confirm it",
            )
        body = _readable(step.body)
        for text in body.split("\n") if body else []:
            self.console.line("  " + text)
        choice = self.console.choose(
            f"Step {step.number} is manual. Is it done?",
            [("d", "done"), ("s", "skip"), ("q", "quit")],
        )
        if choice == "q":
            raise _Quit
        self._journal.write(
            "step-confirmed", step=step.number, choice="done" if choice == "d" else "skip"
        )
        return ("done", "confirmed") if choice == "d" else ("skipped", "")

    def _show(self, action: Action) -> None:
        self.console.line(
            f"  {action.lang or 'text'} ({rel(action.origin.path)}:{action.origin.line}), "
            "shown only:",
            "dim",
        )
        for text in action.code.rstrip("\n").split("\n"):
            self.console.line("  │ " + text, "dim")

    def _print_code(self, action: Action, code: str) -> None:
        where = f"{rel(action.origin.path)}:{action.origin.line}"
        host = f" on {action.host}" if action.host != "local" else ""
        self.console.line(f"▶ {action.kind}{host} ({where})", "cyan")
        for text in code.rstrip("\n").split("\n"):
            self.console.line(("  $ " if self.console.tty else "  ") + text, "bold")

    def _offer(self, step: Step, action: Action) -> int:
        """Offer a suggested block; return 1 when it ran or was done by hand, else 0."""
        self._print_code(action, preview(action.code, self.values, self._secret_set()))
        choice = self.console.choose(
            "Run this?",
            [
                ("r", "run"),
                ("e", "edit then run"),
                ("s", "skip"),
                ("d", "done by hand"),
                ("q", "quit"),
            ],
        )
        if choice == "q":
            raise _Quit
        if choice in ("s", "d"):
            self._journal.write(
                "action-confirmed",
                step=step.number,
                origin=str(action.origin),
                choice={"s": "skip", "d": "by-hand"}[choice],
            )
            return int(choice == "d")
        if choice == "e":
            edited = self.console.edit(action.code)
            if edited is not None:
                action = replace(
                    action,
                    code=edited,
                    placeholders=tuple(
                        Placeholder(n, self._secret(n)) for n in placeholders_in(edited)
                    ),
                )
                self._journal.write("action-edited", step=step.number, origin=str(action.origin))
        self._execute(step, action)
        return 1

    def _secret_set(self) -> set[str]:
        return {name for name in self.values if self._secret(name)} | self._secret_names

    def _cwd(self) -> Path:
        return self.options.cwd or self.site.root

    def _session(self, host: str) -> Session:
        session = self.sessions.get(host)
        if session is None:
            spec = self.site.hosts.get(host, {}) if host != "local" else {}
            target = spec.get("ssh") if isinstance(spec, Mapping) else None
            if host == "local" or not target or target == "local":
                transport = local_transport()
            else:
                transport = ssh_transport(
                    str(target), options=[str(o) for o in spec.get("options", [])]
                )
            session = Session(
                host=host,
                transport=transport,
                cwd=str(self._cwd()) if transport.name == "local" else None,
                redactor=self.redactor,
                transcript=self.transcript,
            )
            self.sessions[host] = session
            self._defined[host] = set()
            session.start()
        return session

    def _ask_value(self, ph: Placeholder) -> str:
        while True:
            try:
                value = self.console.ask_value(ph.name, ph.secret)
            except EOFError:
                raise _Quit from None
            try:
                check_value(ph.name, value)
            except UsageError as exc:
                self.console.line(f"  {exc.message}", "red")
                continue
            return value

    def _value(self, ph: Placeholder, step: Step, action: Action) -> str:
        if ph.name not in self.values:
            if not self.options.interactive:
                raise NeedsOperator(
                    f"{self._named(step)} needs <{ph.name}>",
                    path=action.origin.path,
                    line=action.origin.line,
                    hint=f"--set {ph.name}=…",
                )
            value = self._ask_value(ph)
            secret = ph.secret or self._secret(ph.name)
            if secret:
                self.redactor.add(value)
            self.values[ph.name] = value
            self._journal.write(
                "input",
                name=ph.name,
                how="asked",
                **({"secret": True} if secret else {"value": value}),
            )
        return self.values[ph.name]

    def _execute(self, step: Step, action: Action) -> None:
        try:
            session = self._session(action.host)
        except SessionError as exc:
            # Point at the block that needed the shell: the fix is often in mkdocs.yml's
            # hosts, but the operator reads the guide.
            raise SessionError(
                f"{self._named(step)}: {exc.message}",
                path=action.origin.path,
                line=action.origin.line,
                hint=exc.hint,
            ) from None
        for ph in action.placeholders:
            value = self._value(ph, step, action)
            if ph.name not in self._defined[action.host]:
                session.define(shell_var(ph.name), value, secret=self._secret(ph.name))
                self._defined[action.host].add(ph.name)
        secrets = self._secret_set()
        literal = {k: v for k, v in self.values.items() if k not in secrets}
        if action.kind == "run":
            self._print_code(action, preview(action.code, self.values, secrets))
        answers = tuple(
            Answer(
                expect=a.expect,
                send=preview(a.send, self.values, ()),
                secret=any(
                    p.name in secrets and f"<{p.name}>" in a.send for p in action.placeholders
                ),
            )
            for a in action.answers
        )
        timeout = action.timeout or self.options.timeout
        names = [p.name for p in action.placeholders]
        units: list[tuple[str, list[str] | None, int]] = (
            list(prompt_commands(action.code))
            if action.expects_output
            else [(action.code, None, 0)]
        )
        # A `$ ` command's failure points at its own line, past the opening fence.
        first_line = action.origin.line + (1 if action.fenced else 0)
        for index, (code, expected, offset) in enumerate(units):
            body = substitute(code, names, literal=literal).code
            line = first_line + offset if expected is not None else action.origin.line
            unit = _Unit(action, index, Origin(action.origin.path, line), body, expected)
            self._run_unit(step, unit, session, answers, timeout)

    def _run_unit(
        self,
        step: Step,
        unit: _Unit,
        session: Session,
        answers: tuple[Answer, ...],
        timeout: float | None,
    ) -> None:
        """Run one unit until it succeeds, the operator moves on, or the run must stop."""
        action = unit.action
        captured = bytearray()

        def on_output(chunk: bytes) -> None:
            self.console.output(chunk)
            if unit.expected is not None and len(captured) <= _CAPTURE_LIMIT:
                captured.extend(chunk)

        origin = str(action.origin)
        first = next((ln.strip() for ln in unit.code.split("\n") if ln.strip()), "")
        while True:
            self._mark(f"step {step.number} · block {origin} · {action.host}")
            self._journal.write(
                "action-start",
                step=step.number,
                origin=origin,
                unit=unit.index,
                host=action.host,
                kind=action.kind,
                tabs=[t.label for t in action.tabs],
                command=first[:120],
            )
            operator = (
                Operator(sys.stdin.fileno(), self._handover)
                if self.options.interactive and sys.stdin.isatty()
                else None
            )
            self.console.start_spinner(f"step {step.number}")
            self._interrupts = 0
            self._running = session
            try:
                result = session.run(
                    unit.code + "\n",
                    timeout=timeout,
                    answers=answers,
                    on_output=on_output,
                    operator=operator,
                )
            finally:
                self._running = None
                self.console.stop_spinner()
            self._journal.write(
                "action-end",
                step=step.number,
                origin=origin,
                unit=unit.index,
                host=action.host,
                status=result.status,
                outcome=str(result.outcome),
                duration=round(result.duration, 3),
                output_bytes=result.output_bytes,
                answered=list(result.answered),
                handed_over=result.handed_over,
                restarted=result.restarted,
            )
            failure = self._judge(result, unit.expected, bytes(captured), timeout)
            if failure is None:
                return
            self.console.line(f"✗ {failure}", "red", "bold")
            interrupted = result.outcome is Outcome.INTERRUPTED
            if interrupted and not self.options.interactive:
                raise KeyboardInterrupt
            if not self.options.interactive:
                self._fail(step, unit, failure, result)
            choice = self.console.choose(
                "What now?", [("r", "retry"), ("s", "skip this block"), ("q", "quit")]
            )
            if choice == "s":
                self._journal.write(
                    "action-confirmed", step=step.number, origin=origin, choice="skip-failed"
                )
                self._skipped_failure = True
                return
            if choice == "q":
                if interrupted:
                    raise KeyboardInterrupt
                self._fail(step, unit, failure, result)
            captured.clear()

    def _judge(
        self, result: BlockResult, expected: list[str] | None, output: bytes, timeout: float | None
    ) -> str | None:
        last = f" (last output: {result.last_line!r})" if result.last_line else ""
        if result.outcome is Outcome.OK:
            if expected is not None and not output_matches(output, expected):
                return "output differs from what the guide expects:\n" + _diff(expected, output)
            return None
        if result.outcome is Outcome.FAILED:
            return f"exited with status {result.status}{last}"
        if result.outcome is Outcome.TIMEOUT:
            return f"was stopped after the {format_duration(timeout or 0)} timeout{last}"
        if result.outcome is Outcome.INTERRUPTED:
            return "was interrupted (Ctrl-C)"
        if result.outcome is Outcome.NEEDS_INPUT:
            return f"is waiting for input: {result.last_line!r}"
        if result.outcome is Outcome.SHELL_DIED:
            return (
                f"ended the shell (status {result.status}); a fresh shell replaced it, so the "
                "working directory and variables were reset"
            )
        return f"ended with {result.outcome}"

    def _fail(self, step: Step, unit: _Unit, failure: str, result: BlockResult) -> None:
        where = unit.origin
        subject = "the block" if unit.expected is None else "the command"
        if unit.action.host != "local":
            subject += f" on {unit.action.host}"
        if result.outcome is Outcome.NEEDS_INPUT:
            prompt = result.last_line.strip()[-40:] or "…"
            raise NeedsOperator(
                f"{self._named(step)}: {subject} {failure}",
                path=where.path,
                line=where.line,
                hint="answer it in an interactive run, or declare the answer on the block: "
                f'{{ .run expect="{prompt}" send="…" }}',
            )
        raise StepFailed(
            f"{self._named(step)} failed: {subject} {failure}",
            path=where.path,
            line=where.line,
            hint=f"fix the cause, then run '{self._resume_command()}' again to resume at "
            f"step {self._resume_step(step)}",
        )

    def _handover(self, last_line: str) -> None:
        # The spinner would draw over what the operator types.
        self.console.stop_spinner()
        self.console.line(
            f"⌨ the command waits for input ({last_line.strip()!r}): type your answer; "
            "control returns when it finishes",
            "yellow",
        )

    def _tick(self, step: Step) -> None:
        """Tick ``step`` in the guide, then record the tick (the step-end is already durable)."""
        if step.item is None:
            self.console.line(
                f"  step {step.number} has no checklist item: progress not recorded in the file",
                "dim",
            )
            return
        tick = Tick(step.item.origin.path, step.item.origin.line, True, step.item.text)
        try:
            apply_ticks(
                self.book.path,
                [tick],
                snapshot=self.snapshot,
                lock_dir=runtime_dir(self.book) / "locks",
            )
        except ConcurrentEditError as exc:
            self._journal.write("tick-refused", sync=True, step=step.number, reason=exc.message)
            raise
        self._journal.write("tick", step=step.number, line=step.item.origin.line)
        self.console.line(f"✓ step {step.number} done, ticked in {rel(self.book.path)}", "green")

    # -- interruption ------------------------------------------------------------------------

    @contextmanager
    def _signals(self) -> Iterator[None]:
        """First Ctrl-C stops the running command; a second one (or SIGTERM/SIGHUP) ends the run."""

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

    def _end_now(self) -> None:
        if self._critical:
            self._deferred = True
            return
        raise KeyboardInterrupt

    @contextmanager
    def _bookkeeping(self) -> Iterator[None]:
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

    def _close_sessions(self) -> None:
        for session in self.sessions.values():
            session.close()
        self.sessions.clear()

    def _resume_command(self) -> str:
        return f"runbook exec {self.guide_arg}"

    def _resume_hint(self) -> str:
        return f"run '{self._resume_command()}' again to resume"

    def _masked(self, error: RunbookError) -> RunbookError:
        """Return ``error`` with any secret value in its message or hint masked."""
        error.message = self.redactor.redact_text(error.message)
        if error.hint is not None:
            error.hint = self.redactor.redact_text(error.hint)
        error.args = (error.message,)
        return error

    # -- reporting -------------------------------------------------------------------------------

    def _dry_step(
        self, step: Step, label: str, missing: dict[str, Placeholder], people: list[str]
    ) -> None:
        """Print what one step (or a step it runs) would do; note inputs and people needed."""
        c = self.console
        named = self._named(step)
        secrets = self._secret_set()
        if label:
            c.line(f"  ↳ {label}: {step.title}", "bold")
        try:
            self._choose_tabs(step, ask=False)
        except NeedsOperator as exc:
            people.append(f"{named}: choose a tab ({exc.message}); {exc.hint}")
            c.line(f"  needs a choice: {exc.message}", "yellow")
        actions = self._actions(step)
        nested = [d for d in step.directives if d.name in ("exec", "repeat")]
        if not any(a.executable for a in actions) and not nested:
            people.append(f"{named}: manual, a person confirms it")
            c.line("  manual: a person does it and confirms", "yellow")
        for d in step.directives:
            c.line(f"  [{d.name}] {' '.join(d.args)}  ({rel(d.origin.path)}:{d.origin.line})")
        for action in actions:
            if action.executable:
                for ph in action.placeholders:
                    if ph.name not in self.values:
                        missing.setdefault(ph.name, ph)
            tabs = " > ".join(t.label for t in action.tabs)
            where = f"{rel(action.origin.path)}:{action.origin.line}"
            c.line(
                f"  [{action.kind}] {where}"
                + (f" (tab {tabs})" if tabs else "")
                + (f" on {action.host}" if action.host != "local" else ""),
            )
            if action.kind == "suggested":
                people.append(f"{named}: confirm the block at {where}")
            if action.executable:
                for text in preview(action.code, self.values, secrets).rstrip("\n").split("\n"):
                    c.line("      " + text)

    def _dry_run(self, steps: Sequence[Step]) -> None:
        c = self.console
        c.line(f"Dry run of {rel(self.book.path)}: nothing is executed.", "bold")
        missing: dict[str, Placeholder] = {}
        people: list[str] = []
        for step in steps:
            pending = self._pending(step)
            c.line()
            c.line(
                f"Step {step.number}. {step.title}  [{'to run' if pending else 'done, skipped'}]",
                "bold",
            )
            if not pending:
                continue
            for inner, label in self._expanded(step):
                with self._as_part_of(step, label):
                    self._dry_step(inner, label, missing, people)
        c.line()
        if missing:
            c.line(
                "Inputs still missing: "
                + ", ".join(f"<{n}>" + (" (secret)" if self._secret(n) else "") for n in missing),
                "yellow",
            )
            c.line("  give them with " + " ".join(f"--set {n}=…" for n in missing))
        else:
            c.line("Inputs: all known.")
        if people:
            c.line("Needs a person:", "yellow")
            for text in people:
                c.line("  - " + text)
        else:
            c.line("Needs a person: nothing; it can run with --yes.")

    def _quiet_line(self, text: str = "", *styles: str) -> None:
        # The terminal may be gone (SIGHUP): the records are written, printing is a courtesy.
        with suppress(OSError):
            self.console.line(text, *styles)

    def _summary(self, total: float) -> None:
        if not self.results:
            return
        line = self._quiet_line
        line()
        line("Summary", "bold")
        already = [r for r in self.results if r.result == "already done"]
        if already:
            line(f"  · steps {', '.join(str(r.number) for r in already)} were already done", "dim")
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r.result] = counts.get(r.result, 0) + 1
            if r.result == "already done":
                continue
            mark = _MARKS.get(r.result, "·")
            duration = format_duration(r.duration) if r.duration else ""
            note = f"  ({r.note})" if r.note else ""
            line(
                f"  {mark} {r.number:>2}. {r.title[:48]:<48} {r.result:<12} {duration:>7}{note}",
                _COLOURS.get(r.result, "dim"),
            )
        for name, seconds, where_ in self.timed:
            line(f"  ⏱ {name}: {format_duration(seconds)} ({where_})", "bold")
        parts = ", ".join(f"{n} {k}" for k, n in counts.items())
        where = f" · transcript {rel(self._transcript_path)}" if self._transcript_path else ""
        line(f"  {parts} · total {format_duration(total)}{where}", "bold")


def _result_of(exc: BaseException) -> str:
    """Name how a step or run ended, from what stopped it."""
    if isinstance(exc, KeyboardInterrupt | Interrupted):
        return "interrupted"
    if isinstance(exc, _Quit | NeedsOperator):
        return "stopped"
    if isinstance(exc, StepFailed):
        return "failed"
    if isinstance(exc, RunbookError) and exc.exit_code == EXIT_INTERRUPTED:
        return "interrupted"
    return "error"


def _sha256_of(path: Path) -> str | None:
    """Return the SHA-256 of a file's bytes, or None when it cannot be read."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _modified_after(path: Path, when: str) -> bool:
    """Whether ``path`` was modified at or after the journal time ``when`` (or it is unclear)."""
    try:
        stamp = dt.datetime.fromisoformat(when).timestamp()
        return os.stat(path).st_mtime >= stamp
    except (OSError, ValueError):
        return True


def _with_checked(book: Runbook, number: int) -> Runbook:
    """Return ``book`` with step ``number`` recorded as ticked (after a recovered tick)."""
    steps = tuple(
        replace(s, item=replace(s.item, checked=True))
        if s.number == number and s.item is not None
        else s
        for s in book.steps
    )
    return replace(book, steps=steps)


def _quote_label(label: str) -> str:
    return f'"{label}"' if re.search(r"\s", label) else label


def _readable(body: str) -> str:
    """Return a step body for the terminal: trimmed, at most 40 lines."""
    lines = [ln.rstrip() for ln in body.strip("\n").split("\n")]
    if len(lines) > 40:
        lines = [*lines[:40], "…"]
    return "\n".join(lines)


def output_matches(output: bytes, expected: Sequence[str]) -> bool:
    """Compare output with expected lines: ``*`` matches any text, a ``...`` line any lines."""
    got = output.decode("utf-8", "replace").replace("\r\n", "\n").rstrip("\n").split("\n")
    if got == [""]:
        got = []
    want = [w.rstrip() for w in expected]
    while want and not want[-1]:
        want.pop()
    pattern = "\n".join(
        ".*?" if w == "..." else ".*".join(re.escape(p) for p in w.split("*")) for w in want
    )
    return re.fullmatch(pattern, "\n".join(g.rstrip() for g in got), re.S) is not None


def _diff(expected: Sequence[str], output: bytes) -> str:
    got = output.decode("utf-8", "replace").rstrip("\n").split("\n")
    lines = (
        ["    expected:"]
        + [f"      {w}" for w in expected]
        + ["    got:"]
        + [f"      {g}" for g in got[:20]]
    )
    return "\n".join(lines)
