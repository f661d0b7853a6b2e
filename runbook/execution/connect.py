"""Blocks after an ``ssh`` line: the shell they run in, and the connection that opens it.

An ``ssh [options] [user@]host`` line alone in a block is its own item in the run: with a
person, they say yes (the shell opens on that host, through the system's ssh) or decline,
and the blocks after the line in its scope are then done by hand or skipped; without one,
the run connects. A declined connection never means running its blocks here instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runbook.errors import RunbookError
from runbook.execution import plan
from runbook.execution.parts import Parts
from runbook.execution.shells import Shell
from runbook.execution.view import legend
from runbook.model import Action, Origin, Placeholder, Step, TabRef

Value = Callable[[Placeholder, Step, Action], str]
"""Return the value of an input a block needs, asking for it (or refusing) when unknown."""

_CHOICES = {"y": "connect", "d": "by-hand", "s": "skip"}


class Connections:
    """The shells blocks run in, by their host or their ``ssh`` line; the lines declined."""

    def __init__(self, parts: Parts, value: Value) -> None:
        self.parts = parts
        self._value = value
        # By the ssh line and the tabs it stands in: how the operator does its blocks
        # instead (d by hand, s skip), and the key of its shell. The same line included in
        # another tab (a shared snippet) is another item: a choice made in one tab is not
        # carried over to a tab the operator switched to.
        self._declined: dict[tuple[Origin, tuple[TabRef, ...]], tuple[str, str]] = {}

    def key(self, step: Step, action: Action) -> str:
        """Return the key of the shell ``action`` runs in (see plan.host_key), knowing the
        values of its ``ssh`` line's inputs first."""
        for ph in plan.connection_inputs(action):
            self._value(ph, step, action)
        return plan.host_key(action, self.parts.inputs.values)

    def place(self, action: Action) -> str:
        """Say where ``action`` runs, known values filled in, secrets masked."""
        return self.parts.inputs.preview(action.where)

    def shell(self, step: Step, action: Action, key: str) -> Shell:
        """Return the shell ``key`` (started the first time; a fresh one at an ``ssh`` line
        when the last has died), or raise naming the block."""
        try:
            return self.parts.hosts.shell(key, login=action.kind == "connect")
        except RunbookError as exc:
            # Point at the block that needed the shell: the fix may be in mkdocs.yml's
            # hosts or the ssh configuration, but the operator reads the guide.
            raise type(exc)(
                f"{self.parts.nesting.named(step)}: {exc.message}",
                path=action.origin.path,
                line=action.origin.line,
                hint=exc.hint,
            ) from None

    def answers(self, key: str) -> list[Any]:
        """Return the answers every block on shell ``key`` gets: sudo's password prompt on
        a remote host, when the run was given ``sudo-password``."""
        factory = self.parts.hosts.factory
        password = self.parts.inputs.values.get(plan.SUDO_PASSWORD)
        if password is None or not factory.remote(key):
            return []
        return [factory.answer(plan.SUDO_PROMPT, password, secret=True)]

    def connect(self, step: Step, action: Action) -> int:
        """Open the connection of an ``ssh`` line, or let the operator decline it; return
        1 when it is open or done by hand, 0 when its blocks are skipped."""
        parts = self.parts
        assert action.connection is not None
        key = self.key(step, action)
        name = self.place(action)
        line = parts.inputs.preview(action.code.strip().removeprefix("$ "))
        operator = parts.operator
        operator.connecting(action, name, line)
        choice = operator.connect(name, line) if parts.options.interactive else "y"
        origin = action.connection.origin
        parts.records.write(
            "connect",
            step=step.number,
            origin=str(origin),
            host=key,
            choice=_CHOICES[choice],
            how="asked" if parts.options.interactive else "unattended",
        )
        if choice != "y":
            self._declined[(origin, action.tabs)] = (choice, key)
            return int(choice == "d")
        self._declined.pop((origin, action.tabs), None)
        self.shell(step, action, key)
        parts.records.write("connected", step=step.number, host=key)
        parts.console.line(f"  connected to {name}", "dim")
        return 1

    def decline(self, action: Action, how: str) -> None:
        """Decline the connection of ``action`` (an ``ssh`` line): its blocks are done by
        hand (``d``) or skipped (``s``)."""
        assert action.connection is not None
        self._declined[(action.connection.origin, action.tabs)] = (how, action.where)

    def declined(self, action: Action) -> bool:
        """Whether ``action`` runs after an ``ssh`` line the operator declined."""
        return self._choice(action) is not None

    def _choice(self, action: Action) -> tuple[str, str] | None:
        """Return how the blocks of ``action``'s declined ``ssh`` line are done instead and
        its shell's key; None when the line was not declined (in ``action``'s tabs)."""
        if action.connection is None:
            return None
        origin = action.connection.origin
        for (line, tabs), choice in self._declined.items():
            if line == origin and action.tabs[: len(tabs)] == tabs:
                return choice
        return None

    def instead(self, step: Step, action: Action) -> tuple[int, str]:
        """Do a block of a declined connection by hand, or skip it; return (1 when done by
        hand, else 0; why the step is incomplete, or empty)."""
        parts = self.parts
        assert action.connection is not None
        declined = self._choice(action)
        assert declined is not None
        how, key = declined
        name = self.place(action)
        operator = parts.operator
        shown = "to do by hand" if how == "d" else "skipped"
        operator.code(
            action, legend(action.code, parts.inputs.values, parts.inputs.secrets()), name, shown
        )
        done = how == "d" and operator.done_there(name)
        parts.records.confirmed(
            step, action, "by-hand" if done else "skip", how="connection-declined", host=key
        )
        if done or action.kind != "run":
            return int(done), ""
        return 0, f"a block to run on {name} was skipped"
