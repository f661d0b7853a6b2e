"""The fuzz run keeps working: a short run of it finds no traceback, hang or stray exit."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_a_short_fuzz_run_is_clean() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fuzz_guides.py"), "--guides", "80", "--seed", "7"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    figures = dict(line.split(None, 1) for line in done.stdout.splitlines() if line.strip())
    assert figures["guides"].strip() == "80"
    assert "tracebacks          0" in done.stdout
    assert "hangs               0" in done.stdout
