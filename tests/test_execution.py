"""The execution package with fake shells: the loop, the plan, the records, the operator.

Every scenario below runs in one child process that never imports pexpect: the shells are
fakes with the shape of ``runbook.shell.Session`` (``run(...)`` returning results), handed
to the runner through its factory, as ``runbook exec`` hands it the real ones. Each
scenario checks ``"pexpect" not in sys.modules`` when it is done, and the child reports it
once more at the end. The subprocess tests (test_exec.py, test_exec_pty.py …) run the same
code with real shells.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from runbook.errors import GuideError, Interrupted, NeedsOperator, RunbookError, StepFailed
from runbook.execution import ExecOptions, Runner, plan
from runbook.execution.tabs import TabChoices
from runbook.execution.verdict import output_matches
from runbook.inputs import shell_var
from runbook.model import Origin, Runbook
from runbook.ui import Console

ROOT = Path(__file__).resolve().parent.parent
CANARY = "CANARY-51d0c2aa"

# -- fakes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeResult:
    """A block result, as ``runbook.shell.BlockResult`` has it."""

    status: int | None = 0
    duration: float = 0.001
    outcome: str = "ok"
    last_line: str = ""
    answered: tuple[str, ...] = ()
    handed_over: bool = False
    restarted: bool = False
    output_bytes: int = 0


Behaviour = Callable[["FakeShell", str], tuple[FakeResult, bytes]]


def succeed(shell: FakeShell, script: str) -> tuple[FakeResult, bytes]:
    """Every block succeeds without output."""
    return FakeResult(), b""


@dataclass
class FakeShell:
    """A shell that records what it is given and answers as ``behaviour`` says."""

    host: str
    behaviour: Behaviour
    cwd: Path
    started: bool = False
    closed: bool = False
    interrupted: int = 0
    restarts: int = 0
    defined: dict[str, tuple[str, bool]] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)
    answers: list[Any] = field(default_factory=list)

    def start(self) -> None:
        self.started = True

    def define(self, name: str, value: str, *, export: bool = False, secret: bool = False) -> None:
        self.defined[name] = (value, secret)

    def run(
        self,
        script: str | bytes,
        *,
        timeout: float | None,
        answers: Sequence[Any] = (),
        on_output: Callable[[bytes], None] | None = None,
        operator: Any | None = None,
    ) -> FakeResult:
        text = script.decode() if isinstance(script, bytes) else script
        self.ran.append(text.rstrip("\n"))
        self.answers.append(tuple(answers))
        result, output = self.behaviour(self, text)
        if output and on_output is not None:
            on_output(output)
        return result

    def ready(self) -> None:
        pass

    def query(self, command: str) -> bytes:
        return b""

    def interrupt(self) -> None:
        self.interrupted += 1

    @property
    def alive(self) -> bool:
        return self.started and not self.closed and not self.killed

    killed: bool = False

    def close(self) -> None:
        self.closed = True


class FakeShells:
    """The factory: one fake shell per host."""

    def __init__(self, behaviour: Behaviour = succeed) -> None:
        self.behaviour = behaviour
        self.shells: dict[str, FakeShell] = {}

    def open(self, host: str, *, cwd: Path, redactor: Any, transcript: Any) -> FakeShell:
        shell = FakeShell(host, self.behaviour, cwd)
        self.shells[host] = shell
        return shell

    def remote(self, host: str) -> bool:
        return host != "local"

    def answer(
        self, expect: str, send: str, *, secret: bool, ask: Any = None
    ) -> tuple[str, str, bool]:
        return (expect, send, secret)

    def operator(self, on_handover: Callable[[str], None]) -> None:
        return None

    @property
    def ran(self) -> list[str]:
        return [script for shell in self.shells.values() for script in shell.ran]


class Scripted(Console):
    """A console whose operator answers from a list, and whose output is kept."""

    def __init__(self, answers: Sequence[Any] = ()) -> None:
        self.text = io.StringIO()
        super().__init__(self.text, tty=False)
        self.answers = list(answers)
        self.asked: list[str] = []

    def _next(self, question: str) -> Any:
        self.asked.append(question)
        assert self.answers, f"unexpected question: {question}"
        return self.answers.pop(0)

    def choose(
        self, question: str, choices: Sequence[tuple[str, str]], *, default: str = ""
    ) -> str:
        answer: str = self._next(question)
        if answer == "" and default:
            return default
        assert answer in [k for k, _ in choices], f"{answer!r} is no choice of {question}"
        return answer

    def pick(self, question: str, options: Sequence[str]) -> str | None:
        answer: str | None = self._next(question)
        return answer

    def ask_value(self, name: str, secret: bool) -> str:
        answer = self._next(f"<{name}>" + (" (hidden)" if secret else ""))
        if answer is KeyboardInterrupt:
            raise KeyboardInterrupt  # Ctrl-C at the question
        return str(answer)

    def edit(self, text: str, *, suffix: str = ".sh") -> str | None:
        answer: str | None = self._next("edit")
        return answer


# -- helpers ----------------------------------------------------------------------------------


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def load(path: Path) -> Runbook:
    from runbook.guide import load as load_guide

    return load_guide(path)


@dataclass
class Outcome:
    """What one run did."""

    code: int | None
    error: RunbookError | None
    console: Scripted
    shells: FakeShells
    guide: Path

    @property
    def out(self) -> str:
        return self.console.text.getvalue()

    def records(self) -> list[dict[str, Any]]:
        folder = self.guide.parent / ".runbook" / "journal"
        return [
            json.loads(line)
            for path in sorted(folder.glob("*.jsonl"))
            for line in path.read_text().splitlines()
        ]

    def events(self) -> list[str]:
        return [r["event"] for r in self.records()]

    def ticked(self) -> list[int]:
        return [s.number for s in load(self.guide).steps if s.checked]


def run(
    guide: Path,
    *,
    shells: FakeShells | None = None,
    answers: Sequence[Any] = (),
    guides: dict[Path, Runbook] | None = None,
    **options: Any,
) -> Outcome:
    """Run ``guide`` with fake shells; non-interactive unless ``answers`` are given."""
    from runbook.site import load_site

    book = load(guide)
    shells = shells or FakeShells()
    console = Scripted(answers)
    options.setdefault("interactive", bool(answers))
    runner = Runner(
        book,
        load_site(guide),
        ExecOptions(**options),
        shells,
        guides=guides,
        console=console,
        guide_arg=guide.name,
    )
    try:
        code, error = runner.run(), None
    except RunbookError as exc:
        code, error = None, exc
    assert not console.answers, f"answers left: {console.answers}"
    return Outcome(code, error, console, shells, guide)


TWO_STEPS = """
    # Two steps

    * [ ] 1. First
    * [ ] 2. Second

    ### 1. First

    ```bash { .run }
    echo one
    ```

    ### 2. Second

    ```bash { .run }
    echo two
    ```
