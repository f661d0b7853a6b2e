"""``runbook exec`` driven as a subprocess against real shells, files and journals.

Each test copies a guide from ``tests/fixtures/exec`` into its own folder and runs
``python -m runbook exec`` there, without a terminal (stdin is not a tty), so the run is
non-interactive. Terminal behaviour is covered by ``test_exec_pty.py``.
"""

from __future__ import annotations

import getpass
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from runbook.guide import load
from runbook.journal import last_run_of
from tests.conftest import one_step_guide, run_cli

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "exec"
RUNBOOK = (sys.executable, "-m", "runbook")
CANARY = "CANARY-7f3a9c1e5b2d"


@dataclass(frozen=True)
class Run:
    """What one CLI invocation did."""

    code: int
    """Exit status."""
    out: str
    """Standard output."""
    err: str
    """Standard error."""
    seconds: float
    """Wall-clock duration."""

    @property
    def text(self) -> str:
        """Both streams, for searching."""
        return self.out + self.err


def exec_terminal(
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 30,
    width: int = 160,
) -> Any:
    """Start ``runbook exec ARGS`` in ``cwd`` under a pseudo-terminal, 40 rows by ``width``
    columns (colourless unless ``env`` says otherwise); return the pexpect child."""
    import pexpect  # here: test modules importing this one need not load it

    return pexpect.spawn(
        RUNBOOK[0],
        [*RUNBOOK[1:], "exec", *args],
        cwd=str(cwd),
        env=env or {**os.environ, "NO_COLOR": "1"},
        encoding="utf-8",
        codec_errors="replace",
        timeout=timeout,
        dimensions=(40, width),
    )


def cli_env(**extra: str) -> dict[str, str]:
    """Environment for the CLI: this interpreter's, without colour switches set by the caller."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS")}
    env.update(extra)
    return env


class Workspace:
    """A private copy of one fixture guide, with helpers to run and inspect it."""

    def __init__(self, root: Path, name: str) -> None:
        self.dir = root
        self.guide = root / name
        shutil.copyfile(FIXTURES / name, self.guide)
        self.original = self.guide.read_bytes()

    def exec(self, *args: str, timeout: float = 30, env: dict[str, str] | None = None) -> Run:
        """Run ``runbook exec GUIDE ARGS`` to completion, stdin not a terminal."""
        started = time.monotonic()
        proc = subprocess.run(
            [*RUNBOOK, "exec", self.guide.name, *args],
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            env=env or cli_env(TERM="xterm-256color"),
        )
        return Run(
            proc.returncode,
            proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"),
            time.monotonic() - started,
        )

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        """Start ``runbook exec GUIDE ARGS`` in the background (output to files)."""
        # The child keeps its own copies of the output files; ours close at once.
        with open(self.dir / "bg.out", "wb") as out, open(self.dir / "bg.err", "wb") as err:
            return subprocess.Popen(
                [*RUNBOOK, "exec", self.guide.name, *args],
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=cli_env(),
            )

    @property
    def runtime(self) -> Path:
        """The runtime folder beside the guide."""
        return self.dir / ".runbook"

    def records(self) -> list[dict[str, Any]]:
        """Every journal record, in order."""
        found = list((self.runtime / "journal").glob("*.jsonl"))
        if not found:
            return []
        assert len(found) == 1, found
        lines = found[0].read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def events(self, event: str, **match: object) -> list[dict[str, Any]]:
        """Journal records of one kind whose fields equal ``match``."""
        return [
            r
            for r in self.records()
            if r["event"] == event and all(r.get(k) == v for k, v in match.items())
        ]

    def ticked(self) -> set[int]:
        """Step numbers ticked in the guide's overview checklist."""
        text = self.guide.read_text(encoding="utf-8")
        return {int(n) for n in re.findall(r"^\* \[[xX]\] (\d+)\.", text, re.M)}

    def log(self) -> list[str]:
        """Lines the guide's blocks appended to ``log``."""
        path = self.dir / "log"
        return path.read_text().splitlines() if path.exists() else []

    def only_boxes_changed(self) -> bool:
        """Whether the guide differs from the fixture in checkbox bytes only."""
        now = self.guide.read_bytes()
        if len(now) != len(self.original):
            return False
        diffs = [i for i, (a, b) in enumerate(zip(now, self.original, strict=True)) if a != b]
        return all(
            {now[i], self.original[i]} <= {ord(" "), ord("x")}
            and now[i - 1 : i] == b"["
            and now[i + 1 : i + 2] == b"]"
            for i in diffs
        )

    def all_runtime_bytes(self) -> bytes:
        """The content of every file under the runtime folder, concatenated."""
        return b"".join(p.read_bytes() for p in sorted(self.runtime.rglob("*")) if p.is_file())


