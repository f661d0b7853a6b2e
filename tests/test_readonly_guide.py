"""A guide whose checklist cannot be written: refused before anything runs, and a tick that
fails mid-run is made by the next run without running the step again or asking.

Root writes any file whatever its mode, so the tests that rely on permission bits run
runbook as the user ``nobody`` (through ``setpriv``) in a folder ``nobody`` owns; the others
simulate a read-only file system or an immutable file, which stop root too.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pwd
import shutil
import site
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runbook.errors import StateError
from runbook.execution import records
from runbook.journal import Journal, step_states
from runbook.runtime import journal_path
from runbook.state import check_writable, unwritable
from tests.conftest import FIXTURES, ROOT
from tests.test_execution import TWO_STEPS, write
from tests.test_execution import run as run_fake

GUIDE = """\
# G

* [ ] 1. One
* [ ] 2. Two

### 1. One

```bash { .run }
echo one >> ran.txt
```

### 2. Two

```bash { .run }
echo two >> ran.txt
```
"""
BASE = (
    "the guide cannot be written (Permission denied), so progress cannot be recorded in its "
    "checklist"
)
Runner = Callable[..., "subprocess.CompletedProcess[str]"]


# -- running runbook as a user whom the permission bits stop ------------------------------------


def _traversable(folder: Path) -> bool:
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in (folder, *folder.parents))


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder the user of ``as_user`` owns (mode 0755, as runbook trusts it), reachable
    by that user: pytest's own tmp_path is under a folder private to root."""
    parent = next(
        (Path(p) for p in (tempfile.gettempdir(), "/tmp", "/var/tmp") if _traversable(Path(p))),
        None,
    )
    if parent is None:
        pytest.fail("no temporary folder other users can reach (/tmp is not o+x)")
    path = Path(tempfile.mkdtemp(prefix="runbook-ro-", dir=parent))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _give(path: Path) -> None:
    """Give ``path`` (and everything in it) to the user runbook runs as."""
    if os.geteuid() != 0:
        return
    user = pwd.getpwnam("nobody")
    for p in (path, *path.rglob("*")):
        os.chown(p, user.pw_uid, user.pw_gid, follow_symlinks=False)


def _nobody_prefix() -> list[str]:
    """Return the argv prefix that runs a program as ``nobody``; none when not root, where
    the permission bits already apply."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
    user = pwd.getpwnam("nobody")
    return [setpriv, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]


def _env(home: Path) -> dict[str, str]:
    # The package and its dependencies by path, so an interpreter outside the venv (one
    # nobody may run) finds them as the venv's own does.
    paths = [str(ROOT), *site.getsitepackages()]
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "CI": "true",
        "PYTHONPATH": os.pathsep.join(paths),
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@pytest.fixture(scope="module")
def python() -> str:
    """Return a Python of this version that ``nobody`` can run and that imports runbook.

    The venv's interpreter may be a link into a folder only root can enter (a pyenv under
    /root); the interpreter it links to, or the system's one of the same version, may do.
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [
        sys.executable,
        os.path.realpath(sys.executable),
        getattr(sys, "_base_executable", ""),
        shutil.which(f"python{version}", path="/usr/local/bin:/usr/bin:/bin") or "",
    ]
    probe = (
        f"import sys; assert sys.version_info[:2] == {sys.version_info[:2]!r}, sys.version; "
        "import runbook.cli, runbook.shell, pexpect, markdown, mkdocs"
    )
    tried = []
    for candidate in dict.fromkeys(c for c in candidates if c):
        result = subprocess.run(
            [*_nobody_prefix(), candidate, "-c", probe],
            cwd="/",
            env=_env(Path("/")),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode == 0:
            return candidate
        last = (result.stderr.strip().splitlines() or ["?"])[-1]
        tried.append(f"{candidate}: {last}")
    pytest.fail(
        "user nobody can run no Python that imports runbook, so permission bits cannot be "
        "tested (root ignores them). Tried:\n  " + "\n  ".join(tried) + "\nMake the checkout "
        f"({ROOT}) and one Python {version} with its packages readable by others (o+rx)."
    )


@pytest.fixture
def as_user(python: str) -> Runner:
    """Run ``python -m runbook ARGS`` in a folder as ``nobody`` (as root) or as oneself."""

    def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*_nobody_prefix(), python, "-m", "runbook", *args],
            cwd=cwd,
            env=_env(cwd),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


def _guide(folder: Path, text: str = GUIDE, mode: int = 0o444) -> Path:
    guide = folder / "guide.md"
    guide.write_text(text)
    _give(folder)
    guide.chmod(mode)
    return guide