"""

# -- scenarios --------------------------------------------------------------------------------

SCENARIOS: dict[str, Callable[[Path], None]] = {}


def scenario(func: Callable[[Path], None]) -> Callable[[Path], None]:
    SCENARIOS[func.__name__] = func
    return func


@scenario
def a_shell_that_died_between_blocks_stops_the_run_instead_of_being_replaced(tmp: Path) -> None:
    def die_after_first(shell: FakeShell, script: str) -> tuple[FakeResult, bytes]:
        shell.killed = True  # gone after this block, as if the OOM killer took it
        return FakeResult(), b""

    guide = write(tmp, "g.md", TWO_STEPS)
    done = run(guide, shells=FakeShells(die_after_first))
    assert done.shells.ran == ["echo one"]
    assert done.error is not None and "died since its last block" in done.error.message
    assert done.error.exit_code == 1
    assert done.ticked() == [1]


@scenario
def blocks_run_in_order_and_each_step_is_ticked_after_its_end_is_recorded(tmp: Path) -> None:
    guide = write(tmp, "g.md", TWO_STEPS)
    done = run(guide)
    assert done.code == 0, done.error
    assert done.shells.ran == ["echo one", "echo two"]
    shell = done.shells.shells["local"]
    assert shell.started and shell.closed
    assert shell.cwd == tmp  # the site root of a lone guide
    assert done.ticked() == [1, 2]
    assert done.events() == [
        "run-start",
        "step-start",
        "action-start",
        "action-end",
        "step-end",
        "tick",
        "step-start",
        "action-start",
        "action-end",
        "step-end",
        "tick",
        "run-end",
    ]
    assert "Summary" in done.out and "2 done" in done.out
    # A second run finds both ticked and runs nothing.
    again = run(guide)
    assert again.code == 0 and again.shells.ran == []
    assert "steps 1, 2 were already done" in again.out


@scenario
def a_failed_block_stops_the_run_and_the_next_run_resumes_there(tmp: Path) -> None:
    guide = write(tmp, "g.md", TWO_STEPS)

    def fail_two(shell: FakeShell, script: str) -> tuple[FakeResult, bytes]:
        if "two" in script:
            return FakeResult(status=3, outcome="failed", last_line="no such thing"), b""
        return FakeResult(), b""

    failed = run(guide, shells=FakeShells(fail_two))
    assert isinstance(failed.error, StepFailed)
    assert failed.error.message == (
        "step 2 failed: the block exited with status 3 (last output: 'no such thing')"
    )
    assert failed.error.line == 14
    assert "run 'runbook exec g.md' again to resume at step 2" in (failed.error.hint or "")
    assert failed.ticked() == [1]
    ends = [r for r in failed.records() if r["event"] in ("step-end", "run-end")]
    assert [e["result"] for e in ends] == ["done", "failed", "failed"]
    resumed = run(guide)
    assert resumed.code == 0 and resumed.shells.ran == ["echo two"]
    assert resumed.ticked() == [1, 2]


@scenario
def prompt_blocks_run_command_by_command_and_compare_output(tmp: Path) -> None:
    guide = write(
        tmp,
        "g.md",
        """
        # Output

        * [ ] 1. Check

        ### 1. Check

        ```console { .run }
        $ mysql --version
        mysql  Ver 8.0.* for Linux
        $ echo done
        done
        ```
        """,
    )
    version = b"mysql  Ver 5.7.44 for Linux\n"

    def old_mysql(shell: FakeShell, script: str) -> tuple[FakeResult, bytes]:
        return FakeResult(), version if "mysql" in script else b"done\n"

    failed = run(guide, shells=FakeShells(old_mysql))
    assert isinstance(failed.error, StepFailed)
    assert "the command output differs from what the guide expects" in failed.error.message
    assert failed.error.line == 8  # the `$ ` line, not the fence
    assert failed.shells.ran == ["mysql --version"]
    version = b"mysql  Ver 8.0.36 for Linux\n"
    passed = run(guide, shells=FakeShells(old_mysql))
    assert passed.code == 0 and passed.shells.ran == ["mysql --version", "echo done"]


@scenario
def inputs_reach_the_shell_as_variables_and_secrets_are_masked(tmp: Path) -> None:
    guide = write(
        tmp,
        "g.md",
        """
        # Inputs

        * [ ] 1. Connect

        ### 1. Connect

        ```bash { .run }
        connect <db-host> <db-password>
        ```
        """,
    )
    done = run(guide, sets={"db-host": "10.0.0.5", "db-password": CANARY})
    assert done.code == 0, done.error
    shell = done.shells.shells["local"]
    host, password = shell_var("db-host"), shell_var("db-password")
    assert shell.defined == {host: ("10.0.0.5", False), password: (CANARY, True)}
    # Values are never code: the block only refers to the variables.
    assert shell.ran == [f'connect "${{{host}}}" "${{{password}}}"']
    start = done.records()[0]
    assert start["inputs"] == {"db-host": "10.0.0.5"}
    assert start["secret_inputs"] == ["db-password"]
    assert CANARY not in done.out
    assert CANARY not in json.dumps(done.records())
    # The preview keeps the block as written; the values stand under it, quoted as data.
    assert "connect <db-host> <db-password>" in done.out
    assert "where <db-host> = '10.0.0.5'" in done.out
    assert "where <db-password> = ********" in done.out


@scenario
def without_a_person_a_run_stops_before_anything_runs_and_names_the_flag(tmp: Path) -> None:
    guide = write(
        tmp,
        "g.md",
        """
        # Needs

        * [ ] 1. Auto
        * [ ] 2. Input
        * [ ] 3. Tabs

        ### 1. Auto

        ```bash { .run }
        echo auto
        ```

        ### 2. Input

        ```bash { .run }
        echo <name>
        ```

        ### 3. Tabs

        === "A"

            ```bash { .run }
            echo a
            ```

        === "B"

            ```bash { .run }
            echo b
            ```
        """,
    )
    tabs = run(guide)
    assert isinstance(tabs.error, NeedsOperator)
    assert tabs.error.message == "step 3 offers alternatives: A | B"
    assert tabs.error.hint == "pick one with --tab A (or another label)"
    assert tabs.shells.shells == {}  # no shell was even started
    inputs = run(guide, tabs=("B",))
    assert isinstance(inputs.error, NeedsOperator)
    assert inputs.error.message == "step 2 needs <name>, and a non-interactive run cannot ask"
    assert inputs.error.hint == "give --set name=…"
    assert inputs.shells.shells == {}
    done = run(guide, tabs=("B",), sets={"name": "x"})
    assert done.code == 0
    assert done.shells.ran == ["echo auto", f'echo "${{{shell_var("name")}}}"', "echo b"]
    tab = next(r for r in done.records() if r["event"] == "tab")
    assert (tab["label"], tab["how"]) == ("B", "flag")


@scenario
def a_manual_step_needs_a_person_who_confirms_it(tmp: Path) -> None:
    guide = write(
        tmp,
        "g.md",
        """
        # Manual

        * [ ] 1. Look

        ### 1. Look

        Check that the lights are green.
        """,
    )
    stopped = run(guide)
    assert isinstance(stopped.error, NeedsOperator)
    assert stopped.error.message == "step 1 (Look) is done by a person"
    assert "'runbook check g.md 1'" in (stopped.error.hint or "")
    assert stopped.ticked() == []
    confirmed = run(guide, answers=["d"])
    assert confirmed.code == 0 and confirmed.ticked() == [1]
    assert "Check that the lights are green." in confirmed.out
    assert confirmed.console.asked == ["Step 1 is manual. Is it done?"]


@scenario
def offered_blocks_are_run_skipped_done_by_hand_or_edited(tmp: Path) -> None:
    text = """
        # Offered

        * [ ] 1. Clean

        ### 1. Clean

        ```bash
        rm -rf /tmp/old
        ```
        """
    refused = run(write(tmp / "a", "g.md", text))
    assert isinstance(refused.error, NeedsOperator)
    assert "offers a command that needs a person's yes" in refused.error.message
    skipped = run(write(tmp / "b", "g.md", text), answers=["s"])
    assert skipped.code == 0 and skipped.shells.ran == [] and skipped.ticked() == []
    assert "every block was skipped" in skipped.out
    by_hand = run(write(tmp / "c", "g.md", text), answers=["d"])
    assert by_hand.code == 0 and by_hand.shells.ran == [] and by_hand.ticked() == [1]
    edited = run(write(tmp / "d", "g.md", text), answers=["e", "rm -rf /tmp/older <what>", "x"])
    assert edited.code == 0
    assert edited.shells.ran == [f'rm -rf /tmp/older "${{{shell_var("what")}}}"']
    assert "action-edited" in edited.events()
    assert edited.console.asked == ["Run this?", "edit", "<what>"]


@scenario
def after_a_failure_the_operator_retries_skips_or_quits(tmp: Path) -> None:
    guide = write(tmp, "g.md", TWO_STEPS)
    tries: list[str] = []

    def fails_once(shell: FakeShell, script: str) -> tuple[FakeResult, bytes]:
        tries.append(script)
        if "one" in script and len(tries) == 1:
            return FakeResult(status=1, outcome="failed"), b""
        return FakeResult(), b""

    retried = run(guide, shells=FakeShells(fails_once), answers=["r"])
    assert retried.code == 0 and retried.shells.ran == ["echo one", "echo one", "echo two"]
    assert retried.events().count("action-start") == 3

    guide = write(tmp / "b", "g.md", TWO_STEPS)
    tries.clear()
    skipped = run(guide, shells=FakeShells(fails_once), answers=["s", "c"])
    assert skipped.code == 0 and skipped.ticked() == [2]
    assert "a failed block was skipped" in skipped.out
    assert skipped.console.asked == ["What now?", "Go on to the next step?"]

    guide = write(tmp / "c", "g.md", TWO_STEPS)
    tries.clear()
    quit_ = run(guide, shells=FakeShells(fails_once), answers=["q"])
    assert isinstance(quit_.error, StepFailed) and quit_.ticked() == []


@scenario
def after_a_failure_the_block_can_be_done_by_hand_or_edited_then_retried(tmp: Path) -> None:
    def fails_first(shell: FakeShell, script: str) -> tuple[FakeResult, bytes]:
        if script.strip() == "echo one":
            return FakeResult(status=1, outcome="failed"), b""
        return FakeResult(), b""

    by_hand = run(
        write(tmp / "a", "g.md", TWO_STEPS), shells=FakeShells(fails_first), answers=["d"]
    )
    assert by_hand.code == 0 and by_hand.ticked() == [1, 2]
    assert by_hand.shells.ran == ["echo one", "echo two"]
    confirmed = [r for r in by_hand.records() if r["event"] == "action-confirmed"]
    assert [r["choice"] for r in confirmed] == ["by-hand-failed"]

    edited = run(
        write(tmp / "b", "g.md", TWO_STEPS),
        shells=FakeShells(fails_first),
        answers=["e", "echo fixed <who>", "ops"],
    )
    assert edited.code == 0 and edited.ticked() == [1, 2]
    assert edited.shells.ran == ["echo one", f'echo fixed "${{{shell_var("who")}}}"', "echo two"]
    assert edited.console.asked == ["What now?", "edit", "<who>"]
    assert "▶ run on this machine" in edited.out and "edited" in edited.out
    assert [r["after"] for r in edited.records() if r["event"] == "action-edited"] == ["failure"]

    # An edit that changes nothing runs the block again as it was.
    same = run(
        write(tmp / "c", "g.md", TWO_STEPS),
        shells=FakeShells(fails_first),
        answers=["e", None, "q"],
    )
    assert same.shells.ran == ["echo one", "echo one"]
    assert isinstance(same.error, StepFailed)


@scenario
def ctrl_c_at_an_input_question_offers_done_by_hand_skip_or_ask_again(tmp: Path) -> None:
    text = TWO_STEPS.replace("echo one", "echo <who>")
    by_hand = run(write(tmp / "a", "g.md", text), answers=[KeyboardInterrupt, "d"])
    assert by_hand.code == 0 and by_hand.shells.ran == ["echo two"]
    assert by_hand.ticked() == [1, 2]
    confirmed = [
        (r["choice"], r["how"]) for r in by_hand.records() if r["event"] == "action-confirmed"
    ]
    assert confirmed == [("by-hand", "input-interrupted")]
    again = run(write(tmp / "b", "g.md", text), answers=[KeyboardInterrupt, "r", "ops"])
    assert again.code == 0 and again.shells.ran == [f'echo "${{{shell_var("who")}}}"', "echo two"]
    skipped = run(write(tmp / "c", "g.md", text), answers=[KeyboardInterrupt, "s", "c"])
    assert skipped.code == 0 and skipped.ticked() == [2]
    assert "the block at" in skipped.out and "was skipped (no <who>)" in skipped.out


@scenario
def an_incomplete_step_is_never_ticked_and_the_run_asks_before_going_on(tmp: Path) -> None:
    def fails_first(shell: FakeShell, script: str) -> tuple[FakeResult, bytes]:
        ok = script.strip() != "echo one"
        return (FakeResult() if ok else FakeResult(status=1, outcome="failed")), b""

    stopped = run(
        write(tmp / "a", "g.md", TWO_STEPS), shells=FakeShells(fails_first), answers=["s", "q"]
    )
    assert stopped.code == 4 and stopped.ticked() == []
    assert stopped.shells.ran == ["echo one"]
    assert "step 1 (First) is not complete: a failed block was skipped" in stopped.out
    assert "stopped; run 'runbook exec g.md' to go on" in stopped.out
    ends = [(r["step"], r["result"]) for r in stopped.records() if r["event"] == "step-end"]
    assert ends == [(1, "skipped")]

    # Without a person the run stops there (exit 4), naming what would let it go on.
    from runbook.execution.operator import Operator

    unattended = Operator(
        Console(io.StringIO()), ExecOptions(interactive=False), plan.Nesting(), "g.md"
    )
    step = load(stopped.guide).steps[0]
    with pytest.raises(NeedsOperator) as refused:
        unattended.incomplete(step, "a failed block was skipped")
    assert refused.value.exit_code == 4
    assert "step 1 (First) is not complete: a failed block was skipped" in refused.value.message
    assert "'runbook check g.md 1'" in (refused.value.hint or "")


@scenario
def a_box_ticked_by_hand_while_the_run_waits_is_respected(tmp: Path) -> None:
    guide = write(tmp, "g.md", TWO_STEPS)

    def ticks_step_2(shell: FakeShell, script: str) -> tuple[FakeResult, bytes]:
        if "one" in script:
            # A person ticks step 2 in an editor while step 1 runs.
            guide.write_text(guide.read_text().replace("* [ ] 2. Second", "* [x] 2. Second"))
        return FakeResult(), b""

    done = run(guide, shells=FakeShells(ticks_step_2))
    assert done.code == 0 and done.shells.ran == ["echo one"]
    assert done.ticked() == [1, 2]
    assert "step 2 was ticked by hand meanwhile" in done.out
    skipped = [r for r in done.records() if r["event"] == "step-skipped"]
    assert [(r["step"], r["why"]) for r in skipped] == [(2, "ticked by hand")]


@scenario
def hints_name_the_command_that_really_resumes(tmp: Path) -> None:
    three = (
        TWO_STEPS.replace("* [ ] 2. Second", "* [ ] 2. Second\n    * [ ] 3. Third")
        + "\n    ### 3. Third\n\n    ```bash { .run }\n    echo three\n    ```\n"
    )

    def fails_two(shell: FakeShell, script: str) -> tuple[FakeResult, bytes]:
        ok = "two" not in script
        return (FakeResult() if ok else FakeResult(status=2, outcome="failed")), b""

    only = run(write(tmp / "a", "g.md", three), shells=FakeShells(fails_two), only=(2, 3))
    assert isinstance(only.error, StepFailed), only.error
    assert "run 'runbook exec g.md --only 2,3' again to resume at step 2" in (only.error.hint or "")
    started = run(write(tmp / "b", "g.md", three), shells=FakeShells(fails_two), from_step=1)
    assert "'runbook exec g.md --from 2'" in (started.error.hint or "") if started.error else False
    plain = run(write(tmp / "c", "g.md", three), shells=FakeShells(fails_two))
    assert (
        "run 'runbook exec g.md' again to resume at step 2" in (plain.error.hint or "")
        if plain.error
        else False
    )


@scenario
def tabs_are_asked_once_and_remembered_by_label(tmp: Path) -> None:
    guide = write(
        tmp,
        "g.md",
        """
        # Tabs

        * [ ] 1. One
        * [ ] 2. Two

        ### 1. One

        === "Sandbox"

            ```bash { .run }
            echo sandbox one
            ```

        === "Production"

            ```bash { .run }
            echo production one
            ```

        ### 2. Two

        === "Sandbox"

            ```bash { .run }
            echo sandbox two
            ```

        === "Production"

            ```bash { .run }
            echo production two
            ```
        """,
    )
    done = run(guide, answers=["Sandbox", ""])
    assert done.code == 0 and done.shells.ran == ["echo sandbox one", "echo sandbox two"]
    assert [(r["label"], r["how"]) for r in done.records() if r["event"] == "tab"] == [
        ("Sandbox", "asked"),
        ("Sandbox", "remembered"),
    ]
    assert done.console.asked[1] == "Step 2 offers Sandbox | Production: keep Sandbox?"

    # At the next step the operator may change the tab; the new one is remembered.
    original = guide.read_text().replace("[x]", "[ ]")
    changed = run(write(tmp / "b", "g.md", original), answers=["Sandbox", "c", "Production"])
    assert changed.shells.ran == ["echo sandbox one", "echo production two"]
    assert [(r["label"], r["how"]) for r in changed.records() if r["event"] == "tab"] == [
        ("Sandbox", "asked"),
        ("Production", "changed"),
    ]
    # Unattended, the tab given ahead is simply taken.
    flagged = run(write(tmp / "c", "g.md", original), tabs=("Production",))
    assert flagged.shells.ran == ["echo production one", "echo production two"]


NESTED_MAIN = """
    # Main

    * [ ] 1. Start
    * [ ] 2. Sub
    * [ ] 3. Again

    ### 1. Start

    <!-- runbook: timer start down -->

    ```bash { .run }
    echo start
    ```

    ### 2. Sub

    <!-- runbook: exec sub/sub.md -->

    ### 3. Again

    <!-- runbook: repeat 1 -->

    <!-- runbook: timer stop down -->