@pytest.fixture
def workspace(tmp_path: Path) -> Callable[[str], Workspace]:
    """Return a factory copying a fixture guide into the test's own folder."""

    def make(name: str) -> Workspace:
        return Workspace(tmp_path, name)

    return make


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def processes_running(under: Path, *argv: str) -> list[int]:
    """Return the pids whose command line is ``argv`` and whose working folder is in ``under``.

    The folder tells this test's processes from those of other test runs on the machine.
    """
    wanted = b"\0".join(a.encode() for a in argv) + b"\0"
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as handle:
                if handle.read() != wanted:
                    continue
            cwd = Path(os.readlink(f"/proc/{name}/cwd"))
        except OSError:
            continue
        if cwd == under or under in cwd.parents:
            found.append(int(name))
    return found


def no_process_left(under: Path, *argv: str, timeout: float = 5.0) -> bool:
    """Whether every such process is gone within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while processes_running(under, *argv):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture(autouse=True)
def _no_stray_sleeps(tmp_path: Path) -> Iterator[None]:
    """Fail a test that leaves one of the fixtures' long sleeps behind."""
    yield
    for seconds in ("31.7", "32.3", "33.1"):
        left = processes_running(tmp_path, "sleep", seconds)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert not left, f"stray 'sleep {seconds}' processes: {left}"


# -- state carried between blocks and steps ----------------------------------------------------


def test_directory_variables_and_functions_carry_between_blocks_and_steps(workspace):
    ws = workspace("state.md")
    run = ws.exec("--yes")
    assert run.code == 0, run.text
    assert "same step: place carried fn:a" in run.out
    assert "next step: place carried fn:b" in run.out
    # The second step ran inside the folder the first one changed into.
    assert (ws.dir / "place" / "result").read_text() == "carried\n"
    assert ws.ticked() == {1, 2}
    assert ws.only_boxes_changed()