def _journal(folder: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted((folder / ".runbook" / "journal").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


# -- as nobody: the permission bits --------------------------------------------------------------


def test_exec_refuses_a_read_only_guide_before_running_anything(
    folder: Path, as_user: Runner
) -> None:
    guide = _guide(folder)
    before = guide.stat()
    refused = as_user(folder, "exec", "--yes", "guide.md")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    error, hint = refused.stderr.splitlines()[-2:]
    assert error == f"Error: guide.md:3: {BASE}; nothing was run"
    assert hint == (
        f"  next: make it writable ('chmod u+w {guide}') and run again, "
        "or rehearse it without writing: runbook exec --dry-run guide.md"
    )
    assert not (folder / "ran.txt").exists()
    assert not (folder / ".runbook").exists()  # nothing recorded, not even a lock
    after = guide.stat()
    assert guide.read_text() == GUIDE
    assert (after.st_mtime_ns, after.st_ctime_ns) == (before.st_mtime_ns, before.st_ctime_ns)

    guide.chmod(0o644)
    done = as_user(folder, "exec", "--yes", "guide.md")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "changed since" not in done.stdout + done.stderr
    assert (folder / "ran.txt").read_text() == "one\ntwo\n"
    assert guide.read_text() == GUIDE.replace("* [ ]", "* [x]")


def test_a_dry_run_of_a_read_only_guide_says_a_run_would_refuse(
    folder: Path, as_user: Runner
) -> None:
    guide = _guide(folder)
    dry = as_user(folder, "exec", "--dry-run", "guide.md")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    lines = dry.stdout.splitlines()
    assert lines[0] == f"! guide.md:3: {BASE}: a run without --dry-run refuses to start"
    assert lines[1] == f"  next: make it writable ('chmod u+w {guide}') and run again"
    assert "Dry run of guide.md: nothing is executed." in lines
    assert not (folder / "ran.txt").exists()
    assert guide.read_text() == GUIDE

    guide.chmod(0o644)
    quiet = as_user(folder, "exec", "--dry-run", "guide.md")
    assert quiet.returncode == 0 and "refuses" not in quiet.stdout


def test_check_uncheck_and_reset_give_the_same_message(folder: Path, as_user: Runner) -> None:
    guide = _guide(folder, GUIDE.replace("* [ ] 2.", "* [x] 2."))
    for args in (("check", "guide.md", "1"), ("uncheck", "guide.md", "2"), ("reset", "guide.md")):
        refused = as_user(folder, *args)
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert refused.stderr.splitlines() == [
            f"Error: guide.md:{3 if args[0] == 'check' else 4}: {BASE}",
            f"  next: make it writable ('chmod u+w {guide}') and run again",
        ]
    assert guide.read_text() == GUIDE.replace("* [ ] 2.", "* [x] 2.")


def test_a_guide_made_read_only_mid_run_is_ticked_by_the_next_run_without_asking(
    folder: Path, as_user: Runner
) -> None:
    text = GUIDE.replace("echo one >> ran.txt", "echo one >> ran.txt\nchmod a-w guide.md")
    guide = _guide(folder, text, 0o644)
    first = as_user(folder, "exec", "--yes", "guide.md")
    assert first.returncode == 3, first.stdout + first.stderr
    error, hint = first.stderr.splitlines()[-2:]
    assert error == (
        "Error: guide.md:3: step 1 is done (its end is in the journal), but its box could "
        f"not be ticked: {BASE}"
    )
    assert hint == (
        f"  next: make it writable ('chmod u+w {guide}') and run again; the next run then "
        "ticks step 1 without running it again"
    )
    assert (folder / "ran.txt").read_text() == "one\n"
    assert guide.read_text() == text
    failed = [r for r in _journal(folder) if r["event"] == "tick-failed"]
    assert [r["step"] for r in failed] == [1]
    assert failed[0]["guide_sha256"] == hashlib.sha256(text.encode()).hexdigest()

    # Still read-only: refused before anything runs, and nothing recorded.
    records = len(_journal(folder))
    again = as_user(folder, "exec", "--yes", "guide.md")
    assert again.returncode == 3 and "nothing was run" in again.stderr
    assert len(_journal(folder)) == records

    guide.chmod(0o644)
    done = as_user(folder, "exec", "--yes", "guide.md")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "· step 1 was completed by run " in done.stdout
    assert "ticking it now" in done.stdout
    assert "changed since" not in done.stdout + done.stderr
    assert (folder / "ran.txt").read_text() == "one\ntwo\n"  # step 1 did not run again
    assert guide.read_text() == text.replace("* [ ]", "* [x]")


def test_only_the_overview_of_a_guide_spanning_pages_must_be_writable(
    folder: Path, as_user: Runner
) -> None:
    site = folder / "site"
    shutil.copytree(FIXTURES / "multipage", site)
    (site / "config.txt").write_text("from before\n")
    _give(folder)
    pages = site / "docs" / "upgrade"
    overview = pages / "index.md"
    for page in pages.glob("*.md"):
        page.chmod(0o444 if page != overview else 0o644)
    ran = as_user(site, "exec", "--yes", "docs/upgrade/import.md")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "* [x] 3." in overview.read_text()

    overview.chmod(0o444)
    (site / "imported.txt").unlink()
    for named in ("docs/upgrade/index.md", "docs/upgrade/import.md"):
        refused = as_user(site, "exec", "--yes", "--redo", "--tab", "Sandbox", named)
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert f"Error: docs/upgrade/index.md:5: {BASE}; nothing was run" in refused.stderr
        assert not (site / "imported.txt").exists()


# -- as anyone: what stops root too, simulated --------------------------------------------------


def test_the_check_opens_the_guide_without_changing_it(tmp_path: Path) -> None:
    guide = tmp_path / "guide.md"
    guide.write_text(GUIDE)
    os.utime(guide, ns=(1_000_000_000, 1_000_000_000))
    before = guide.stat()
    check_writable(guide, line=3)
    after = guide.stat()
    assert guide.read_text() == GUIDE
    assert (after.st_mtime_ns, after.st_ctime_ns, after.st_size) == (
        before.st_mtime_ns,
        before.st_ctime_ns,
        before.st_size,
    )


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.EROFS, "remount it read-write"),
        (errno.EPERM, "chattr -i -a"),
        (errno.EACCES, "chmod u+w"),
    ],
)
def test_the_hint_follows_the_cause(tmp_path: Path, code: int, words: str) -> None:
    guide = tmp_path / "guide.md"
    guide.write_text(GUIDE)
    error = unwritable(guide, OSError(code, os.strerror(code)), line=3)
    assert error.exit_code == 3
    assert str(error).endswith(
        f"the guide cannot be written ({os.strerror(code)}), so progress cannot be recorded "
        "in its checklist"
    )
    assert error.hint and words in error.hint
    if os.geteuid() == 0:
        os.chown(guide, pwd.getpwnam("nobody").pw_uid, -1)
        other = unwritable(guide, OSError(errno.EACCES, "Permission denied"))
        assert other.hint and "not yours" in other.hint


