"""``runbook exec`` in a real terminal: what the operator sees, types and interrupts.

Each test starts ``python -m runbook exec`` under a pseudo-terminal (pexpect.spawn), so the
run is interactive exactly as for a person, and answers, types and presses Ctrl-C there.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pexpect
import pytest

from tests.test_exec import (
    CANARY,
    Workspace,
    cli_env,
    exec_terminal,
    no_process_left,
    processes_running,
    start_and_kill_in_step_2,
    wait_for,
)

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class Terminal:
    """A run of ``runbook exec`` in a pseudo-terminal, with everything it printed kept."""

    def __init__(self, ws: Workspace, *args: str, env: dict[str, str] | None = None) -> None:
        self.ws = ws
        self.child = exec_terminal(
            ws.dir,
            ws.guide.name,
            *args,
            env=env or cli_env(TERM="xterm-256color"),
            timeout=15,
            width=140,
        )
        self.screen = io.StringIO()
        self.child.logfile_read = self.screen

    def expect(self, text: str) -> None:
        """Wait until ``text`` (literal) appears."""
        self.child.expect_exact(text)

    def answer(self, text: str) -> None:
        """Type a line."""
        self.child.sendline(text)

    def finish(self) -> int:
        """Wait for the run to end; return its exit status."""
        self.child.expect(pexpect.EOF, timeout=30)
        self.child.close()
        status = self.child.exitstatus
        assert status is not None, f"ended by signal {self.child.signalstatus}"
        return int(status)

    @property
    def text(self) -> str:
        """Everything printed so far."""
        return self.screen.getvalue()


@pytest.fixture
def workspace(tmp_path: Path):
    """Return a factory copying a fixture guide into the test's own folder."""

    def make(name: str) -> Workspace:
        return Workspace(tmp_path, name)

    return make


@pytest.fixture(autouse=True)
def _no_stray_sleeps(tmp_path: Path):
    yield
    left = processes_running(tmp_path, "sleep", "33.1") + processes_running(
        tmp_path, "sleep", "31.7"
    )
    for pid in left:
        os.kill(pid, 9)
    assert not left, f"stray sleeps: {left}"


def test_a_terminal_shows_headers_live_output_a_spinner_colour_and_a_summary(workspace):
    ws = workspace("ui.md")
    term = Terminal(ws)
    term.expect("Step 1/2 · Quick")
    term.expect("live-output-line")
    term.expect("Step 2/2 · Quiet for a while")
    # `sleep 1.8` prints nothing for a while: a spinner with the elapsed time appears.
    term.child.expect(f"[{SPINNER}] step 2 · 1\\.\\ds")
    term.expect("woke-up")
    term.expect("Summary")
    assert term.finish() == 0
    text = term.text
    assert "\x1b[1;34m" in text  # the bold blue step header
    assert "\x1b[32m✓ step 1 done" in text
    assert re.search(r"✓  1\. Quick +done +\d\.\ds", text)
    assert re.search(r"✓  2\. Quiet for a while +done +\d\.\ds", text)
    # Live output came before the step's end, not collected for later.
    assert text.index("live-output-line") < text.index("✓ step 1 done")
    assert ws.ticked() == {1, 2}


def test_a_prompt_is_handed_to_the_operator_and_control_returns(workspace):
    ws = workspace("handoff.md")
    term = Terminal(ws)
    term.expect("Name: ")
    term.expect("the command waits for input ('Name:'): type your answer")
    term.answer("alice")
    term.expect("hi alice")
    term.expect("after-handoff")
    assert term.finish() == 0
    end = ws.events("action-end", step=1)[0]
    assert end["handed_over"] is True and end["outcome"] == "ok"
    assert ws.ticked() == {1, 2}


def wait_for_sleep(ws: Workspace) -> None:
    wait_for(lambda: bool(processes_running(ws.dir, "sleep", "33.1")))


def test_ctrl_c_stops_the_command_offers_choices_and_a_second_one_exits_130(workspace):
    ws = workspace("interrupt.md")
    term = Terminal(ws)
    wait_for_sleep(ws)
    term.child.sendintr()
    term.expect("was interrupted (Ctrl-C)")
    term.expect(
        "What now? [r]etry / [e]dit then retry / [d]one by hand / [s]kip this block / [q]uit"
    )
    # The command is gone and recorded; the step is neither ended nor ticked.
    assert no_process_left(ws.dir, "sleep", "33.1", timeout=2)
    assert ws.events("action-end", step=1)[0]["outcome"] == "interrupted"
    assert not ws.events("step-end")
    assert ws.ticked() == set()

    term.child.sendintr()
    assert term.finish() == 130
    assert "Error: interrupted; the running step was not ticked" in term.text
    assert ws.events("step-end", step=1)[0]["result"] == "interrupted"
    assert ws.events("run-end")[0]["result"] == "interrupted"
    assert ws.ticked() == set()
    assert ws.log() == ["begin"]
    assert ws.only_boxes_changed()