def test_blocks_start_in_the_guides_site_root_wherever_exec_is_started(workspace, tmp_path):
    ws = workspace("state.md")
    elsewhere = tmp_path.parent
    proc = subprocess.run(
        [*RUNBOOK, "exec", str(ws.guide.relative_to(elsewhere)), "--yes"],
        cwd=elsewhere,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=cli_env(),
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    # A lone guide's site root is its folder: `mkdir -p place` landed beside it.
    assert (ws.dir / "place" / "result").read_text() == "carried\n"
    assert not (elsewhere / "place").exists()


# -- failure, resume, selection -------------------------------------------------------------------


def test_failure_stops_mid_block_and_the_next_run_resumes_at_that_step(workspace):
    ws = workspace("fail.md")
    run = ws.exec("--yes")
    assert run.code == 1, run.text
    # The block stopped at `test -e ready`: its last command never ran, nor did step 3.
    assert ws.log() == ["first", "second-start"]
    assert "Error: fail.md:15: step 2 failed: the block exited with status 1" in run.err
    assert "run 'runbook exec fail.md' again to resume at step 2" in run.err
    assert ws.ticked() == {1}
    assert ws.events("step-end", step=2)[0]["result"] == "failed"
    assert not ws.events("tick", step=2)
    assert ws.events("run-end")[0]["result"] == "failed"

    (ws.dir / "ready").touch()
    again = ws.exec("--yes")
    assert again.code == 0, again.text
    # Step 1 was ticked, so it was skipped; the run started at step 2.
    assert ws.log() == ["first", "second-start", "second-start", "second-after", "third"]
    assert ws.ticked() == {1, 2, 3}
    assert "steps 1 were already done" in again.out
    assert ws.only_boxes_changed()


def test_from_only_and_redo_choose_steps_ticked_or_not(workspace):
    ws = workspace("fail.md")
    (ws.dir / "ready").touch()
    assert ws.exec("--yes").code == 0
    (ws.dir / "log").unlink()

    nothing = ws.exec("--yes")
    assert nothing.code == 0 and ws.log() == []

    assert ws.exec("--yes", "--only", "2").code == 0
    assert ws.log() == ["second-start", "second-after"]
    (ws.dir / "log").unlink()

    assert ws.exec("--yes", "--only", "3,1").code == 0
    assert ws.log() == ["first", "third"]
    (ws.dir / "log").unlink()

    assert ws.exec("--yes", "--from", "2").code == 0
    assert ws.log() == ["second-start", "second-after", "third"]
    (ws.dir / "log").unlink()

    assert ws.exec("--yes", "--redo").code == 0
    assert ws.log() == ["first", "second-start", "second-after", "third"]

    missing = ws.exec("--yes", "--only", "9")
    assert missing.code == 2
    assert "no step 9 (steps: 1, 2, 3)" in missing.err
    assert ws.ticked() == {1, 2, 3}


# -- unknown outcome, lock, interruption -----------------------------------------------------


def start_and_kill_in_step_2(ws: Workspace) -> None:
    """Start a run, wait until it is inside step 2's sleep, kill -9 it."""
    started = ws.dir / "started"
    started.unlink(missing_ok=True)
    proc = ws.start("--yes")
    wait_for(started.exists)
    proc.kill()
    proc.wait()
    # The shell loses its terminal with the runner, and everything in it goes.
    assert no_process_left(ws.dir, "sleep", "31.7")


def test_a_killed_run_leaves_an_unknown_outcome_that_stops_the_next_run(workspace):
    ws = workspace("slow.md")
    start_and_kill_in_step_2(ws)
    assert ws.ticked() == {1}
    assert ws.events("step-start", step=2) and not ws.events("step-end", step=2)
    assert not ws.events("run-end")

    last = last_run_of(load(ws.guide))
    assert last is not None
    assert last.result is None and last.ended is None and not last.running
    assert last.unknown == (2,)
    assert "killed" in last.text() and "unknown outcome: step 2" in last.text()

    stopped = ws.exec("--yes", timeout=10)
    assert stopped.code == 4, stopped.text
    assert "step 2 (Slow) was started by" in stopped.err
    assert "its outcome is unknown" in stopped.err
    assert "--retry-unknown" in stopped.err and "--skip-unknown" in stopped.err
    assert ws.log() == ["quick", "slow-start"]  # nothing ran again

    skipped = ws.exec("--yes", "--skip-unknown")
    assert skipped.code == 0, skipped.text
    assert ws.log() == ["quick", "slow-start", "after"]
    assert ws.ticked() == {1, 3}
    assert ws.events("step-resolved", step=2)[0]["choice"] == "skip"


def test_retry_unknown_runs_the_step_again(workspace):
    ws = workspace("slow.md")
    start_and_kill_in_step_2(ws)
    (ws.dir / "fast").touch()
    retried = ws.exec("--yes", "--retry-unknown")
    assert retried.code == 0, retried.text
    assert ws.log() == ["quick", "slow-start", "slow-start", "slow-end", "after"]
    assert ws.ticked() == {1, 2, 3}
    assert ws.only_boxes_changed()
    last = last_run_of(load(ws.guide))
    assert last is not None and last.result == "done" and last.unknown == ()


def test_a_second_run_is_refused_naming_the_holder_and_ctrl_c_stops_the_first(workspace):
    ws = workspace("slow.md")
    first = ws.start("--yes")
    wait_for((ws.dir / "started").exists)

    last = last_run_of(load(ws.guide))
    assert last is not None and last.running and f"pid {first.pid}" in last.text()

    second = ws.exec("--yes", timeout=10)
    assert second.code == 3, second.text
    assert "is locked by a run" in second.err
    assert f"{getpass.getuser()}@{socket.gethostname()} (pid {first.pid})" in second.err
    assert re.search(r"since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", second.err)
    assert second.seconds < 5

    # SIGINT (Ctrl-C without a terminal) stops the command and ends the run, records intact.
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=10) == 130
    assert no_process_left(ws.dir, "sleep", "31.7")
    assert ws.events("step-end", step=2)[0]["result"] == "interrupted"
    assert ws.events("run-end")[0]["result"] == "interrupted"
    assert ws.ticked() == {1}
    assert "interrupted" in (ws.dir / "bg.err").read_text()

    # The lock went with it: the next run proceeds.
    (ws.dir / "fast").touch()
    after = ws.exec("--yes")
    assert after.code == 0, after.text
    assert ws.ticked() == {1, 2, 3}


