"""Hostile files end with a clear error and exit 3, quickly: FIFOs, devices, huge files."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

RUNBOOK = (sys.executable, "-m", "runbook")


def _list(path: Path | str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [*RUNBOOK, "list", str(path)],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=20,
    )
    return result, time.monotonic() - started


def test_a_fifo_given_as_a_guide_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "guide.md"
    os.mkfifo(fifo)
    result, seconds = _list(fifo, tmp_path)
    assert result.returncode == 3, result.stderr
    assert "is a FIFO (named pipe), not a markdown file" in result.stderr
    assert "Traceback" not in result.stderr
    assert seconds < 10


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_given_as_a_guide_is_refused(tmp_path: Path, device: str) -> None:
    result, seconds = _list(device, tmp_path)
    assert result.returncode == 3, result.stderr
    assert "is a character device, not a markdown file" in result.stderr
    assert seconds < 10
