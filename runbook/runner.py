"""``runbook exec``: walk a guide step by step, run what may run, ask about the rest.

The runner owns the bookkeeping (lock, journal, ticks, summary) and the conversation with
the operator; shells belong to ``runbook.session``. Order of records for every action:
journal start → run → journal end; for every step: journal end (fsynced) → tick. A tick
therefore never outruns the journal.
"""

from __future__ import annotations

import fnmatch
import os
import re
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import BinaryIO

from runbook.checklist import runtime_dir, snapshot
from runbook.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    ConcurrentEditError,
    GuideError,
    Interrupted,
    NeedsOperator,
    RunbookError,
    StepFailed,
    UsageError,
)
from runbook.inputs import check_value, preview, shell_var, substitute
from runbook.journal import Journal, journal_path, new_run_id, transcript_path, unknown_steps, who
from runbook.lock import Lock, lock_name
from runbook.model import Action, Origin, Placeholder, Runbook, Step, TabRef, rel
from runbook.redact import Redactor
from runbook.session import (
    Answer,
    BlockResult,
    Operator,
    Outcome,
    Session,
    local_transport,
    ssh_transport,
)
from runbook.site import Site
from runbook.state import Snapshot, Tick, apply_ticks
from runbook.ui import Console, format_duration

# Output kept per `$ ` command for comparison; longer output fails the comparison.
_CAPTURE_LIMIT = 1 << 20


@dataclass(frozen=True)
class ExecOptions:
    """How to run a guide."""

    sets: Mapping[str, str] = field(default_factory=dict)
    """Values for placeholders (``--set``)."""
    tabs: tuple[str, ...] = ()
    """Tab labels chosen ahead (``--tab``)."""
    from_step: int | None = None
    """Start at this step, ticked or not (``--from``)."""
    only: tuple[int, ...] = ()
    """Run just these steps, ticked or not (``--only``)."""
    redo: bool = False
    """Run ticked steps again (``--redo``)."""
    interactive: bool = True
    """Whether a person can be asked (a terminal and no ``--yes``)."""
    dry_run: bool = False
    """Show the plan, run nothing."""
    timeout: float | None = None
    """Default seconds per block (``--timeout``)."""
    retry_unknown: bool = False
    """Run steps with an unknown outcome again without asking."""
    skip_unknown: bool = False
    """Skip steps with an unknown outcome without asking."""


@dataclass
class StepResult:
    """How one step went, for the summary."""

    number: int
    title: str
    result: str  # done | skipped | failed | stopped | interrupted
    duration: float = 0.0
    note: str = ""


