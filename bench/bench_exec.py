#!/usr/bin/env python3
"""Benchmark ``runbook exec`` side by side with byexample and prysk, in one run.

Figures (medians of N repetitions, with min and max; all tools interleaved per repetition
so that machine noise hits them alike):

1. Per-command overhead on 200 trivial commands. Three equivalent inputs are generated in a
   temporary folder: a runbook guide, a byexample markdown file (``$ echo N`` examples run
   by ``byexample -l shell``) and a prysk/cram ``.t`` file. Each tool runs end to end as a
   subprocess, once with 200 commands and once with 1 command, and the per-command figure
   is ``(T(200) - T(1)) / 199``, which takes start-up out. runbook is measured in three
   shapes: one step of 200 ``.run`` blocks, 200 steps of one block each (200 checklist
   ticks), and one step of 200 ``$ echo N`` blocks whose output is checked (the closest
   match to what byexample and prysk do). Library level, without CLI start-up:
   ``runbook.shell.Session`` running 200 blocks, next to a bare pexpect loop
   (``sendline`` + ``expect`` the prompt) as the floor of driving a shell through a pty.
2. A command printing 100 MB: throughput of ``runbook exec`` (its stdout sent to
   /dev/null: the console is not what is measured; the transcript file is written as in
   any run) versus the same pipeline into ``cat > /dev/null`` in plain bash, and a Python
   loop reading the pipeline from a pty (the ceiling for any pty-driven tool). Peak RSS of
   the runbook process, for 100 MB and for a 1-command run: memory should stay flat.

Usage::

    pip install -e . -r bench/requirements-exec.txt
    python bench/bench_exec.py            # full run (about a minute)
    python bench/bench_exec.py --quick    # smoke run
    python bench/bench_exec.py --json bench/results/exec.json
    python bench/bench_exec.py --profile  # also cProfile one 200-block exec

Figures, not pass/fail: the exit status is non-zero only when a tool did not run the
commands correctly (then the figures would mean nothing).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import json
import os
import platform
import pstats
import re
import resource
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = 200
BIG_BYTES = 100_000_000
PIPELINES = {
    # One 100 MB line without a newline: the adversarial case for line-based buffering.
    "zeros": "head -c {n} /dev/zero | tr '\\0' a",
    # 50 million short lines.
    "yes": "yes | head -c {n}",
}


class BenchError(Exception):
    """A tool did not do what was asked: its timing would be meaningless."""


# -- statistics --------------------------------------------------------------------------------


@dataclass
class Series:
    """Repeated measurements of one thing (seconds unless said otherwise)."""

    name: str
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    def as_json(self) -> dict[str, Any]:
        return {
            "median": self.median,
            "min": self.min,
            "max": self.max,
            "values": self.values,
        }


# -- tools -------------------------------------------------------------------------------------


def script(name: str) -> str | None:
    """Return the console script ``name`` of this interpreter's environment, or from PATH."""
    local = Path(sys.executable).parent / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name)


def version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()
    return None


RUNBOOK = [sys.executable, "-m", "runbook"]


# -- inputs ------------------------------------------------------------------------------------


def guide_blocks(n: int) -> str:
    """One step holding ``n`` ``.run`` blocks."""
    lines = ["# Bench: blocks", "", "* [ ] 1. Run the commands", "", "### 1. Run the commands", ""]
    for i in range(1, n + 1):
        lines += ["```bash { .run }", f"echo {i}", "```", ""]
    return "\n".join(lines)


def guide_steps(n: int) -> str:
    """``n`` steps of one ``.run`` block each (so ``n`` ticks of the checklist)."""
    lines = ["# Bench: steps", ""]
    lines += [f"* [ ] {i}. Command {i}" for i in range(1, n + 1)]
    lines.append("")
    for i in range(1, n + 1):
        lines += [f"### {i}. Command {i}", "", "```bash { .run }", f"echo {i}", "```", ""]
    return "\n".join(lines)


def guide_prompts(n: int) -> str:
    """One step holding ``n`` ``$ echo N`` blocks whose output is checked."""
    lines = ["# Bench: prompts", "", "* [ ] 1. Run the commands", "", "### 1. Run the commands", ""]
    for i in range(1, n + 1):
        lines += ["```console { .run }", f"$ echo {i}", f"{i}", "```", ""]
    return "\n".join(lines)


