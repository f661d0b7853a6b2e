"""The loop over a guide's steps, and the runner that sets a run up and ends it.

``Runner`` plans (``plan``), takes the lock, opens the records (``records``), finishes what
a killed run left (ticks, unknown outcomes), hands the steps to ``Loop``, and ends with the
summary (``runbook.report``). ``Loop`` runs each step: its tabs, warnings, blocks
(``perform``) and directives, then records its end and ticks it. Shells come from the
factory the runner is given, so the whole loop runs with fake shells in tests.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import replace
from pathlib import Path

from runbook.errors import (
    EXIT_OK,
    ConcurrentEditError,
    Interrupted,
    RunbookError,
    StateError,
)
from runbook.execution import plan
from runbook.execution.operator import Operator, Quit
from runbook.execution.parts import Parts
from runbook.execution.perform import Performer
from runbook.execution.plan import ExecOptions, Inputs, Nesting
from runbook.execution.records import Records
from runbook.execution.shells import Hosts, ShellFactory
from runbook.execution.signals import Signals
from runbook.execution.tabs import TabChoices
from runbook.execution.verdict import FAILED_SKIPPED, OutcomeUnknown, result_of, step_result
from runbook.journal import StepState, refuse_live_run
from runbook.model import Diagnostic, Directive, Runbook, Step, rel
from runbook.redact import Redactor
from runbook.report import StepResult, diagnostic_text
from runbook.site import CONFIG_NAMES, Site
from runbook.ui import Console, format_duration


class Loop:
    """Run steps one after another: their blocks and directives, their ends and ticks."""

    def __init__(
        self, parts: Parts, book: Runbook, guides: Mapping[Path, Runbook], performer: Performer
    ) -> None:
        self.parts = parts
        self.book = book
        self.guides = guides
        self.performer = performer
        self.results: list[StepResult] = []
        """How each step went, for the summary."""
        self.timed: list[tuple[str, float, str]] = []
        """Timers stopped: name, seconds, from where to where."""
        self._timers: dict[str, tuple[float, int | None]] = {}

    def run_steps(self, steps: Sequence[Step]) -> None:
        """Run ``steps`` in order (skipping those already done); stop at the first that
        fails, with its end recorded."""
        parts = self.parts
        total = len(self.book.steps)
        for step in steps:
            if not plan.pending(step, parts.options):
                self.results.append(StepResult(step.number, step.title, "already done"))
                continue
            if parts.records.ticked_meanwhile(step):
                # Ticked by a person while the run waited: their word stands.
                parts.records.write("step-skipped", step=step.number, why="ticked by hand")
                parts.console.line(f"· step {step.number} was ticked by hand meanwhile", "dim")
                self.results.append(
                    StepResult(step.number, step.title, "already done", note="ticked by hand")
                )
                continue
            part = plan.only_parts(step, parts.options)
            if part is not None:
                self._run_parts(step, part, total)
                continue
            parts.console.header(step.number, total, step.title)
            started = time.monotonic()
            parts.records.write("step-start", sync=True, step=step.number, title=step.title)
            parts.nesting.outer = step
            try:
                result, note = self._passed(step) if self._by_hand(step) else self.run_step(step)
            except OutcomeUnknown:
                with parts.signals.bookkeeping():
                    self._unknown(step, started)
                raise
            except BaseException as exc:
                with parts.signals.bookkeeping():
                    self._end_step(step, result_of(exc), started, "")
                raise
            with parts.signals.bookkeeping():
                self._end_step(step, result, started, note)
            if result == "skipped" and note and step is not steps[-1]:
                parts.operator.incomplete(step, note)

    def _run_parts(self, step: Step, part: Step, total: int) -> None:
        """Run only the named parts of ``step`` (``--only 3.2``), ``part`` being the step cut
        to them; the step is never ticked, as the rest of it did not run."""
        parts = self.parts
        named = [m for n, m in parts.options.parts if n == step.number]
        label = ", ".join(f"{step.number}.{m}" for m in named)
        titles = " · ".join(p.title for p in step.substeps if p.number in named)
        parts.console.header(step.number, total, f"{step.title} › {titles}")
        records = parts.records
        records.write("part-start", sync=True, step=step.number, parts=named)
        parts.nesting.outer = step
        started = time.monotonic()
        result, note = "error", ""
        try:
            result, note = self.run_step(part)
        except BaseException as exc:
            result = result_of(exc)
            raise
        finally:
            with parts.signals.bookkeeping():
                duration = time.monotonic() - started
                records.write(
                    "part-end",
                    sync=True,
                    step=step.number,
                    parts=named,
                    result=result,
                    duration=round(duration, 3),
                )
                self.results.append(
                    StepResult(step.number, f"{step.title} › part {label}", result, duration, note)
                )
        if result == "done":
            parts.console.line(
                f"✓ part {label} done; step {step.number} stays unticked, as only part of it ran",
                "green",
            )

    def tick(self, step: Step) -> None:
        """Tick ``step`` in the guide and say so (its end is already durable)."""
        console = self.parts.console
        if not self.parts.records.tick(step):
            console.line(
                f"  step {step.number} has no checklist item: progress not recorded in the file",
                "dim",
            )
            return
        console.line(f"✓ step {step.number} done, ticked in {rel(self.book.path)}", "green")

    def _unknown(self, step: Step, started: float) -> None:
        """Leave ``step`` without an end: the connection of a block dropped while it ran."""
        duration = time.monotonic() - started
        # Not a step-end: the next run finds the step started and never ended, and asks.
        self.parts.records.write(
            "step-unknown", sync=True, step=step.number, duration=round(duration, 3)
        )
        self.results.append(
            StepResult(step.number, step.title, "unknown", duration, "connection dropped")
        )

    def _by_hand(self, step: Step, book: Runbook | None = None) -> bool:
        """Whether ``step`` (of ``book``, the guide by default) is passed by ``--by-hand``."""
        return (book is None or book is self.book) and step.number in self.parts.options.by_hand

    def _passed(self, step: Step) -> tuple[str, str]:
        """Pass a step named by ``--by-hand`` as done by hand, running nothing of it."""
        self.parts.records.write(
            "step-confirmed", step=step.number, choice="done", how="option", option="--by-hand"
        )
        self.parts.console.line("  done by hand (--by-hand): nothing of it runs", "yellow")
        return "done", "by hand"

    def _end_step(self, step: Step, result: str, started: float, note: str) -> None:
        """Record the step's end (durably), then tick it when done."""
        duration = time.monotonic() - started
        self.parts.records.end_step(step, result, duration)
        if result == "done":
            try:
                self.tick(step)
            except ConcurrentEditError:
                self.results.append(
                    StepResult(step.number, step.title, "done", duration, "tick refused")
                )
                raise
        self.results.append(StepResult(step.number, step.title, result, duration, note))

    def run_step(self, step: Step) -> tuple[str, str]:
        """Run one step; return its result (``done`` or ``skipped``) and a note."""
        parts = self.parts
        tabs = parts.tabs
        tabs.decide(step, parts.operator.pick_tab, parts.operator.keep_tab)
        for group, label, how in tabs.unrecorded(step):
            parts.records.write("tab", step=step.number, group=str(group), label=label, how=how)
            parts.console.line(f"  tab: {label}", "dim")
        parts.operator.warnings(step, tabs)
        directives = [d for d in step.directives if tabs.taken(d.tabs) is not False]
        executable = [a for a in tabs.actions(step) if a.executable]
        if not executable and not any(d.name in ("exec", "repeat") for d in directives):
            return self._manual(step, directives)
        if not parts.options.accept:
            parts.operator.refuse_suggested(
                step, next((a for a in executable if a.kind == "suggested"), None)
            )
        ran, why = 0, ""
        waiting = sorted(directives, key=lambda d: d.after)
        for index, action in enumerate(step.actions):
            while waiting and waiting[0].after <= index:
                n, done = self._directive(step, waiting.pop(0))
                ran, why = ran + n, why or ("" if done else FAILED_SKIPPED)
            if tabs.taken(action.tabs) is False:
                continue
            parts.operator.lead(action)
            if action.kind == "shown":
                self.performer.show(action)
                continue
            n, incomplete = self.performer.perform(step, action)
            ran, why = ran + n, why or incomplete
        for directive in waiting:
            n, done = self._directive(step, directive)
            ran, why = ran + n, why or ("" if done else FAILED_SKIPPED)
        return step_result(ran, why)

    def _manual(self, step: Step, directives: Sequence[Directive]) -> tuple[str, str]:
        """A step a person does: timers that start run before they act, the others after."""
        for d in directives:
            if d.args[:1] == ("start",):
                self._directive(step, d)
        done = self.parts.operator.manual(step)
        self.parts.records.write(
            "step-confirmed", step=step.number, choice="done" if done else "skip", how="asked"
        )
        for d in directives:
            if d.args[:1] != ("start",):
                self._directive(step, d)
        return ("done", "confirmed") if done else ("skipped", "")

    def _directive(self, step: Step, directive: Directive) -> tuple[int, bool]:
        """Carry out a directive; return (1 when it ran steps, else 0; whether each was done)."""
        if directive.name == "timer":
            self._timer(step, directive)
            return 0, True
        book = self.book
        if directive.name == "exec":
            book = plan.guide_of(directive, self.guides)
        done = True
        for inner, label in plan.nested(self.book, self.guides, directive):
            done = self._nested(step, inner, label, book) == "done" and done
        return 1, done

    def _nested(self, step: Step, inner: Step, label: str, book: Runbook) -> str:
        """Run ``inner`` (a repeated step, or a step of another guide) as part of ``step``;
        return its result."""
        parts = self.parts
        records = parts.records
        parts.console.line()
        parts.console.line(f"↳ step {step.number}, {label}: {inner.title}", "bold", "blue")
        guide = str(book.path) if book is not self.book else None
        records.write(
            "nested-start", step=step.number, inner=inner.number, label=label, guide=guide
        )
        started = time.monotonic()
        with parts.nesting.inside(label):
            try:
                result, _ = (
                    self._passed(inner) if self._by_hand(inner, book) else self.run_step(inner)
                )
            except RunbookError as exc:
                records.write(
                    "nested-end",
                    step=step.number,
                    inner=inner.number,
                    result=result_of(exc),
                    guide=guide,
                )
                raise
        records.write(
            "nested-end",
            step=step.number,
            inner=inner.number,
            result=result,
            duration=round(time.monotonic() - started, 3),
            guide=guide,
        )
        return result

    def _timer(self, step: Step, directive: Directive) -> None:
        action, name = directive.args
        records, console = self.parts.records, self.parts.console
        now = time.time()
        if action == "start":
            self._timers[name] = (now, step.number)
            records.write("timer", step=step.number, name=name, action="start", at=now)
            console.line(f"⏱ {name} starts (step {step.number})", "yellow")
            return
        # Started by an earlier run that stopped in between: the journal knows when.
        began = self._timers.get(name) or records.timer_start(name)
        if began is None:
            console.line(f"⏱ {name}: no start recorded, nothing to measure", "dim")
            return
        seconds = now - began[0]
        records.write(
            "timer", step=step.number, name=name, action="stop", at=now, seconds=round(seconds, 3)
        )
        since = f"from step {began[1]} " if began[1] is not None else ""
        self.timed.append((name, seconds, f"{since}to step {step.number}"))
        console.line(f"⏱ {name} ends: {format_duration(seconds)}", "yellow")


