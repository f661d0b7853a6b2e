"""The real shells: a ``runbook.shell`` Session per host, over pexpect.

The only module of the package that imports the session (and so pexpect); the command line
hands a ``SiteShells`` to the runner, and tests hand it fakes instead.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from runbook.execution.plan import connection_words, host_name
from runbook.redact import Redactor
from runbook.shell import (
    Answer,
    BlockResult,
    Operator,
    Outcome,
    Session,
    SessionError,
    Transport,
    local_transport,
    ssh_transport,
)

if TYPE_CHECKING:
    from runbook.errors import RunbookError
    from runbook.execution.shells import ShellFactory
    from runbook.execution.verdict import Result


class SiteShells:
    """Shells for the hosts of a site: this machine, ``ssh`` targets from mkdocs.yml, or the
    destination of an ``ssh`` line in a guide."""

    def __init__(self, hosts: Mapping[str, object], *, ssh_config: Path | None = None) -> None:
        """``hosts`` are the site's (``plugins: - runbook: hosts:``); ``ssh_config`` is given
        to every ssh as ``-F`` (an ``-F`` of the host's own options comes later and wins)."""
        self.hosts = hosts
        self.ssh_config = ssh_config

    def open(
        self, host: str, *, cwd: Path, redactor: Redactor, transcript: BinaryIO | None
    ) -> Session:
        """Return a session, not started, for ``host`` (a key of ``plan.host_key``): local,
        over ssh as configured, or over ssh as an ``ssh`` line says."""
        transport = self._transport(host)
        return Session(
            host=host_name(host),
            transport=transport,
            cwd=str(cwd) if transport.local else None,
            redactor=redactor,
            transcript=transcript,
            # A remote shell that died mid-block leaves that block's outcome unknown: the
            # run stops there, and a new connection is the next run's to make.
            restart=transport.local,
        )

    def remote(self, host: str) -> bool:
        """Whether the shell of ``host`` runs on another machine."""
        return not self._transport(host).local

    def _transport(self, host: str) -> Transport:
        config = ["-F", str(self.ssh_config)] if self.ssh_config is not None else []
        words = connection_words(host)
        if words is not None:
            return ssh_transport(words[-1], options=[*config, *words[:-1]])
        spec = self.hosts.get(host, {}) if host != "local" else {}
        target = spec.get("ssh") if isinstance(spec, Mapping) else None
        if host == "local" or not target or target == "local":
            return local_transport()
        options = spec.get("options", []) if isinstance(spec, Mapping) else []
        return ssh_transport(str(target), options=[*config, *(str(o) for o in options)])

    def answer(
        self,
        expect: str,
        send: str,
        *,
        secret: bool,
        ask: Callable[[str], str | None] | None = None,
    ) -> Answer:
        """Return a declared answer (with ``ask``, one whose text is asked for when its
        prompt shows)."""
        return Answer(expect=expect, send=send, secret=secret, ask=ask)

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