def test_sigterm_ends_the_run_with_its_records(workspace):
    ws = workspace("slow.md")
    proc = ws.start("--yes")
    wait_for((ws.dir / "started").exists)
    proc.terminate()
    assert proc.wait(timeout=10) == 130
    assert no_process_left(ws.dir, "sleep", "31.7")
    assert ws.events("step-end", step=2)[0]["result"] == "interrupted"
    assert ws.events("run-end")


def test_timeout_stops_the_command_not_the_bookkeeping(workspace):
    ws = workspace("timeout.md")
    run = ws.exec("--yes")
    assert run.code == 1, run.text
    assert run.seconds < 6
    assert "timeout.md:8: step 1 failed: the block was stopped after the 1.0s timeout" in run.err
    assert "last output: 'waiting'" in run.err
    assert no_process_left(ws.dir, "sleep", "32.3", timeout=1)
    end = ws.events("action-end", step=1)[0]
    assert end["outcome"] == "timeout" and end["status"] is None
    assert 0.9 < end["duration"] < 5
    assert ws.events("step-end", step=1)[0]["result"] == "failed"
    assert ws.events("run-end")[0]["result"] == "failed"
    assert not (ws.dir / "reached").exists()
    assert ws.ticked() == set()
    # Nothing is held: the next step can run at once.
    assert ws.exec("--yes", "--only", "2").code == 0
    assert ws.ticked() == {2}


# -- commands that wait for input ---------------------------------------------------------


def test_a_command_waiting_for_input_fails_fast_quoting_its_prompt(workspace):
    ws = workspace("answers.md")
    run = ws.exec("--yes", "--only", "2")
    assert run.code == 4, run.text
    assert run.seconds < 5
    assert "answers.md:15: step 2: the block is waiting for input: 'Your favourite colour?'" in (
        run.err
    )
    assert 'expect="Your favourite colour?" send="…"' in run.err
    assert "never printed" not in run.out.replace('echo "never printed"', "")
    assert ws.events("action-end", step=2)[0]["outcome"] == "needs-input"
    assert ws.events("step-end", step=2)[0]["result"] == "stopped"


def test_declared_answers_are_typed(workspace):
    ws = workspace("answers.md")
    run = ws.exec("--yes", "--only", "1")
    assert run.code == 0, run.text
    assert "hi bob" in run.out
    assert ws.events("action-end", step=1)[0]["answered"] == ["Name:"]


def test_a_step_waiting_for_a_person_never_blocks_without_a_terminal(workspace):
    ws = workspace("answers.md")
    # No --yes: stdin is not a terminal, which is just as non-interactive.
    run = ws.exec("--only", "2", timeout=10)
    assert run.code == 4, run.text


# -- content tabs -------------------------------------------------------------------------


def test_tabs_chosen_by_label_are_remembered_across_steps_and_nested(workspace):
    ws = workspace("tabs.md")
    run = ws.exec("--yes", "--tab", "Workbench", "--tab", "Production", "--tab", "rsync")
    assert run.code == 0, run.text
    assert ws.log() == [
        "backup with workbench",
        "restore with workbench",
        "production rsync",
    ]
    chosen = [(r["step"], r["label"], r["how"]) for r in ws.events("tab")]
    assert chosen == [
        (1, "Workbench", "flag"),
        (2, "Workbench", "flag"),
        (3, "Production", "flag"),
        (3, "rsync", "flag"),
    ]
    assert ws.events("action-start", step=3)[0]["tabs"] == ["Production", "rsync"]