class _Quit(Exception):
    """The operator chose to stop the run."""


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
        self.book = book
        self.site = site
        self.options = options
        self.console = console or Console()
        self.guide_arg = guide_arg or rel(book.path)
        self.values: dict[str, str] = {}
        self.secrets: set[str] = {p.name for p in book.inputs if p.secret}
        self.tab_choice: dict[Origin, str] = {}
        self.labels: list[str] = list(options.tabs)
        self.sessions: dict[str, Session] = {}
        self.defined: dict[str, set[str]] = {}
        self.redactor = Redactor()
        self.results: list[StepResult] = []
        self.snapshot: Snapshot = snapshot(book)
        self.journal: Journal | None = None
        self.transcript: BinaryIO | None = None
        self._interrupts = 0
        self._running: Session | None = None

    # -- entry point --------------------------------------------------------------------------

    def run(self) -> int:
        """Run the guide; return the exit code."""
        self._check_guide()
        steps = self._select()
        self._collect_values(steps)
        if self.options.dry_run:
            self._dry_run(steps)
            return EXIT_OK
        runtime = runtime_dir(self.book)
        lock = Lock(
            runtime / "locks",
            lock_name(self.book.path, "run"),
            kind="run",
            subject=self.book.path,
            command=f"runbook exec {self.guide_arg}",
        )
        with lock:
            run_id = new_run_id()
            self.journal = Journal(journal_path(runtime, self.book.path), run_id)
            tpath = transcript_path(runtime, run_id)
            tpath.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(tpath, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self.transcript = os.fdopen(fd, "ab", buffering=0)
            self.journal.write(
                "run-start",
                sync=True,
                who=who(),
                guide=str(self.book.path),
                pid=os.getpid(),
                steps=[s.number for s in steps],
                inputs={k: v for k, v in self.values.items() if k not in self.secrets},
                transcript=str(tpath),
            )
            started = time.monotonic()
            code = EXIT_OK
            error: RunbookError | None = None
            try:
                with self._sigint():
                    steps = self._resolve_unknown(steps)
                    self._run_steps(steps)
            except _Quit:
                code = 4 if not self.options.interactive else EXIT_OK
                result = "stopped"
            except RunbookError as exc:
                error = exc
                code = exc.exit_code
                result = {1: "failed", 4: "stopped", 130: "interrupted"}.get(code, "error")
            except KeyboardInterrupt:
                code = EXIT_INTERRUPTED
                result = "interrupted"
                error = Interrupted(
                    "interrupted; the step was not ticked", hint=self._resume_hint()
                )
            else:
                result = "done"
            finally:
                self._close_sessions()
            total = time.monotonic() - started
            self.journal.write("run-end", sync=True, result=result, duration=round(total, 3))
            self.journal.close()
            self.transcript.close()
            self._summary(total, tpath)
            if error is not None:
                raise error
            return code

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

    def _select(self) -> list[Step]:
        steps = list(self.book.steps)
        numbers = {s.number for s in steps}
        if not steps:
            raise GuideError(
                "the guide has no numbered steps to run",
                path=self.book.path,
                hint=f"see 'runbook list {self.guide_arg}' for what was found",
            )
        for n in (*self.options.only, *(x for x in [self.options.from_step] if x is not None)):
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

    def _chosen(self, tabs: Sequence[TabRef], ask: bool) -> bool | None:
        """Whether actions inside ``tabs`` are in the chosen alternatives; None if undecided."""
        for tab in tabs:
            choice = self.tab_choice.get(tab.group)
            if choice is None:
                return None
            if choice != tab.label:
                return False
        return True

    def _groups(self, step: Step) -> dict[Origin, list[str]]:
        groups: dict[Origin, list[str]] = {}
        for item in [*step.actions, *step.admonitions]:
            for tab in item.tabs:
                labels = groups.setdefault(tab.group, [])
                if tab.label not in labels:
                    labels.append(tab.label)
        return groups

    def _choose_tabs(self, step: Step, *, ask: bool) -> None:
        """Decide each set of alternatives of ``step``, outer sets first."""
        groups = self._groups(step)
        for group, labels in groups.items():
            if group in self.tab_choice:
                continue
            # A nested set only matters when its enclosing tabs are chosen.
            outer = self._outer_tabs(step, group)
            if outer is not None and self._chosen(outer, ask) is False:
                continue
            picked = next((label for label in self.labels if label in labels), None)
            if picked is None:
                picked = next(
                    (
                        label
                        for pattern in self.labels
                        for label in labels
                        if fnmatch.fnmatch(label, pattern)
                    ),
                    None,
                )
            if picked is None and len(labels) == 1:
                picked = labels[0]
            if picked is None:
                if not ask or not self.options.interactive:
                    raise NeedsOperator(
                        f"step {step.number} offers alternatives: {' | '.join(labels)}",
                        path=group.path,
                        line=group.line,
                        hint=f"pick one with --tab {_quote_label(labels[0])} (or another label)",
                    )
                picked = self.console.pick(
                    f"Step {step.number} offers alternatives. Which one?", labels
                )
                self.labels.append(picked)
            self.tab_choice[group] = picked

    @staticmethod
    def _outer_tabs(step: Step, group: Origin) -> tuple[TabRef, ...] | None:
        for item in [*step.actions, *step.admonitions]:
            for i, tab in enumerate(item.tabs):
                if tab.group == group:
                    return item.tabs[:i]
        return None

    def _actions(self, step: Step) -> list[Action]:
        return [a for a in step.actions if self._chosen(a.tabs, False) is not False]

    def _needed_inputs(self, steps: Sequence[Step]) -> list[tuple[Placeholder, Step, Action]]:
        needed: dict[str, tuple[Placeholder, Step, Action]] = {}
        for step in steps:
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
            check_value(name, value)
            self.values[name] = value
        for name in self.secrets:
            if name in self.values:
                self.redactor.add(self.values[name])
        if self.options.interactive or self.options.dry_run:
            return
        # Non-interactive: decide every tab set and know every input before running anything.
        for step in steps:
            if self._pending(step):
                self._choose_tabs(step, ask=False)
        missing = [
            (ph, step, a)
            for ph, step, a in self._needed_inputs(steps)
            if ph.name not in self.values and self._pending(step)
        ]
        if missing:
            ph, step, action = missing[0]
            names = ", ".join(f"<{p.name}>" for p, _, _ in missing)
            raise NeedsOperator(
                f"step {step.number} needs {names}, and a non-interactive run cannot ask",
                path=action.origin.path,
                line=action.origin.line,
                hint=" ".join(f"--set {p.name}=…" for p, _, _ in missing),
            )

    def _pending(self, step: Step) -> bool:
        return (
            not step.checked
            or self.options.redo
            or bool(self.options.only)
            or self.options.from_step is not None
        )

    # -- unknown outcomes ----------------------------------------------------------------------

    def _resolve_unknown(self, steps: list[Step]) -> list[Step]:
        assert self.journal is not None
        unknown = {
            u.step: u for u in unknown_steps(self.journal.path) if u.run != self.journal.run_id
        }
        kept: list[Step] = []
        for step in steps:
            u = unknown.get(step.number)
            if u is None or step.checked:
                kept.append(step)
                continue
            what = (
                f"step {step.number} ({step.title}) was started by {u.who} at {u.time} "
                f"(run {u.run}) but its end was not recorded: its outcome is unknown"
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
            self.journal.write("step-resolved", sync=True, step=step.number, choice=choice)
            if choice == "q":
                raise _Quit
            if choice == "s":
                self.results.append(
                    StepResult(step.number, step.title, "skipped", note="unknown outcome")
                )
                continue
            if choice == "d":
                self._tick(step)
                self.results.append(
                    StepResult(step.number, step.title, "done", note="ticked by operator")
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
            assert self.journal is not None
            self.journal.write("step-start", sync=True, step=step.number, title=step.title)
            try:
                outcome = self._run_step(step)
            except StepFailed:
                duration = time.monotonic() - started
                self.journal.write(
                    "step-end",
                    sync=True,
                    step=step.number,
                    result="failed",
                    duration=round(duration, 3),
                )
                self.results.append(StepResult(step.number, step.title, "failed", duration))
                raise
            except (NeedsOperator, _Quit, KeyboardInterrupt, Interrupted) as exc:
                duration = time.monotonic() - started
                result = (
                    "interrupted"
                    if isinstance(exc, (KeyboardInterrupt, Interrupted))
                    else "stopped"
                )
                self.journal.write(
                    "step-end",
                    sync=True,
                    step=step.number,
                    result=result,
                    duration=round(duration, 3),
                )
                self.results.append(StepResult(step.number, step.title, result, duration))
                raise
            duration = time.monotonic() - started
            self.journal.write(
                "step-end", sync=True, step=step.number, result=outcome, duration=round(duration, 3)
            )
            if outcome == "done":
                self._tick(step)
            self.results.append(StepResult(step.number, step.title, outcome, duration))

    def _run_step(self, step: Step) -> str:
        self._choose_tabs(step, ask=True)
        for adm in step.admonitions:
            if adm.kind in ("danger", "warning") and self._chosen(adm.tabs, False) is not False:
                label = adm.kind.upper() + (f": {adm.title}" if adm.title else "")
                self.console.line(f"! {label}", "red" if adm.kind == "danger" else "yellow", "bold")
                for text in adm.text.split("\n"):
                    self.console.line(f"  {text}", "yellow")
        actions = self._actions(step)
        if not any(a.executable for a in actions):
            return self._manual(step)
        skipped = False
        for action in actions:
            if action.kind == "shown":
                self._show(action)
                continue
            if action.kind == "suggested" and not self._confirm(step, action):
                skipped = True
                continue
            self._execute(step, action)
        return "skipped" if skipped and not any(a.kind == "run" for a in actions) else "done"

    def _manual(self, step: Step) -> str:
        if not self.options.interactive:
            raise NeedsOperator(
                f"step {step.number} ({step.title}) is done by a person",
                path=step.origin.path,
                line=step.origin.line,
                hint=f"do it, then 'runbook check {self.guide_arg} {step.number}' and run again; "
                "or run interactively to confirm it",
            )
        body = _readable(step.body)
        if body:
            for text in body.split("\n"):
                self.console.line("  " + text)
        choice = self.console.choose(
            f"Step {step.number} is manual. Is it done?",
            [("d", "done"), ("s", "skip"), ("q", "quit")],
        )
        if choice == "q":
            raise _Quit
        return "done" if choice == "d" else "skipped"

    def _show(self, action: Action) -> None:
        self.console.line(
            f"  {action.lang or 'text'} ({rel(action.origin.path)}:{action.origin.line}), shown only:",
            "dim",
        )
        for text in action.code.rstrip("\n").split("\n"):
            self.console.line("  │ " + text, "dim")

    def _print_code(self, action: Action, code: str) -> None:
        kind = "run" if action.kind == "run" else "suggested"
        where = f"{rel(action.origin.path)}:{action.origin.line}"
        host = f" on {action.host}" if action.host != "local" else ""
        self.console.line(f"▶ {kind}{host} ({where})", "cyan")
        for text in code.rstrip("\n").split("\n"):
            self.console.line("  $ " + text if self.console.tty else "  " + text, "bold")

    def _confirm(self, step: Step, action: Action) -> bool:
        """Offer a suggested block; return False when skipped (or done by hand)."""
        shown = preview(action.code, self.values, self.secrets)
        if not self.options.interactive:
            raise NeedsOperator(
                f"step {step.number} offers a command that needs a person's yes",
                path=action.origin.path,
                line=action.origin.line,
                hint="run interactively to confirm it, mark the block { .run } if it is safe "
                f"to run unattended, or do the step by hand and 'runbook check "
                f"{self.guide_arg} {step.number}'",
            )
        self._print_code(action, shown)
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
        assert self.journal is not None
        if choice == "q":
            raise _Quit
        if choice in ("s", "d"):
            self.journal.write(
                "action-confirmed",
                step=step.number,
                origin=str(action.origin),
                choice={"s": "skip", "d": "by-hand"}[choice],
            )
            return choice == "d"
        if choice == "e":
            import click

            edited = click.edit(action.code, extension=".sh")
            if edited is not None:
                from dataclasses import replace

                self._execute(step, replace(action, code=edited), confirmed=True)
                return True
        self._execute(step, action, confirmed=True)
        return True

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
                cwd=str(self.site.root),
                redactor=self.redactor,
                transcript=self.transcript,
            )
            session.start()
            self.sessions[host] = session
            self.defined[host] = set()
        return session

    def _ask_value(self, ph: Placeholder) -> str:
        while True:
            value = self.console.ask_value(ph.name, ph.secret)
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
                    f"step {step.number} needs <{ph.name}>",
                    path=action.origin.path,
                    line=action.origin.line,
                    hint=f"--set {ph.name}=…",
                )
            self.values[ph.name] = self._ask_value(ph)
            if ph.secret:
                self.redactor.add(self.values[ph.name])
        return self.values[ph.name]

    def _execute(self, step: Step, action: Action, *, confirmed: bool = False) -> None:
        session = self._session(action.host)
        for ph in action.placeholders:
            value = self._value(ph, step, action)
            if ph.name not in self.defined[action.host]:
                session.define(shell_var(ph.name), value)
                self.defined[action.host].add(ph.name)
        literal = {k: v for k, v in self.values.items() if k not in self.secrets}
        if action.kind == "run":
            self._print_code(action, preview(action.code, self.values, self.secrets))
        commands = _prompt_commands(action.code) if action.expects_output else None
        answers = tuple(
            Answer(
                expect=a.expect,
                send=preview(a.send, self.values, ()),
                secret=any(
                    p.name in self.secrets and f"<{p.name}>" in a.send for p in action.placeholders
                ),
            )
            for a in action.answers
        )
        timeout = action.timeout or self.options.timeout
        units = commands if commands is not None else [(action.code, None)]
        for code, expected in units:
            script = substitute(code, [p.name for p in action.placeholders], literal=literal)
            self._run_unit(step, action, session, script.code, expected, answers, timeout)

    def _run_unit(
        self,
        step: Step,
        action: Action,
        session: Session,
        code: str,
        expected: list[str] | None,
        answers: tuple[Answer, ...],
        timeout: float | None,
    ) -> None:
        assert self.journal is not None
        captured = bytearray()

        def on_output(chunk: bytes) -> None:
            self.console.output(chunk)
            if expected is not None and len(captured) <= _CAPTURE_LIMIT:
                captured.extend(chunk)

        origin = f"{action.origin.path}:{action.origin.line}"
        while True:
            self.journal.write(
                "action-start",
                step=step.number,
                origin=origin,
                host=action.host,
                kind=action.kind,
                tabs=[t.label for t in action.tabs],
            )
            operator = (
                Operator(sys.stdin.fileno(), self._handover)
                if self.options.interactive and sys.stdin.isatty()
                else None
            )
            self.console.start_spinner(f"step {step.number}")
            self._running = session
            try:
                result = session.run(
                    code + "\n",
                    timeout=timeout,
                    answers=answers,
                    on_output=on_output,
                    operator=operator,
                )
            finally:
                self._running = None
                self.console.stop_spinner()
            self.journal.write(
                "action-end",
                step=step.number,
                origin=origin,
                host=action.host,
                status=result.status,
                outcome=str(result.outcome),
                duration=round(result.duration, 3),
            )
            failure = self._judge(result, expected, bytes(captured), timeout)
            if failure is None:
                return
            self.console.line(f"✗ {failure}", "red", "bold")
            if result.outcome is Outcome.INTERRUPTED:
                self._interrupts = 0
                if not self.options.interactive:
                    raise KeyboardInterrupt
            if not self.options.interactive:
                self._fail(step, action, failure, result)
            choice = self.console.choose(
                "What now?", [("r", "retry"), ("s", "skip this block"), ("q", "quit")]
            )
            if choice == "s":
                self.journal.write(
                    "action-confirmed", step=step.number, origin=origin, choice="skip-failed"
                )
                return
            if choice == "q":
                self._fail(step, action, failure, result)
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
            return f"stopped after the {format_duration(timeout or 0)} timeout{last}"
        if result.outcome is Outcome.INTERRUPTED:
            return "interrupted"
        if result.outcome is Outcome.NEEDS_INPUT:
            return f"is waiting for input: {result.last_line!r}"
        if result.outcome is Outcome.SHELL_DIED:
            return (
                f"ended the shell (status {result.status}); a fresh shell replaced it, so the "
                "working directory and variables were reset"
            )
        return f"ended with {result.outcome}"

    def _fail(self, step: Step, action: Action, failure: str, result: BlockResult) -> None:
        hint = f"fix the cause, then run 'runbook exec {self.guide_arg}' again to resume at step {step.number}"
        if result.outcome is Outcome.NEEDS_INPUT:
            hint = (
                "answer it in an interactive run, or declare the answer on the block: "
                f'{{ .run expect="{result.last_line.strip()[-40:]}" send="…" }}'
            )
            raise NeedsOperator(
                f"step {step.number}: the command {failure}",
                path=action.origin.path,
                line=action.origin.line,
                hint=hint,
            )
        raise StepFailed(
            f"step {step.number} failed: the block {failure}",
            path=action.origin.path,
            line=action.origin.line,
            hint=hint,
        )

    def _handover(self, last_line: str) -> None:
        self.console.line(
            f"⌨ the command waits for input ({last_line.strip()!r}); type your answer", "yellow"
        )

    def _tick(self, step: Step) -> None:
        assert self.journal is not None
        if step.item is None:
            self.console.line(
                f"  step {step.number} has no checklist item: progress not recorded in the file",
                "dim",
            )
            return
        if step.item.checked:
            return
        tick = Tick(step.item.origin.path, step.item.origin.line, True, step.item.text)
        try:
            self.snapshot = apply_ticks(
                self.book.path,
                [tick],
                snapshot=self.snapshot,
                lock_dir=runtime_dir(self.book) / "locks",
            )
        except ConcurrentEditError as exc:
            self.journal.write("tick-refused", sync=True, step=step.number, reason=exc.message)
            raise
        self.journal.write("tick", step=step.number, line=step.item.origin.line)
        self.console.line(f"✓ step {step.number} done, ticked in {rel(self.book.path)}", "green")

    # -- interruption ------------------------------------------------------------------------

    @contextmanager
    def _sigint(self) -> Iterator[None]:
        """First Ctrl-C stops the running command; a second one ends the run."""

        def handler(signum: int, frame: FrameType | None) -> None:
            self._interrupts += 1
            if self._running is not None and self._interrupts == 1:
                self._running.interrupt()
                return
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _close_sessions(self) -> None:
        for session in self.sessions.values():
            session.close()
        self.sessions.clear()

    def _resume_hint(self) -> str:
        return f"run 'runbook exec {self.guide_arg}' again to resume"

    # -- reporting -------------------------------------------------------------------------------

    def _dry_run(self, steps: Sequence[Step]) -> None:
        c = self.console
        c.line(f"Dry run of {rel(self.book.path)}: nothing is executed.", "bold")
        missing: dict[str, Placeholder] = {}
        people: list[str] = []
        for step in steps:
            state = "done, skipped" if not self._pending(step) else "to run"
            c.line()
            c.line(f"Step {step.number}. {step.title}  [{state}]", "bold")
            if not self._pending(step):
                continue
            try:
                self._choose_tabs(step, ask=False)
            except NeedsOperator as exc:
                people.append(f"step {step.number}: choose a tab ({exc.message}); {exc.hint}")
                c.line(f"  needs a choice: {exc.message}", "yellow")
            actions = self._actions(step)
            if not any(a.executable for a in actions):
                people.append(f"step {step.number}: manual, a person confirms it")
                c.line("  manual: a person does it and confirms", "yellow")
            for action in actions:
                for ph in action.placeholders:
                    if ph.name not in self.values and action.executable:
                        missing.setdefault(ph.name, ph)
                tabs = " > ".join(t.label for t in action.tabs)
                c.line(
                    f"  [{action.kind}] {rel(action.origin.path)}:{action.origin.line}"
                    + (f" (tab {tabs})" if tabs else "")
                    + (f" on {action.host}" if action.host != "local" else ""),
                )
                if action.kind == "suggested":
                    people.append(
                        f"step {step.number}: confirm the block at {rel(action.origin.path)}:{action.origin.line}"
                    )
                if action.executable:
                    for text in (
                        preview(action.code, self.values, self.secrets).rstrip("\n").split("\n")
                    ):
                        c.line("      " + text)
        c.line()
        if missing:
            c.line(
                "Inputs still missing: "
                + ", ".join(
                    f"<{n}>" + (" (secret)" if p.secret else "") for n, p in missing.items()
                ),
                "yellow",
            )
            c.line("  give them with " + " ".join(f"--set {n}=…" for n in missing))
        if people:
            c.line("Needs a person:", "yellow")
            for text in people:
                c.line("  - " + text)

    def _summary(self, total: float, transcript: Path) -> None:
        c = self.console
        if not self.results:
            return
        c.line()
        c.line("Summary", "bold")
        colors = {
            "done": "green",
            "failed": "red",
            "interrupted": "red",
            "stopped": "yellow",
            "skipped": "yellow",
        }
        already = [r for r in self.results if r.result == "already done"]
        if already:
            c.line(
                f"  · steps {', '.join(str(r.number) for r in already)} were already done", "dim"
            )
        for r in self.results:
            if r.result == "already done":
                continue
            mark = {
                "done": "✓",
                "failed": "✗",
                "skipped": "–",
                "stopped": "■",
                "interrupted": "■",
            }.get(r.result, "·")
            dur = format_duration(r.duration) if r.duration else ""
            note = f"  ({r.note})" if r.note else ""
            c.line(
                f"  {mark} {r.number:>2}. {r.title[:48]:<48} {r.result:<12} {dur:>7}{note}",
                colors.get(r.result, "dim"),
            )
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r.result] = counts.get(r.result, 0) + 1
        parts = ", ".join(f"{n} {k}" for k, n in counts.items())
        c.line(f"  {parts} · total {format_duration(total)} · transcript {rel(transcript)}", "bold")


def _quote_label(label: str) -> str:
    return f'"{label}"' if re.search(r"\s", label) else label


def _readable(body: str) -> str:
    """Return a step body for the terminal: trimmed, at most 40 lines."""
    lines = [ln.rstrip() for ln in body.strip("\n").split("\n")]
    if len(lines) > 40:
        lines = [*lines[:40], "…"]
    return "\n".join(lines)


def _prompt_commands(code: str) -> list[tuple[str, list[str] | None]]:
    """Split a ``$ `` block into commands, each with its expected output lines."""
    units: list[tuple[str, list[str] | None]] = []
    for line in code.rstrip("\n").split("\n"):
        stripped = line.lstrip()
        if stripped.startswith("$ "):
            units.append((stripped[2:], []))
        elif stripped.startswith("> ") and units and not units[-1][1]:
            units[-1] = (units[-1][0] + "\n" + stripped[2:], [])
        elif units:
            out = units[-1][1]
            assert out is not None
            out.append(line)
    return units


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