def test_after_ctrl_c_the_operator_can_retry_then_skip(workspace):
    ws = workspace("interrupt.md")
    term = Terminal(ws)
    wait_for_sleep(ws)
    term.child.sendintr()
    term.expect("What now?")
    term.answer("r")
    wait_for(lambda: ws.log() == ["begin", "begin"])
    wait_for_sleep(ws)
    term.child.sendintr()
    term.expect("What now?")
    term.answer("s")
    term.expect("step 1 (Long) is not complete: a failed block was skipped; it is left unticked")
    term.expect("Go on to the next step? [c]ontinue / [q]uit")
    term.answer("c")
    assert term.finish() == 0
    # A skipped failure leaves the step unticked; the run goes on when the operator says so.
    assert ws.log() == ["begin", "begin", "next"]
    assert ws.ticked() == {2}
    assert re.search(r"–  1\. Long +skipped .*a failed block was skipped", term.text)
    assert ws.events("action-confirmed", step=1)[0]["choice"] == "skip-failed"


def test_tabs_are_asked_once_and_remembered_by_label(workspace):
    ws = workspace("tabs.md")
    term = Terminal(ws)
    term.expect("Step 1 offers alternatives. Which one?")
    term.expect("Choice: ")
    term.answer("2")  # Workbench
    term.expect("Step 2 offers mysqldump | Workbench: keep Workbench? [k]eep (Enter) / [c]hange")
    term.answer("")  # Enter keeps it
    term.expect("Step 3 offers alternatives. Which one?")
    term.expect("Choice: ")
    term.answer("production")  # by name, any case
    term.expect("Step 3 offers alternatives. Which one?")  # the nested set
    term.expect("2) rsync")
    term.answer("1")  # scp
    assert term.finish() == 0
    assert term.text.count("Which one?") == 3
    assert ws.log() == ["backup with workbench", "restore with workbench", "production scp"]
    how = [(r["step"], r["label"], r["how"]) for r in ws.events("tab")]
    assert how == [
        (1, "Workbench", "asked"),
        (2, "Workbench", "remembered"),
        (3, "Production", "asked"),
        (3, "scp", "asked"),
    ]


def test_an_unknown_outcome_is_asked_about(workspace):
    ws = workspace("slow.md")
    start_and_kill_in_step_2(ws)
    (ws.dir / "fast").touch()
    term = Terminal(ws)
    term.expect("its outcome is unknown")
    term.expect("Run it again? [r]un it again / [s]kip it / [d]one: tick it / [q]uit")
    term.answer("r")
    assert term.finish() == 0
    assert ws.log() == ["quick", "slow-start", "slow-start", "slow-end", "after"]
    assert ws.events("step-resolved", step=2)[0]["choice"] == "retry"
    assert ws.ticked() == {1, 2, 3}


def test_a_secret_asked_in_the_terminal_is_not_echoed_and_found_nowhere(workspace):
    ws = workspace("secrets.md")
    term = Terminal(ws)
    term.expect("Value for <db-password> (hidden): ")
    term.answer(CANARY)
    term.expect("whole: ********")
    term.expect("split: ********")
    term.expect("typed: ********")
    term.expect("What now?")  # step 3 fails on purpose
    term.answer("q")
    assert term.finish() == 1
    assert "last output: 'rejected password ********'" in term.text
    assert term.text.count(CANARY) == 0
    assert CANARY[7:] not in term.text
    assert ws.all_runtime_bytes().count(CANARY.encode()) == 0
    assert ws.guide.read_bytes().count(CANARY.encode()) == 0
    assert ws.events("input", name="db-password")[0]["secret"] is True
    assert ws.ticked() == {1, 2}


def test_manual_steps_are_confirmed_and_suggested_blocks_offered(workspace):
    ws = workspace("manual.md")
    term = Terminal(ws)
    term.expect("Check that the dashboard is green.")
    term.expect("Step 1 is manual. Is it done? [d]one / [s]kip / [q]uit")
    term.answer("d")
    term.expect("Run this? [r]un / [e]dit then run / [s]kip / [d]one by hand / [q]uit")
    term.answer("r")
    assert term.finish() == 0
    assert ws.log() == ["auto part of step 2", "suggested part of step 2", "three"]
    assert ws.ticked() == {1, 2, 3}


def test_a_suggested_block_can_be_edited_before_it_runs(workspace):
    ws = workspace("manual.md")
    env = cli_env(TERM="xterm-256color", VISUAL="sed -i s/suggested/edited/")
    term = Terminal(ws, "--only", "2", env=env)
    term.expect("Run this?")
    term.answer("e")
    assert term.finish() == 0
    assert ws.log() == ["auto part of step 2", "edited part of step 2"]
    assert ws.guide.read_bytes().replace(b"[x]", b"[ ]") == ws.original  # guide untouched


