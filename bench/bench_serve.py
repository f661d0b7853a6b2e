#!/usr/bin/env python3
"""Benchmark ``runbook serve``'s two latencies, side by side, in one run:

1. click → byte on disk: a click on an overview box in Chromium until the guide's box
   byte has changed in the file;
2. command-line tick → open page: ``runbook check``'s own library call (``set_parts``)
   ticking a box until the open page shows it (the moment the page script updates the
   item, seen by a MutationObserver).

Each is the median of N ticks (default 50), alternating tick and clear, on a copy of this
repository's site served by a real ``runbook serve`` subprocess and the parallel upgrade
guide in Debian's Chromium (driven by Playwright, launched as tests/test_browser.py does).
Goal: under 100 ms each.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
GUIDE = "docs/admin-guide/upgrading/parallel.md"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
GOAL_MS = 100.0
URL_LINE = re.compile(r"^(http://127\.0\.0\.1:\d+)/\?token=(\S+)$")
BOX = "input[data-rb-step='{}']"
# Records when the page script last changed an item of the checklist (epoch ms).
OBSERVE = """() => {
  window.rbChanged = 0;
  const watch = new MutationObserver(() => {
    window.rbChanged = performance.timeOrigin + performance.now();
  });
  document.querySelectorAll("li.task-list-item").forEach(li =>
    watch.observe(li, {attributes: true, attributeFilter: ["class"]}));
}"""


def copy_site(dest: Path) -> Path:
    """Copy this repository's site into ``dest``, the guide's checklist cleared."""
    dest.mkdir(parents=True)
    for name in ("mkdocs.yml", "docs", "snippets"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        else:
            shutil.copy(src, dest / name)
    guide = dest / GUIDE
    guide.write_bytes(re.sub(rb"(?m)^\* \[[xX]\]", b"* [ ]", guide.read_bytes()))
    return dest


def box_offset(data: bytes, number: int) -> int:
    """Return the offset of step ``number``'s box byte in the guide."""
    return data.index(f"* [ ] {number}.".encode()) + 3


def wait_byte(path: Path, offset: int, want: int, limit: float = 10.0) -> float:
    """Spin until the file's byte at ``offset`` is ``want``; return when (perf_counter)."""
    deadline = time.perf_counter() + limit
    with path.open("rb", buffering=0) as handle:
        while time.perf_counter() < deadline:
            if os.pread(handle.fileno(), 1, offset)[0] == want:
                return time.perf_counter()
            time.sleep(0.0002)
    raise TimeoutError("the byte never changed")


def clicks(page: Page, path: Path, number: int, n: int) -> list[float]:
    """Time ``n`` clicks on step ``number``'s box until its byte is on disk (ms)."""
    offset = box_offset(path.read_bytes(), number)
    indicator = page.locator(BOX.format(number)).locator("xpath=following-sibling::span[1]")
    times = []
    for i in range(n):
        want = ord("x") if i % 2 == 0 else ord(" ")
        box = indicator.bounding_box()
        assert box is not None, "the box is not on the page"
        began = time.perf_counter()
        page.mouse.click(box["x"] - 14, box["y"] + box["height"] / 2)
        times.append((wait_byte(path, offset, want) - began) * 1000)
        page.wait_for_function("!document.querySelector('li.rb-busy')", timeout=10_000)
    return times


def cli_ticks(page: Page, path: Path, number: int, n: int) -> list[float]:
    """Time ``n`` ticks by runbook check's code until the open page shows them (ms)."""
    from runbook.checklist import set_parts
    from runbook.guide import load

    times = []
    for i in range(n):
        checked = i % 2 == 0
        book = load(path)  # not timed: the command's loading, before its write
        page.evaluate("window.rbChanged = 0")
        began = time.time() * 1000
        set_parts(book, [(number, None)], checked)
        page.wait_for_function(
            f'window.rbChanged > 0 && document.querySelector("{BOX.format(number)}").checked'
            f" === {'true' if checked else 'false'}",
            timeout=10_000,
        )
        times.append(page.evaluate("window.rbChanged") - began)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=50, help="ticks per figure (default 50)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    os.chmod(work, 0o700)
    site = copy_site(work / "site")
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "runbook"), "serve", str(site), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    try:
        assert proc.stdout is not None
        found = URL_LINE.match(proc.stdout.readline().strip())
        assert found, "no URL line"
        base, token = found[1], found[2]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 1000})
            page.goto(f"{base}/?token={token}", timeout=120_000)
            page.goto(f"{base}/admin-guide/upgrading/parallel/")
            page.wait_for_selector("html[data-rb-live='1']", timeout=30_000)
            page.evaluate(OBSERVE)
            click_ms = clicks(page, site / GUIDE, 4, args.n)
            cli_ms = cli_ticks(page, site / GUIDE, 5, args.n)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    report(click_ms, cli_ms, args.n)
    return 0


def report(click_ms: list[float], cli_ms: list[float], n: int) -> None:
    """Print both figures side by side: median, min, 90th percentile, max."""

    def row(name: str, values: list[float]) -> str:
        ordered = sorted(values)
        p90 = ordered[int(0.9 * (len(ordered) - 1))]
        median = statistics.median(values)
        goal = "met" if median < GOAL_MS else "NOT met"
        return (
            f"| {name} | {median:.1f} | {ordered[0]:.1f} | {p90:.1f} | {ordered[-1]:.1f} | {goal} |"
        )

    print(f"runbook serve, {n} ticks each (ms; goal: median under {GOAL_MS:.0f} ms)")
    print("| figure | median | min | p90 | max | goal |")
    print("|---|---|---|---|---|---|")
    print(row("click -> byte on disk", click_ms))
    print(row("command-line tick -> open page", cli_ms))
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
