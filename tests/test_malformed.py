"""Malformed guides give a clear error naming file and line, exit 3, and never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runbook.errors import RunbookError
from runbook.guide import load
from tests.conftest import FIXTURES

MALFORMED = FIXTURES / "malformed"
EXPECTED: dict[str, dict[str, object]] = json.loads((MALFORMED / "expected.json").read_text())


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runbook", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("command", ["list", "lint"])
def test_malformed_guide(name: str, command: str) -> None:
    """``list`` stops at the first problem; ``lint`` reports it too, or all of ``"lint"``."""
    result = run_cli(command, name, cwd=MALFORMED)
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert result.returncode == EXPECTED[name]["exit"], output
    assert f"{EXPECTED[name]['where']}:" in output, output
    if command == "list" or "lint" not in EXPECTED[name]:
        assert str(EXPECTED[name]["message"]) in output, output
    assert "next:" in output  # every error says what to do


# Diagnostics of runbook.render; every other one is the parser's (fences, in these guides).
RENDER_CODES = {"IncludeError", "TemplateError"}


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if "lint" in EXPECTED[n]))
def test_lint_reports_every_problem_in_one_pass(name: str) -> None:
    """Each ``"lint"`` row is ``[file:line, code, message start]``, in order.

    Rendering problems are checked exactly. A row with code ``fence`` is any problem the
    parser finds at that line, whatever its wording: how fences are judged is the parser's
    business.
    """
    result = run_cli("lint", "--json", name, cwd=MALFORMED)
    assert result.returncode == EXPECTED[name]["exit"], result.stdout + result.stderr
    got = json.loads(result.stdout)["diagnostics"]
    rows = EXPECTED[name]["lint"]
    assert isinstance(rows, list)
    assert len(got) == len(rows), json.dumps(got, indent=2)
    for diag, (origin, code, message) in zip(got, rows, strict=True):
        assert diag["origin"] == origin, diag
        assert diag["level"] == "error", diag
        assert diag["hint"], diag  # every problem says what to do
        if code == "fence":
            assert diag["code"] not in RENDER_CODES, diag
        else:
            assert diag["code"] == code, diag
            assert diag["message"].startswith(message), diag


def test_lint_keeps_going_past_pages_that_cannot_render(tmp_path: Path) -> None:
    (tmp_path / "mkdocs.yml").write_text("site_name: x\ndocs_dir: .\n")
    (tmp_path / "_shared.md").write_text("shared {{ nope }}\n")
    (tmp_path / "a.md").write_text("# A\n\n{% include '_shared.md' %}\n")
    (tmp_path / "b.md").write_text("# B\n\n{% if %}\n{% include '_gone.md' %}\n")
    (tmp_path / "c.md").write_text("# C\n\n{% include '_shared.md' %}\n\n{{ also_nope }}\n")
    result = run_cli("lint", "--json", ".", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    got = [(d["origin"], d["code"]) for d in json.loads(result.stdout)["diagnostics"]]
    # The snippet's problem once, though two pages include it; b.md's syntax error and the
    # include it names; then c.md's own problem.
    assert got == [
        ("_shared.md:1", "TemplateError"),
        ("b.md:3", "TemplateError"),
        ("b.md:4", "IncludeError"),
        ("c.md:5", "TemplateError"),
    ]


def test_huge_guide_is_refused_clearly(tmp_path: Path) -> None:
    guide = tmp_path / "huge.md"
    line = "* [ ] 1. " + "x" * 90 + "\n"
    guide.write_text("# Huge\n\n" + line * (5 * 1024 * 1024 // len(line) + 1))
    result = run_cli("list", str(guide), cwd=tmp_path)
    assert result.returncode == 3
    assert "huge.md: is 5.2 MB; guides are limited to 4 MiB" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_guide_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("list", "nope.md", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("Error: nope.md: no such file")


def test_folder_instead_of_guide(tmp_path: Path) -> None:
    result = run_cli("show", ".", "1", cwd=tmp_path)
    assert result.returncode == 2
    assert "is a folder, not a guide" in result.stderr


markdownish = st.lists(
    st.sampled_from(
        [
            "# Title",
            "### 1. Step",
            "## Step 2: Two",
            "* [ ] 1. item",
            "* [x] 2. done",
            "```bash { .run }",
            "```",
            "```bash run",
            "    indented",
            "        deeper",
            '=== "Tab"',
            "!!! warning",
            '??? note "x"',
            "{% raw %}",
            "{% endraw %}",
            "{{ x }}",
            "{% include '_a.md' %}",
            "$ echo hi",
            "<placeholder>",
            "",
            "\t",
            "---",
            "title: x",
            "{#",
            "#}",
            "{%",
            "%}",
            "- [ ] sub",
            "1. ordered",
            "> quote",
        ]
    )
    | st.text(max_size=20),
    max_size=40,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=markdownish, newline=st.sampled_from(["\n", "\r\n", "\r"]))
def test_fuzzed_guides_load_or_fail_cleanly(tmp_path: Path, lines: list[str], newline: str) -> None:
    guide = tmp_path / "fuzz.md"
    (tmp_path / "_a.md").write_text("snippet {{ y }}\n* [ ] 1. inner\n")
    guide.write_bytes(newline.join(lines).encode("utf-8", "surrogatepass"))
    try:
        book = load(guide, sets={"x": "1", "y": "2"})
    except RunbookError as exc:
        assert exc.message and exc.path
        return
    for step in book.steps:
        assert step.origin.line >= 1
        for action in step.actions:
            assert action.origin.line >= 1


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=400))
def test_random_bytes_load_or_fail_cleanly(tmp_path: Path, data: bytes) -> None:
    guide = tmp_path / "bytes.md"
    guide.write_bytes(data)
    try:
        load(guide)
    except RunbookError as exc:
        assert exc.path
