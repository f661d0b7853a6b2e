"""One block of a step: shown, offered to the operator, or run in the shell of its host,
with a journal record before and after every shell round trip, until it succeeds, the
operator moves on, or the run must stop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from runbook.errors import RunbookError
from runbook.execution import plan, retry
from runbook.execution.connect import Connections
from runbook.execution.operator import SkipBlock
from runbook.execution.parts import Parts
from runbook.execution.plan import Unit
from runbook.execution.resume import Resume
from runbook.execution.shells import Shell
from runbook.execution.verdict import FAILED_SKIPPED, Result, dropped, failure, judge
from runbook.execution.view import legend, warning
from runbook.inputs import preview
from runbook.model import Action, Outcome, Placeholder, Step
from runbook.users import current_user

# ssh's own status for a connection that failed or dropped; any other status is the remote
# shell's own (`exit 3` in a block), which the block chose.
SSH_FAILED = 255
# Output kept per `$ ` command for comparison; longer output fails the comparison.
_CAPTURE_LIMIT = 1 << 20


class Performer:
    """Perform the blocks of steps: show, offer or run each."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.connections = Connections(parts, self._value)
        """The shells blocks run in, and the ``ssh`` lines that open them."""
        self.resume = Resume(parts, self._value, {})
        """Each host's shell state: recorded after blocks, given back to fresh shells."""
        self.confirmations: list[str] = []
        """Blocks run (or declined) after a warning: which, how and by whom, for the
        summary."""

    def show(self, action: Action) -> None:
        """Show a block that is never run."""
        self.parts.operator.show(action)

    def perform(self, step: Step, action: Action) -> tuple[int, str]:
        """Carry out a block that may run: an ``ssh`` line, a block of a declined connection,
        an offered block or one to run; return (1 when it ran or was done by hand, else 0;
        why its step is incomplete, or empty)."""
        try:
            return self._perform(step, action)
        except SkipBlock as skipped:
            # Interrupted while its input was asked: the operator skipped it or did it.
            done = skipped.by_hand
            choice = "by-hand" if done else "skip"
            self.parts.records.confirmed(step, action, choice, how="input-interrupted")
            if action.kind == "connect":
                self.connections.decline(action, "d" if done else "s")
            if done:
                return 1, ""
            return 0, f"the block at {action.origin.shown} was skipped (no <{skipped.name}>)"

    def _perform(self, step: Step, action: Action) -> tuple[int, str]:
        connections = self.connections
        if plan.block_by_hand(action, self.parts.options):
            return self._passed(step, action), ""
        if action.kind == "connect":
            return connections.connect(step, action), ""
        if connections.declined(action):
            return connections.instead(step, action)
        if action.kind == "suggested":
            ran, done = self.offer(step, action)
        else:
            for ph in action.placeholders:
                self._value(ph, step, action)
            parts = self.parts
            parts.operator.code(action, self._legend(action), connections.place(action))
            declined = self._confirm(step, action)
            if declined:
                return 0, declined
            ran, done = 1, self.execute(step, action)
        return ran, "" if done else FAILED_SKIPPED

    def _legend(self, action: Action) -> list[str]:
        inputs = self.parts.inputs
        return legend(action.code, inputs.values, inputs.secrets())

    def _confirm(self, step: Step, action: Action, asked: str = "") -> str:
        """Let a block with a warning before it run only after a person's yes (``asked``:
        the answer already given), or unattended (``--yes``) when its author marked it
        ``.run``; return why its step is incomplete when declined, else ``""``."""
        said = warning(step, action)
        if not said:
            return ""
        parts = self.parts
        if asked:
            yes, how = asked == "y", "asked"
        elif parts.options.interactive:
            yes, how = parts.operator.confirm(action, said), "asked"
        else:
            yes, how = True, "unattended"
        parts.records.confirmed(step, action, "run" if yes else "skip", how=how, warning=said)
        who = "unattended (--yes), run by" if how == "unattended" else "confirmed by"
        what = "run" if yes else "declined"
        # A step of a guide run by another is named by the step that ran it.
        self.confirmations.append(
            f"{parts.nesting.named(step)}, block {action.origin.shown} ({said}): {what}, "
            f"{who} {current_user()}"
        )
        return "" if yes else f"the block at {action.origin.shown} was declined ({said})"

    def _passed(self, step: Step, action: Action) -> int:
        """Pass a block named by ``--by-hand-block`` as done by hand, running nothing."""
        parts = self.parts
        parts.operator.code(action, self._legend(action), self.connections.place(action), "")
        parts.records.confirmed(step, action, "by-hand", how="option", option="--by-hand-block")
        parts.console.line("  done by hand (--by-hand-block): not run", "yellow")
        return 1

    def offer(self, step: Step, action: Action) -> tuple[int, bool]:
        """Offer a block to run; return (1 when it ran or was done by hand, else 0; whether
        no failed part of it was skipped)."""
        parts = self.parts
        operator, records = parts.operator, parts.records
        accept = parts.options.accept
        operator.code(
            action,
            self._legend(action),
            self.connections.place(action),
            "run as accepted (--accept)" if accept else "",
        )
        said = warning(step, action)
        if accept and not (said and parts.options.interactive):
            records.confirmed(step, action, "run", how="option", option="--accept")
            return 1, self.execute(step, action)
        if accept:
            declined = self._confirm(step, action)
            return (0, False) if declined else (1, self.execute(step, action))
        choice = operator.offer(said)
        if said and choice in ("r", "e"):
            self._confirm(step, action, "y")
        if choice in ("s", "d"):
            records.confirmed(step, action, {"s": "skip", "d": "by-hand"}[choice], how="asked")
            return int(choice == "d"), True
        if choice == "e":
            edited = operator.edit(action.code)
            if edited is not None:
                action = plan.edited(action, edited)
                records.write("action-edited", step=step.number, origin=str(action.origin))
        return 1, self.execute(step, action)

    def execute(self, step: Step, action: Action) -> bool:
        """Run a block in its host's shell; return False when the operator skipped a part of
        it that failed."""
        parts = self.parts
        inputs, hosts, connections = parts.inputs, parts.hosts, self.connections
        key = connections.key(step, action)
        shell = connections.shell(step, action, key)
        self.resume.opened(step, action, key, shell)
        for ph in action.placeholders:
            value = self._value(ph, step, action)
            hosts.define(key, ph.name, value, secret=inputs.secret(ph.name))
        secrets = inputs.secrets()
        values = inputs.values
        literal = {k: v for k, v in values.items() if k not in secrets}
        answers = tuple(
            hosts.factory.answer(
                a.expect,
                preview(a.send, values, ()),
                secret=any(
                    p.name in secrets and f"<{p.name}>" in a.send for p in action.placeholders
                ),
            )
            for a in action.answers
        ) + tuple(connections.answers(key))
        timeout = action.timeout or parts.options.timeout
        complete = True
        for unit in plan.units(action, literal):
            complete = self._run_unit(step, unit, (key, shell), answers, timeout) and complete
        return complete

    def _value(self, ph: Placeholder, step: Step, action: Action) -> str:
        inputs = self.parts.inputs
        if ph.name not in inputs.values:
            value = self.parts.operator.value(ph, step, action, inputs.check)
            secret = ph.secret or inputs.secret(ph.name)
            inputs.give(ph.name, value, secret=secret)
            self.parts.records.write(
                "input",
                name=ph.name,
                how="asked",
                **({"secret": True} if secret else {"value": value}),
            )
        return inputs.values[ph.name]

    def _run_unit(
        self,
        step: Step,
        unit: Unit,
        host: tuple[str, Shell],
        answers: Sequence[Any],
        timeout: float | None,
    ) -> bool:
        """Run one unit in ``host`` (its key and shell) until it succeeds (True), the
        operator skips it (False), or the run must stop (raise)."""
        parts = self.parts
        console, operator, nesting = parts.console, parts.operator, parts.nesting
        name = self.connections.place(unit.action)
        captured = bytearray()

        def on_output(chunk: bytes) -> None:
            console.output(chunk)
            if unit.expected is not None and len(captured) <= _CAPTURE_LIMIT:
                captured.extend(chunk)

        while True:
            result = self._attempt(step, unit, host, answers, timeout, on_output)
            if (
                result.outcome == Outcome.SHELL_DIED
                and parts.hosts.factory.remote(host[0])
                and result.status in (None, SSH_FAILED)
            ):
                raise dropped(
                    nesting.named(step),
                    unit,
                    name,
                    result,
                    resume=operator.resume_command,
                    resume_step=nesting.resume_step(step),
                )
            what = judge(result, unit.expected, bytes(captured), timeout)
            if what is None:
                return True
            start = self._failed_at(unit, result, host[1])
            where = unit.code.split("\n")[start - 1].strip() if start else ""
            choice = operator.after_failure(
                what, resume_from=f"line {start} of the block: {where}" if start else ""
            )
            if choice == "f" and start:
                parts.records.write(
                    "action-retry", step=step.number, origin=str(unit.origin), from_line=start
                )
                console.line(f"  retrying from line {start}: {where}", "dim")
                unit = replace(unit, code=retry.rest(unit.code, start))
            if choice in ("s", "d"):
                parts.records.confirmed(
                    step, unit.action, "skip-failed" if choice == "s" else "by-hand-failed"
                )
                return choice == "d"
            if choice == "e":
                unit = self._edited(step, unit, host[0])
            if choice == "q":
                if result.outcome == Outcome.INTERRUPTED:
                    raise KeyboardInterrupt
                raise failure(
                    nesting.named(step),
                    unit,
                    what,
                    result,
                    host=name,
                    resume=operator.resume_command,
                    resume_step=nesting.resume_step(step),
                )
            captured.clear()
            # A fresh shell, if the block ended its own or left it unusable, gets back what
            # the guide set before the block runs again.
            self.resume.opened(step, unit.action, host[0], host[1])

    def _failed_at(self, unit: Unit, result: Result, shell: Shell) -> int | None:
        """Return the line of ``unit``'s code where the top-level command that failed
        starts, when a person can retry from there (not its first command)."""
        if (
            not self.parts.options.interactive
            or result.outcome != Outcome.FAILED
            or unit.expected is not None
            or not shell.alive
        ):
            return None
        try:
            said = shell.query('builtin printf %s "${__rb_line-}"').strip()
        except RunbookError:
            return None  # the shell cannot say: a whole retry is still offered
        if not said.isdigit():
            return None
        start = retry.command_start(unit.code, int(said))
        return start if start is not None and start > 1 else None

    def _edited(self, step: Step, unit: Unit, key: str) -> Unit:
        """Let the operator edit the part of a block that failed (the whole block, or its
        ``$ `` command) and show the result; return the unit to run next."""
        parts = self.parts
        action = unit.action
        source = action.commands[unit.index].code if action.expects_output else action.code
        edited = parts.operator.edit(source)
        if edited is None:
            parts.console.line("  unchanged: running it again as it was", "dim")
            return unit
        parts.records.write(
            "action-edited", step=step.number, origin=str(unit.origin), after="failure"
        )
        shown = plan.edited(replace(action, expects_output=False, commands=()), edited)
        parts.operator.code(shown, self._legend(shown), self.connections.place(action), "edited")
        inputs = parts.inputs
        for ph in shown.placeholders:
            value = self._value(ph, step, shown)
            parts.hosts.define(key, ph.name, value, secret=inputs.secret(ph.name))
        literal = {k: v for k, v in inputs.values.items() if k not in inputs.secrets()}
        code = plan.units(shown, literal)[0].code
        return replace(unit, code=code)

    def _attempt(
        self,
        step: Step,
        unit: Unit,
        host: tuple[str, Shell],
        answers: Sequence[Any],
        timeout: float | None,
        on_output: Callable[[bytes], None],
    ) -> Result:
        """Run ``unit`` once in ``host`` (its key and shell), between its two journal
        records."""
        parts = self.parts
        records, console = parts.records, parts.console
        action = unit.action
        origin = str(action.origin)
        key, shell = host
        records.mark(f"step {step.number} · block {origin} · {key}")
        records.write(
            "action-start",
            step=step.number,
            origin=origin,
            unit=unit.index,
            host=key,
            kind=action.kind,
            tabs=[t.label for t in action.tabs],
            command=next((ln.strip() for ln in unit.code.split("\n") if ln.strip()), "")[:120],
        )
        person = (
            parts.hosts.factory.operator(parts.operator.handover)
            if parts.options.interactive
            else None
        )
        console.start_spinner(f"step {step.number}")
        try:
            with parts.signals.running(shell):
                result = shell.run(
                    unit.code + "\n",
                    timeout=timeout,
                    answers=answers,
                    on_output=on_output,
                    operator=person,
                )
        finally:
            console.stop_spinner()
        records.write(
            "action-end",
            step=step.number,
            origin=origin,
            unit=unit.index,
            host=key,
            status=result.status,
            outcome=str(result.outcome),
            duration=round(result.duration, 3),
            output_bytes=result.output_bytes,
            answered=list(result.answered),
            handed_over=result.handed_over,
            restarted=result.restarted,
        )
        if result.outcome not in (Outcome.SHELL_DIED, Outcome.SHELL_REPLACED):
            # A shell the block ended is not the guide's state: a fresh one stands there.
            self.resume.after(step, key, shell, unit.code)
        return result