def test_tab_wildcards_and_the_other_branch_of_a_nested_set(workspace):
    ws = workspace("tabs.md")
    run = ws.exec("--yes", "--tab", "Work*", "--tab", "Sand*")
    assert run.code == 0, run.text
    # The nested scp/rsync set lives inside Production, which was not chosen: never asked.
    assert ws.log() == ["backup with workbench", "restore with workbench", "sandbox copy"]


def test_tabs_without_a_choice_stop_a_non_interactive_run_before_anything_runs(workspace):
    ws = workspace("tabs.md")
    run = ws.exec("--yes")
    assert run.code == 4, run.text
    assert "tabs.md:9: step 1 offers alternatives: mysqldump | Workbench" in run.err
    assert "--tab mysqldump" in run.err
    assert ws.log() == [] and not ws.runtime.exists()

    nested = ws.exec("--yes", "--tab", "mysqldump", "--tab", "Production")
    assert nested.code == 4
    assert "step 3 offers alternatives: scp | rsync" in nested.err
    assert ws.log() == []


def test_a_tab_label_matching_nothing_is_a_usage_error(workspace):
    ws = workspace("tabs.md")
    run = ws.exec("--yes", "--tab", "Workbnech")
    assert run.code == 2
    assert "--tab Workbnech matches no content tab" in run.err
    assert "mysqldump, Workbench, Production, scp, rsync, Sandbox" in run.err


# -- `$ ` blocks ----------------------------------------------------------------------------


def test_prompt_blocks_compare_output_with_wildcards(workspace):
    ws = workspace("console.md")
    ok = ws.exec("--yes", "--only", "1")
    assert ok.code == 0, ok.text
    assert ws.ticked() == {1}

    bad = ws.exec("--yes", "--only", "2")
    assert bad.code == 1
    # The failure points at the `$ ` line, shows both sides, and stops the block there.
    assert "console.md:20: step 2 failed: the command output differs" in bad.err
    assert "mysql  Ver 8.0.* for Linux on x86_64*" in bad.err
    assert "mysql  Ver 5.7.44 for Linux on x86_64" in bad.err
    assert not (ws.dir / "not-reached").exists()
    assert ws.ticked() == {1}


# -- dry run ----------------------------------------------------------------------------------


def test_dry_run_substitutes_masks_lists_and_runs_nothing(workspace):
    ws = workspace("plan.md")
    run = ws.exec("--dry-run", "--set", "db-host=10.0.0.5", "--set", f"db-password={CANARY}")
    assert run.code == 0, run.text
    assert "mysql -h 10.0.0.5 -p******** --region eu-west <database>" in run.out
    assert CANARY not in run.text
    assert "Inputs still missing: <database>" in run.out
    assert "--set database=…" in run.out
    assert "step 2: manual, a person confirms it" in run.out
    assert "step 3: confirm the block at plan.md:25" in run.out
    assert not (ws.dir / "SHOULD_NOT_EXIST").exists()
    assert not ws.runtime.exists()
    assert ws.guide.read_bytes() == ws.original


# -- non-interactive runs and people --------------------------------------------------------


def test_manual_steps_and_suggested_blocks_stop_a_non_interactive_run(workspace):
    ws = workspace("manual.md")
    manual = ws.exec("--yes")
    assert manual.code == 4, manual.text
    assert "manual.md:7: step 1 (Look) is done by a person" in manual.err
    assert "'runbook check manual.md 1'" in manual.err

    suggested = ws.exec("--yes", "--only", "2")
    assert suggested.code == 4
    assert "step 2 (Confirm a command) offers a command that needs a person's yes" in (
        suggested.err
    )
    assert "{ .run }" in suggested.err
    # Stopped before the step's automatic block, so a later run does not repeat half a step.
    assert ws.log() == []

    auto = ws.exec("--only", "3")
    assert auto.code == 0 and ws.log() == ["three"]
    assert ws.ticked() == {3}


