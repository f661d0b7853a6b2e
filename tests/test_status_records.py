"""Who did each step and how: journal records of check/uncheck/reset, status per step, a
live run's step as running, a held guide refused before any question, and sub-steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runbook.guide import load
from runbook.journal import read_records
from runbook.runtime import folder_of, journal_path
from runbook.users import current_user
from tests.conftest import run_cli

TWO_STEPS = """# G

* [ ] 1. Go
* [ ] 2. Two

### 1. Go

```bash { .run }
echo one >> log
```

### 2. Two

Done by a person.
"""

# Step 1 waits in its block until the test lets it go: a live run caught mid-step.
PAUSED = """# G

* [ ] 1. Wait
* [ ] 2. Use

### 1. Wait

```bash { .run }
touch started; while [ ! -e release ]; do sleep 0.1; done
```

### 2. Use

```bash { .run }
echo <name> > used
```
"""


def env_of(**extra: str) -> dict[str, str]:
    """Return this environment without SUDO_USER, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "SUDO_USER"}
    return env | extra


def journal(guide: Path) -> list[dict[str, Any]]:
    book = load(guide)
    return list(read_records(journal_path(folder_of(book), book.path)))


def status(guide: Path) -> dict[str, Any]:
    result = run_cli(guide.parent, "status", "--json", guide.name)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def wait_for(ready: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def start_paused(tmp_path: Path, output: int) -> tuple[Path, subprocess.Popen[str]]:
    """Start a real ``runbook exec`` of the PAUSED guide (its own session, output to
    ``output``); return once it is held inside step 1's block."""
    guide = tmp_path / "guide.md"
    guide.write_text(PAUSED, encoding="utf-8")
    run = subprocess.Popen(
        [sys.executable, "-m", "runbook", "exec", "--yes", "--set", "name=x", guide.name],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=output,
        text=True,
        start_new_session=True,
    )
    wait_for((tmp_path / "started").exists)
    return guide, run


@pytest.fixture
def paused_run(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """A real ``runbook exec`` held inside step 1's block; released and reaped at the end."""
    guide, run = start_paused(tmp_path, subprocess.PIPE)
    try:
        yield guide, run
    finally:
        (tmp_path / "release").touch()
        try:
            run.communicate(timeout=30)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()


# -- 1. check, uncheck and reset write journal records ---------------------------------------


def test_check_uncheck_and_reset_write_a_record_per_changed_step(tmp_path: Path) -> None:
    guide = tmp_path / "guide.md"
    guide.write_text(TWO_STEPS, encoding="utf-8")
    assert run_cli(tmp_path, "check", "guide.md", "1", "2", env=env_of()).returncode == 0
    # Already ticked: nothing changes, nothing is recorded.
    assert run_cli(tmp_path, "check", "guide.md", "2", env=env_of()).returncode == 0
    assert run_cli(tmp_path, "uncheck", "guide.md", "2", env=env_of()).returncode == 0
    assert run_cli(tmp_path, "reset", "guide.md", env=env_of(SUDO_USER="alice")).returncode == 0

    records = [(r["event"], r["step"], r["how"], r["by"]) for r in journal(guide)]
    me = current_user()
    assert records == [
        ("check", 1, "check", me),
        ("check", 2, "check", me),
        ("uncheck", 2, "uncheck", me),
        ("uncheck", 1, "reset", "alice"),
    ]
    last = journal(guide)[-1]
    assert last["who"].startswith("alice@") and last["time"] and last["run"]


def test_check_while_a_run_holds_the_guide_writes_into_the_runs_journal(
    paused_run: tuple[Path, subprocess.Popen[str]],
) -> None:
    guide, run = paused_run
    checked = run_cli(guide.parent, "check", guide.name, "2", env=env_of())
    assert checked.returncode == 0, checked.stderr
    assert "step 2: ticked" in checked.stdout
    events = [r["event"] for r in journal(guide)]
    assert events[0] == "run-start" and events[-1] == "check"
    (guide.parent / "release").touch()
    assert run.wait(timeout=30) == 0
    # The run's own tick lands, and the step ticked meanwhile is respected: not run again.
    assert "* [x] 1. Wait" in guide.read_text(encoding="utf-8")
    assert [s["how"] for s in status(guide)["steps"]] == ["exec", "check"]
    assert [r["why"] for r in journal(guide) if r["event"] == "step-skipped"] == ["ticked by hand"]
    assert [r["event"] for r in journal(guide)].count("run-end") == 1


# -- 2. status says who did each step, and how -----------------------------------------------


def test_status_says_for_each_step_how_by_whom_and_when(tmp_path: Path) -> None:
    guide = tmp_path / "guide.md"
    guide.write_text(
        TWO_STEPS.replace("* [ ] 2. Two", "* [ ] 2. Two\n* [ ] 3. Three")
        + "\n### 3. Three\n\nBy a person too.\n",
        encoding="utf-8",
    )
    ran = run_cli(tmp_path, "exec", "--yes", "--only", "1", "guide.md", env=env_of())
    assert ran.returncode == 0, ran.stderr
    assert run_cli(tmp_path, "check", "guide.md", "2", env=env_of(SUDO_USER="bob")).returncode == 0
    text = guide.read_text(encoding="utf-8")
    guide.write_text(text.replace("* [ ] 3. Three", "* [x] 3. Three"), encoding="utf-8")

    steps = status(guide)["steps"]
    me = current_user()
    assert [(s["number"], s["done"], s["how"], s["by"]) for s in steps] == [
        (1, True, "exec", me),
        (2, True, "check", "bob"),
        (3, True, "file", None),
    ]
    assert steps[0]["at"].startswith("20") and steps[1]["at"].startswith("20")
    assert steps[2]["at"] is None

    # Unchecked steps are not done: by, how and at are null.
    assert run_cli(tmp_path, "uncheck", "guide.md", "2", env=env_of()).returncode == 0
    assert status(guide)["steps"][1] == {
        "number": 2,
        "done": False,
        "by": None,
        "how": None,
        "at": None,
    }
    shown = run_cli(tmp_path, "status", "guide.md").stdout
    assert f"[x] 1  exec by {me} at " in shown
    assert "[x] 3  ticked in the file (no record of who)" in shown
    assert "[x] 2" not in shown


def test_a_box_cleared_in_the_file_then_checked_by_hand_says_check(tmp_path: Path) -> None:
    guide = tmp_path / "guide.md"
    guide.write_text(TWO_STEPS, encoding="utf-8")
    assert run_cli(tmp_path, "exec", "--yes", "--only", "1", "guide.md").returncode == 0
    text = guide.read_text(encoding="utf-8")
    guide.write_text(text.replace("* [ ] 2. Two", "* [x] 2. Two"), encoding="utf-8")
    assert [s["how"] for s in status(guide)["steps"]] == ["exec", "file"]
    assert run_cli(tmp_path, "reset", "guide.md", env=env_of()).returncode == 0
    assert [s["how"] for s in status(guide)["steps"]] == [None, None]
    assert run_cli(tmp_path, "check", "guide.md", "1", env=env_of()).returncode == 0
    assert [s["how"] for s in status(guide)["steps"]] == ["check", None]


# -- 3. a live run's started step is running, not unknown ------------------------------------


def test_status_during_a_live_run_calls_its_step_running_not_unknown(
    paused_run: tuple[Path, subprocess.Popen[str]],
) -> None:
    guide, run = paused_run
    last = status(guide)["last_run"]
    assert last["running"] is True and last["pid"] == run.pid
    assert last["in_progress"] == [1]
    assert last["unknown"] == []
    shown = run_cli(guide.parent, "status", guide.name)
    assert "running now: step 1" in shown.stdout
    assert "unknown outcome" not in shown.stdout


def test_a_killed_runs_started_step_is_still_unknown(tmp_path: Path) -> None:
    guide, run = start_paused(tmp_path, subprocess.DEVNULL)
    os.killpg(run.pid, 9)
    run.wait(timeout=10)
    last = status(guide)["last_run"]
    assert last["running"] is False and last["unknown"] == [1] and last["in_progress"] == []


# -- 4. a held guide is refused before any question ------------------------------------------


def test_exec_on_a_held_guide_is_refused_before_asking_for_inputs(
    paused_run: tuple[Path, subprocess.Popen[str]],
) -> None:
    guide, run = paused_run
    # Without --set name=…, this run would stop for the input (exit 4) before locking.
    second = run_cli(guide.parent, "exec", "--yes", guide.name, timeout=20)
    assert second.returncode == 3, second.stderr
    assert "is locked by a run" in second.stderr
    assert f"(pid {run.pid})" in second.stderr
    assert "<name>" not in second.stderr and "needs" not in second.stderr
    # A dry run writes nothing and still shows the plan.
    dry = run_cli(guide.parent, "exec", "--dry-run", "--set", "name=x", guide.name)
    assert dry.returncode == 0, dry.stderr


# -- 5. sub-steps: N.M -----------------------------------------------------------------------

PARTS = """# G

* [ ] 1. Go
* [ ] 2. Two

### 1. Go

=== "Production"

    #### 1. First

    ```bash { .run }
    echo first
    ```

    #### 2. Second

    ```bash { .run }
    echo second
    ```

=== "Sandbox"

    ```bash { .run }
    echo sandbox
    ```

### 2. Two

- [ ] look
- [ ] see
"""


def parts_guide(folder: Path) -> Path:
    guide = folder / "guide.md"
    guide.write_text(PARTS, encoding="utf-8")
    return guide


def test_show_n_m_prints_the_blocks_of_that_sub_heading_only(tmp_path: Path) -> None:
    parts_guide(tmp_path)
    shown = run_cli(tmp_path, "show", "guide.md", "1.2")
    assert shown.returncode == 0, shown.stderr
    assert "1. Go › 2. Second" in shown.stdout
    # The part ends where its tab ends: the Sandbox block is not part 2.
    assert "echo second" in shown.stdout
    assert "echo first" not in shown.stdout and "echo sandbox" not in shown.stdout
    data = json.loads(run_cli(tmp_path, "show", "--json", "guide.md", "1.1").stdout)
    assert data["code"] == ["echo first"]
    assert data["substep"]["number"] == 1 and data["substep"]["title"] == "First"

    missing = run_cli(tmp_path, "show", "guide.md", "1.3")
    assert missing.returncode == 2 and "has 2 numbered sub-headings" in missing.stderr
    none = run_cli(tmp_path, "show", "guide.md", "2.1")
    assert none.returncode == 2 and "no numbered sub-headings" in none.stderr
    bad = run_cli(tmp_path, "show", "guide.md", "1.x")
    assert bad.returncode == 2 and "not a step number" in bad.stderr


def test_sub_steps_of_the_upgrade_guides_backup_step_are_its_numbered_sub_headings() -> None:
    from tests.conftest import GUIDE, ROOT

    book = load(ROOT / GUIDE)
    step = next(s for s in book.steps if s.number == 3)
    assert [p.title for p in step.substeps][:2] == [
        "SSH into the old server",
        "Record the database's size, character set and record counts",
    ]
    assert all(p.origin.path.name == "_backup_database.md" for p in step.substeps)


def test_check_n_m_ticks_a_sub_checklist_item_and_records_it(tmp_path: Path) -> None:
    guide = parts_guide(tmp_path)
    ticked = run_cli(tmp_path, "check", "guide.md", "2.2", env=env_of())
    assert ticked.returncode == 0, ticked.stderr
    assert "item 2.2: ticked" in ticked.stdout
    text = guide.read_text(encoding="utf-8")
    assert "- [ ] look\n- [x] see" in text and "* [ ] 2. Two" in text
    assert [(r["event"], r["step"], r.get("sub")) for r in journal(guide)] == [("check", 2, 2)]
    # An item does not make its step done.
    assert status(guide)["steps"][1]["done"] is False
    cleared = run_cli(tmp_path, "uncheck", "guide.md", "2.2")
    assert cleared.returncode == 0 and "- [ ] see" in guide.read_text(encoding="utf-8")

    # Step 1 has sub-headings but no sub-checklist: refused, and nothing else is written.
    refused = run_cli(tmp_path, "check", "guide.md", "2.1", "1.1")
    assert refused.returncode == 2
    assert "step 1 has no sub-checklist" in refused.stderr
    assert "- [ ] look" in guide.read_text(encoding="utf-8")


def test_exec_only_n_m_runs_that_part_alone_and_ticks_nothing(tmp_path: Path) -> None:
    guide = parts_guide(tmp_path)
    before = guide.read_bytes()
    ran = run_cli(tmp_path, "exec", "--yes", "--tab", "Production", "--only", "1.2", "guide.md")
    assert ran.returncode == 0, ran.stderr
    assert "second" in ran.stdout and "echo first" not in ran.stdout
    assert "Go › Second" in ran.stdout
    assert "part 1.2 done; step 1 stays unticked" in ran.stdout
    assert guide.read_bytes() == before  # a part is not the step: nothing ticked
    events = [(r["event"], r.get("parts"), r.get("result")) for r in journal(guide)]
    assert ("part-start", [2], None) in events and ("part-end", [2], "done") in events
    assert not [e for e in events if e[0] in ("step-start", "step-end")]
    # What it would run, in a dry run: that part's block alone.
    dry = run_cli(
        tmp_path, "exec", "--yes", "--tab", "Production", "--only", "1.2", "--dry-run", "guide.md"
    )
    assert dry.returncode == 0 and "echo second" in dry.stdout and "echo first" not in dry.stdout

    for only, said in [
        ("1.3", "has 2 numbered sub-headings"),
        ("2.1", "no numbered sub-headings"),
        ("1,1.2", "names step 1 and its part 1.2"),
    ]:
        refused = run_cli(tmp_path, "exec", "--yes", "--only", only, "guide.md")
        assert refused.returncode == 2 and said in refused.stderr, refused.stderr
    by_hand = run_cli(tmp_path, "exec", "--yes", "--by-hand", "1.2", "guide.md")
    assert by_hand.returncode == 2 and "takes whole steps" in by_hand.stderr


def test_a_failed_part_names_the_command_that_resumes_it(tmp_path: Path) -> None:
    guide = parts_guide(tmp_path)
    guide.write_text(PARTS.replace("echo second", "echo second; exit 3"), encoding="utf-8")
    failed = run_cli(tmp_path, "exec", "--yes", "--tab", "Production", "--only", "1.2", "guide.md")
    assert failed.returncode == 1, failed.stderr
    assert "runbook exec guide.md --only 1.2' again" in failed.stderr
    ends = [r for r in journal(guide) if r["event"] == "part-end"]
    assert [r["result"] for r in ends] == ["failed"]