def test_an_edit_made_while_paused_is_kept_and_the_tick_follows_its_line(workspace):
    ws = workspace("edit.md")
    term = Terminal(ws)
    term.expect("Is it done?")
    edited = ws.original.replace(
        b"Some introduction.\n", b"Some introduction.\n\nA note added meanwhile.\nAnd another.\n"
    )
    ws.guide.write_bytes(edited)
    term.answer("d")
    assert term.finish() == 0, term.text
    expected = edited.replace(b"* [ ] 1. Wait", b"* [x] 1. Wait").replace(
        b"* [ ] 2. Then", b"* [x] 2. Then"
    )
    assert ws.guide.read_bytes() == expected
    assert [r["line"] for r in ws.events("tick")] == [5, 6]  # lines as the run read them


def test_a_tick_whose_item_text_changed_meanwhile_is_refused(workspace):
    ws = workspace("edit.md")
    term = Terminal(ws)
    term.expect("Is it done?")
    edited = ws.original.replace(b"1. Wait for a person", b"1. Wait for two people")
    ws.guide.write_bytes(edited)
    term.answer("d")
    assert term.finish() == 3
    assert "the item '1. Wait for a person' is gone" in term.text
    assert ws.guide.read_bytes() == edited  # nothing guessed, the edit kept
    assert ws.events("tick-refused", step=1)
    assert ws.events("step-end", step=1)[0]["result"] == "done"
    assert ws.log() == []  # the run stopped there
    assert re.search(r"✓  1\. Wait for a person +done .*tick refused", term.text)


def test_ctrl_d_at_a_question_quits_cleanly(workspace):
    ws = workspace("edit.md")
    term = Terminal(ws)
    term.expect("Is it done?")
    term.child.sendeof()
    assert term.finish() == 4
    assert "stopped; run 'runbook exec edit.md' to go on" in term.text
    assert ws.events("step-end", step=1)[0]["result"] == "stopped"


def test_prose_leads_its_block_and_a_danger_waits_for_a_yes(workspace):
    ws = workspace("danger.md")
    term = Terminal(ws)
    term.expect("Read the **version** file with `cat` before touching anything.")
    term.expect("$ echo 2.0.0")
    term.expect("Make sure the nightly backup exists.")
    term.expect("echo backup-checked")
    term.expect("! DANGER: Irreversible")
    term.expect("This drops the table for good.")
    term.expect("echo DROP TABLE old > dropped")
    term.expect("DANGER: Irreversible: run the block at danger.md:26? [y]es")
    term.answer("n")
    assert term.finish() == 0
    plain = re.sub(r"\x1b\[[0-9;]*m", "", term.text)
    assert "$ $" not in plain and "$ 2.0.0" not in plain
    # The prose comes right before its block, not at the step's start.
    assert plain.index("Make sure the nightly") < plain.index("echo backup-checked")
    assert plain.index("echo backup-checked") < plain.index("! DANGER: Irreversible")
    assert not (ws.dir / "dropped").exists()
    assert ws.ticked() == {1}
    assert "declined, confirmed by" in plain


def test_the_tab_can_be_changed_at_the_next_step_and_q_quits_the_tab_menu(workspace):
    ws = workspace("tabs.md")
    term = Terminal(ws)
    term.expect("Which one?")
    term.expect("q) quit")
    term.answer("1")  # mysqldump
    term.expect("keep mysqldump?")
    term.answer("c")
    term.expect("Step 2 offers alternatives. Which one?")
    term.answer("Workbench")
    term.expect("Step 3 offers alternatives. Which one?")
    term.expect("Choice: ")
    term.answer("q")
    assert term.finish() == 4
    assert ws.log() == ["backup with mysqldump", "restore with workbench"]
    assert [(r["label"], r["how"]) for r in ws.events("tab")] == [
        ("mysqldump", "asked"),
        ("Workbench", "changed"),
    ]
    assert ws.ticked() == {1, 2}
    assert "stopped; run 'runbook exec tabs.md' to go on" in term.text


def test_after_a_failure_edit_then_retry_shows_the_edit_before_it_runs(workspace):
    ws = workspace("fail.md")
    env = cli_env(TERM="xterm-256color", VISUAL="sed -i s/ready/fail.md/")
    term = Terminal(ws, env=env)
    term.expect("exited with status 1")
    term.expect("What now?")
    term.answer("e")
    term.expect("edited")
    term.expect("test -e fail.md")
    assert term.finish() == 0, term.text
    assert ws.log() == ["first", "second-start", "second-start", "second-after", "third"]
    assert ws.ticked() == {1, 2, 3}
    assert [r["after"] for r in ws.events("action-edited", step=2)] == ["failure"]
    assert ws.only_boxes_changed()  # the edit ran; the guide keeps what its author wrote


