"""What a finished block means for its step, and how a step or a whole run ended.

A block's result comes from a shell (``runbook.shell`` in a real run, a fake in tests);
only its shape matters here, so this module runs without pexpect. Outcomes are compared by
their string values, which are the session's contract (``Outcome`` is a ``StrEnum``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from runbook.errors import (
    EXIT_INTERRUPTED,
    Interrupted,
    NeedsOperator,
    RunbookError,
    StepFailed,
)
from runbook.execution.operator import Quit
from runbook.model import Outcome
from runbook.ui import format_duration

if TYPE_CHECKING:
    from runbook.execution.plan import Unit


class Result(Protocol):
    """What running one block did (the shape of ``runbook.shell.BlockResult``)."""

    @property
    def status(self) -> int | None:
        """Exit status; None when the block did not finish on its own."""

    @property
    def duration(self) -> float:
        """Seconds the block took."""

    @property
    def outcome(self) -> str:
        """How it ended: ``ok``, ``failed``, ``timeout``, ``interrupted``, ``shell-died``,
        ``shell-replaced``, ``needs-input``."""

    @property
    def last_line(self) -> str:
        """Its last non-empty output line, already masked."""

    @property
    def answered(self) -> tuple[str, ...]:
        """Expect texts answered from the block's declared answers."""

    @property
    def handed_over(self) -> bool:
        """Whether the operator was given the keyboard."""

    @property
    def restarted(self) -> bool:
        """Whether a fresh shell replaced one that died."""

    @property
    def output_bytes(self) -> int:
        """Bytes of output."""


def judge(
    result: Result, expected: Sequence[str] | None, output: bytes, timeout: float | None
) -> str | None:
    """Return what went wrong with a block (``exited with status 2`` …), None when it is ok.

    ``expected`` are the output lines a ``$ `` command must print, compared with ``output``.
    """
    outcome = result.outcome
    if outcome == Outcome.OK:
        if expected is not None and not output_matches(output, expected):
            return "output differs from what the guide expects:\n" + _diff(expected, output)
        return None
    last = f" (last output: {result.last_line!r})" if result.last_line else ""
    if outcome == Outcome.FAILED:
        return f"exited with status {result.status}{last}"
    if outcome == Outcome.TIMEOUT:
        return f"was stopped after the {format_duration(timeout or 0)} timeout{last}"
    if outcome == Outcome.INTERRUPTED:
        return "was interrupted (Ctrl-C)"
    if outcome == Outcome.NEEDS_INPUT:
        return f"is waiting for input: {result.last_line!r}"
    if outcome == Outcome.SHELL_REPLACED:
        return (
            "replaced its shell with another program (exec): that shell's working directory "
            "and variables are gone"
        )
    if outcome == Outcome.SHELL_DIED:
        return (
            f"ended its shell (status {result.status}): that shell's working directory and "
            "variables are gone"
        )
    return f"ended with {outcome}"


def failure(
    named: str,
    unit: Unit,
    what: str,
    result: Result,
    *,
    host: str,
    resume: str,
    resume_step: int,
) -> RunbookError:
    """Return the error that stops the run after ``unit`` of step ``named`` on ``host``
    went wrong.

    A command waiting for input needs a person (exit 4); anything else failed the step.
    """
    where = unit.origin
    subject = "the block" if unit.expected is None else "the command"
    if unit.action.where != "this machine":
        subject += f" on {host}"
    if result.outcome == Outcome.NEEDS_INPUT:
        prompt = result.last_line.strip()[-40:] or "…"
        return NeedsOperator(
            f"{named}: {subject} {what}",
            at=where,
            hint="answer it in an interactive run, or declare the answer on the block: "
            f'{{ .run expect="{prompt}" send="…" }}',
        )
    return StepFailed(
        f"{named} failed: {subject} {what}",
        at=where,
        hint=f"fix the cause, then run '{resume}' again to resume at step {resume_step}",
    )


FAILED_SKIPPED = "a failed block was skipped"
"""Why a step is incomplete when the operator skipped a block that failed."""


class OutcomeUnknown(StepFailed):
    """The connection to a block's host dropped while it ran: whether it finished there is
    unknown, so its step has no recorded end."""


def dropped(
    named: str, unit: Unit, host: str, result: Result, *, resume: str, resume_step: int
) -> OutcomeUnknown:
    """Return the error that stops the run when the shell on ``host`` (not this machine)
    died while ``unit`` of step ``named`` ran."""
    status = f" (status {result.status})" if result.status is not None else ""
    return OutcomeUnknown(
        f"{named}: the connection to {host} dropped while the block ran{status}: whether it "
        "finished there is unknown",
        at=unit.origin,
        hint=f"check on {host} what it did, then run '{resume}' again: it connects again "
        f"and asks whether to run step {resume_step} again (without a person, give "
        "--retry-unknown or --skip-unknown)",
    )


def step_result(ran: int, incomplete: str = "") -> tuple[str, str]:
    """Return a step's result and note, from how many of its blocks ran (or were done by
    hand) and why it is incomplete (empty when it is not)."""
    if incomplete:
        return "skipped", incomplete
    if not ran:
        return "skipped", "every block was skipped"
    return "done", ""


def result_of(exc: BaseException) -> str:
    """Name how a step or run ended, from what stopped it."""
    if isinstance(exc, KeyboardInterrupt | Interrupted):
        return "interrupted"
    if isinstance(exc, Quit | NeedsOperator):
        return "stopped"
    if isinstance(exc, StepFailed):
        return "failed"
    if isinstance(exc, RunbookError) and exc.exit_code == EXIT_INTERRUPTED:
        return "interrupted"
    return "error"


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
