"""Guides that span pages: the overview's checklist, the step pages the nav lists after it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from runbook.guide import load
from runbook.lint import lint_paths
from tests.conftest import FIXTURES, mkdocs_build, run_cli


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A private copy of the multi-page fixture site."""
    shutil.copytree(FIXTURES / "multipage", tmp_path / "site")
    return tmp_path / "site"


cli = run_cli


OVERVIEW = "docs/upgrade/index.md"


def test_the_overview_is_the_whole_guide(site: Path) -> None:
    book = load(site / OVERVIEW)
    assert book.path == (site / OVERVIEW).absolute()
    assert [(s.number, s.title) for s in book.steps] == [
        (1, "Prepare the Server"),
        (2, "Copy Custom Config"),
        (3, "Import Database Backup"),
    ]
    # Bound to the overview's items by number; the sub-step headings stay inside step 3.
    assert [s.item.origin.line if s.item else None for s in book.steps] == [5, 6, 7]
    assert all(s.item and s.item.origin.path == book.path for s in book.steps)
    # Each block is located in its own page (or snippet) and line.
    origins = [
        str(a.origin.path.relative_to(site)) + f":{a.origin.line}"
        for s in book.steps
        for a in s.actions
    ]
    assert origins == [
        "docs/upgrade/prepare.md:3",
        "snippets/_copy.md:3",
        "snippets/_copy.md:9",
        "docs/upgrade/import.md:5",
        "docs/upgrade/import.md:11",
    ]
    assert [s.origin.path.name for s in book.steps] == ["prepare.md", "copy-config.md", "import.md"]
    assert not book.errors, book.errors


def test_a_step_page_loads_its_guide_focused_on_its_step(site: Path) -> None:
    book = load(site / "docs/upgrade/import.md")
    assert book.path == (site / OVERVIEW).absolute()
    assert book.focus == 3
    assert len(book.steps) == 3


def test_list_show_check_status_on_the_overview(site: Path) -> None:
    listed = cli(site, "list", "--json", OVERVIEW)
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert [s["number"] for s in data["steps"]] == [1, 2, 3]
    shown = cli(site, "show", OVERVIEW, "3")
    assert shown.returncode == 0, shown.stderr
    assert "docs/upgrade/import.md:5" in shown.stdout
    before = (site / OVERVIEW).read_bytes()
    ticked = cli(site, "check", "docs/upgrade/prepare.md", "2")
    assert ticked.returncode == 0, ticked.stderr
    after = (site / OVERVIEW).read_bytes()
    assert after == before.replace(b"* [ ] 2.", b"* [x] 2.")
    status = cli(site, "status", OVERVIEW)
    assert "1 of 3" in status.stdout or "1/3" in status.stdout, status.stdout


def test_exec_runs_the_pages_in_nav_order_and_ticks_the_overview(site: Path) -> None:
    run = cli(site, "exec", OVERVIEW, "--yes", "--tab", "Sandbox")
    assert run.returncode == 0, run.stdout + run.stderr
    assert (site / "imported.txt").read_text() == "prepared\n"
    text = (site / OVERVIEW).read_text()
    assert text.count("* [x]") == 3
    # Step pages are never written.
    for page in ("prepare.md", "copy-config.md", "import.md"):
        assert (site / "docs/upgrade" / page).read_bytes() == (
            FIXTURES / "multipage/docs/upgrade" / page
        ).read_bytes()


def test_exec_on_a_step_page_runs_that_step(site: Path) -> None:
    (site / "config.txt").write_text("from before\n")
    run = cli(site, "exec", "docs/upgrade/import.md", "--yes")
    assert run.returncode == 0, run.stdout + run.stderr
    assert (site / "imported.txt").read_text() == "from before\n"
    assert not (site / "prepared.txt").exists()
    assert (site / OVERVIEW).read_text().count("* [x]") == 1
    assert "* [x] 3." in (site / OVERVIEW).read_text()


def test_lint_of_the_site_reports_each_guide_once_and_clean(site: Path) -> None:
    result = lint_paths([site / "docs"])
    assert not [d for d in result.diagnostics if d.level == "error"], result.diagnostics


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_lint_reports_items_pages_and_numbers_that_disagree(site: Path) -> None:
    mkdocs = site / "mkdocs.yml"
    # Item 3 loses its page; a page 4 has no item; the nav lists 2 before 1.
    _edit(
        mkdocs,
        "      - 3. Import Database Backup: upgrade/import.md\n",
        "      - 4. Extra: upgrade/extra.md\n",
    )
    (site / "docs/upgrade/extra.md").write_text("# 4. Extra\n\nNothing.\n")
    first = "      - 1. Prepare the server: upgrade/prepare.md\n"
    second = "      - 2. Copy Custom Config : upgrade/copy-config.md\n"
    _edit(mkdocs, first + second, second + first)
    # A step page whose heading disagrees with its nav number.
    _edit(site / "docs/upgrade/copy-config.md", "# 2. Copy", "# 5. Copy")
    found = {
        (d.code, d.origin.path.name if d.origin else "", d.origin.line if d.origin else 0)
        for d in lint_paths([site / OVERVIEW]).diagnostics
        if d.level == "error"
    }
    assert found == {
        ("item-without-page", "index.md", 7),
        ("page-without-item", "extra.md", 1),
        ("steps-out-of-order", "prepare.md", 1),
        ("page-number-mismatch", "copy-config.md", 1),
    }


def test_the_site_renders_each_page_as_before(site: Path) -> None:
    result = mkdocs_build(site)
    assert result.returncode == 0, result.stderr
    body = (site / "out/upgrade/copy-config/index.html").read_text()
    assert "config.txt" in body and "Sandbox" in body  # the snippet, rendered in its tabs
    assert "[ ]" not in (site / "out/upgrade/index.html").read_text()  # a real checklist


def test_the_installation_guide_of_this_site_spans_pages() -> None:
    root = FIXTURES.parent.parent
    book = load(root / "docs/installation/index.md")
    assert [s.number for s in book.steps] == list(range(1, 10))
    assert all(s.item is not None and s.item.origin.path == book.path for s in book.steps)
    mysql = book.step(4)
    assert mysql is not None and mysql.origin.path.name == "mysql.md"
    assert {a.origin.path.parent.name for a in mysql.actions} <= {"installation", "common"}
    assert not book.errors, book.errors
    assert load(root / "docs/installation/mysql.md").focus == 4
