"""What the operator reads before each block: the block as written, its inputs' values
quoted, the prose right before it, and the yes a warned block needs."""

from __future__ import annotations

from pathlib import Path

from runbook.execution.view import block_lines, lead_lines, legend, warning
from tests.test_execution import FakeResult, FakeShell, FakeShells, load, run, write


def _version(shell: FakeShell, script: str) -> tuple[FakeResult, bytes]:
    """Print the version the guide's ``$ `` block expects."""
    return FakeResult(), b"2.0.0\n" if "VERSION" in script else b""


DANGER = """
    # Database

    * [ ] 1. Prepare
    * [ ] 2. Drop the old table

    ### 1. Prepare

    Check the **version** with `cat VERSION` first.

    ```console
    $ cat VERSION
    2.0.0
    ```

    ### 2. Drop the old table

    Make sure the backup of <site-name> exists.

    ```bash { .run }
    ls backup
    ```

    !!! danger "Irreversible"
        This drops the table for good.

    ```bash { .run }
    echo DROP TABLE old
    ```
"""


def test_a_prompt_block_shows_its_command_once_and_its_output_as_output(tmp_path: Path):
    step = load(write(tmp_path, "g.md", DANGER)).steps[0]
    (action,) = step.actions
    assert block_lines(action) == [("$ cat VERSION", True), ("2.0.0", False)]


def test_heredoc_lines_are_shown_as_written():
    from runbook.model import Action, Origin

    code = "cat > f <<EOF\nline one\nEOF\n"
    action = Action("run", "bash", code, Origin(Path("g.md"), 1), True)
    assert [text for text, _ in block_lines(action)] == ["cat > f <<EOF", "line one", "EOF"]


def test_the_legend_quotes_values_as_data_and_masks_secrets():
    code = "deploy <site-name> <token> <site-name> <unknown>"
    values = {"site-name": "x'; rm -rf / #", "token": "s3cret"}
    assert legend(code, values, {"token"}) == [
        '<site-name> = "x\'; rm -rf / #"',
        "<token> = ********",
    ]
    assert legend("echo <a>", {"a": "\x1b[2J"}, ()) == ["<a> = '\\x1b[2J'"]


def test_each_block_leads_with_the_prose_written_right_before_it(tmp_path: Path):
    step = load(write(tmp_path, "g.md", DANGER)).steps[1]
    first, second = step.actions
    assert first.lead == "Make sure the backup of <site-name> exists."
    assert "!!! danger" in second.lead and "drops the table" in second.lead
    assert "backup" not in second.lead
    assert lead_lines(second.lead, 80) == [
        ("  ! DANGER: Irreversible", ("red", "bold")),
        ("  │ This drops the table for good.", ("red",)),
    ]


def test_prose_is_wrapped_with_inline_markdown_kept():
    lead = "A **bold** claim with `some code` and " + "many words " * 10
    lines = [text for text, _ in lead_lines(lead + "\n\n- an item " + "long " * 12, 40)]
    assert all(len(text) <= 40 for text in lines)
    assert "**bold**" in lines[0] and "`some code`" in " ".join(lines)
    assert any(text.startswith("  - an item") for text in lines)
    assert lines[-1].startswith("    ")  # an item's wrapped lines hang under its text


def test_warnings_come_from_the_admonition_before_or_around_or_an_optional_title(tmp_path):
    steps = load(write(tmp_path, "g.md", DANGER)).steps
    assert warning(steps[1], steps[1].actions[0]) == ""
    assert warning(steps[1], steps[1].actions[1]) == "DANGER: Irreversible"
    text = DANGER.replace("2. Drop the old table", "2. Drop the old table (optional)")
    optional = load(write(tmp_path / "o", "g.md", text)).steps[1]
    assert warning(optional, optional.actions[0]) == "step 2 is optional"


def test_the_prose_is_shown_right_before_its_block(tmp_path: Path):
    done = run(write(tmp_path, "g.md", DANGER), shells=FakeShells(_version), answers=["r", "y"])
    assert done.code == 0, done.error
    out = done.out
    assert out.index("Make sure the backup") < out.index("ls backup")
    assert out.index("ls backup") < out.index("! DANGER: Irreversible")
    assert out.index("! DANGER: Irreversible") < out.index("echo DROP TABLE old")
    assert out.count("DANGER") == 2  # the block's lead and the question, not the step's start


def test_a_warned_block_waits_for_a_yes_and_a_no_leaves_the_step_unticked(tmp_path: Path):
    declined = run(write(tmp_path, "g.md", DANGER), shells=FakeShells(_version), answers=["r", "n"])
    assert declined.code == 0, declined.error
    asked = declined.console.asked
    assert asked[0] == "Run this?"
    assert asked[1].startswith("DANGER: Irreversible: run the block at ")
    assert asked[1].endswith("g.md:26?")
    assert declined.shells.shells["local"].ran == ["cat VERSION", "ls backup"]
    assert declined.ticked() == [1]
    confirmed = [r for r in declined.records() if r["event"] == "action-confirmed"]
    assert confirmed[0]["choice"] == "skip" and confirmed[0]["how"] == "asked"
    assert "declined, confirmed by" in declined.out


def test_under_yes_a_warned_run_block_runs_unattended_and_the_summary_says_so(tmp_path):
    done = run(write(tmp_path, "g.md", DANGER), shells=FakeShells(_version), accept=True)
    assert done.code == 0, done.error
    assert "echo DROP TABLE old" in done.shells.shells["local"].ran
    assert done.ticked() == [1, 2]
    accepted, confirmed = [r for r in done.records() if r["event"] == "action-confirmed"]
    assert accepted["how"] == "option"  # step 1's offered block, run by --accept
    assert confirmed["how"] == "unattended" and confirmed["choice"] == "run"
    assert confirmed["warning"] == "DANGER: Irreversible"
    summary = done.out[done.out.index("Summary") :]
    assert "Confirmed after a warning:" in summary
    assert "(DANGER: Irreversible): run, unattended (--yes), run by" in summary