"""
NESTED_SUB = """
    # Sub guide

    * [ ] 1. Inner

    ### 1. Inner

    ```bash { .run }
    echo inner
    ```
"""


@scenario
def directives_run_other_guides_and_earlier_steps_through_the_same_loop(tmp: Path) -> None:
    guide = write(tmp, "main.md", NESTED_MAIN)
    sub_path = write(tmp, "sub/sub.md", NESTED_SUB)
    missing = run(guide)
    assert isinstance(missing.error, GuideError)
    assert "runs sub/sub.md, which was not loaded" in missing.error.message
    done = run(guide, guides={sub_path: load(sub_path)})
    assert done.code == 0, done.error
    assert done.shells.ran == ["echo start", "echo inner", "echo start"]
    nested = [
        (r["event"], r["label"], r.get("guide"))
        for r in done.records()
        if r["event"] == "nested-start"
    ]
    assert nested == [
        ("nested-start", "Sub guide, step 1", str(sub_path)),
        ("nested-start", "repeating step 1", None),
    ]
    assert "↳ step 2, Sub guide, step 1: Inner" in done.out
    assert "⏱ down: " in done.out and "(from step 1 to step 3)" in done.out
    assert done.ticked() == [1, 2, 3]
    assert load(sub_path).steps[0].checked is False  # a guide run by another is not ticked


@scenario
def a_nested_failure_names_the_step_of_the_guide_that_ran_it(tmp: Path) -> None:
    guide = write(tmp, "main.md", NESTED_MAIN)
    sub_path = write(tmp, "sub/sub.md", NESTED_SUB)

    def inner_fails(shell: FakeShell, script: str) -> tuple[FakeResult, bytes]:
        failed = FakeResult(status=2, outcome="failed")
        return (failed if "inner" in script else FakeResult()), b""

    failed = run(guide, shells=FakeShells(inner_fails), guides={sub_path: load(sub_path)})
    assert isinstance(failed.error, StepFailed)
    assert failed.error.message == (
        "step 2 (Sub guide, step 1) failed: the block exited with status 2"
    )
    assert failed.error.path == str(sub_path)
    assert "to resume at step 2" in (failed.error.hint or "")
    ends = [(r["event"], r["result"]) for r in failed.records() if "result" in r]
    assert ends[-3:] == [("nested-end", "failed"), ("step-end", "failed"), ("run-end", "failed")]


@scenario
def a_nested_confirmation_names_the_step_of_the_guide_that_ran_it(tmp: Path) -> None:
    guide = write(tmp, "main.md", NESTED_MAIN)
    warned = NESTED_SUB.replace(
        "```bash { .run }", '!!! danger "Irreversible"\n\n        Really.\n\n    ```bash { .run }'
    )
    sub_path = write(tmp, "sub/sub.md", warned)
    done = run(guide, guides={sub_path: load(sub_path)})
    assert done.code == 0, done.error
    summary = done.out[done.out.index("Summary") :]
    # Not "step 1": that is the main guide's first step, which has no warning.
    assert "· step 2 (Sub guide, step 1), block " in summary, summary
    assert "sub/sub.md:11 (DANGER" in summary
    assert "(DANGER: Irreversible): run, unattended (--yes)" in summary


@scenario
def an_unknown_outcome_is_asked_about_or_settled_by_a_flag(tmp: Path) -> None:
    from runbook.journal import Journal
    from runbook.runtime import journal_path

    guide = write(tmp, "g.md", TWO_STEPS)
    # A run that was killed inside step 1: its start is recorded, its end is not.
    journal = Journal(journal_path(tmp / ".runbook", guide), "20240101T000000Z-abcdef")
    journal.write("run-start", guide=str(guide), steps=[1, 2])
    journal.write("step-start", step=1, title="First")
    journal.close()
    stopped = run(guide)
    assert isinstance(stopped.error, NeedsOperator)
    assert "its outcome is unknown" in stopped.error.message
    assert "--retry-unknown" in (stopped.error.hint or "")
    assert stopped.shells.ran == []
    skipped = run(guide, skip_unknown=True)
    assert skipped.code == 0 and skipped.shells.ran == ["echo two"]
    assert "unknown outcome" in skipped.out
    resolved = [r["choice"] for r in skipped.records() if r["event"] == "step-resolved"]
    assert resolved == ["skip"]


@scenario
def a_tick_the_killed_run_did_not_make_is_made_by_the_next(tmp: Path) -> None:
    from runbook.journal import Journal
    from runbook.runtime import journal_path

    guide = write(tmp, "g.md", TWO_STEPS)
    journal = Journal(journal_path(tmp / ".runbook", guide), "20240101T000000Z-abcdef")
    journal.write("run-start", guide=str(guide), steps=[1, 2])
    journal.write("step-start", step=1, title="First")
    journal.write("step-end", step=1, result="done", guide_sha256=_sha(guide))
    journal.close()
    done = run(guide)
    assert done.code == 0
    assert "step 1 was completed by run 20240101T000000Z-abcdef" in done.out
    assert done.shells.ran == ["echo two"]
    assert done.ticked() == [1, 2]


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@scenario
def the_first_ctrl_c_stops_the_command_and_the_run_ends_interrupted(tmp: Path) -> None:
    guide = write(tmp, "g.md", TWO_STEPS)

    def ctrl_c(shell: FakeShell, script: str) -> tuple[FakeResult, bytes]:
        os.kill(os.getpid(), signal.SIGINT)  # the handler asks the shell to stop
        return FakeResult(status=None, outcome="interrupted"), b""

    stopped = run(guide, shells=FakeShells(ctrl_c))
    assert isinstance(stopped.error, Interrupted)
    assert stopped.shells.shells["local"].interrupted == 1
    assert stopped.shells.shells["local"].closed
    ends = [(r["event"], r["result"]) for r in stopped.records() if "result" in r]
    assert ends == [("step-end", "interrupted"), ("run-end", "interrupted")]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@scenario
def a_dry_run_plans_everything_and_starts_no_shell(tmp: Path) -> None:
    guide = write(tmp, "main.md", NESTED_MAIN.replace("echo start", "echo <who>"))
    sub_path = write(tmp, "sub/sub.md", NESTED_SUB)
    dry = run(guide, dry_run=True, guides={sub_path: load(sub_path)})
    assert dry.code == 0 and dry.shells.shells == {}
    assert not (tmp / ".runbook").exists()
    out = dry.out
    assert "Dry run of" in out
    assert "  ↳ Sub guide, step 1: Inner" in out
    assert "  ↳ repeating step 1: Start" in out
    assert "Inputs still missing: <who>" in out
    assert "Needs a person: nothing; it can run with --yes." in out


@scenario
def plan_selects_steps_by_options_and_ticks(tmp: Path) -> None:
    guide = write(tmp, "g.md", TWO_STEPS.replace("* [ ] 1.", "* [x] 1."))
    book = load(guide)

    def chosen(**options: Any) -> list[int]:
        found = plan.select(book, ExecOptions(**options), "g.md")
        return [s.number for s in found if plan.pending(s, ExecOptions(**options))]

    assert chosen() == [2]
    assert chosen(redo=True) == [1, 2]
    assert chosen(only=(1,)) == [1]
    assert chosen(from_step=2) == [2]
    try:
        plan.select(book, ExecOptions(only=(9,)), "g.md")
    except RunbookError as exc:
        assert exc.message == "no step 9 (steps: 1, 2)"
    else:
        raise AssertionError("no step 9 was accepted")


@scenario
def plan_expands_directives_and_splits_prompt_blocks(tmp: Path) -> None:
    guide = write(tmp, "main.md", NESTED_MAIN)
    sub_path = write(tmp, "sub/sub.md", NESTED_SUB)
    book, sub = load(guide), load(sub_path)
    guides = {sub_path: sub}
    labels = [
        (s.title, label) for step in book.steps for s, label in plan.expanded(step, book, guides)
    ]
    assert labels == [
        ("Start", ""),
        ("Sub", ""),
        ("Inner", "Sub guide, step 1"),
        ("Again", ""),
        ("Start", "repeating step 1"),
    ]
    prompt = write(
        tmp,
        "p.md",
        """
        # P

        ### 1. One

        ```console { .run }
        $ echo <name>
        <name>
        $ echo two
        two
        ```
        """,
    )
    action = load(prompt).steps[0].actions[0]
    units = plan.units(action, {"name": "x"})
    assert [(u.code, u.expected, u.origin.line) for u in units] == [
        (f'echo "${{{shell_var("name")}}}"', ("<name>",), 6),
        ("echo two", ("two",), 8),
    ]
    edited = plan.edited(action, "echo whole\n")
    assert not edited.expects_output and plan.units(edited, {})[0].code == "echo whole\n"
    assert output_matches(b"mysql  Ver 8.0.36 x\n", ["mysql  Ver 8.0.* x"])
    assert not output_matches(b"a\nb\n", ["a"])
    assert output_matches(b"a\nb\nc\n", ["a", "...", "c"])


@scenario
def tab_choices_take_flags_then_patterns_then_the_only_tab(tmp: Path) -> None:
    guide = write(
        tmp,
        "g.md",
        """
        # T

        ### 1. One

        === "Sandbox host"

            ```bash { .run }
            echo s
            ```

        === "Production"

            === "scp"

                ```bash { .run }
                echo scp
                ```

            === "rsync"

                ```bash { .run }
                echo rsync
                ```
        """,
    )
    step = load(guide).steps[0]

    def never(step: Any, group: Any, labels: list[str]) -> str:
        raise AssertionError(f"asked about {labels}")

    tabs = TabChoices(["rsync", "Prod*"])
    tabs.decide(step, never)
    assert [a.code.strip() for a in tabs.actions(step)] == ["echo rsync"]
    asked: list[list[str]] = []

    def ask(step: Any, group: Any, labels: list[str]) -> str:
        asked.append(labels)
        return labels[0]

    tabs = TabChoices()
    tabs.decide(step, ask)
    assert asked == [["Sandbox host", "Production"]]  # the nested set is left aside
    assert [a.code.strip() for a in tabs.actions(step)] == ["echo s"]
    try:
        plan.check_tab_flags(load(guide), ["Sandbox"])
    except RunbookError as exc:
        assert '(tabs: "Sandbox host", Production, scp, rsync)' in exc.message
    else:
        raise AssertionError("--tab Sandbox was accepted")


@scenario
def the_command_line_loads_nested_guides_once_and_refuses_a_cycle(tmp: Path) -> None:
    from runbook.cli import load_nested

    main = write(tmp, "main.md", NESTED_MAIN)
    sub = write(tmp, "sub/sub.md", NESTED_SUB + "\n    <!-- runbook: exec ../other.md -->\n")
    other = write(tmp, "other.md", NESTED_SUB.replace("Sub guide", "Other"))
    guides = load_nested(load(main), {})
    assert sorted(guides) == sorted([sub, other])
    write(tmp, "other.md", NESTED_SUB + "\n    <!-- runbook: exec main.md -->\n")
    try:
        load_nested(load(main), {})
    except GuideError as exc:
        assert "runs main.md, which runs this guide again" in exc.message
        assert exc.path == str(tmp / "other.md")
    else:
        raise AssertionError("the cycle was accepted")


# -- hosts: ssh lines, --accept, --by-hand --------------------------------------------------

SSH_LINE = """
    # Hosts

    * [ ] 1. Old
    * [ ] 2. Here

    ### 1. Old

        ssh -p 2222 <username>@<old-server>

    ```bash { .run }
    echo on old
    ```

    ```bash
    echo offered on old
    ```

    ### 2. Here

    ```bash { .run }
    echo here
    ```
