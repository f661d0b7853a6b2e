"""The real shells: a ``runbook.shell`` Session per host, over pexpect.

The only module of the package that imports the session (and so pexpect); the command line
hands a ``SiteShells`` to the runner, and tests hand it fakes instead.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

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

if TYPE_CHECKING:
    from runbook.errors import RunbookError
    from runbook.execution.shells import ShellFactory
    from runbook.execution.verdict import Result


class SiteShells:
    """Shells for the hosts of a site: this machine, or ``ssh`` targets from mkdocs.yml."""

    def __init__(self, hosts: Mapping[str, object]) -> None:
        """``hosts`` are the site's (``plugins: - runbook: hosts:``)."""
        self.hosts = hosts

    def open(
        self, host: str, *, cwd: Path, redactor: Redactor, transcript: BinaryIO | None
    ) -> Session:
        """Return a session, not started, for ``host``: local, or over ssh as configured."""
        spec = self.hosts.get(host, {}) if host != "local" else {}
        target = spec.get("ssh") if isinstance(spec, Mapping) else None
        if host == "local" or not target or target == "local":
            transport = local_transport()
        else:
            options = spec.get("options", []) if isinstance(spec, Mapping) else []
            transport = ssh_transport(str(target), options=[str(o) for o in options])
        return Session(
            host=host,
            transport=transport,
            cwd=str(cwd) if transport.name == "local" else None,
            redactor=redactor,
            transcript=transcript,
        )

    def answer(self, expect: str, send: str, *, secret: bool) -> Answer:
        """Return a declared answer."""
        return Answer(expect=expect, send=send, secret=secret)

    def operator(self, on_handover: Callable[[str], None]) -> Operator | None:
        """Return the person at this terminal, None when standard input is not one."""
        return Operator(sys.stdin.fileno(), on_handover) if sys.stdin.isatty() else None


if TYPE_CHECKING:
    # The loop knows shells and their results by shape only, so that it runs without
    # pexpect: mypy holds the real ones to that shape here. Outcomes are compared as
    # strings, and a shell that cannot start raises a RunbookError the loop names the
    # block of.
    _factory: type[ShellFactory] = SiteShells
    _result: type[Result] = BlockResult
    _outcome: type[str] = Outcome
    _start_error: type[RunbookError] = SessionError
