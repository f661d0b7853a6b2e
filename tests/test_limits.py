"""Hostile files end with a clear error and exit 3, quickly: FIFOs, devices, huge files."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli


def _list(path: Path | str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = run_cli(cwd, "list", str(path), timeout=20)
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


def _site_with_include(tmp_path: Path) -> Path:
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: s\nplugins:\n  - runbook:\n      include_dir: inc\n"
    )
    (tmp_path / "inc").mkdir()
    guide = tmp_path / "guide.md"
    guide.write_text("# G\n\n{% include '_part.md' %}\n")
    return guide


def test_a_fifo_given_as_an_include_is_refused_at_once(tmp_path: Path) -> None:
    guide = _site_with_include(tmp_path)
    os.mkfifo(tmp_path / "inc" / "_part.md")
    result, seconds = _list(guide, tmp_path)
    assert result.returncode == 3, result.stderr
    assert "guide.md:3: cannot read include '_part.md'" in result.stderr
    assert "FIFO" in result.stderr and "Traceback" not in result.stderr
    assert seconds < 10


def test_an_include_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    guide = _site_with_include(tmp_path)
    (tmp_path / "inc" / "_part.md").write_bytes(b"x" * (5 * 1024 * 1024))
    result, seconds = _list(guide, tmp_path)
    assert result.returncode == 3, result.stderr
    assert "snippets are limited to 4 MiB" in result.stderr
    assert seconds < 10


TEMPLATE_ATTACKS = {
    "code": ("{{ cycler.__init__.__globals__.os.popen('touch PWNED').read() }}", "unsafe"),
    "range": ("{{ range(10**9)|list }}", "Range too big"),
    "repeat": ("{{ 'a' * 10**10 }}", "repeating a value"),
    "list-repeat": ("{{ [1] * 10**9 }}", "repeating a value"),
    "width": ("{{ 'x'|center(10**10) }}", "MiB"),
    "format": ("{{ '%*s' % (10**10, 'x') }}", "format width"),
    "loop": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "longer than",
    ),
}


@pytest.mark.parametrize("name", sorted(TEMPLATE_ATTACKS))
@pytest.mark.parametrize("command", ["list", "lint"])
def test_template_code_cannot_run_commands_hang_or_exhaust_memory(
    tmp_path: Path, name: str, command: str
) -> None:
    template, said = TEMPLATE_ATTACKS[name]
    (tmp_path / "guide.md").write_text(f"# G\n\n{template}\n")
    started = time.monotonic()
    result = run_cli(tmp_path, command, "guide.md", timeout=30)
    output = result.stdout + result.stderr
    assert result.returncode == 3, output
    assert said in output and "Traceback" not in output
    assert time.monotonic() - started < 10
    assert not (tmp_path / "PWNED").exists()


def test_a_huge_repeat_range_is_refused_at_once(tmp_path: Path) -> None:
    (tmp_path / "guide.md").write_text(
        "# G\n\n* [ ] 1. A\n* [ ] 2. B\n\n### 1. A\n\nx\n\n### 2. B\n\n"
        "<!-- runbook: repeat 1-1000000000 -->\n"
    )
    result, seconds = _list(tmp_path / "guide.md", tmp_path)
    assert result.returncode == 3, result.stderr
    assert "'repeat' names steps up to" in result.stdout + result.stderr
    assert seconds < 10