def byexample_file(n: int) -> str:
    """``n`` shell examples, one fenced block each, as in the runbook guide."""
    lines = ["# Bench", ""]
    for i in range(1, n + 1):
        lines += ["```shell", f"$ echo {i}", f"{i}", "```", ""]
    return "\n".join(lines)


def prysk_file(n: int) -> str:
    return "".join(f"  $ echo {i}\n  {i}\n" for i in range(1, n + 1))


def big_guide(pipeline: str) -> str:
    return "\n".join(
        [
            "# Bench: big output",
            "",
            "* [ ] 1. Print a lot",
            "",
            "### 1. Print a lot",
            "",
            "```bash { .run }",
            pipeline,
            "```",
            "",
        ]
    )


# -- running -----------------------------------------------------------------------------------


@dataclass
class Case:
    """One subprocess to time: how to prepare a fresh folder, what to run, how to check."""

    name: str
    files: dict[str, str]
    argv: Sequence[str]
    check: Callable[[Path, subprocess.CompletedProcess[bytes]], None]


def fresh_dir(base: Path, files: dict[str, str]) -> Path:
    work = Path(tempfile.mkdtemp(prefix="run-", dir=base))
    for name, text in files.items():
        (work / name).write_text(text)
    return work


FAILURES: list[str] = []
"""Runs that did not complete and were repeated: reported with the figures."""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_case(base: Path, case: Case, attempts: int = 3) -> tuple[float, float]:
    """Run ``case`` in a fresh folder (a fresh, unticked guide); return its wall-clock and
    CPU seconds (user + system of the process and every process it waited for: on a shared
    machine, other work inflates wall-clock time but hardly CPU time).

    A run that does not complete is recorded in FAILURES and tried again, up to
    ``attempts`` times in all; then BenchError.
    """
    for attempt in range(1, attempts + 1):
        try:
            return _run_case_once(base, case)
        except BenchError as exc:
            lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
            why = next((ln for ln in reversed(lines) if ln.startswith("Error:")), lines[0])
            FAILURES.append(f"{case.name}: {why}")
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def _run_case_once(base: Path, case: Case) -> tuple[float, float]:
    work = fresh_dir(base, case.files)
    try:
        cpu = _children_cpu()
        started = time.perf_counter()
        proc = subprocess.run(
            list(case.argv),
            cwd=work,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
        elapsed = time.perf_counter() - started
        cpu = _children_cpu() - cpu
        case.check(work, proc)
        return elapsed, cpu
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _fail(case: str, proc: subprocess.CompletedProcess[bytes], why: str) -> BenchError:
    tail = (proc.stdout[-800:] + b"\n" + proc.stderr[-800:]).decode("utf-8", "replace")
    return BenchError(f"{case}: {why} (exit {proc.returncode})\n{tail}")


def check_runbook(
    guide: str, steps: int
) -> Callable[[Path, subprocess.CompletedProcess[bytes]], None]:
    def check(work: Path, proc: subprocess.CompletedProcess[bytes]) -> None:
        if proc.returncode != 0:
            raise _fail(f"runbook exec {guide}", proc, "did not finish")
        ticked = (work / guide).read_text().count("* [x] ")
        if ticked != steps:
            raise _fail(f"runbook exec {guide}", proc, f"{ticked} of {steps} steps ticked")

    return check


def check_byexample(n: int) -> Callable[[Path, subprocess.CompletedProcess[bytes]], None]:
    def check(work: Path, proc: subprocess.CompletedProcess[bytes]) -> None:
        out = proc.stdout.decode("utf-8", "replace")
        if proc.returncode != 0 or f"Pass: {n} Fail: 0" not in out:
            raise _fail("byexample", proc, f"expected {n} passing examples")

    return check


def check_prysk(work: Path, proc: subprocess.CompletedProcess[bytes]) -> None:
    if proc.returncode != 0 or b"0 failed" not in proc.stdout:
        raise _fail("prysk", proc, "the test did not pass")


@dataclass
class Tool:
    label: str
    """Row label."""
    one: Case
    many: Case


def tools(n: int, notes: list[str]) -> list[Tool]:
    rows = [
        Tool(
            "runbook exec: 1 step x N blocks",
            Case(
                "rb-blocks-1",
                {"g.md": guide_blocks(1)},
                [*RUNBOOK, "exec", "--yes", "g.md"],
                check_runbook("g.md", 1),
            ),
            Case(
                "rb-blocks-n",
                {"g.md": guide_blocks(n)},
                [*RUNBOOK, "exec", "--yes", "g.md"],
                check_runbook("g.md", 1),
            ),
        ),
        Tool(
            "runbook exec: N steps x 1 block",
            Case(
                "rb-steps-1",
                {"g.md": guide_steps(1)},
                [*RUNBOOK, "exec", "--yes", "g.md"],
                check_runbook("g.md", 1),
            ),
            Case(
                "rb-steps-n",
                {"g.md": guide_steps(n)},
                [*RUNBOOK, "exec", "--yes", "g.md"],
                check_runbook("g.md", n),
            ),
        ),
        Tool(
            "runbook exec: N '$ echo' blocks, output checked",
            Case(
                "rb-prompt-1",
                {"g.md": guide_prompts(1)},
                [*RUNBOOK, "exec", "--yes", "g.md"],
                check_runbook("g.md", 1),
            ),
            Case(
                "rb-prompt-n",
                {"g.md": guide_prompts(n)},
                [*RUNBOOK, "exec", "--yes", "g.md"],
                check_runbook("g.md", 1),
            ),
        ),
    ]
    byexample = script("byexample")
    if byexample is None:
        notes.append(
            "byexample: NOT INSTALLED, row skipped (pip install -r bench/requirements-exec.txt)"
        )
    else:
        # -j 1: one worker, one shell, like the others.
        argv = [byexample, "-l", "shell", "--jobs", "1", "--no-enhance-diff", "ex.md"]
        rows.append(
            Tool(
                "byexample -l shell (pexpect, bash)",
                Case("byexample-1", {"ex.md": byexample_file(1)}, argv, check_byexample(1)),
                Case("byexample-n", {"ex.md": byexample_file(n)}, argv, check_byexample(n)),
            )
        )
    prysk = script("prysk")
    if prysk is None:
        notes.append(
            "prysk: NOT INSTALLED, row skipped (pip install -r bench/requirements-exec.txt)"
        )
    else:
        argv = [prysk, "--shell", shutil.which("bash") or "/bin/bash", "t.t"]
        rows.append(
            Tool(
                "prysk (one bash script, --shell bash)",
                Case("prysk-1", {"t.t": prysk_file(1)}, argv, check_prysk),
                Case("prysk-n", {"t.t": prysk_file(n)}, argv, check_prysk),
            )
        )
    return rows


def bench_commands(
    base: Path,
    n: int,
    reps: int,
    budget: float,
    min_reps: int,
    notes: list[str],
    only: Sequence[str] = (),
) -> dict[str, Any]:
    """Time every tool with 1 and with ``n`` commands, interleaved.

    A tool whose ``n``-command run is slow gets fewer repetitions (at least ``min_reps``), so
    that its repetitions take about ``budget`` seconds; the rest get ``reps``. With
    ``only``, just the rows whose label holds one of those words.
    """
    rows = [t for t in tools(n, notes) if not only or any(w in t.label for w in only)]
    one = {t.label: Series(t.one.name) for t in rows}
    many = {t.label: Series(t.many.name) for t in rows}
    cpu_one = {t.label: Series(t.one.name) for t in rows}
    cpu_many = {t.label: Series(t.many.name) for t in rows}
    quota: dict[str, int] = {}
    # Warm-up: page cache, .pyc files, and a first check that every tool works.
    for t in rows:
        run_case(base, t.one)
        warm, _ = run_case(base, t.many)
        quota[t.label] = max(min(reps, int(budget / warm)), min(reps, min_reps))
        if quota[t.label] < reps:
            notes.append(
                f"{t.label}: {quota[t.label]} repetitions, not {reps} "
                f"(one run of {n} commands took {warm:.1f} s)"
            )
    for rep in range(reps):
        for t in rows:
            if rep < quota[t.label]:
                for series, cpu, case in ((one, cpu_one, t.one), (many, cpu_many, t.many)):
                    seconds, used = run_case(base, case)
                    series[t.label].values.append(seconds)
                    cpu[t.label].values.append(used)
    out: dict[str, Any] = {}
    for t in rows:
        t1, tn = one[t.label], many[t.label]
        paired = sorted((b - a) / (n - 1) for a, b in zip(t1.values, tn.values, strict=True))
        c1, cn = cpu_one[t.label], cpu_many[t.label]
        out[t.label] = {
            "t1": t1.as_json(),
            "tn": tn.as_json(),
            "cpu1": c1.as_json(),
            "cpun": cn.as_json(),
            "reps": len(tn.values),
            "per_command": (tn.median - t1.median) / (n - 1),
            "per_command_cpu": (cn.median - c1.median) / (n - 1),
            "per_command_from_min": (tn.min - t1.min) / (n - 1),
            "per_command_paired": {
                "min": paired[0],
                "max": paired[-1],
                "median": statistics.median(paired),
            },
        }
    return out


# -- library level -----------------------------------------------------------------------------


def session_per_block(n: int, reps: int) -> Series | str:
    """Seconds per ``Session.run`` of a trivial block, shell start-up excluded."""
    try:
        from runbook.shell import Session
    except ImportError as exc:
        return f"runbook.shell not importable: {exc}"
    series = Series("session")
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(reps + 1):  # the first is a warm-up
            with Session(cwd=tmp) as session:
                session.run("true\n", timeout=30)
                started = time.perf_counter()
                for i in range(n):
                    result = session.run(f"echo {i}\n", timeout=30)
                    if result.status != 0:
                        raise BenchError(f"Session.run: block {i} ended {result.outcome}")
                series.values.append((time.perf_counter() - started) / n)
    series.values.pop(0)
    return series


def pexpect_per_command(n: int, reps: int) -> Series:
    """Seconds per command of a bare pexpect loop: the floor of any pty-driven tool."""
    import pexpect

    series = Series("pexpect")
    env = dict(os.environ, TERM="dumb", PS1="__P$?__ ")
    for _ in range(reps + 1):
        child = pexpect.spawn(
            "bash",
            ["--norc", "--noprofile", "--noediting", "-i"],
            env=env,
            encoding=None,
            echo=False,
            timeout=30,
        )
        child.delaybeforesend = None  # pexpect sleeps 50 ms before every send by default
        child.sendline(b"PS1='__P''$?__ '")
        child.expect(rb"__P0__ ")
        child.expect(rb"__P0__ ")
        started = time.perf_counter()
        for i in range(n):
            child.sendline(f"echo {i}".encode())
            child.expect(rb"__P(\d+)__ ")
        series.values.append((time.perf_counter() - started) / n)
        child.close(force=True)
    series.values.pop(0)
    return series


# -- big output --------------------------------------------------------------------------------


def _vm_hwm(pid: int) -> int | None:
    """Return the peak RSS (VmHWM) of ``pid`` in bytes, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


@dataclass
class ExecRun:
    seconds: float
    block_seconds: float | None
    hwm: int | None
    """Peak RSS of the runbook process itself (sampled VmHWM), bytes."""
    maxrss: int
    """wait4 ru_maxrss: runbook or its largest waited-for descendant, bytes."""


def exec_measured(base: Path, guide_text: str) -> ExecRun:
    """Run ``runbook exec`` on a one-block guide, stdout to /dev/null; time and memory."""
    work = fresh_dir(base, {"g.md": guide_text})
    try:
        with open(os.devnull, "wb") as devnull, tempfile.TemporaryFile() as err:
            started = time.perf_counter()
            proc = subprocess.Popen(
                [*RUNBOOK, "exec", "--yes", "g.md"],
                cwd=work,
                stdin=subprocess.DEVNULL,
                stdout=devnull,
                stderr=err,
            )
            hwm: list[int] = []
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    value = _vm_hwm(proc.pid)
                    if value is not None:
                        hwm.append(value)
                    done.wait(0.02)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            # wait4 gives this child's own rusage; Popen.wait would not.
            _, status, usage = os.wait4(proc.pid, 0)
            elapsed = time.perf_counter() - started
            done.set()
            sampler.join()
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode != 0:
                err.seek(0)
                raise BenchError(
                    f"runbook exec (big output) exit {proc.returncode}\n"
                    + err.read()[-800:].decode("utf-8", "replace")
                )
        block = None
        for journal in (work / ".runbook" / "journal").glob("*.jsonl"):
            for line in journal.read_text().splitlines():
                record = json.loads(line)
                if record.get("event") == "action-end":
                    block = float(record["duration"])
        return ExecRun(elapsed, block, max(hwm) if hwm else None, usage.ru_maxrss * 1024)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bash_seconds(pipeline: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["bash", "-c", f"{pipeline} | cat > /dev/null"], check=True, stdin=subprocess.DEVNULL
    )
    return time.perf_counter() - started


def pty_seconds(pipeline: str, expected: int) -> float:
    """Read the pipeline's output from a pty in a plain Python loop (64 KiB reads)."""
    import pexpect

    started = time.perf_counter()
    child = pexpect.spawn("bash", ["-c", f"stty -opost; {pipeline}"], encoding=None, echo=False)
    fd = child.child_fd
    total = 0
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    os.set_blocking(fd, False)
    while True:  # the same read pattern as runbook.shell: poll, then a non-blocking read
        poller.poll(100)
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            continue
        except OSError:  # EIO: the other side closed
            break
        if not data:
            break
        total += len(data)
    elapsed = time.perf_counter() - started
    child.delayafterclose = 0.0
    child.close(force=True)
    if abs(total - expected) > 4096:
        raise BenchError(f"pty floor read {total} bytes, expected {expected}")
    return elapsed


def bench_big(base: Path, size: int, reps: int, variants: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    # Memory with (almost) no output, for comparison: memory should not grow with output.
    small = [exec_measured(base, big_guide("echo 1")) for _ in range(max(reps, 1))]
    out["rss_1_command"] = {
        "vmhwm": statistics.median(r.hwm for r in small if r.hwm)
        if any(r.hwm for r in small)
        else None,
        "maxrss": statistics.median(r.maxrss for r in small),
        "seconds": statistics.median(r.seconds for r in small),
    }
    for variant in variants:
        pipeline = PIPELINES[variant].format(n=size)
        text = big_guide(pipeline)
        exec_runs: list[ExecRun] = []
        bash = Series(f"bash-{variant}")
        pty = Series(f"pty-{variant}")
        bash_seconds(pipeline)  # warm-up
        for _ in range(reps):
            exec_runs.append(exec_measured(base, text))
            bash.values.append(bash_seconds(pipeline))
            pty.values.append(pty_seconds(pipeline, size))
        total = Series(f"exec-{variant}", [r.seconds for r in exec_runs])
        blocks = [r.block_seconds for r in exec_runs if r.block_seconds]
        out[variant] = {
            "pipeline": pipeline,
            "bytes": size,
            "exec_seconds": total.as_json(),
            "exec_block_seconds": Series("b", blocks).as_json() if blocks else None,
            "bash_seconds": bash.as_json(),
            "pty_seconds": pty.as_json(),
            "vmhwm": [r.hwm for r in exec_runs],
            "maxrss": [r.maxrss for r in exec_runs],
        }
    return out


# -- profile -----------------------------------------------------------------------------------


def profile_exec(base: Path, text: str, top: int = 20) -> str:
    """cProfile one ``runbook exec`` of the guide ``text``; return the top functions."""
    work = fresh_dir(base, {"g.md": text})
    prof = work / "exec.prof"
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cProfile",
                "-o",
                str(prof),
                "-m",
                "runbook",
                "exec",
                "--yes",
                "g.md",
            ],
            cwd=work,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        buf = io.StringIO()
        stats = pstats.Stats(str(prof), stream=buf)
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top + 10)
        report = buf.getvalue()
        return re.sub(r"/[^\s:]*/(site-packages|lib/python3\.\d+)/", "", report).replace(
            str(ROOT) + "/", ""
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- report ------------------------------------------------------------------------------------


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.3f}"


