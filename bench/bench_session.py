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
from runbook.shell import LOCAL_SHELL, Base64Delivery, Session, Transport, TtyReadDetector, protocol

# The parts of what runs a block (the typed line and the functions it calls), each with
# what stands in for it when its cost is measured by leaving it out (`--parts`): (the piece
# of runbook.shell.protocol, the text, its stand-in). Without them a block is not safe to
# run: the figures only say what each guarantee costs.
Piece = tuple[str, str, str]
PARTS: dict[str, list[Piece]] = {
    "begin mark (input waits told from bash reading the line)": [
        ("_BEFORE", "builtin printf '__RG%%s:0;' %s; ", ": %s; ")
    ],
    "own variables set first (one made read-only refuses the line)": [
        ("_BEFORE", protocol._OWN_VARIABLES + "; ", "")
    ],
    "ERR trap (stop at the first failing command, note its line)": [
        ("_BEFORE", 'builtin trap -- "$__rb_trap" ERR; builtin set -E; ', ""),
        ("_AFTER", "builtin trap - ERR; ", ""),
    ],
    "muting group (runbook's lines in no trace)": [
        ("_LINE", "{ __rb_q=$? __rb_x=$-; \\builtin set +x; } 2>/dev/null; ", "__rb_q=$?; ")
    ],
    "streams back (a block's exec 2>file hides no end mark)": [
        ("_AFTER", "command exec 1>&$__rb_out 2>&$__rb_err; ", "")
    ],
    "editing off (a block's set -o vi hides no prompt)": [
        ("_AFTER", protocol._NO_EDITING + "; ", "")
    ],
    "own streams checked (a block's exec 11>file hides no prompt)": [
        ("_AFTER", protocol._OWN_STREAMS + "; ", "")
    ],
}


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


def bench_parts(count: int, rounds: int) -> None:
    """Time ``count`` blocks with each part of what runs a block left out in turn."""
    originals = {name: getattr(protocol, name) for name in ("_BEFORE", "_AFTER", "_LINE")}

    def leave_out(pieces: list[Piece]) -> None:
        for name, value in originals.items():
            setattr(protocol, name, value)
        for name, old, new in pieces:
            text = getattr(protocol, name)
            raw = isinstance(text, bytes)
            old_text = old.encode() if raw else old
            assert old_text in text, (name, old)  # protocol.py changed: update PARTS
            setattr(protocol, name, text.replace(old_text, new.encode() if raw else new))

    variants = {"the whole of it": [], **{f"without the {k}": v for k, v in PARTS.items()}}
    variants["without all of them"] = list(dict.fromkeys(f for v in PARTS.values() for f in v))
    wall: dict[str, list[float]] = {k: [] for k in variants}
    shell: dict[str, list[float]] = {k: [] for k in variants}
    try:
        for _ in range(rounds):
            for label, pieces in variants.items():
                leave_out(pieces)
                with Session(redactor=Redactor([])) as session:
                    for _ in range(20):
                        session.run("true", timeout=10)
                    stat = Path(f"/proc/{session.pid}/schedstat")
                    ran = int(stat.read_text().split()[0])
                    start = time.perf_counter()
                    for i in range(count):
                        session.run(f"echo {i}", timeout=10)
                    wall[label].append((time.perf_counter() - start) / count)
                    shell[label].append((int(stat.read_text().split()[0]) - ran) / 1e9 / count)
    finally:
        leave_out([])
    print(f"Session.run per block, {count} blocks, medians of {rounds} interleaved rounds:")
    whole = statistics.median(wall["the whole of it"])
    for label in variants:
        w, b = statistics.median(wall[label]) * 1000, statistics.median(shell[label]) * 1000
        saved = "" if label == "the whole of it" else f"   ({w - whole * 1000:+.3f} ms)"
        print(f"  {label:<74} {w:6.3f} ms, bash {b:6.3f} ms CPU{saved}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--blocks", type=int, default=200, help="blocks per overhead run")
    parser.add_argument("--megabytes", type=int, default=100, help="output size to stream")
    parser.add_argument(
        "--parts",
        type=int,
        metavar="ROUNDS",
        help="only time what each part of a block's line costs, left out in turn",
    )
    args = parser.parse_args()
    if args.parts:
        bench_parts(args.blocks, args.parts)
        return
    bench_blocks(args.blocks)
    bench_output(args.megabytes)


if __name__ == "__main__":
    main()
