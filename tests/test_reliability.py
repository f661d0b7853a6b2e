"""Reliability of ``runbook exec``, as figures: kill -9 at random moments, secret canaries,
hostile values, 100 MB of output with flat memory, binary output.

Every test prints a ``figures:`` line (shown with ``pytest -s``) and asserts on the same
numbers. All of it runs the real CLI against real shells and files.
"""

from __future__ import annotations

import fcntl
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from runbook.guide import load
from runbook.lock import lock_name
from tests.test_exec import CANARY, RUNBOOK, Workspace, cli_env

KILLS = 50
MAX_RUNS = 120
BIG = 100_000_000


@pytest.fixture
def workspace(tmp_path: Path):
    """Return a factory copying a fixture guide into the test's own folder."""

    def make(name: str) -> Workspace:
        return Workspace(tmp_path, name)

    return make


def processes_under(folder: Path) -> list[tuple[int, str]]:
    """Return (pid, command) of every process whose working folder is inside ``folder``."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            cwd = Path(os.readlink(f"/proc/{name}/cwd"))
            with open(f"/proc/{name}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cwd == folder or folder in cwd.parents:
            found.append((int(name), command.strip()))
    return found


def wait_until_gone(folder: Path, timeout: float = 5.0) -> list[tuple[int, str]]:
    """Wait for every process working in ``folder`` to end; return those that did not."""
    deadline = time.monotonic() + timeout
    while (left := processes_under(folder)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


def lock_is_free(ws: Workspace) -> bool:
    """Whether the guide's run lock can be taken right now (then release it again)."""
    path = ws.runtime / "locks" / f"{lock_name(ws.guide, 'run')}.lock"
    if not path.exists():
        return True
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def test_kill_9_at_random_moments_never_breaks_the_guide_or_outruns_the_journal(workspace):
    ws = workspace("reliable.md")
    rng = random.Random(1129)
    phases: dict[str, int] = {}
    completed = resets = recovered = 0
    problems: list[str] = []
    assert ws.exec("--yes").code == 0  # creates the journal; warms the caches
    ws.guide.write_bytes(ws.original)
    journal = next((ws.runtime / "journal").glob("*.jsonl"))
    cycle_start = len(ws.records())
    started = time.monotonic()
    attempt = kills = 0
    while kills < KILLS and attempt < MAX_RUNS:
        attempt += 1
        before = len(ws.records())
        size = journal.stat().st_size
        with open(ws.dir / "run.out", "wb") as out:
            proc = subprocess.Popen(
                [*RUNBOOK, "exec", ws.guide.name, "--yes", "--retry-unknown"],
                cwd=ws.dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=cli_env(),
            )
        if rng.random() < 0.1:
            # Now and then anywhere, the interpreter's start-up included.
            delay = rng.uniform(0.0, 0.4)
        else:
            # Mostly while the run works: after its first record, within its few blocks.
            while journal.stat().st_size == size and proc.poll() is None:
                time.sleep(0.002)
            delay = rng.uniform(0.0, 0.15)
        try:
            code = proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            code = proc.wait()
        kills += code == -signal.SIGKILL  # it may have ended just before the signal
        output = (ws.dir / "run.out").read_text(errors="replace")
        if "ticking it now" in output:
            recovered += 1
        records = ws.records()
        mine = records[before:]
        phase = mine[-1]["event"] if mine else "before run-start"
        if code != -signal.SIGKILL:
            phase = "completed"
            completed += 1
            if code != 0:
                problems.append(f"run {attempt}: exit {code}: {output[-400:]}")
        phases[phase] = phases.get(phase, 0) + 1

        # The guide still loads and differs from the original in box bytes only.
        book = load(ws.guide)
        if book.errors:
            problems.append(f"run {attempt}: guide does not load: {book.errors[0].message}")
        if not ws.only_boxes_changed():
            problems.append(f"run {attempt}: bytes other than boxes changed")
        # Every ticked step has a durable 'done' end in the journal since the last reset.
        done = {
            r["step"]
            for r in records[cycle_start:]
            if r["event"] == "step-end" and r["result"] == "done"
        }
        outran = ws.ticked() - done
        if outran:
            problems.append(f"run {attempt}: ticks {sorted(outran)} without a journal 'done'")
        # A child forked just before the kill holds the lock's descriptor until its exec
        # closes it: the lock must be free once the run's processes are gone.
        left = wait_until_gone(ws.dir)
        if left:
            problems.append(f"run {attempt}: stray processes {left}")
            for pid, _ in left:
                os.kill(pid, signal.SIGKILL)
        if not lock_is_free(ws):
            problems.append(f"run {attempt}: the run lock is still held")

        if ws.ticked() == {1, 2, 3, 4, 5}:
            # All done: start over, as a person would with 'runbook reset'.
            ws.guide.write_bytes(ws.original)
            cycle_start = len(ws.records())
            resets += 1
    seconds = time.monotonic() - started
    print(
        f"\nfigures: kill -9 runs={attempt} killed={kills} completed={completed} "
        f"guide resets={resets} ticks recovered={recovered} "
        f"problems={len(problems)} in {seconds:.1f}s; killed after: "
        + ", ".join(f"{k}={v}" for k, v in sorted(phases.items()))
    )
    assert not problems, "\n".join(problems[:10])
    assert kills >= KILLS
    # Most kills hit a run at work, not the interpreter starting or the process ending.
    assert (
        sum(v for k, v in phases.items() if k.startswith(("run-start", "step-", "action-", "tick")))
        >= 25
    )
    # And after all that, a plain run finishes the guide.
    final = ws.exec("--yes", "--retry-unknown")
    assert final.code == 0, final.text
    assert ws.ticked() == {1, 2, 3, 4, 5}