def test_after_a_failure_done_by_hand_counts_as_done(workspace):
    ws = workspace("fail.md")
    term = Terminal(ws)
    term.expect("What now?")
    term.answer("d")
    assert term.finish() == 0, term.text
    assert ws.log() == ["first", "second-start", "third"]
    assert ws.ticked() == {1, 2, 3}
    assert ws.events("action-confirmed", step=2)[0]["choice"] == "by-hand-failed"


def test_ctrl_c_at_an_input_question_offers_the_choices_of_a_command(workspace):
    ws = workspace("secrets.md")
    term = Terminal(ws)
    term.expect("Value for <db-password> (hidden): ")
    term.child.sendintr()
    term.expect("interrupted (Ctrl-C) while asking for <db-password>")
    term.expect("What now? [r] ask again / [d]one by hand / [s]kip this block / [q]uit")
    term.answer("r")
    term.expect("Value for <db-password> (hidden): ")
    term.child.sendintr()
    term.expect("What now?")
    term.child.sendintr()  # a second Ctrl-C ends the run, as during a command
    assert term.finish() == 130
    assert ws.ticked() == set()
    assert not ws.events("input", name="db-password")


def test_a_box_ticked_by_hand_during_a_paused_run_is_respected(workspace):
    ws = workspace("fail.md")
    term = Terminal(ws)
    term.expect("What now?")
    # While the run waits, the operator does step 3 by hand and ticks it in an editor.
    text = ws.guide.read_text().replace("* [ ] 3. Third", "* [x] 3. Third")
    ws.guide.write_text(text)
    (ws.dir / "ready").touch()
    term.answer("r")
    term.expect("step 3 was ticked by hand meanwhile")
    assert term.finish() == 0, term.text
    assert ws.log() == ["first", "second-start", "second-start", "second-after"]
    assert ws.ticked() == {1, 2, 3}
    assert ws.events("step-skipped", step=3)[0]["why"] == "ticked by hand"


def test_a_resumed_run_says_what_it_gave_back_and_a_retry_after_exit_gets_it_too(workspace):
    ws = workspace("resume.md")
    text = ws.guide.read_text().replace("test -e ../ready", "test -e ../ready || exit 7")
    ws.guide.write_text(text)
    term = Terminal(ws)
    term.expect("Value for <db-password> (hidden): ")
    term.answer(CANARY)
    term.expect("ended its shell")
    term.expect("What now?")
    (ws.dir / "ready").touch()
    term.answer("r")  # the fresh shell gets back what step 1 set
    term.expect("↺ given back on this machine: working directory")
    term.expect("app=/srv/my app count=3")
    assert term.finish() == 0, term.text
    assert f"pwd={ws.dir / 'work dir'}" in term.text
    assert term.text.count(CANARY) == 0

    # A later run that resumes (here at step 2 again) asks for the secret once more.
    ws.guide.write_text(ws.guide.read_text().replace("* [x] 2. Use", "* [ ] 2. Use"))
    term = Terminal(ws)
    term.expect("↺ given back on this machine")
    term.expect("Value for <db-password> (hidden): ")
    term.answer(CANARY)
    term.expect("↺ PASS set again from <db-password>")
    assert term.finish() == 0, term.text
    assert "hello from resumed" in term.text
    assert ws.all_runtime_bytes().count(CANARY.encode()) == 0


def test_retry_from_the_failing_command_does_not_repeat_what_ran(workspace):
    ws = workspace("fail.md")
    term = Terminal(ws)
    term.expect("it failed at line 2 of the block: test -e ready")
    term.expect(
        "What now? [r]etry / [f]rom the failing command / [e]dit then retry / [d]one by hand / "
        "[s]kip this block / [q]uit"
    )
    (ws.dir / "ready").touch()
    term.answer("f")
    term.expect("retrying from line 2: test -e ready")
    assert term.finish() == 0, term.text
    # The line before the failing command ran once.
    assert ws.log() == ["first", "second-start", "second-after", "third"]
    assert ws.ticked() == {1, 2, 3}
    assert ws.events("action-retry", step=2)[0]["from_line"] == 2


def test_a_shell_replaced_after_a_broken_block_gets_the_state_before_the_next_one(workspace):
    ws = workspace("unanswering.md")
    term = Terminal(ws)
    term.expect("readonly variable")
    term.expect("What now?")
    term.answer("s")
    term.expect("Go on to the next step?")
    term.answer("c")
    term.expect("↺ a fresh shell on this machine")
    term.expect(f"↺ given back on this machine: working directory {ws.dir / 'work dir'}")
    term.expect(f"pwd={ws.dir / 'work dir'} app=/srv/app")
    assert term.finish() == 0, term.text
    assert ws.ticked() == {1, 3}