def mb(n: float | None) -> str:
    return "-" if n is None else f"{n / 1e6:.1f}"


def print_commands(res: dict[str, Any], n: int, reps: int) -> None:
    print(f"\n1. Per-command overhead, {n} trivial commands (echo N), up to {reps} repetitions")
    print("   per cmd = (median T(N) - median T(1)) / (N - 1); [range] = min..max of the same")
    print("   figure per repetition (paired runs); 'from min' = (min T(N) - min T(1)) / (N - 1),")
    print("   steadier when the machine is noisy. T in ms: median (min..max). 'CPU' = the same")
    print("   per-command figure from the CPU time of the tool and its children (bash included).")
    print("   Every tool's stdout and stderr go to a pipe.\n")
    head = (
        f"   {'tool':<48} {'reps':>4} {'T(1) ms':>22} {'T(N) ms':>24} "
        f"{'per cmd ms':>11} {'from min':>9} {'CPU':>7}  range"
    )
    print(head)
    print("   " + "-" * (len(head) + 12))
    for label, r in res.items():
        t1, tn = r["t1"], r["tn"]
        p = r["per_command_paired"]
        print(
            f"   {label:<48} {r['reps']:>4} "
            f"{t1['median'] * 1e3:7.1f} ({t1['min'] * 1e3:5.1f}..{t1['max'] * 1e3:5.1f}) "
            f"{tn['median'] * 1e3:8.1f} ({tn['min'] * 1e3:6.1f}..{tn['max'] * 1e3:6.1f}) "
            f"{ms(r['per_command']):>11} {ms(r['per_command_from_min']):>9}"
            f" {ms(r.get('per_command_cpu')):>7}  [{ms(p['min'])}..{ms(p['max'])}]"
        )