# -- secrets ---------------------------------------------------------------------------------


def test_a_secret_is_found_nowhere(workspace):
    ws = workspace("secrets.md")
    run = ws.exec("--yes", "--set", f"db-password={CANARY}")
    assert run.code == 1, run.text  # step 3 fails on purpose, quoting the secret
    assert "whole: ********" in run.out
    assert "split: ********" in run.out  # printed in two chunks 0.3 s apart
    assert "typed: ********" in run.out  # typed as an answer and echoed by the terminal
    assert "last output: 'rejected password ********'" in run.err
    canary = CANARY.encode()
    assert run.text.count(CANARY) == 0
    assert ws.all_runtime_bytes().count(canary) == 0
    assert ws.guide.read_bytes().count(canary) == 0
    # The halves must not survive either (the split happens after 7 characters).
    assert CANARY[7:] not in run.text
    start = ws.events("run-start")[0]
    assert start["secret_inputs"] == ["db-password"] and "db-password" not in start["inputs"]
    assert ws.ticked() == {1, 2}


# -- hostile values -------------------------------------------------------------------------


def _hostile_values() -> list[str]:
    rng = random.Random(20261129)
    alphabet = "".join(chr(c) for c in range(0x20, 0x7F)) + "äöü€–✓漢字"
    big = "".join(rng.choice(alphabet) for _ in range(5000))
    return [
        "$(touch PWNED)",
        "`touch PWNED`",
        "'; touch PWNED; echo '",
        '"; touch PWNED; echo "',
        "a;touch PWNED",
        "$HOME ${HOME} \\$x \\",
        "-n",
        "",
        big,
    ]


@pytest.mark.parametrize("value", _hostile_values(), ids=lambda v: repr(v[:20]))
def test_hostile_values_are_data_delivered_byte_exact(workspace, value):
    ws = workspace("hostile.md")
    run = ws.exec("--yes", "--set", f"value={value}")
    assert run.code == 0, run.text
    expected = value.encode()
    for name in ("out-double", "out-bare", "out-single"):
        assert (ws.dir / name).read_bytes() == expected, name
    assert (ws.dir / "out-heredoc").read_bytes() == expected + b"\n"
    assert not list(ws.dir.rglob("PWNED*"))


@pytest.mark.parametrize("value", ["\x01touch PWNED; ", "a\nb", "\x1b[31mred", "tab\there", "\x7f"])
def test_control_characters_in_values_are_refused(workspace, value):
    ws = workspace("hostile.md")
    run = ws.exec("--yes", "--set", f"value={value}")
    assert run.code == 2, run.text
    assert "the value of <value> contains the control character" in run.err
    assert not (ws.dir / "out-double").exists()
    assert not ws.runtime.exists()  # refused before anything was locked or recorded


# -- output without a terminal, and the journal ----------------------------------------------


def test_plain_lines_without_a_terminal(workspace):
    ws = workspace("state.md")
    run = ws.exec("--yes", env=cli_env(TERM="xterm-256color"))
    assert run.code == 0
    assert "\x1b" not in run.text
    assert "== Step 1/2 · Set up" in run.out
    assert re.search(r"✓  1\. Set up +done +\d+\.\ds", run.out)
    assert re.search(r"2 done · total \d+\.\ds · transcript \.runbook/transcripts/", run.out)


