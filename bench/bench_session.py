"""Measure the shell session layer: per-block overhead, output throughput, peak memory.

Run with ``python bench/bench_session.py``; prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pexpect

from runbook.redact import Redactor
from runbook.shell import LOCAL_SHELL, Base64Delivery, Session, Transport, TtyReadDetector


def _vm(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(match.group(1)) * 1024 if match else 0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _timings(run: Callable[[], object], count: int) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def _report(label: str, times: list[float]) -> None:
    times = sorted(times)
    median = statistics.median(times) * 1000
    p90 = times[int(len(times) * 0.9) - 1] * 1000
    print(f"{label:<44} median {median:7.3f} ms   p90 {p90:7.3f} ms   n={len(times)}")


def bench_blocks(count: int) -> None:
    """Run `true` ``count`` times in one session."""
    with Session(redactor=Redactor(["not-in-output"])) as session:
        session.run("true", timeout=10)
        _report(
            "session.run('true'), file delivery",
            _timings(lambda: session.run("true", timeout=10), count),
        )
    transport = Transport("local", LOCAL_SHELL, Base64Delivery, TtyReadDetector())
    with Session(transport=transport) as session:
        session.run("true", timeout=10)
        _report(
            "session.run('true'), base64 delivery",
            _timings(lambda: session.run("true", timeout=10), count),
        )
    # Reference: what bare pexpect costs for one typed command and one prompt match.
    child = pexpect.spawn(LOCAL_SHELL[0], list(LOCAL_SHELL[1:]), env={**os.environ, "TERM": "dumb"})
    child.delaybeforesend = None
    child.sendline("PS1='PRO''MPT> '")
    child.expect_exact("PROMPT> ")

    def bare() -> None:
        child.sendline("true")
        child.expect_exact("PROMPT> ")

    _report("bare pexpect sendline+expect (reference)", _timings(bare, count))
    child.close(force=True)


def bench_output(megabytes: int) -> None:
    """Stream a large output through a session; compare with a pipe into cat."""
    size = megabytes * 1_000_000
    producer = f"head -c {size} /dev/zero | tr '\\0' a"
    start = time.perf_counter()
    subprocess.run(["bash", "-c", f"{producer} | cat > /dev/null"], check=True)
    baseline = time.perf_counter() - start

    seen = 0

    def count(chunk: bytes) -> None:
        nonlocal seen
        seen += len(chunk)

    with (
        tempfile.TemporaryFile() as transcript,
        Session(redactor=Redactor(["s3cret-canary"]), transcript=transcript) as session,
    ):
        session.run("true", timeout=10)
        tracked = _reset_peak()
        rss_before = _vm("VmRSS")
        start = time.perf_counter()
        result = session.run(producer, timeout=600, on_output=count)
        elapsed = time.perf_counter() - start
        peak = _vm("VmHWM")
        written = transcript.tell()
    assert result.ok and seen == size == written, (result, seen, written)
    print(f"{megabytes} MB through the session (redacted, transcript on disk):")
    print(f"  session   {elapsed:7.3f} s   {size / elapsed / 1e6:8.1f} MB/s")
    print(f"  cat       {baseline:7.3f} s   {size / baseline / 1e6:8.1f} MB/s  (same producer)")
    print(f"  ratio     {elapsed / baseline:7.2f} x")
    if tracked:
        growth = (peak - rss_before) / 1e6
        print(
            f"  RSS before {rss_before / 1e6:.1f} MB, peak during {peak / 1e6:.1f} MB "
            f"(+{growth:.2f} MB)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--blocks", type=int, default=200, help="blocks per overhead run")
    parser.add_argument("--megabytes", type=int, default=100, help="output size to stream")
    args = parser.parse_args()
    bench_blocks(args.blocks)
    bench_output(args.megabytes)


if __name__ == "__main__":
    main()
