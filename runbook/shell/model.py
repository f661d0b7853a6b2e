"""What a session takes and gives: answers, the operator, block results, its error."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from runbook.errors import EXIT_STEP_FAILED, RunbookError, UsageError
from runbook.inputs import CONTROL_RE
from runbook.model import Outcome


class SessionError(RunbookError):
    """The shell could not be started or stopped responding to the session."""

    exit_code = EXIT_STEP_FAILED


def check_typable(text: str, what: str) -> None:
    """Raise UsageError when ``text`` holds a byte that would act as a keystroke."""
    if CONTROL_RE.search(text):
        raise UsageError(
            f"{what} contains a control character",
            hint="values typed into a terminal cannot hold newlines, tabs or other "
            "control characters",
        )


@dataclass(frozen=True)
class Answer:
    """An expect/send pair declared on a block."""

    expect: str
    """Text (not a regex) the command prints when it waits for this answer."""
    send: str
    """What to type; it is sent as one line."""
    secret: bool = False
    """Mask ``send`` in all output and transcripts."""
    ask: Callable[[str], str | None] | None = None
    """Where ``send`` is not known ahead: called with the prompt's line the first time
    ``expect`` shows, for what to type; None leaves the prompt as if no answer were declared
    (to the operator, or to the block's end or timeout)."""

    def __post_init__(self) -> None:
        if not self.expect:
            raise UsageError("an answer needs a non-empty expect text")
        check_typable(self.expect, f"the expect text {self.expect[:40]!r}")
        check_typable(self.send, f"the answer to {self.expect[:40]!r}")


@dataclass(frozen=True)
class Operator:
    """A person who can take the keyboard when a command waits for input."""

    fd: int
    """Where the operator's keystrokes come from (a tty is put in raw mode meanwhile)."""
    on_handover: Callable[[str], None] | None = None
    """Called with the command's last output line when the keyboard is handed over."""


@dataclass(frozen=True)
class BlockResult:
    """What running one block did."""

    status: int | None
    """Exit status of the block; None when it did not finish on its own."""
    duration: float
    """Wall-clock seconds from delivery to the shell's next prompt."""
    outcome: Outcome
    """How the block ended (compares equal to its string value, e.g. ``"ok"``)."""
    last_line: str
    """Last non-empty output line, already redacted, for messages."""
    answered: tuple[str, ...] = ()
    """Expect texts that were answered from the block's declared answers, in order."""
    handed_over: bool = False
    """The operator was given the keyboard during the block."""
    restarted: bool = False
    """The shell died and a fresh one replaced it: directory and variables were reset."""
    output_bytes: int = 0
    """Bytes of (redacted) output the block produced."""

    @property
    def ok(self) -> bool:
        """Return True when the block finished with status 0."""
        return self.outcome is Outcome.OK
