"""The shells blocks run in, known by their shape only: one per host, from a factory.

A real run gets them from ``runbook.execution.sessions`` (``runbook.shell`` over pexpect);
tests hand the loop fakes of the same shape, and run without pexpect.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from runbook.errors import StepFailed
from runbook.execution.plan import host_name
from runbook.execution.verdict import Result
from runbook.inputs import shell_var
from runbook.redact import Redactor


class Shell(Protocol):
    """One persistent shell (the shape of ``runbook.shell.Session``)."""

    def start(self) -> None:
        """Start the shell; raise a RunbookError saying why it cannot."""

    def define(self, name: str, value: str, *, export: bool = False, secret: bool = False) -> None:
        """Make shell variable ``name`` hold ``value``, never as shell source text."""

    def run(
        self,
        script: str | bytes,
        *,
        timeout: float | None,
        answers: Sequence[Any] = (),
        on_output: Callable[[bytes], None] | None = None,
        operator: Any | None = None,
    ) -> Result:
        """Run one block and wait for it to end."""

    def ready(self) -> None:
        """Make sure the shell waits at its prompt; a fresh one replaces one that does not
        answer after a stopped block (``restarts`` tells)."""

    def query(self, command: str) -> bytes:
        """Run ``command`` (runbook's own, builtins only) at the prompt, between blocks;
        return what it printed, shown to no one and kept in no transcript."""

    def interrupt(self) -> None:
        """Stop the running block (async-signal-safe)."""

    restarts: int
    """How many times a fresh shell replaced one that a block ended or left unusable."""

    @property
    def alive(self) -> bool:
        """Whether the shell runs (a block that ended it has a fresh one by then)."""

    def close(self) -> None:
        """End the shell and everything it started."""


class ShellFactory(Protocol):
    """Where the loop gets its shells, and the objects their ``run`` takes."""

    def open(
        self, host: str, *, cwd: Path, redactor: Redactor, transcript: BinaryIO | None
    ) -> Shell:
        """Return a shell, not started yet, for ``host``, starting in ``cwd`` when local."""

    def remote(self, host: str) -> bool:
        """Whether the shell of ``host`` runs on another machine."""

    def answer(
        self,
        expect: str,
        send: str,
        *,
        secret: bool,
        ask: Callable[[str], str | None] | None = None,
    ) -> Any:
        """Return a declared answer for ``run``: type ``send`` when ``expect`` shows (with
        ``ask``, what it returns then, given the prompt's line; None types nothing)."""

    def operator(self, on_handover: Callable[[str], None]) -> Any | None:
        """Return the person who can take the keyboard during ``run``, None if no one can."""


class Hosts:
    """The run's shells, one per host key (see ``plan.host_key``), started on first use;
    each input defined once."""

    def __init__(self, factory: ShellFactory, *, cwd: Path, redactor: Redactor) -> None:
        self.factory = factory
        self.cwd = cwd
        self.redactor = redactor
        self.transcript: BinaryIO | None = None
        """Where shells write raw output; set once the run's transcript is open."""
        self._shells: dict[str, Shell] = {}
        self._defined: dict[str, set[str]] = {}

    def shell(self, host: str, *, login: bool = False) -> Shell:
        """Return the shell of ``host``, starting it the first time; with ``login`` (an
        ``ssh`` line: a person would log in afresh), a fresh one for a shell that died."""
        shell = self._shells.get(host)
        if shell is not None and login and not shell.alive:
            shell.close()
            shell = None
        if shell is None:
            shell = self.factory.open(
                host, cwd=self.cwd, redactor=self.redactor, transcript=self.transcript
            )
            # Kept before it starts: closing the run closes a shell that failed to start too.
            self._shells[host] = shell
            self._defined[host] = set()
            shell.start()
        elif not shell.alive:
            # Killed between blocks (the OOM killer, a dropped connection): a fresh shell
            # would run the next block in another folder without the guide's variables.
            raise StepFailed(
                f"the shell on {host_name(host)} died since its last block: its working "
                "directory, variables and functions are gone, so nothing more runs in it",
                hint="find out why it died (memory, the connection), then run the same "
                "command again to resume; a new shell starts",
            )
        return shell

    def define(self, host: str, name: str, value: str, *, secret: bool) -> None:
        """Give input ``name`` its value in the shell of ``host``, unless it has it."""
        defined = self._defined[host]
        if name not in defined:
            self._shells[host].define(shell_var(name), value, secret=secret)
            defined.add(name)

    def close(self) -> None:
        """Close every shell."""
        for shell in self._shells.values():
            shell.close()
        self._shells.clear()