def print_library(session: Series | str, floor: Series | None, n: int) -> None:
    if floor is None:
        return
    print(f"\n   Library level, {n} blocks in one running shell (start-up excluded), per command:")
    if isinstance(session, str):
        print(f"   {'runbook.shell.Session.run':<48} skipped: {session}")
    else:
        print(
            f"   {'runbook.shell.Session.run':<48} {ms(session.median):>11} ms "
            f"({ms(session.min)}..{ms(session.max)})"
        )
    print(
        f"   {'bare pexpect sendline+expect (floor)':<48} {ms(floor.median):>11} ms "
        f"({ms(floor.min)}..{ms(floor.max)})"
    )


def print_ratios(res: dict[str, Any]) -> dict[str, float]:
    ratios: dict[str, float] = {}
    peers = [k for k in res if not k.startswith("runbook")]
    mine = [k for k in res if k.startswith("runbook")]
    if not peers:
        return ratios
    print("\n   Ratios of per-command overhead (runbook / peer):")
    for m in mine:
        for p in peers:
            key = f"{m} / {p}"
            shown = []
            for figure, tag in (("per_command", "medians"), ("per_command_from_min", "min")):
                peer = res[p][figure]
                if peer > 0:
                    ratios[f"{key} ({tag})"] = res[m][figure] / peer
                    shown.append(f"{res[m][figure] / peer:7.2f}x ({tag})")
                else:
                    shown.append(f"{'n/a':>8} ({tag}: peer <= 0)")
            print(f"   {key:<88} {'  '.join(shown)}")
    return ratios


