"""Shared test helpers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED = ROOT.parent / "shared"
# Expected files are rewritten (for review in git diff) with RUNBOOK_REGEN=1.
REGEN = os.environ.get("RUNBOOK_REGEN") == "1"


def run_cli(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m runbook ARGS`` in ``cwd`` without a terminal; return what it did."""
    return subprocess.run(
        [sys.executable, "-m", "runbook", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def mkdocs_build(
    site: Path, *, strict: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Build the site in ``site`` (into ``site/out``) with the real mkdocs; return what it did."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            *(["--strict"] if strict else []),
            "-d",
            str(site / "out"),
        ],
        cwd=site,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_step_guide(folder: Path, code: str, info: str = "bash { .run }") -> Path:
    """Write ``folder/guide.md``: a checklist and one step whose one block is ``code``."""
    return one_step_guide_of(folder, [code], info)


def one_step_guide_of(folder: Path, blocks: Sequence[str], info: str = "bash { .run }") -> Path:
    """Write ``folder/guide.md``: a checklist and one step with these blocks, in order."""
    fences = "\n".join(f"```{info}\n{code}\n```\n" for code in blocks)
    guide = folder / "guide.md"
    guide.write_text(f"# G\n\n* [ ] 1. Go\n\n### 1. Go\n\n{fences}", encoding="utf-8")
    return guide


@pytest.fixture
def runbook_cmd() -> list[str]:
    """Return the argv prefix that runs the CLI in a subprocess."""
    return [sys.executable, "-m", "runbook"]


GUIDE = Path("docs/admin-guide/upgrading/parallel.md")
SITE_PARTS = ("mkdocs.yml", "docs", "snippets", "sandbox")


def copy_site(dest: Path, parts: tuple[str, ...] = SITE_PARTS) -> Path:
    """Copy this repository's site (and sandbox) into ``dest``, without runtime leftovers."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in parts:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("var", "__pycache__"))
        else:
            shutil.copy(src, dest / name)
    return dest


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Copy the site, tick steps 1 and 3 of the upgrade guide, build it strictly."""
    from runbook.checklist import reset, set_steps
    from runbook.guide import load

    work = copy_site(tmp_path_factory.mktemp("site"), ("mkdocs.yml", "docs", "snippets"))
    # The working copy may carry ticks from `make demo`: start from a clean checklist.
    reset(load(work / GUIDE))
    set_steps(load(work / GUIDE), [1, 3], True)
    result = mkdocs_build(work)
    assert result.returncode == 0, result.stderr
    return work
