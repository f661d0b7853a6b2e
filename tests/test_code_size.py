"""No room a warehouse: runbook's modules, classes and functions stay the size of the rooms of
the codebases it learns from (mdformat, markdown-it-py, mkdocs)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

MODULE_LINES = 700
CLASS_LINES = 400
FUNCTION_LINES = 100
SOURCES = sorted((ROOT / "runbook").rglob("*.py"))


def _rooms(path: Path) -> list[tuple[str, int, int]]:
    """Return (what, size, limit) for the module and each class and function in it."""
    text = path.read_text(encoding="utf-8")
    found = [(str(path.relative_to(ROOT)), text.count("\n"), MODULE_LINES)]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            limit = CLASS_LINES
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            limit = FUNCTION_LINES
        else:
            continue
        assert node.end_lineno is not None
        found.append(
            (f"{path.name}:{node.lineno} {node.name}", node.end_lineno - node.lineno + 1, limit)
        )
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_room_stays_small(path: Path) -> None:
    too_big = [
        f"{what}: {size} lines (at most {limit})"
        for what, size, limit in _rooms(path)
        if size > limit
    ]
    assert not too_big, too_big


def test_the_limits_look_at_real_code() -> None:
    assert len(SOURCES) > 20
    sizes = [size for path in SOURCES for _, size, _ in _rooms(path)]
    assert max(sizes) > FUNCTION_LINES  # modules are measured, not only functions