def rate_row(size: int, label: str, s: dict[str, Any] | None, sub: float = 0.0) -> None:
    """Print MB/s as median (slowest..fastest) and the median seconds."""
    if s is None:
        print(f"     {label:<54} -")
        return
    med, lo, hi = s["median"] - sub, s["min"] - sub, s["max"] - sub
    print(
        f"     {label:<54} {size / med / 1e6:8.1f} MB/s"
        f"  ({size / hi / 1e6:.1f}..{size / lo / 1e6:.1f})   {med:6.3f} s"
    )


def print_big(res: dict[str, Any], startup: float | None) -> None:
    if not res:
        return
    print("\n2. A command printing a lot of output: throughput and memory")
    print("   runbook exec --yes with its stdout sent to /dev/null (the console is not measured;")
    print("   the transcript under .runbook/ is written as in any run). MB/s = 1e6 bytes/s.\n")
    for variant in PIPELINES:
        if variant not in res:
            continue
        r = res[variant]
        size = r["bytes"]
        print(f"   pipeline: {r['pipeline']}")
        rate_row(size, "runbook exec, end to end (incl. start-up)", r["exec_seconds"])
        if startup is not None:
            rate_row(
                size, "runbook exec, end to end minus 1-command run", r["exec_seconds"], startup
            )
        rate_row(size, "runbook exec, the block alone (journal duration)", r["exec_block_seconds"])
        rate_row(size, "plain bash: pipeline | cat > /dev/null", r["bash_seconds"])
        rate_row(size, "pty floor: python os.read(64 KiB) loop on a pty", r["pty_seconds"])
        hwm = [v for v in r["vmhwm"] if v]
        print(
            f"     {'runbook peak RSS (VmHWM of the runbook process)':<54} "
            f"{mb(statistics.median(hwm)) if hwm else '-':>8} MB"
            f"  (max {mb(max(hwm)) if hwm else '-'})"
        )
        print(
            f"     {'wait4 ru_maxrss (runbook or a child, the largest)':<54} "
            f"{mb(statistics.median(r['maxrss'])):>8} MB"
        )
    small = res.get("rss_1_command")
    if small:
        print(
            f"   for comparison, a 1-command run: VmHWM {mb(small['vmhwm'])} MB, "
            f"ru_maxrss {mb(small['maxrss'])} MB, {small['seconds']:.3f} s"
        )


