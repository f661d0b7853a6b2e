"""Fixture-driven parse tests: a guide (and its site) in, the list --json view out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runbook.blocks import fence_attrs
from runbook.guide import load
from runbook.report import runbook_json
from tests.conftest import FIXTURES, REGEN

CASES = sorted(p for p in (FIXTURES / "parse").iterdir() if p.is_dir())


def _guide(case: Path) -> Path:
    found = sorted(case.rglob("guide.md"))
    assert found, f"{case} has no guide.md"
    return found[0]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_parse_fixture(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(case)
    got = runbook_json(load(_guide(case).relative_to(case)))
    expected_file = case / "expected.json"
    if REGEN or not expected_file.exists():
        expected_file.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n")
    assert got == json.loads(expected_file.read_text())


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        (
            'bash { .run host="new" timeout="900" }',
            (("class", "run"), ("host", "new"), ("timeout", "900")),
        ),
        (
            'bash { .run expect="Enter password:" send="<db-password>" }',
            (("class", "run"), ("expect", "Enter password:"), ("send", "<db-password>")),
        ),
        (
            "{ .bash .run #x k=bare k2='single q' }",
            (("class", "bash"), ("class", "run"), ("id", "x"), ("k", "bare"), ("k2", "single q")),
        ),
        ('yaml title="conf/app.yml"', (("title", "conf/app.yml"),)),
        ("bash", ()),
        ("", ()),
    ],
)
def test_fence_attributes(info: str, expected: tuple[tuple[str, str], ...]) -> None:
    assert fence_attrs(info) == expected