def _refuse_writes(monkeypatch: pytest.MonkeyPatch, guide: Path, code: int) -> None:
    """Make opening ``guide`` for writing fail as a read-only file system or an immutable
    file makes it fail, for root too."""
    real = os.open

    def fake(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR) and Path(path).resolve() == guide.resolve():
            raise OSError(code, os.strerror(code), str(path))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake)


def test_a_read_only_file_system_stops_the_run_before_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guide = write(tmp_path, "g.md", TWO_STEPS)
    _refuse_writes(monkeypatch, guide, errno.EROFS)
    dry = run_fake(guide, dry_run=True)
    assert dry.code == 0 and dry.shells.ran == []
    assert "Read-only file system" in dry.out and "refuses to start" in dry.out
    refused = run_fake(guide)
    assert isinstance(refused.error, StateError)
    assert refused.error.message.endswith("; nothing was run")
    assert refused.error.hint and "remount it read-write" in refused.error.hint
    assert refused.shells.ran == []
    assert not (tmp_path / ".runbook").exists()


def test_a_tick_that_keeps_failing_is_still_made_without_asking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run whose tick fails, then one whose tick of that step fails again, then one that
    can write: the step runs once and is ticked, and no run asks about it."""
    guide = write(tmp_path, "g.md", TWO_STEPS)
    real = records.apply_ticks

    def immutable(path: Path, *args: Any, **kwargs: Any) -> Any:
        raise unwritable(Path(path), OSError(errno.EPERM, os.strerror(errno.EPERM)), line=3)

    monkeypatch.setattr(records, "apply_ticks", immutable)
    first = run_fake(guide)
    assert isinstance(first.error, StateError)
    assert first.error.message.startswith("step 1 is done (its end is in the journal)")
    assert first.shells.ran == ["echo one"]
    # The file could be written when the next run checked, not when it ticked.
    second = run_fake(guide)
    assert isinstance(second.error, StateError) and second.shells.ran == []
    assert [r["event"] for r in second.records()].count("tick-failed") == 2
    monkeypatch.setattr(records, "apply_ticks", real)
    third = run_fake(guide)
    assert third.code == 0, third.error
    assert "step 1 was completed by run" in third.out
    assert third.shells.ran == ["echo two"]
    assert third.ticked() == [1, 2]


def test_a_failed_tick_leaves_the_step_done_and_unticked(tmp_path: Path) -> None:
    """Whatever came before it (a step's end, or a person's 'done' for an unknown outcome),
    a failed tick reads as done, as of the guide the failed tick saw."""
    path = journal_path(tmp_path / ".runbook", tmp_path / "g.md")
    journal = Journal(path, "20240101T000000Z-aaaaaa")
    journal.write("run-start")
    journal.write("step-start", step=1)
    journal.write("step-end", step=1, result="done", guide_sha256="before")
    journal.write("tick-failed", step=1, reason="x", guide_sha256="before")
    journal.write("step-start", step=2)
    journal.close()
    journal = Journal(path, "20240102T000000Z-bbbbbb")
    journal.write("run-start")
    journal.write("step-resolved", step=2, choice="done")
    journal.write("tick-failed", step=2, reason="x", guide_sha256="now")
    journal.close()
    states = step_states(path)
    assert states[1].done_unticked and states[1].guide == "before"
    assert states[1].run == "20240101T000000Z-aaaaaa"
    assert states[2].done_unticked and states[2].guide == "now"
    assert states[2].run == "20240102T000000Z-bbbbbb"
    assert not states[2].unknown