# -- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few repetitions")
    parser.add_argument("--json", metavar="FILE", type=Path, help="save the figures as JSON")
    parser.add_argument("--reps", type=int, help="repetitions (default 11, --quick 3)")
    parser.add_argument(
        "--commands", type=int, default=COMMANDS, help=f"commands per input (default {COMMANDS})"
    )
    parser.add_argument(
        "--bytes",
        type=int,
        default=BIG_BYTES,
        help=f"output of the big command (default {BIG_BYTES})",
    )
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile one runbook exec of the N-block guide"
    )
    parser.add_argument(
        "--only",
        metavar="WORD",
        action="append",
        default=[],
        help="time only the rows of part 1 whose label holds WORD (repeatable; e.g. 'steps', "
        "'byexample'), and skip parts 2 and the library figures",
    )
    args = parser.parse_args(argv)
    reps = args.reps or (3 if args.quick else 11)
    big_reps = 1 if args.quick else 5
    variants = ["zeros"] if args.quick else list(PIPELINES)
    n = args.commands
    if n < 2:
        parser.error("--commands must be at least 2")

    notes: list[str] = []
    started = time.perf_counter()
    print(
        f"runbook {version('runbook') or '?'} ({git_commit() or 'no git'}), "
        f"byexample {version('byexample') or 'not installed'}, "
        f"prysk {version('prysk') or 'not installed'}, pexpect {version('pexpect')}; "
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs"
        + (" [quick]" if args.quick else "")
    )
    with tempfile.TemporaryDirectory(prefix="bench-exec-") as tmp:
        base = Path(tmp)
        try:
            commands = bench_commands(
                base,
                n,
                reps,
                6.0 if args.quick else 20.0,
                1 if args.quick else 3,
                notes,
                args.only,
            )
            session = session_per_block(n, reps) if not args.only else "skipped (--only)"
            floor = pexpect_per_command(n, reps) if not args.only else None
            big = bench_big(base, args.bytes, big_reps, variants) if not args.only else {}
            profile = (
                {
                    "1 step x N blocks": profile_exec(base, guide_blocks(n)),
                    "N steps x 1 block": profile_exec(base, guide_steps(n)),
                }
                if args.profile
                else None
            )
        except BenchError as exc:
            print(f"\nERROR: {exc}", file=sys.stderr)
            return 1
    for note in notes:
        print(f"NOTE: {note}")
    if FAILURES:
        print(f"NOTE: {len(FAILURES)} run(s) did not complete and were repeated:")
        for failure in FAILURES:
            print(f"      {failure}")
    print_commands(commands, n, reps)
    print_library(session, floor, n)
    ratios = print_ratios(commands)
    rb_startup = commands.get("runbook exec: 1 step x N blocks", {}).get("t1", {}).get("median")
    print_big(big, rb_startup)
    for shape, report in (profile or {}).items():
        print(f"\n3. cProfile of one runbook exec, {shape} (N = {n})\n")
        print(report)
    elapsed = time.perf_counter() - started
    print(f"\n(bench took {elapsed:.0f} s)")
    if args.json:
        data = {
            "meta": {
                "runbook": version("runbook"),
                "commit": git_commit(),
                "byexample": version("byexample"),
                "prysk": version("prysk"),
                "pexpect": version("pexpect"),
                "python": platform.python_version(),
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
                "quick": args.quick,
                "reps": reps,
                "commands": n,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "seconds": elapsed,
                "notes": notes,
                "failed_runs_repeated": FAILURES,
            },
            "commands": commands,
            "session_per_block": session.as_json() if isinstance(session, Series) else session,
            "pexpect_floor_per_command": floor.as_json() if floor else None,
            "ratios": ratios,
            "big_output": big,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=2) + "\n")
        print(f"figures saved to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
