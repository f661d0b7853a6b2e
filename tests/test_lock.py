"""Locks: one holder at a time, refusals name the holder, gone holders are taken over."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runbook.errors import LockedError, StateError
from runbook.lock import Lock, LockHolder, default_command, lock_name, read_holder

HOLD = textwrap.dedent(
    """
    import os, sys
    from runbook.lock import Lock
    lock = Lock(sys.argv[1], sys.argv[2], kind=sys.argv[3], command="runbook exec upgrade.md",
                subject="docs/upgrade.md")
    lock.acquire()
    if sys.argv[4] == "orphan":
        # Leave the lock's descriptor to a child that outlives the recorded holder.
        if os.fork() == 0:
            os.setsid()
            sys.stdout.write(f"{os.getpid()}\\n")
            sys.stdout.flush()
            sys.stdin.read()
            os._exit(0)
        os._exit(0)
    print("held", flush=True)
    sys.stdin.read()
    lock.release()
    """
)


class Holder:
    """A real process holding a lock until its stdin closes."""

    def __init__(self, lock_dir: Path, name: str, kind: str = "run", mode: str = "hold") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(lock_dir), name, kind, mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.first_line = self.proc.stdout.readline().strip()

    def finish(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    started: list[Holder] = []
    yield started
    for holder in started:
        if holder.proc.poll() is None:
            holder.proc.kill()
        holder.finish()


def test_lock_name_is_readable_short_and_per_path(tmp_path: Path) -> None:
    guide = tmp_path / "Parallel Upgrade (v2).md"
    name = lock_name(guide)
    assert name.startswith("Parallel_Upgrade_v2-") and name.endswith(".run")
    assert len(name) <= 60 and "/" not in name
    assert lock_name(guide, "write") == name.removesuffix(".run") + ".write"
    assert lock_name(tmp_path / "other" / guide.name) != name
    os.chdir(tmp_path)
    assert lock_name(Path(guide.name)) == name
    link = tmp_path / "alias.md"
    guide.touch()
    link.symlink_to(guide)
    assert lock_name(link) == name
    assert lock_name(tmp_path / ("x" * 200 + ".md")).count("x") == 40


def test_acquire_records_holder_and_release_clears(tmp_path: Path) -> None:
    lock_dir = tmp_path / ".runbook" / "locks"
    with Lock(lock_dir, "g", kind="write", command="runbook check g.md 3") as lock:
        assert lock.held and lock.previous is None
        record = json.loads(lock.path.read_text())
        assert record["pid"] == os.getpid()
        assert record["host"] == socket.gethostname()
        assert record["command"] == "runbook check g.md 3"
        assert record["kind"] == "write"
        assert record["since"][:4].isdigit() and "T" in record["since"]
        assert read_holder(lock.path) == lock.record
    assert not lock.held
    assert lock.path.read_bytes() == b""
    assert read_holder(lock.path) is None
    assert read_holder(tmp_path / "missing.lock") is None


def test_lock_folder_is_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with Lock(tmp_path / "rt" / "locks", "g") as lock:
            pass
    finally:
        os.umask(old)
    for folder in (tmp_path / "rt", tmp_path / "rt" / "locks"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(lock.path.stat().st_mode) == 0o600


def test_second_process_is_refused_with_the_holder_named(
    tmp_path: Path, holders: list[Holder]
) -> None:
    holder = Holder(tmp_path, "g.run")
    holders.append(holder)
    assert holder.first_line == "held"
    taker = Lock(tmp_path, "g.run", subject="docs/upgrade.md")
    with pytest.raises(LockedError) as caught:
        taker.acquire()
    message, hint = str(caught.value), caught.value.hint or ""
    assert message.startswith("docs/upgrade.md: docs/upgrade.md is locked by a run")
    assert f"(pid {holder.proc.pid})" in message
    assert f"@{socket.gethostname()}" in message and "since 2" in message
    assert "runbook exec upgrade.md" in message
    assert "wait" in hint and str(taker.path) in hint
    assert not taker.held
    holder.finish()
    with taker:
        assert taker.held and taker.previous is None


def test_two_locks_in_one_process_conflict(tmp_path: Path) -> None:
    with Lock(tmp_path, "g", kind="write"), pytest.raises(LockedError, match="checklist write"):
        Lock(tmp_path, "g").acquire()


def test_run_and_write_locks_are_independent(tmp_path: Path) -> None:
    guide = tmp_path / "g.md"
    with (
        Lock(tmp_path, lock_name(guide, "run")),
        Lock(tmp_path, lock_name(guide, "write"), kind="write"),
    ):
        pass


def test_waiting_taker_gets_the_lock_when_released(tmp_path: Path, holders: list[Holder]) -> None:
    holder = Holder(tmp_path, "g", kind="write")
    holders.append(holder)
    assert holder.proc.stdin is not None
    release = threading.Timer(0.2, holder.proc.stdin.close)
    start = time.monotonic()
    release.start()
    with Lock(tmp_path, "g", kind="write", wait=5) as lock:
        assert lock.held and lock.previous is None
    assert 0.15 < time.monotonic() - start < 3
    release.join()


def test_killed_holder_is_taken_over_and_reported(tmp_path: Path, holders: list[Holder]) -> None:
    holder = Holder(tmp_path, "g")
    holders.append(holder)
    os.kill(holder.proc.pid, signal.SIGKILL)
    holder.proc.wait()
    with Lock(tmp_path, "g") as lock:
        assert lock.previous is not None
        assert lock.previous.pid == holder.proc.pid
        assert lock.previous.command == "runbook exec upgrade.md"
        assert lock.record is not None and lock.record.pid == os.getpid()


def test_orphaned_lock_of_a_gone_holder_is_taken_over(
    tmp_path: Path, holders: list[Holder]
) -> None:
    holder = Holder(tmp_path, "g", mode="orphan")
    holders.append(holder)
    orphan = int(holder.first_line)
    holder.proc.wait()
    try:
        recorded = read_holder(tmp_path / "g.lock")
        assert recorded is not None and recorded.pid == holder.proc.pid
        assert recorded.is_stale()
        with Lock(tmp_path, "g") as lock:
            assert lock.previous == recorded
            assert read_holder(lock.path) == lock.record
        # A second taker sees the new file, not the orphan's.
        with Lock(tmp_path, "g") as again:
            assert again.previous is None
    finally:
        os.kill(orphan, signal.SIGKILL)


def test_holder_on_another_host_is_never_taken_over(tmp_path: Path) -> None:
    with Lock(tmp_path, "g") as lock:
        elsewhere = LockHolder(
            pid=999_999_999,
            user="ops",
            host="other-host.example",
            since="2024-05-01T02:00:00+00:00",
            command="runbook exec upgrade.md",
            kind="run",
        )
        lock.path.write_bytes(elsewhere.to_json())
        with pytest.raises(LockedError) as caught:
            Lock(tmp_path, "g").acquire()
    assert "ops@other-host.example (pid 999999999) since 2024-05-01T02:00:00+00:00" in str(
        caught.value
    )
    assert "other-host.example" in (caught.value.hint or "")


def test_holder_without_record_is_still_refused(tmp_path: Path) -> None:
    with Lock(tmp_path, "g") as lock:
        lock.path.write_bytes(b"")
        with pytest.raises(LockedError, match="no holder recorded"):
            Lock(tmp_path, "g").acquire()


def test_staleness_rules() -> None:
    host = socket.gethostname()
    with open(f"/proc/{os.getpid()}/stat", "rb") as handle:
        started = int(handle.read().rpartition(b")")[2].split()[19])
    live = LockHolder(os.getpid(), "u", host, "t", "c", "run", started)
    assert not live.is_stale()
    assert LockHolder(os.getpid(), "u", host, "t", "c", "run", None).is_stale() is False
    assert LockHolder(os.getpid(), "u", host, "t", "c", "run", started + 1).is_stale()
    assert LockHolder(999_999_999, "u", host, "t", "c", "run").is_stale()
    assert not LockHolder(999_999_999, "u", "other-host", "t", "c", "run").is_stale()


@given(st.binary(max_size=200))
def test_any_lock_file_content_parses_or_is_none(data: bytes) -> None:
    holder = LockHolder.from_json(data)
    assert holder is None or isinstance(holder.pid, int)


def test_record_round_trips() -> None:
    record = LockHolder(1, "u", "h", "2024-01-01T00:00:00+00:00", "c", "write", 7)
    assert LockHolder.from_json(record.to_json()) == record
    assert LockHolder.from_json(b'{"pid": "1", "user": "u", "host": "h", "since": "s"}') is None
    assert LockHolder.from_json(b"[1]") is None


def test_default_command_masks_values(monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ["/usr/bin/runbook", "exec", "g.md", "--set", "db_password=hunter2", "--tab=ssh"]
    monkeypatch.setattr(sys, "argv", argv)
    command = default_command()
    assert command == "runbook exec g.md --set db_password=*** --tab=***"
    assert "hunter2" not in command


@pytest.mark.parametrize("name", ["", "a/b", "..", ".", "a\0b"])
def test_bad_lock_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(StateError):
        Lock(tmp_path, name)


def test_unusable_lock_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StateError, match="lock folder"):
        Lock(blocker, "g").acquire()
    with pytest.raises(StateError, match="lock folder"):
        Lock(blocker / "sub", "g").acquire()


COUNT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from runbook.lock import Lock
    counter = Path(sys.argv[2])
    for _ in range(40):
        with Lock(sys.argv[1], "g", kind="write", wait=20):
            value = int(counter.read_text())
            counter.write_text(str(value + 1))
    """
)


def test_lock_excludes_across_processes(tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    counter.write_text("0")
    procs = [
        subprocess.Popen([sys.executable, "-c", COUNT, str(tmp_path / "locks"), str(counter)])
        for _ in range(3)
    ]
    assert [proc.wait(timeout=30) for proc in procs] == [0, 0, 0]
    assert counter.read_text() == "120"


def test_the_same_guide_through_a_hard_link_cannot_run_twice(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    guide = first / "guide.md"
    guide.write_text("# G\n\n* [ ] 1. Go\n\n### 1. Go\n\n```bash { .run }\nsleep 3\n```\n")
    os.link(guide, second / "guide.md")  # another folder, so another runtime folder too
    command = [sys.executable, "-m", "runbook", "exec", "guide.md", "--yes"]
    running = subprocess.Popen(command, cwd=first, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not (first / ".runbook" / "locks").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        other = subprocess.run(
            command, cwd=second, stdin=subprocess.DEVNULL, capture_output=True, text=True
        )
        assert other.returncode == 3, other.stderr
        assert "another run holds this guide" in other.stderr
    finally:
        assert running.wait(timeout=30) == 0
