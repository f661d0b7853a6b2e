"""Blocks after an ``ssh`` line: the shell they run in, and the connection that opens it.

An ``ssh [options] [user@]host`` line alone in a block is its own item in the run: with a
person, they say yes (the shell opens on that host, through the system's ssh) or decline,
and the blocks after the line in its scope are then done by hand or skipped; without one,
the run connects. A declined connection never means running its blocks here instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from runbook.errors import RunbookError, UsageError
from runbook.execution import plan
from runbook.execution.parts import Parts
from runbook.execution.shells import Shell
from runbook.execution.view import legend
from runbook.inputs import env_name, how_to_give
from runbook.model import Action, Origin, Placeholder, Step, TabRef

Value = Callable[[Placeholder, Step, Action], str]
"""Return the value of an input a block needs, asking for it (or refusing) when unknown."""

_CHOICES = {"y": "connect", "d": "by-hand", "s": "skip"}


def sudo_input(key: str) -> str:
    """Return the secret input that answers sudo on the host of shell ``key``:
    ``sudo-password@`` and a site host's name, or an ``ssh`` line's host without its user."""
    words = plan.connection_words(key)
    host = key if words is None else words[-1].rpartition("@")[2]
    return f"{plan.SUDO_PASSWORD}@{host}"


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
        # Inputs of hosts whose sudo password the person chose to type at sudo's prompt.
        self._sudo_declined: set[str] = set()

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
                at=action.origin,
                hint=exc.hint,
            ) from None

    def answers(self, key: str) -> list[Any]:
        """Return the answers every block on shell ``key`` gets: sudo's password prompt on a
        remote host, answered with the host's own ``sudo-password@HOST`` or else the run's
        ``sudo-password``; without either, a person is asked for the host's the first time
        its sudo asks (once a host), and without a person nothing answers it."""
        factory = self.parts.hosts.factory
        if not factory.remote(key):
            return []
        name = sudo_input(key)
        password = self._sudo_password(name)
        if password is not None:
            return [factory.answer(plan.SUDO_PROMPT, password, secret=True)]
        if not self.parts.options.interactive or name in self._sudo_declined:
            return []
        return [
            factory.answer(
                plan.SUDO_PROMPT, "", secret=True, ask=lambda _line: self._ask_sudo(name)
            )
        ]

    def _sudo_password(self, name: str) -> str | None:
        """Return the sudo password given for host input ``name``, or the run's for all."""
        inputs = self.parts.inputs
        variable = env_name(name)
        if name not in inputs.values and variable in os.environ:
            # Read here, not with the run's other inputs: the hosts an ssh line reaches are
            # known only once its own inputs have values.
            inputs.give(name, os.environ[variable], secret=True)
        return inputs.values.get(name, inputs.values.get(plan.SUDO_PASSWORD))

    def _ask_sudo(self, name: str) -> str | None:
        """Ask the person for host input ``name`` as its sudo prompt waits; None (an empty
        answer, or no more input) hands them the prompt itself, and the host is not asked
        again."""
        parts = self.parts
        console = parts.console
        console.stop_spinner()  # it would draw over the question
        host = name.partition("@")[2]
        console.line(
            f"  sudo on {host} asks for a password: give it once for {host} (never shown or "
            f"recorded; next time {how_to_give(name, True)}), or press Enter to type it at "
            "sudo's prompt yourself",
            "yellow",
        )
        while True:
            try:
                value = console.ask_value(name, True)
            except EOFError:
                value = ""
            if not value:
                self._sudo_declined.add(name)
                return None
            try:
                parts.inputs.give(name, value, secret=True)
            except UsageError as exc:
                console.line(f"  {exc.message}", "red")
                continue
            parts.records.write("input", name=name, how="asked", secret=True)
            return value

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
