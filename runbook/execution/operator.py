"""The person at the terminal: what they are shown, what they are asked, and, when no one
can be asked (``--yes``, or no terminal), the refusal that stops the run with exit 4 and
names the flag or answer that would let it go on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn

from runbook.errors import EXIT_NEEDS_OPERATOR, NeedsOperator, UsageError
from runbook.execution.plan import quote_label, resume_flags
from runbook.execution.view import block_lines, lead_lines, unplaced
from runbook.inputs import check_value, how_to_give
from runbook.model import Action, Origin, Placeholder, Step
from runbook.ui import Console

if TYPE_CHECKING:
    from runbook.execution.plan import ExecOptions, Nesting
    from runbook.execution.tabs import TabChoices
    from runbook.journal import StepState


class Quit(Exception):
    """The operator chose to stop the run."""

    def __init__(self, code: int = EXIT_NEEDS_OPERATOR) -> None:
        super().__init__(code)
        self.code = code


class SkipBlock(Exception):
    """The operator chose to skip the block whose input was being asked, or to do it by
    hand (``by_hand``)."""

    def __init__(self, name: str, *, by_hand: bool = False) -> None:
        super().__init__(name)
        self.name = name
        self.by_hand = by_hand


class Operator:
    """Questions to the person running the guide, and refusals when there is none."""

    def __init__(
        self, console: Console, options: ExecOptions, nesting: Nesting, guide_arg: str
    ) -> None:
        self.console = console
        self.interactive = options.interactive
        """Whether a person can be asked."""
        self._options = options
        self._nesting = nesting
        self.guide_arg = guide_arg
        """The guide as the command line named it."""

    @property
    def resume_command(self) -> str:
        """The command that resumes the run where it stopped (its selection kept)."""
        outer = self._nesting.outer
        at = outer.number if outer is not None else None
        return f"runbook exec {self.guide_arg}{resume_flags(self._options, at)}"

    # -- refusals -------------------------------------------------------------------------------

    def refuse_tab(self, step: Step, group: Origin, labels: list[str]) -> NoReturn:
        """Stop: ``step`` offers alternatives and none was chosen ahead."""
        raise _refusal(
            f"{self._nesting.named(step)} offers alternatives: {' | '.join(labels)}",
            group,
            f"pick one with --tab {quote_label(labels[0])} (or another label)",
        )

    def refuse_inputs(self, step: Step, missing: list[tuple[Placeholder, Step, Action]]) -> None:
        """Stop before anything runs when inputs have no value and no one can be asked."""
        if not missing:
            return
        _, _, action = missing[0]
        names = ", ".join(f"<{p.name}>" for p, _, _ in missing)
        raise _refusal(
            f"{self._nesting.named(step)} needs {names}, and a non-interactive run cannot ask",
            action.origin,
            "give " + ", ".join(how_to_give(p.name, p.secret) for p, _, _ in missing),
        )

    def refuse_suggested(self, step: Step, suggested: Action | None) -> None:
        """Stop before a step with a block to confirm runs anything, when no one can confirm."""
        if suggested is None or self.interactive:
            return
        # Stop before running anything of the step, so a rerun does not repeat half of it.
        raise _refusal(
            f"{self._nesting.named(step)} ({step.title}) offers a command that needs a "
            "person's yes",
            suggested.origin,
            "run interactively to confirm it, give --accept to run offered blocks as "
            "if you answered run, mark the block { .run } if it is safe to run unattended, "
            "or do the step by hand and pass it with "
            f"--by-hand {self._nesting.resume_step(step)}",
        )

    # -- questions ------------------------------------------------------------------------------

    def pick_tab(self, step: Step, group: Origin, labels: list[str]) -> str:
        """Ask which alternative to take (or refuse when no one can be asked)."""
        if not self.interactive:
            self.refuse_tab(step, group, labels)
        picked = self.console.pick(f"Step {step.number} offers alternatives. Which one?", labels)
        if picked is None:
            raise Quit
        return picked

    def keep_tab(self, step: Step, group: Origin, labels: list[str], picked: str) -> str:
        """Let the operator keep the alternative picked at an earlier step or change it."""
        if not self.interactive:
            return picked
        choice = self.console.choose(
            f"Step {step.number} offers {' | '.join(labels)}: keep {picked}?",
            [("k", "keep"), ("c", "change"), ("q", "quit")],
            default="k",
        )
        if choice == "q":
            raise Quit
        return picked if choice == "k" else self.pick_tab(step, group, labels)

    def manual(self, step: Step) -> bool:
        """Show a manual step and ask whether it is done; True when it is, False to skip."""
        if not self.interactive:
            raise _refusal(
                f"{self._nesting.named(step)} ({step.title}) is done by a person",
                step.origin,
                f"do it, then 'runbook check {self.guide_arg} {step.number}' and run "
                "again; or run interactively to confirm it",
            )
        body = _readable(step.body)
        for text in body.split("\n") if body else []:
            self.console.line("  " + text)
        choice = self.console.choose(
            f"Step {step.number} is manual. Is it done?",
            [("d", "done"), ("s", "skip"), ("q", "quit")],
        )
        if choice == "q":
            raise Quit
        return choice == "d"

    def offer(self, warning: str = "") -> str:
        """Ask what to do with a block offered to run (naming the ``warning`` before it, if
        any): ``r`` run, ``e`` edit then run, ``s`` skip, ``d`` done by hand."""
        choice = self.console.choose(
            f"{warning}: run this?" if warning else "Run this?",
            [
                ("r", "run"),
                ("e", "edit then run"),
                ("s", "skip"),
                ("d", "done by hand"),
                ("q", "quit"),
            ],
        )
        if choice == "q":
            raise Quit
        return choice

    def connect(self, place: str, line: str) -> str:
        """Ask whether to connect: ``y`` yes, ``d`` no, its blocks are done by hand, ``s``
        no, its blocks are skipped."""
        choice = self.console.choose(
            f"connect to {place} ({line})?",
            [
                ("y", "yes, connect"),
                ("d", "do its blocks by hand"),
                ("s", "skip its blocks"),
                ("q", "quit"),
            ],
        )
        if choice == "q":
            raise Quit
        return choice

    def done_there(self, place: str) -> bool:
        """Ask whether a block shown was done by hand on ``place``; False to skip it."""
        choice = self.console.choose(
            f"Done by hand on {place}?", [("d", "done"), ("s", "skip"), ("q", "quit")]
        )
        if choice == "q":
            raise Quit
        return choice == "d"

    def edit(self, code: str) -> str | None:
        """Let the operator edit ``code``; None when it is unchanged."""
        return self.console.edit(code)

    def after_failure(self, what: str, *, resume_from: str = "") -> str:
        """Say what went wrong with a block; when someone can be asked, ask what now (else
        ``q``): ``r`` retry, ``f`` retry from the failing command (offered when
        ``resume_from`` names it), ``e`` edit then retry, ``d`` done by hand, ``s`` skip the
        block, ``q`` quit."""
        self.console.line(f"✗ {what}", "red", "bold")
        if not self.interactive:
            return "q"
        choices = [("r", "retry")]
        if resume_from:
            self.console.line(f"  it failed at {resume_from}", "dim")
            choices.append(("f", "from the failing command"))
        choices += [
            ("e", "edit then retry"),
            ("d", "done by hand"),
            ("s", "skip this block"),
            ("q", "quit"),
        ]
        return self.console.choose("What now?", choices)

    def incomplete(self, step: Step, why: str) -> None:
        """Stop before going past ``step``, which is not complete (``why``), unless the
        operator says to go on; it stays unticked either way."""
        what = f"{self._nesting.named(step)} ({step.title}) is not complete: {why}"
        if not self.interactive:
            raise _refusal(
                what,
                step.origin,
                "finish it by hand and tick it with "
                f"'runbook check {self.guide_arg} {step.number}', then run "
                f"'{self.resume_command}' again",
            )
        self.console.line(f"! {what}; it is left unticked", "yellow")
        choice = self.console.choose("Go on to the next step?", [("c", "continue"), ("q", "quit")])
        if choice == "q":
            raise Quit

    def unknown(self, step: Step, state: StepState) -> str:
        """Decide about a step whose outcome is unknown: ``r`` run it again, ``s`` skip it,
        ``d`` tick it, ``q`` quit; from the options, else by asking, else refuse."""
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
        if self._options.retry_unknown:
            return "r"
        if self._options.skip_unknown:
            return "s"
        if not self.interactive:
            raise _refusal(
                what,
                step.origin,
                "check what it did, then rerun with --retry-unknown (run it again) "
                "or --skip-unknown (leave it), or tick it with "
                f"'runbook check {self.guide_arg} {step.number}' if it is done",
            )
        self.console.line("! " + what, "yellow")
        return self.console.choose(
            "Run it again?",
            [("r", "run it again"), ("s", "skip it"), ("d", "done: tick it"), ("q", "quit")],
        )

    def value(
        self,
        ph: Placeholder,
        step: Step,
        action: Action,
        check: Callable[[str, str], None] = check_value,
    ) -> str:
        """Ask for the value of input ``ph`` that ``action`` needs (or refuse); ask again
        while ``check`` refuses the answer."""
        if not self.interactive:
            raise _refusal(
                f"{self._nesting.named(step)} needs <{ph.name}>",
                action.origin,
                "give " + how_to_give(ph.name, ph.secret),
            )
        while True:
            try:
                value = self.console.ask_value(ph.name, ph.secret)
            except EOFError:
                raise Quit from None
            except KeyboardInterrupt:
                self._interrupted_question(ph)
                continue
            try:
                check(ph.name, value)
            except UsageError as exc:
                self.console.line(f"  {exc.message}", "red")
                continue
            return value

    def _interrupted_question(self, ph: Placeholder) -> None:
        """After Ctrl-C at the question for ``ph``: offer what Ctrl-C during a command
        offers; return to ask again, or raise (a second Ctrl-C ends the run)."""
        self.console.line(f"✗ interrupted (Ctrl-C) while asking for <{ph.name}>", "red", "bold")
        choice = self.console.choose(
            "What now?",
            [("r", "ask again"), ("d", "done by hand"), ("s", "skip this block"), ("q", "quit")],
        )
        if choice in ("s", "d"):
            raise SkipBlock(ph.name, by_hand=choice == "d")
        if choice == "q":
            raise KeyboardInterrupt

    def handover(self, last_line: str) -> None:
        """Tell the operator a command waits for their typing."""
        # The spinner would draw over what the operator types.
        self.console.stop_spinner()
        self.console.line(
            f"⌨ the command waits for input ({last_line.strip()!r}): type your answer; "
            "control returns when it finishes",
            "yellow",
        )

    # -- what the operator sees -----------------------------------------------------------------

    def warnings(self, step: Step, tabs: TabChoices) -> None:
        """Show, before the step's blocks, its warnings and dangers (in the tabs taken) that
        no block's lead shows: those after its last block."""
        for adm in unplaced(step):
            if tabs.taken(adm.tabs) is not False:
                label = adm.kind.upper() + (f": {adm.title}" if adm.title else "")
                self.console.line(f"! {label}", "red" if adm.kind == "danger" else "yellow", "bold")
                for text in adm.text.split("\n"):
                    self.console.line(f"  {text}", "yellow")

    def lead(self, action: Action) -> None:
        """Show the prose, admonitions and sub-headings written right before a block."""
        for text, styles in lead_lines(action.lead, self.console.width - 2):
            self.console.line(text, *styles)

    def show(self, action: Action) -> None:
        """Show a block that is never run."""
        self.console.line(
            f"  {action.lang or 'text'} ({action.origin.shown}), shown only:",
            "dim",
        )
        for text in action.code.rstrip("\n").split("\n"):
            self.console.line("  │ " + text, "dim")

    def code(self, action: Action, values: Sequence[str], place: str, how: str = "") -> None:
        """Show a block about to run (or offered) on ``place`` as written, its inputs kept as
        ``<name>`` with ``values`` (their legend) under it; ``how`` says what happens to it
        instead of running (``to do by hand`` …)."""
        where = action.origin.shown
        head = f"▶ {action.kind} on {place} ({where})" + (f": {how}" if how else "")
        self.console.line(head, "cyan")
        for text, command in block_lines(action):
            self.console.line("  " + text, "bold" if command else "dim")
        for text in values:
            self.console.line("    where " + text, "dim")

    def confirm(self, action: Action, warning: str) -> bool:
        """Ask whether to run a block despite the ``warning`` shown before it."""
        choice = self.console.choose(
            f"{warning}: run the block at {action.origin.shown}?",
            [("y", "yes, run it"), ("n", "no, skip it"), ("q", "quit")],
        )
        if choice == "q":
            raise Quit
        return choice == "y"

    def connecting(self, action: Action, place: str, line: str) -> None:
        """Show an ``ssh`` line: the connection the next blocks run in."""
        self.console.line(f"▶ connect to {place} ({action.origin.shown})", "cyan")
        self.console.line(("  $ " if self.console.tty else "  ") + line, "bold")


def _readable(body: str) -> str:
    """Return a step body for the terminal: trimmed, at most 40 lines."""
    lines = [ln.rstrip() for ln in body.strip("\n").split("\n")]
    if len(lines) > 40:
        lines = [*lines[:40], "…"]
    return "\n".join(lines)


def _refusal(what: str, origin: Origin, hint: str) -> NeedsOperator:
    """Return the refusal of a run without a person: ``what`` needs one, at ``origin``, and
    ``hint`` says which option or answer would let the run go on."""
    return NeedsOperator(what, at=origin, hint=hint)
