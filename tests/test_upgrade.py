"""The parallel upgrade, rehearsed end to end on this machine through `runbook exec`."""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest

from tests.conftest import GUIDE, copy_site

INSTALL = Path("docs/installation/index.md")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Site:
    """A private copy of the project's site and sandbox, with its own ports and state."""

    root: Path
    env: dict[str, str]

    @property
    def guide(self) -> Path:
        return self.root / GUIDE

    def sbx(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "sandbox/sbx", *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    def runbook(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runbook", *args],
            cwd=self.root,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
        )

    def exec(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.runbook(
            "exec", str(GUIDE), "--yes", "--tab", "Sandbox", "--set", "site-name=Rehearsal", *args
        )


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    root = copy_site(tmp_path / "site")
    env = {
        **os.environ,
        "SBX_ROOT": str(tmp_path / "sbx"),
        "SBX_OLD_PORT": str(free_port()),
        "SBX_NEW_PORT": str(free_port()),
        "SBX_PROXY_PORT": str(free_port()),
        "NO_COLOR": "1",
    }
    env.pop("RUNBOOK_REGEN", None)
    s = Site(root, env)
    # The working copy may carry ticks from `make demo`: start from a clean checklist.
    assert s.runbook("reset", str(GUIDE)).returncode == 0
    s.sbx("provision")
    yield s
    s.sbx("teardown", check=False)


def changed_bytes(before: bytes, after: bytes) -> set[bytes]:
    """Return the set of byte pairs that differ (same length expected)."""
    assert len(before) == len(after)
    return {bytes([a, b]) for a, b in zip(before, after, strict=True) if a != b}


def test_upgrade_end_to_end_keeps_late_records(site: Site) -> None:
    original = site.guide.read_bytes()
    install_original = (site.root / INSTALL).read_bytes()

    first = site.exec("--only", "1,2,3,4,5,6")
    assert first.returncode == 0, first.stdout + first.stderr
    # Live users keep writing to the old server after the first backup.
    site.sbx("add", "old", "7")
    assert site.sbx("count", "old").stdout.strip() == "57"

    second = site.exec()
    output = second.stdout + second.stderr
    assert second.returncode == 0, output

    health = site.sbx("health", "frontdoor", "--expect-version", "2.0.0", "--expect-schema", "2")
    assert "57 records" in health.stdout
    assert site.sbx("count", "frontdoor").stdout.strip() == "57"
    log = site.sbx("logs", "new", "-n", "500").stdout
    assert "migrated database schema from 1 to 2" in log
    assert not (Path(site.env["SBX_ROOT"]) / "old").exists()
    assert site.sbx("status", "old", check=False).returncode != 0

    # The record of the run is the guide itself: only box bytes changed, all ticked.
    after = site.guide.read_bytes()
    assert changed_bytes(original, after) == {b" x"}
    assert after.count(b"* [x] ") == 10 and b"* [ ] " not in after.split(b"## Step-by-step")[0]
    assert (site.root / INSTALL).read_bytes() == install_original  # a sub-guide is not ticked
    assert re.search(r"⏱ downtime: [\d.]+s \(from step 7 to step 9\)", output), output
    assert site.runbook("reset", str(GUIDE)).returncode == 0
    assert site.guide.read_bytes() == original


def test_second_run_after_reset_is_as_clean(site: Site) -> None:
    assert site.exec().returncode == 0
    assert site.runbook("reset", str(GUIDE)).returncode == 0
    site.sbx("teardown")
    site.sbx("provision")
    again = site.exec()
    assert again.returncode == 0, again.stdout + again.stderr
    assert site.sbx("count", "frontdoor").stdout.strip() == "50"


def test_port_taken_stops_before_installing(site: Site) -> None:
    original = site.guide.read_bytes()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(site.env["SBX_NEW_PORT"])))
        squatter.listen()
        result = site.exec()
    assert result.returncode == 1
    assert f"port {site.env['SBX_NEW_PORT']} is already in use" in result.stdout + result.stderr
    assert "step 1 (Installation, step 3) failed" in result.stderr
    assert "resume at step 1" in result.stderr
    assert site.guide.read_bytes() == original
    assert site.sbx("health", "old").returncode == 0  # nothing was damaged


def test_app_already_stopped_is_reported(site: Site) -> None:
    assert site.exec("--only", "1,2,3,4,5,6").returncode == 0
    site.sbx("stop", "old")
    result = site.exec()
    assert result.returncode == 1
    assert "not running" in result.stdout + result.stderr
    assert "step 7 failed" in result.stderr
    assert b"* [ ] 7." in site.guide.read_bytes()