class Runner:
    """Run one guide once: plan, lock, records, the loop, the summary."""

    def __init__(
        self,
        book: Runbook,
        site: Site,
        options: ExecOptions,
        shells: ShellFactory,
        *,
        guides: Mapping[Path, Runbook] | None = None,
        console: Console | None = None,
        guide_arg: str = "",
    ) -> None:
        """Prepare a run of ``book``; ``guides`` are those its ``exec`` directives run (by
        resolved path), ``shells`` where its shells come from; ``console`` is given the
        run's secret masking."""
        self.book = book
        self.site = site
        self.options = options
        self.guides = dict(guides or {})
        redactor = Redactor()
        console = console or Console()
        console.redact = redactor.redact_text
        self.guide_arg = guide_arg or rel(book.path)
        nesting = Nesting()
        self.parts = Parts(
            options=options,
            console=console,
            operator=Operator(console, options, nesting, self.guide_arg),
            records=Records(book, redactor.redact_text),
            inputs=Inputs(
                redactor,
                {p.name for p in book.inputs if p.secret},
                plan.input_limits([book, *self.guides.values()]),
            ),
            tabs=TabChoices(options.tabs),
            nesting=nesting,
            signals=Signals(),
            hosts=Hosts(shells, cwd=options.cwd or site.root, redactor=redactor),
        )
        self.redactor = redactor
        self.loop = Loop(self.parts, book, self.guides, Performer(self.parts))
        self._unsure: dict[int, StepState] = {}

    def run(self) -> int:
        """Run the guide; return the exit code or raise a RunbookError saying what stopped it."""
        parts = self.parts
        plan.check_guide(self.book, self.guides, self.guide_arg)
        plan.check_blocks([self.book, *self.guides.values()], self.options.by_hand_blocks)
        plan.check_tab_flags(self.book, self.options.tabs)
        steps = plan.select(self.book, self.options, self.guide_arg)
        self._check_before_running()
        if not self.options.dry_run:
            # A held guide is said before any question; the lock itself is taken below.
            refuse_live_run(self.book)
        self._collect_values(steps)
        if self.options.dry_run:
            self._dry_run(steps)
            return EXIT_OK
        records = parts.records
        with records.lock(parts.operator.resume_command), parts.signals.installed():
            self._open(steps)
            started = time.monotonic()
            failure: BaseException | None = None
            try:
                steps = self._resolve_unknown(self._recover(steps))
                first = next((s.number for s in steps if plan.pending(s, self.options)), None)
                if first is not None:
                    self.loop.performer.resume.give_back(records.shell_states(first))
                self.loop.run_steps(steps)
            except BaseException as exc:  # recorded below, then raised again
                failure = exc
            result = "done" if failure is None else result_of(failure)
            total = time.monotonic() - started
            parts.signals.ending()
            try:
                parts.hosts.close()
            finally:
                records.write("run-end", sync=True, result=result, duration=round(total, 3))
                records.close()
        self._summary(total)
        return self._exit(failure)

    def _check_before_running(self) -> None:
        """Show the warnings about the sites' configuration; refuse a guide whose progress
        could not be recorded, which a dry run (it writes nothing) only notes."""
        console = self.parts.console
        for diag in _site_warnings((self.book, *self.guides.values())):
            console.line(diagnostic_text(diag), "yellow")
        try:
            self.parts.records.check_writable()
        except StateError as exc:
            if self.options.dry_run:
                console.line(f"! {exc}: a run without --dry-run refuses to start", "yellow")
                console.line(f"  next: {exc.hint}", "yellow")
                return
            raise StateError(
                f"{exc.message}; nothing was run",
                path=exc.path,
                line=exc.line,
                hint=f"{exc.hint}, or rehearse it without writing: "
                f"runbook exec --dry-run {self.guide_arg}",
            ) from exc

    def _collect_values(self, steps: Sequence[Step]) -> None:
        """Know the values given ahead; without a person, decide every tab set and know
        every input before running anything."""
        parts = self.parts
        defaults = plan.default_values(self.book, self.site.inputs, self.options.sets)
        for name, value in defaults.items():
            parts.inputs.give(name, value)
        if self.options.interactive or self.options.dry_run:
            return
        outer_of: dict[int, tuple[Step, str]] = {}
        inner_steps = []
        for step in steps:
            if plan.pending(step, self.options) and step.number not in self.options.by_hand:
                step = plan.only_parts(step, self.options) or step
                for inner, label in plan.expanded(step, self.book, self.guides):
                    outer_of.setdefault(id(inner), (step, label))
                    inner_steps.append(inner)
                    with parts.nesting.part_of(step, label):
                        parts.tabs.decide(inner, parts.operator.refuse_tab)
        needed = plan.needed_inputs(inner_steps, parts.tabs, accept=self.options.accept)
        missing = [item for item in needed if item[0].name not in parts.inputs.values]
        if missing:
            step = missing[0][1]
            with parts.nesting.part_of(*outer_of.get(id(step), (step, ""))):
                parts.operator.refuse_inputs(step, missing)
        for inner in inner_steps:
            for action in parts.tabs.actions(inner):
                if action.kind == "connect":
                    # A host value ssh would misread stops the run before anything runs.
                    plan.host_key(action, parts.inputs.values)

    def _open(self, steps: Sequence[Step]) -> None:
        inputs = self.parts.inputs
        records = self.parts.records
        records.open(
            cwd=str(self.parts.hosts.cwd),
            steps=[s.number for s in steps],
            inputs=inputs.public(),
            secret_inputs=sorted(k for k in inputs.values if inputs.secret(k)),
            tabs=list(self.options.tabs),
            interactive=self.options.interactive,
        )
        self.parts.hosts.transcript = records.transcript

    def _recover(self, steps: Sequence[Step]) -> list[Step]:
        """Tick the steps a killed run completed; note those it is unsure of."""
        parts = self.parts
        for step, state, changed in parts.records.unfinished(self.book.steps):
            if changed:
                self._unsure[step.number] = state
                continue
            parts.console.line(
                f"· step {step.number} was completed by run {state.run} ({state.who}), "
                "which ended before ticking it: ticking it now",
                "dim",
            )
            with parts.signals.bookkeeping():
                self.loop.tick(step)
            self.book = _with_checked(self.book, step.number)
        return [self.book.step(s.number) or s for s in steps]

    def _resolve_unknown(self, steps: list[Step]) -> list[Step]:
        """Decide about each step whose outcome is unknown; return the steps to run."""
        parts = self.parts
        states = parts.records.states()
        kept: list[Step] = []
        for step in steps:
            state = self._unsure.get(step.number) or states.get(step.number)
            if state is None or not (state.unknown or state.done_unticked) or step.checked:
                kept.append(step)
                continue
            choice = parts.operator.unknown(step, state)
            parts.records.write(
                "step-resolved",
                sync=True,
                step=step.number,
                choice={"r": "retry", "s": "skip", "d": "done", "q": "quit"}[choice],
                unknown_run=state.run,
            )
            if choice == "q":
                raise Quit
            if choice == "s":
                self.loop.results.append(
                    StepResult(step.number, step.title, "skipped", note="unknown outcome")
                )
                continue
            if choice == "d":
                with parts.signals.bookkeeping():
                    self.loop.tick(step)
                self.loop.results.append(
                    StepResult(step.number, step.title, "done", note="ticked by the operator")
                )
                continue
            kept.append(step)
        return kept

    def _dry_run(self, steps: Sequence[Step]) -> None:
        from runbook.report import dry_run_lines

        parts = self.parts
        found = plan.dry_plan(
            steps,
            book=self.book,
            guides=self.guides,
            options=self.options,
            tabs=parts.tabs,
            inputs=parts.inputs,
            nesting=parts.nesting,
            refuse=parts.operator.refuse_tab,
        )
        for text, styles in dry_run_lines(self.book, found, accept=self.options.accept):
            parts.console.line(text, *styles)

    def _summary(self, total: float) -> None:
        from runbook.report import summary_lines

        lines = summary_lines(
            self.loop.results,
            self.loop.timed,
            total,
            self.parts.records.transcript_path,
            self.loop.performer.confirmations,
        )
        for text, styles in lines:
            # The terminal may be gone (SIGHUP): the records are written, printing is a courtesy.
            with suppress(OSError):
                self.parts.console.line(text, *styles)

    def _exit(self, failure: BaseException | None) -> int:
        """Return the exit code of a run that ended with ``failure``, or raise it, masked."""
        if failure is None:
            return EXIT_OK
        resume = self.parts.operator.resume_command
        if isinstance(failure, Quit):
            with suppress(OSError):
                self.parts.console.line(f"stopped; run '{resume}' to go on")
            return failure.code
        if isinstance(failure, KeyboardInterrupt):
            failure = Interrupted(
                "interrupted; the running step was not ticked",
                hint=f"run '{resume}' again to resume",
            )
        if isinstance(failure, RunbookError):
            raise self._masked(failure) from None
        raise failure

    def _masked(self, error: RunbookError) -> RunbookError:
        """Return ``error`` with any secret value in its message or hint masked."""
        error.message = self.redactor.redact_text(error.message)
        if error.hint is not None:
            error.hint = self.redactor.redact_text(error.hint)
        error.args = (error.message,)
        return error


def _site_warnings(books: Sequence[Runbook]) -> list[Diagnostic]:
    """Return the warnings located in a site's ``mkdocs.yml``, once each: lint shows them to
    the guide's author, but they change what the operator's run finds in the guide."""
    found: dict[Diagnostic, None] = {}
    for book in books:
        for diag in book.diagnostics:
            if diag.level == "warning" and diag.origin and diag.origin.path.name in CONFIG_NAMES:
                found.setdefault(diag)
    return list(found)


def _with_checked(book: Runbook, number: int) -> Runbook:
    """Return ``book`` with step ``number`` recorded as ticked (after a recovered tick)."""
    steps = tuple(
        replace(s, item=replace(s.item, checked=True))
        if s.number == number and s.item is not None
        else s
        for s in book.steps
    )
    return replace(book, steps=steps)