def test_the_journal_records_who_what_where_and_how(workspace):
    ws = workspace("hostile.md")
    assert ws.exec("--yes", "--set", "value=plain words").code == 0
    records = ws.records()
    me = records[0]["who"]
    assert re.fullmatch(r"[^@]+@" + re.escape(socket.gethostname()), me)
    assert all(r["who"] == me and r["run"] == records[0]["run"] for r in records)
    events = [r["event"] for r in records]
    assert events == [
        "run-start",
        "step-start",
        "action-start",
        "action-end",
        "step-end",
        "tick",
        "run-end",
    ]
    start, _, action_start, action_end, step_end, tick, _ = records
    assert start["inputs"] == {"value": "plain words"}
    assert start["guide"] == str(ws.guide) and isinstance(start["pid"], int)
    assert action_start["origin"] == f"{ws.guide}:7" and action_start["host"] == "local"
    assert action_end["status"] == 0 and action_end["outcome"] == "ok"
    assert action_end["duration"] >= 0
    assert step_end == {**step_end, "step": 1, "result": "done"}
    assert tick["step"] == 1 and tick["line"] == 3
    transcript = Path(start["transcript"])
    assert transcript.is_file() and transcript.parent == ws.runtime / "transcripts"
    assert oct(transcript.stat().st_mode & 0o777) == "0o600"
    assert oct(ws.runtime.stat().st_mode & 0o777) == "0o700"
    assert (ws.runtime / ".gitignore").read_text().strip().endswith("*")


def kill_between_step_end_and_tick(ws: Workspace, step: int) -> str:
    """Leave what kill -9 between a step's end record and its tick leaves; return that time.

    The journal keeps the step's ``done`` end and loses what followed; the box stays clear
    and the guide keeps the modification time it had before the tick.
    """
    journal = next((ws.runtime / "journal").glob("*.jsonl"))
    lines = journal.read_bytes().splitlines(keepends=True)
    cut = next(
        i for i, line in enumerate(lines) if f'"event":"tick","step":{step}'.encode() in line
    )
    journal.write_bytes(b"".join(lines[:cut]))
    started = next(r for r in ws.records() if r["event"] == "step-start" and r["step"] == step)
    ws.guide.write_bytes(
        ws.guide.read_bytes().replace(f"* [x] {step}.".encode(), f"* [ ] {step}.".encode())
    )
    before = datetime.fromisoformat(started["time"]).timestamp()
    os.utime(ws.guide, (before, before))
    return str(started["time"])


def test_a_step_done_but_not_ticked_by_a_killed_run_is_ticked_by_the_next(workspace):
    ws = workspace("fail.md")
    (ws.dir / "ready").touch()
    assert ws.exec("--yes").code == 0
    kill_between_step_end_and_tick(ws, 3)

    run = ws.exec("--yes")
    assert run.code == 0, run.text
    assert "step 3 was completed by run" in run.out and "ticking it now" in run.out
    assert ws.log() == ["first", "second-start", "second-after", "third"]  # not run again
    assert ws.ticked() == {1, 2, 3}
    assert ws.only_boxes_changed()


def test_a_done_step_is_not_ticked_behind_a_person_who_changed_the_guide_since(workspace):
    ws = workspace("fail.md")
    (ws.dir / "ready").touch()
    assert ws.exec("--yes").code == 0
    kill_between_step_end_and_tick(ws, 3)
    # A person edited and saved the guide after the killed run.
    ws.guide.write_bytes(ws.guide.read_bytes() + b"\nA note added by hand.\n")

    run = ws.exec("--yes")
    assert run.code == 4, run.text
    assert "step 3 (Third) was recorded done by" in run.err
    assert "the guide has changed since" in run.err
    assert ws.ticked() == {1, 2}

    retried = ws.exec("--yes", "--retry-unknown")
    assert retried.code == 0, retried.text
    assert ws.log() == ["first", "second-start", "second-after", "third", "third"]
    assert ws.ticked() == {1, 2, 3}


def test_what_a_guide_starts_in_the_background_outlives_the_run(tmp_path: Path) -> None:
    """Processes a guide starts in the background keep running after the run; only
    runbook's own shells end."""
    one_step_guide(tmp_path, "nohup sleep 34.1 >/dev/null 2>&1 &\nsleep 34.2 &\necho started")
    done = run_cli(tmp_path, "exec", "guide.md")
    assert done.returncode == 0, done.stderr
    try:
        assert processes_running(tmp_path, "sleep", "34.1")
        assert processes_running(tmp_path, "sleep", "34.2")
    finally:
        for seconds in ("34.1", "34.2"):
            for pid in processes_running(tmp_path, "sleep", seconds):
                os.kill(pid, signal.SIGKILL)