def test_backup_missing_is_reported(site: Site) -> None:
    assert site.exec("--only", "1,2,3").returncode == 0
    (Path(site.env["SBX_ROOT"]) / "backups" / "upgrade.sql").unlink()
    result = site.exec()
    assert result.returncode == 1
    assert "upgrade.sql does not exist" in result.stdout + result.stderr
    assert "step 4 failed" in result.stderr or "step 8 (repeating step 4) failed" in result.stderr
    assert b"* [ ] 4." in site.guide.read_bytes()


def operate(site: Site, args: list[str], tab: str, on_manual: Callable[[int], None]) -> list[str]:
    """Drive `runbook exec` in a terminal as an operator; return what was asked, in order."""
    child = pexpect.spawn(
        sys.executable,
        ["-m", "runbook", "exec", str(GUIDE), *args],
        cwd=str(site.root),
        env={**site.env, "TERM": "xterm", "COLUMNS": "120"},
        encoding="utf-8",
        timeout=120,
        dimensions=(50, 140),
    )
    asked: list[str] = []
    step = 0
    log = io.StringIO()  # the screen, for failure messages
    child.logfile_read = log
    while True:
        try:
            index = child.expect(
                [
                    r"━━ Step (\d+)/",
                    r"Choice: ",
                    r"Value for <site-name>.*: ",
                    r"Is it done\?.*\[q\]uit",
                    r"Run this\?.*\[q\]uit",
                    r"(?:DANGER|WARNING|is optional)[^\n]*\? \[y\]es",
                    r"offers [^\n]*: keep (\S+)\? \[k\]eep",
                    r"Summary",
                    pexpect.EOF,
                ]
            )
        except pexpect.TIMEOUT:
            raise AssertionError(log.getvalue()[-3000:]) from None
        if index == 0:
            step = int(child.match.group(1))
        elif index == 1:
            labels = re.findall(r"(\d+)\) (\S+)", child.before or "")
            child.sendline(next(n for n, label in labels if label == tab))
            asked.append(f"tab {tab} at step {step}")
        elif index == 2:
            child.sendline("Terminal rehearsal")
            asked.append("input site-name")
        elif index in (3, 4):
            # The operator does by hand what the Production tab describes, then says so.
            on_manual(step)
            child.sendline("d")
            asked.append(f"done by hand at step {step}")
        elif index == 5:
            # The operator has read the warning shown right above the block (or runs the
            # optional step's block).
            child.sendline("y")
            asked.append(f"yes to a warning at step {step}")
        elif index == 6:
            # The tab picked earlier is offered again: Enter keeps it, c changes it.
            kept = child.match.group(1) == tab
            child.sendline("" if kept else "c")
            asked.append(f"{'keep' if kept else 'change'} tab at step {step}")
        else:
            break
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, log.getvalue()[-3000:]
    return asked


def test_operator_walks_through_in_a_terminal(site: Site) -> None:
    def by_hand(step: int) -> None:
        if step == 9:
            site.sbx("proxy", "switch", "new")  # what a DNS change does in production
        elif step == 10:
            site.sbx("remove", "old")

    first = operate(site, ["--only", "1,2,3,4,5,6,7,8"], "Sandbox", by_hand)
    questions = [a for a in first if not a.startswith(("yes to a warning", "keep tab"))]
    assert questions == ["tab Sandbox at step 1", "input site-name"]
    assert "keep tab at step 2" in first
    assert "yes to a warning at step 1" in first  # the installation's default password
    # A second session resumes at step 9, where this operator follows the Production tab.
    second = operate(site, [], "Production", by_hand)
    assert second[0] == "tab Production at step 9"
    assert "done by hand at step 9" in second and "done by hand at step 10" in second
    assert site.sbx("health", "frontdoor", "--expect-version", "2.0.0").returncode == 0
    assert site.sbx("count", "frontdoor").stdout.strip() == "50"
    assert b"* [ ] " not in site.guide.read_bytes().split(b"## Step-by-step")[0]


def test_dry_run_plans_nested_steps_and_runs_nothing(site: Site) -> None:
    result = site.runbook("exec", str(GUIDE), "--yes", "--tab", "Sandbox", "--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "↳ Installation, step 5: Configure OpenBoxes" in out
    assert "↳ repeating step 4: Import Database Backup To New Server" in out
    assert "Inputs still missing: <site-name>" in out
    assert "manual" not in out.split("Needs a person")[0]
    assert not (Path(site.env["SBX_ROOT"]) / "new").exists()  # nothing ran
    assert b"* [x]" not in site.guide.read_bytes()