"""
OLD = {"username": "rb", "old-server": "old.example"}
OLD_KEY = "ssh -p 2222 rb@old.example"


@scenario
def blocks_after_an_ssh_line_run_in_its_shell_and_the_next_step_here(tmp: Path) -> None:
    guide = write(tmp, "g.md", SSH_LINE)
    done = run(guide, sets=OLD, accept=True)
    assert done.code == 0, done.error
    assert sorted(done.shells.shells) == ["local", OLD_KEY]
    assert done.shells.shells[OLD_KEY].ran == ["echo on old", "echo offered on old"]
    assert done.shells.shells["local"].ran == ["echo here"]
    assert f"▶ connect to rb@old.example ({guide}:8)\n  ssh -p 2222 rb@old.example\n" in done.out
    assert f"▶ run on rb@old.example ({guide}:10)" in done.out
    assert f"▶ suggested on rb@old.example ({guide}:14)" in done.out
    assert f"▶ run on this machine ({guide}:20)" in done.out
    records = done.records()
    connect = next(r for r in records if r["event"] == "connect")
    assert (connect["host"], connect["choice"], connect["how"]) == (
        OLD_KEY,
        "connect",
        "unattended",
    )
    hosts = [r["host"] for r in records if r["event"] == "action-start"]
    assert hosts == [OLD_KEY, OLD_KEY, "local"]
    accepted = [r for r in records if r["event"] == "action-confirmed"]
    assert [(r["choice"], r["how"], r["option"]) for r in accepted] == [
        ("run", "option", "--accept")
    ]
    assert done.ticked() == [1, 2]


@scenario
def without_a_person_an_ssh_line_s_inputs_and_host_are_checked_before_anything_runs(
    tmp: Path,
) -> None:
    guide = write(
        tmp,
        "g.md",
        SSH_LINE.replace(
            "### 1. Old", "### 1. Old\n\n    ```bash { .run }\n    echo first\n    ```"
        ),
    )
    missing = run(guide, accept=True)
    assert isinstance(missing.error, NeedsOperator), missing.error
    assert "needs <username>, <old-server>" in missing.error.message
    assert "--set username=…" in (missing.error.hint or "")
    for value in ("-oProxyCommand=x", "old example", ""):
        hostile = run(guide, sets={**OLD, "old-server": value}, accept=True)
        assert hostile.error is not None and hostile.error.exit_code == 2, hostile.error
        assert "the host of the ssh line, <username>@<old-server>," in hostile.error.message
        assert hostile.error.line == 12
        assert hostile.shells.shells == {}, "something ran"
    # Without --accept the offered block needs a person: the run stops before step 1.
    offered = run(guide, sets=OLD)
    assert isinstance(offered.error, NeedsOperator)
    assert "give --accept" in (offered.error.hint or "")


@scenario
def a_declined_connection_s_blocks_are_done_by_hand_or_skipped_never_run_here(
    tmp: Path,
) -> None:
    guide = write(tmp, "g.md", SSH_LINE)
    by_hand = run(guide, sets=OLD, answers=["d", "d", "d"], only=(1,))
    assert by_hand.code == 0, by_hand.error
    assert by_hand.console.asked == [
        "connect to rb@old.example (ssh -p 2222 rb@old.example)?",
        "Done by hand on rb@old.example?",
        "Done by hand on rb@old.example?",
    ]
    assert by_hand.shells.shells == {}, "something ran"
    assert f"▶ run on rb@old.example ({guide}:10): to do by hand" in by_hand.out
    records = by_hand.records()
    connect = next(r for r in records if r["event"] == "connect")
    assert (connect["choice"], connect["how"]) == ("by-hand", "asked")
    confirmed = [(r["choice"], r["how"]) for r in records if r["event"] == "action-confirmed"]
    assert confirmed == [("by-hand", "connection-declined")] * 2
    assert by_hand.ticked() == [1]

    skipped = run(guide, sets=OLD, answers=["s"], only=(1,), redo=True)
    assert skipped.code == 0, skipped.error
    assert skipped.shells.shells == {}, "something ran"
    assert "a block to run on rb@old.example was skipped" in skipped.out
    ends = [r for r in skipped.records() if r["event"] == "step-end"]
    assert ends[-1]["result"] == "skipped"


@scenario
def done_by_hand_in_one_tab_is_not_carried_to_the_tab_switched_to(tmp: Path) -> None:
    (tmp / "_ssh.md").write_text("ssh -p 2222 <username>@<old-server>")
    tab = """
        === "{label}"

                {{% include '_ssh.md' %}}

            ```bash {{ .run }}
            echo {label} {n}
            ```
    """
    steps = "\n".join(
        f"### {n}. Step {n}\n"
        + "".join(textwrap.dedent(tab).format(label=t, n=n) for t in ("Prod", "Lab"))
        for n in (1, 2)
    )
    guide = write(tmp, "g.md", "# Tabs\n\n* [ ] 1. Step 1\n* [ ] 2. Step 2\n\n" + steps)
    # Step 1, Prod: its blocks are done by hand; step 2, changed to Lab: the same ssh line
    # (one snippet) is asked about again, and its blocks run there.
    done = run(guide, sets=OLD, answers=["Prod", "d", "d", "c", "Lab", "y"])
    assert done.code == 0, done.error
    assert done.shells.ran == ["echo Lab 2"]
    assert [r["choice"] for r in done.records() if r["event"] == "connect"] == [
        "by-hand",
        "connect",
    ]


@scenario
def a_connection_that_drops_mid_block_leaves_the_step_s_outcome_unknown(tmp: Path) -> None:
    guide = write(tmp, "g.md", SSH_LINE)

    def drop(shell: FakeShell, script: str) -> tuple[FakeResult, bytes]:
        if shell.host == OLD_KEY:
            shell.killed = True
            return FakeResult(status=255, outcome="shell-died"), b""
        return FakeResult(), b""

    dropped = run(guide, sets=OLD, shells=FakeShells(drop), accept=True)
    assert isinstance(dropped.error, StepFailed) and dropped.error.exit_code == 1
    assert dropped.error.message == (
        "step 1: the connection to rb@old.example dropped while the block ran (status 255): "
        "whether it finished there is unknown"
    )
    assert dropped.error.line == 10
    assert "--retry-unknown" in (dropped.error.hint or "")
    events = dropped.events()
    assert "step-unknown" in events and "step-end" not in events
    assert "?  1. Old" in dropped.out and "connection dropped" in dropped.out
    assert dropped.ticked() == []
    # The next run asks; without a person it stops, naming the options.
    again = run(guide, sets=OLD, accept=True)
    assert isinstance(again.error, NeedsOperator)
    assert "outcome is unknown" in again.error.message
    assert again.shells.shells == {}
    retried = run(guide, sets=OLD, retry_unknown=True, accept=True)
    assert retried.code == 0, retried.error
    assert retried.shells.shells[OLD_KEY].ran == ["echo on old", "echo offered on old"]
    assert retried.ticked() == [1, 2]


@scenario
def a_local_shell_that_dies_mid_block_is_a_failure_not_an_unknown(tmp: Path) -> None:
    def died(shell: FakeShell, script: str) -> tuple[FakeResult, bytes]:
        return FakeResult(status=3, outcome="shell-died", restarted=True), b""

    guide = write(tmp, "g.md", TWO_STEPS)
    done = run(guide, shells=FakeShells(died))
    assert isinstance(done.error, StepFailed) and "ended its shell (status 3)" in done.error.message
    assert [r["result"] for r in done.records() if r["event"] == "step-end"] == ["failed"]


@scenario
def an_ssh_line_logs_in_afresh_when_its_shell_died_since_and_a_block_does_not(
    tmp: Path,
) -> None:
    twice = SSH_LINE.replace(
        "### 2. Here",
        "### 2. Again\n\n        ssh -p 2222 <username>@<old-server>\n\n    ### 3. Here",
    )
    twice = twice.replace("* [ ] 2. Here", "* [ ] 2. Again\n    * [ ] 3. Here")
    guide = write(tmp, "g.md", twice)
    opened: list[str] = []

    def reboot(shell: FakeShell, script: str) -> tuple[FakeResult, bytes]:
        if script.startswith("echo offered"):
            shell.killed = True  # the server went down after the block (a reboot)
        return FakeResult(), b""

    class Counting(FakeShells):
        def open(self, host: str, *, cwd: Path, redactor: Any, transcript: Any) -> FakeShell:
            opened.append(host)
            return super().open(host, cwd=cwd, redactor=redactor, transcript=transcript)

    done = run(guide, sets=OLD, accept=True, shells=Counting(reboot))
    assert done.code == 0, done.error
    assert opened == [OLD_KEY, OLD_KEY, "local"]
    assert done.ticked() == [1, 2, 3]
    # A block whose shell died since its last one stops the run: its state is gone.
    once = write(
        tmp,
        "h.md",
        SSH_LINE.replace("```bash\n    echo offered", "```bash { .run }\n    echo offered").replace(
            "echo on old", "echo offered first"
        ),
    )
    stopped = run(once, sets=OLD, shells=FakeShells(reboot))
    assert (
        stopped.error is not None
        and "the shell on rb@old.example died since its last block" in stopped.error.message
    )


@scenario
def sudo_s_prompt_is_answered_on_remote_hosts_only(tmp: Path) -> None:
    guide = write(tmp, "g.md", SSH_LINE)
    done = run(guide, sets={**OLD, "sudo-password": CANARY}, accept=True)
    assert done.code == 0, done.error
    remote, local = done.shells.shells[OLD_KEY], done.shells.shells["local"]
    assert remote.answers == [(("[sudo] password for", CANARY, True),)] * 2
    assert local.answers == [()]
    assert CANARY not in done.out and CANARY not in json.dumps(done.records())


@scenario
def by_hand_steps_are_passed_and_recorded_and_accepted_blocks_too(tmp: Path) -> None:
    guide = write(tmp, "g.md", TWO_STEPS.replace("echo two", "echo <two>"))
    done = run(guide, by_hand=(2,))  # step 2's input is not needed: it does not run
    assert done.code == 0, done.error
    assert done.shells.ran == ["echo one"]
    assert done.ticked() == [1, 2]
    confirmed = [r for r in done.records() if r["event"] == "step-confirmed"]
    assert [(r["step"], r["choice"], r["how"], r["option"]) for r in confirmed] == [
        (2, "done", "option", "--by-hand")
    ]
    assert "(by hand)" in done.out
    for options, message in (
        ({"by_hand": (5,)}, "no step 5"),
        ({"by_hand": (2,), "only": (1,)}, "--by-hand 2 names a step this run does not reach"),
    ):
        refused = run(guide, redo=True, **options)
        assert isinstance(refused.error, RunbookError) and refused.error.exit_code == 2
        assert message in refused.error.message
    other = write(tmp, "h.md", SSH_LINE)
    dry = run(other, sets=OLD, by_hand=(2,), accept=True, dry_run=True)
    assert dry.code == 0, dry.error
    assert "Step 2. Here  [passed as done by hand (--by-hand), nothing run]" in dry.out
    assert f"[suggested] {other}:14 on rb@old.example, run as accepted (--accept)" in dry.out
    assert "Runs on: rb@old.example\n" in dry.out
    assert "Needs a person: nothing" in dry.out


@scenario
def a_block_passed_by_hand_is_found_by_its_resolved_place(tmp: Path) -> None:
    real = tmp / "real"
    real.mkdir()
    (tmp / "link").symlink_to(real)
    guide = write(real, "g.md", TWO_STEPS)
    fence = guide.read_text().split("\n").index("echo two")  # the line before it, 1-based
    linked = tmp / "link" / "g.md"  # the guide loaded through a link: its origins unresolved
    done = run(linked, by_hand_blocks=(Origin(guide.resolve(), fence),))
    assert done.code == 0, done.error
    assert done.shells.ran == ["echo one"]
    assert "done by hand (--by-hand-block): not run" in done.out
    refused = run(linked, redo=True, by_hand_blocks=(Origin(guide.resolve(), fence + 1),))
    assert isinstance(refused.error, RunbookError) and refused.error.exit_code == 2
    assert "no block starts there" in refused.error.message


# -- the child process and the tests ----------------------------------------------------------


def _child() -> None:
    """Run every scenario (in this process, which never imports pexpect); print results."""
    results: dict[str, Any] = {}
    for name, func in SCENARIOS.items():
        with tempfile.TemporaryDirectory() as tmp:
            try:
                func(Path(tmp).resolve())
                assert "pexpect" not in sys.modules, "pexpect was imported"
                results[name] = "ok"
            except BaseException:
                results[name] = traceback.format_exc()
    results["__pexpect__"] = "pexpect" in sys.modules
    print(json.dumps(results))


@pytest.fixture(scope="module")
def outcomes() -> Iterator[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-c", "import tests.test_execution as t; t._child()"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    yield json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(outcomes: dict[str, Any], name: str) -> None:
    assert outcomes[name] == "ok", outcomes[name]


def test_the_loop_never_imports_pexpect(outcomes: dict[str, Any]) -> None:
    assert outcomes["__pexpect__"] is False
