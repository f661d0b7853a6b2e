"""Shared test helpers."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED = ROOT.parent / "shared"
# Expected files are rewritten (for review in git diff) with RUNBOOK_REGEN=1.
REGEN = os.environ.get("RUNBOOK_REGEN") == "1"


@pytest.fixture
def runbook_cmd() -> list[str]:
    """Return the argv prefix that runs the CLI in a subprocess."""
    return [sys.executable, "-m", "runbook"]