def test_secret_canary_is_found_nowhere(workspace):
    ws = workspace("secrets.md")
    outputs = [
        ws.exec("--yes", "--set", f"db-password={CANARY}"),
        ws.exec("--yes", "--redo", "--set", f"db-password={CANARY}"),
        ws.exec("--dry-run", "--set", f"db-password={CANARY}"),
    ]
    scanned = b"".join(r.text.encode() for r in outputs) + ws.all_runtime_bytes()
    scanned += ws.guide.read_bytes()
    count = scanned.count(CANARY.encode())
    files = sum(1 for p in ws.runtime.rglob("*") if p.is_file())
    masked = sum(r.out.count("********") for r in outputs)
    print(
        f"\nfigures: secret canary occurrences={count} in {len(scanned)} bytes "
        f"({files} runtime files, 3 runs' output, the guide); masks shown={masked}"
    )
    assert count == 0
    assert masked >= 10
    assert [r.code for r in outputs] == [1, 1, 0]


def _hostile(rng: random.Random) -> str:
    pieces = [
        "$(touch PWNED)",
        "`touch PWNED`",
        "'",
        '"',
        ";",
        "&&",
        "|",
        "\\",
        "$",
        "${IFS}",
        "!",
        "*",
        "?",
        "~",
        "#",
        "<",
        ">",
        "EOT",
        " ",
        "%s",
        "-e",
        "ä€漢",
        "<value>",
        "$((1+1))",
    ]
    return "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))


def test_hostile_values_are_never_executed_and_arrive_byte_exact(workspace, tmp_path):
    rng = random.Random(7)
    count = 20
    lines = ["# Many values", "", "* [ ] 1. Write them", "", "### 1. Write them", ""]
    lines.append("```bash { .run }")
    for i in range(count):
        lines.append(
            f"printf %s \"<v{i}>\" > d{i}; printf %s <v{i}> > b{i}; printf %s '<v{i}>' > s{i}"
        )
    lines.append("```")
    guide = tmp_path / "many.md"
    guide.write_text("\n".join(lines) + "\n")
    delivered = 0
    runs = 3
    for _ in range(runs):
        values = [_hostile(rng) for _ in range(count)]
        sets = [a for i, v in enumerate(values) for a in ("--set", f"v{i}={v}")]
        proc = subprocess.run(
            [*RUNBOOK, "exec", guide.name, "--yes", "--redo", *sets],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=cli_env(),
            timeout=30,
        )
        assert proc.returncode == 0, proc.stderr.decode()
        for i, value in enumerate(values):
            for prefix in "dbs":
                assert (tmp_path / f"{prefix}{i}").read_bytes() == value.encode(), (prefix, value)
                delivered += 1
    executed = len(list(tmp_path.rglob("PWNED*")))
    print(
        f"\nfigures: hostile values={runs * count} (x3 quoting contexts) delivered byte-exact="
        f"{delivered}/{runs * count * 3} executed={executed}"
    )
    assert delivered == runs * count * 3
    assert executed == 0


def _peak_rss_kb(args: list[str], cwd: Path) -> tuple[int, int, float]:
    """Run the CLI, sampling its VmHWM; return (exit status, peak KiB, seconds)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [*RUNBOOK, *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cli_env(),
    )
    peak = 0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as handle:
                for line in handle:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.02)
    return proc.returncode, peak, time.monotonic() - started


def test_100_mb_of_output_with_flat_memory_and_binary_output_intact(workspace):
    ws = workspace("big.md")
    every_byte = bytes(range(256)) * 4
    (ws.dir / "all-bytes.bin").write_bytes(every_byte)

    code, small_peak, _ = _peak_rss_kb(["exec", ws.guide.name, "--only", "2"], ws.dir)
    assert code == 0
    code, big_peak, seconds = _peak_rss_kb(["exec", ws.guide.name, "--only", "1"], ws.dir)
    assert code == 0
    end = next(r for r in ws.records() if r["event"] == "action-end" and r["step"] == 1)
    transcripts = sorted((ws.runtime / "transcripts").glob("*.log"), key=os.path.getmtime)
    big_transcript = transcripts[-1].stat().st_size
    binary = transcripts[0].read_bytes()
    print(
        f"\nfigures: 100 MB output: peak RSS {big_peak / 1024:.1f} MiB "
        f"(a run printing 1 KiB: {small_peak / 1024:.1f} MiB), {seconds:.2f}s, "
        f"{BIG / seconds / 1e6:.0f} MB/s; transcript {big_transcript} bytes; "
        f"binary 0-255 x4 in transcript: {every_byte in binary}"
    )
    assert end["output_bytes"] == BIG
    assert big_transcript >= BIG
    assert big_peak < 100 * 1024
    assert big_peak < small_peak + 30 * 1024  # flat: output is streamed, not kept
    assert every_byte in binary
    assert ws.ticked() == {1, 2}
