"""A command is never interrupted on a guess that it waits for input.

The prompt heuristic (all there is over SSH, and the fallback for raw-mode programs polling
the terminal) cannot tell ``printf 'Migrating schema: '; sleep 3`` from a question. Only
the kernel seeing a read of the terminal is certain enough to stop a command with nobody
to answer it; a guess leaves the decision to a declared answer, the operator, the command
ending, or the block's timeout. These tests run a real local bash with the heuristic as
its detector, as an SSH host would be seen; tests/test_ssh.py repeats the key cases over a
real OpenSSH connection.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from runbook.shell import (
    LOCAL_SHELL,
    Answer,
    Base64Delivery,
    FileDelivery,
    Operator,
    Outcome,
    Probe,
    PromptHeuristic,
    Session,
    Transport,
    TtyReadDetector,
)
from runbook.shell.detect import Detector, Wait
from tests.test_session import RAW_POLL

LABEL_THEN_WORK = "printf 'Migrating schema: '; sleep 1.5; echo done"


@dataclass
class Recording:
    """A detector that notes every wait the one inside it reports."""

    inner: Detector
    seen: list[Wait] = field(default_factory=list)

    @property
    def min_quiet(self) -> float:
        return self.inner.min_quiet

    def detect(self, probe: Probe) -> Wait | None:
        wait = self.inner.detect(probe)
        if wait is not None:
            self.seen.append(wait)
        return wait


@dataclass
class Shell:
    session: Session
    detector: Recording

    def run(self, script: str, **kwargs: object) -> tuple[Outcome, int | None, bytes, float]:
        """Run ``script``; return its outcome, status, output and duration."""
        out = bytearray()
        kwargs.setdefault("timeout", 10)
        result = self.session.run(script, on_output=out.extend, **kwargs)  # type: ignore[arg-type]
        return result.outcome, result.status, bytes(out), result.duration


@pytest.fixture
def guessing(tmp_path: Path) -> Iterator[Shell]:
    """A local shell seen as an SSH host is: through the output's shape only."""
    detector = Recording(PromptHeuristic(quiet_for=0.3))
    transport = Transport("local", LOCAL_SHELL, Base64Delivery, detector)
    with Session(transport=transport, cwd=tmp_path, grace=0.3) as session:
        yield Shell(session, detector)


# --------------------------------------------------------------------------- the detectors


def probe(tail: bytes, tty: tuple[int, int] | None = None) -> Probe:
    return Probe(fd=-1, shell_pid=-1, tty=tty, quiet=2.0, tail=tail, expects=())


def test_the_output_s_shape_is_only_a_guess() -> None:
    assert PromptHeuristic().detect(probe(b"Migrating schema: ")) is Wait.GUESS
    assert PromptHeuristic().detect(probe(b"Downloading 42%")) is None
    # Where the kernel cannot be asked, the kernel's detector guesses too.
    assert TtyReadDetector().detect(probe(b"Name: ")) is Wait.GUESS


def test_the_kernel_seeing_a_read_is_certain_and_a_raw_mode_poll_a_guess(tmp_path: Path) -> None:
    detector = Recording(TtyReadDetector(raw_quiet=0.3))
    transport = Transport("local", LOCAL_SHELL, FileDelivery, detector)
    with Session(transport=transport, cwd=tmp_path, grace=0.3) as session:
        assert session.run("read -p 'Name: ' x", timeout=10).outcome == Outcome.NEEDS_INPUT
        assert detector.seen == [Wait.CERTAIN]
        detector.seen.clear()
        script = RAW_POLL.format(python=sys.executable, text="mysql> ", wait=1.5)
        out = bytearray()
        result = session.run(script, timeout=10, on_output=out.extend)
        assert Wait.GUESS in detector.seen and Wait.CERTAIN not in detector.seen
        # Polled in raw mode with a prompt on screen, yet left to finish on its own.
        assert (result.outcome, result.status) == (Outcome.OK, 0)
        assert out.endswith(b"mysql>  done\n")


# --------------------------------------------------------------------------- the block


def test_a_guessed_wait_with_nobody_to_answer_is_never_stopped(guessing: Shell) -> None:
    outcome, status, out, duration = guessing.run(LABEL_THEN_WORK)
    assert Wait.GUESS in guessing.detector.seen  # the heuristic did fire
    assert (outcome, status) == (Outcome.OK, 0)
    assert out == b"Migrating schema: done\n"
    assert duration >= 1.5


def test_a_guessed_wait_is_answered_from_the_declared_answers(guessing: Shell) -> None:
    outcome, status, out, _ = guessing.run(
        "read -p 'Name: ' x; echo \"hi $x\"", answers=[Answer("Name:", "alice")]
    )
    assert (outcome, status) == (Outcome.OK, 0)
    assert out.endswith(b"hi alice\n")


def test_an_unanswered_guessed_prompt_ends_by_the_timeout_not_earlier(guessing: Shell) -> None:
    started = time.monotonic()
    outcome, status, out, _ = guessing.run("read -p 'Name: ' x", timeout=2)
    assert (outcome, status) == (Outcome.TIMEOUT, None)
    assert time.monotonic() - started >= 2
    assert out.startswith(b"Name: ")
    assert guessing.run("echo alive")[:3] == (Outcome.OK, 0, b"alive\n")


def test_a_guessed_hand_over_whose_input_ends_does_not_stop_the_command(guessing: Shell) -> None:
    read_end, write_end = os.pipe()
    os.close(write_end)  # the operator's input ends at once
    handed: list[str] = []
    try:
        outcome, status, out, _ = guessing.run(
            LABEL_THEN_WORK, operator=Operator(read_end, on_handover=handed.append)
        )
    finally:
        os.close(read_end)
    assert (outcome, status) == (Outcome.OK, 0)
    assert out == b"Migrating schema: done\n"
    # Handed over once; with the operator's input gone, not again and again.
    assert handed == ["Migrating schema:"]
