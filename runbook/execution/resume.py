"""Each host's shell state across blocks and runs: looked at after a block that may change
it, recorded in the journal when it did, and given back to a fresh shell of that host (a
resumed run, or a shell a block ended) before its next block runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from runbook.errors import RunbookError
from runbook.execution.parts import Parts
from runbook.execution.shells import Shell
from runbook.execution.shellstate import DUMP, Dump, State, changes, may_change, parse
from runbook.model import Action, Placeholder, Step

Value = Callable[[Placeholder, Step, Action], str]
"""Return the value of an input, asking for it (or refusing) when unknown."""

# Seconds a look at a shell's state, or giving it back, may take.
_TIMEOUT = 30.0


class Resume:
    """The state of each host's shell: as it started, as last recorded, and given back."""

    def __init__(self, parts: Parts, value: Value, previous: Mapping[str, State]) -> None:
        """Keep ``previous``: the states an earlier run of the guide recorded, by host key,
        to give back to this run's shells."""
        self.parts = parts
        self._value = value
        self._last: dict[str, State] = dict(previous)
        self._start: dict[int, tuple[int, Dump]] = {}
        """Each shell's state as it started, by the shell's identity, with the shell's
        count of restarts then (a shell a block ended is replaced by a fresh one)."""

    def give_back(self, previous: Mapping[str, State]) -> None:
        """Give ``previous`` (states an earlier run recorded, by host key) to this run's
        shells as each starts."""
        self._last.update(previous)

    def opened(self, step: Step, action: Action, key: str, shell: Shell) -> None:
        """Know a shell of ``key`` about to run ``action``'s block: the first time, look at
        it as it started, and give it the state last recorded for its host. A shell that a
        block ended, or left unable to answer, has a fresh one standing in for it: that one
        is looked at anew, before the block runs in it."""
        try:
            shell.ready()
        except RunbookError:
            return  # the block's own run says what became of the shell
        known = self._start.get(id(shell))
        if known is not None and known[0] == shell.restarts:
            return
        if known is not None:
            place = self.parts.inputs.preview(action.where)
            self.parts.console.line(
                f"↺ a fresh shell on {place}: the last one ended or stopped answering", "dim"
            )
        start = _look(shell)
        # A shell that cannot say its state (a fake, or no bash): nothing to keep.
        self._start[id(shell)] = (shell.restarts, Dump("") if start is None else start)
        if start is None:
            return
        state = self._last.get(key)
        if state is not None:
            self._restore(step, action, key, shell, state)

    def after(self, step: Step, key: str, shell: Shell, code: str) -> None:
        """Look at the shell of ``key`` after ``code`` ran in it; record its state when it
        changed."""
        known = self._start.get(id(shell))
        if known is None or not known[1].cwd or not shell.alive or not may_change(code):
            return
        restarts, start = known
        now = _look(shell)
        if now is None or shell.restarts != restarts:
            # A fresh shell (the look found the old one unable to answer) holds nothing of
            # the guide's: what was recorded stays, to be given back to it.
            return
        state = changes(start, now, self._secrets())
        if state != self._last.get(key):
            self._last[key] = state
            self.parts.records.write("shell-state", step=step.number, host=key, **state.record())

    def _secrets(self) -> dict[str, str]:
        inputs = self.parts.inputs
        return {name: inputs.values[name] for name in inputs.secrets() if name in inputs.values}

    def _restore(self, step: Step, action: Action, key: str, shell: Shell, state: State) -> None:
        """Give ``state`` to a fresh ``shell`` of ``key``, secrets asked again; say what."""
        parts = self.parts
        console = parts.console
        place = parts.inputs.preview(action.where)
        result = shell.run(state.script(), timeout=_TIMEOUT)
        if result.status != 0:
            console.line(
                f"! could not give back the state on {place} ({state.summary()}): "
                f"{result.last_line or f'status {result.status}'}; this shell starts afresh",
                "yellow",
            )
            parts.records.write("shell-restored", step=step.number, host=key, ok=False)
            return
        console.line(f"↺ given back on {place}: {state.summary()}", "dim")
        lost = []
        for name, input_name in sorted(state.secret.items()):
            if not input_name:
                lost.append(name)
                continue
            value = self._value(Placeholder(input_name, True), step, action)
            shell.define(name, value, export=name in state.exported, secret=True)
            console.line(
                f"↺ {name} set again from <{input_name}> (a secret, never recorded)", "dim"
            )
        for name in lost:
            console.line(
                f"! {name} held a secret and was not recorded: set it again if later steps need it",
                "yellow",
            )
        parts.records.write(
            "shell-restored",
            step=step.number,
            host=key,
            ok=True,
            asked=sorted(n for n, i in state.secret.items() if i),
            lost=lost,
        )
        self._last[key] = state


def _look(shell: Shell) -> Dump | None:
    """Return the state ``shell`` prints; None when it cannot say (the next block then
    finds out what became of the shell)."""
    try:
        return parse(shell.query(DUMP))
    except RunbookError:
        return None
