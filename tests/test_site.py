"""The site builds strictly through the plugin; pages show snippets and the checklist state."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from runbook.guide import load
from runbook.model import Diagnostic, Origin
from tests.conftest import GUIDE, mkdocs_build


@pytest.fixture
def built(built_site: Path) -> Path:
    return built_site


def page(built: Path, rel: str) -> str:
    return (built / "out" / rel / "index.html").read_text()


def test_guide_page_holds_every_snippet(built: Path) -> None:
    text = html.unescape(re.sub(r"<[^>]+>", "", page(built, "admin-guide/upgrading/parallel")))
    snippets = sorted((built / "snippets").rglob("_*.md"))
    assert len(snippets) == 6
    for snippet in snippets:
        # Every fenced command of the snippet appears on the page, as text.
        fences = re.findall(r"```bash[^\n]*\n(.*?)```", snippet.read_text(), re.S)
        assert fences, snippet
        for fence in fences:
            first = next(line.strip() for line in fence.split("\n") if line.strip())
            assert first in text, f"{snippet.name}: {first!r} missing from the page"


def test_checkboxes_show_the_file_state(built: Path) -> None:
    body = page(built, "admin-guide/upgrading/parallel")
    book = load(built / GUIDE)
    boxes = re.findall(r'<input type="checkbox" disabled( checked)?/?>', body)
    overview = [bool(b) for b in boxes[: len(book.checklist)]]
    assert overview == [item.checked for item in book.checklist]
    assert overview[:4] == [True, False, True, False]


def test_snippets_are_not_pages(built: Path) -> None:
    out = built / "out"
    assert not list(out.rglob("*_backup_database*"))
    assert not (out / "admin-guide" / "common").exists()


def test_tabs_and_admonitions_render(built: Path) -> None:
    body = page(built, "admin-guide/upgrading/parallel")
    assert body.count('class="tabbed-set') >= 6
    assert 'class="admonition tip"' in body
    assert "{%" not in body  # every include was rendered


def test_installation_link_resolves(built: Path) -> None:
    body = page(built, "admin-guide/upgrading/parallel")
    assert 'href="../../../installation/"' in body
    assert (built / "out" / "installation" / "index.html").exists()


def test_plugin_error_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# Hi\n\n{% include '_missing.md' %}\n")
    (tmp_path / "mkdocs.yml").write_text("site_name: t\nplugins:\n  - runbook\n")
    result = mkdocs_build(tmp_path)
    assert result.returncode != 0
    assert "index.md:3: include '_missing.md' not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_plugin_options_are_one_table() -> None:
    """The plugin's schema, the command line's reading and the docs list the same options."""
    from runbook.mkdocs_plugin import RunbookConfig
    from runbook.site import PLUGIN_OPTIONS

    assert [name for name, _ in RunbookConfig._schema] == list(PLUGIN_OPTIONS)
    doc = (Path(__file__).parent.parent / "docs" / "user-guide" / "writing.md").read_text()
    table = doc.split("### Plugin options", 1)[1].split("\n## ", 1)[0]
    assert sorted(re.findall(r"^\| `(\w+)` \|", table, re.M)) == sorted(PLUGIN_OPTIONS)


def test_snippet_pattern_is_one_rule_for_lint_and_site(tmp_path: Path) -> None:
    """A custom ``snippets:`` pattern keeps a file out of the site and out of lint alike."""
    from runbook.lint import lint_paths

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# Hi\n\n{% include 'inc-part.md' %}\n")
    (tmp_path / "docs" / "inc-part.md").write_text("Shared text.\n")
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: t\nplugins:\n  - runbook:\n      snippets: 'inc-*.md'\n"
    )
    result = lint_paths([tmp_path / "docs"])
    assert [p.name for p in result.pages] == ["index.md"]
    assert not [d for d in result.diagnostics if d.level == "error"]
    build = mkdocs_build(tmp_path)
    assert build.returncode == 0, build.stderr
    assert not (tmp_path / "out" / "inc-part").exists()
    assert "Shared text." in (tmp_path / "out" / "index.html").read_text()


@pytest.mark.parametrize("option", ["inputs: [a, b]", "hosts: 5", "snippets: {a: 1}"])
def test_wrong_plugin_option_type_is_refused_alike(tmp_path: Path, option: str) -> None:
    """A plugin option of the wrong type stops the build and runbook, both naming it."""
    from tests.conftest import run_cli

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# Hi\n")
    (tmp_path / "mkdocs.yml").write_text(f"site_name: t\nplugins:\n  - runbook:\n      {option}\n")
    name = option.split(":")[0]
    build = mkdocs_build(tmp_path, strict=False)
    assert build.returncode != 0
    assert f"'{name}'" in build.stderr
    assert "Traceback" not in build.stderr
    lint = run_cli(tmp_path, "lint", "docs/index.md")
    assert lint.returncode == 3
    assert f"runbook plugin '{name}:' must be" in lint.stdout
    assert "Traceback" not in lint.stderr


MISSING = "site_name: t\nmarkdown_extensions:\n  - pymdownx.superfences\n  - pymdownx.no_such_one\n"
BAD_OPTIONS = (
    "site_name: t\nmarkdown_extensions:\n  - pymdownx.superfences:\n      custom_fences: 3\n"
)


@pytest.mark.parametrize(
    ("config", "line", "why"),
    [
        (MISSING, 4, "ModuleNotFoundError: No module named 'pymdownx.no_such_one'"),
        (BAD_OPTIONS, 3, "TypeError: 'int' object is not iterable"),
    ],
    ids=["missing", "bad-options"],
)
def test_an_extension_that_cannot_be_loaded_is_a_warning_naming_mkdocs_yml(
    tmp_path: Path, config: str, line: int, why: str
) -> None:
    """Missing, or refusing its options: lint warns, where runbook once read the page
    without it in silence (or stopped with a traceback on bad options), and the site's
    build does stop on it, as the warning says."""
    from runbook.lint import lint_paths

    (tmp_path / "docs").mkdir()
    guide = tmp_path / "docs" / "index.md"
    guide.write_text("# G\n\n* [ ] 1. Go\n\n### 1. Go\n\n```bash { .run }\necho hi\n```\n")
    (tmp_path / "mkdocs.yml").write_text(config)
    found = [d for d in lint_paths([guide]).diagnostics if d.code == "unloadable-extension"]
    name = config.splitlines()[line - 1].strip(" -:")
    assert found == [
        Diagnostic(
            "warning",
            Origin(tmp_path / "mkdocs.yml", line),
            f"markdown extension {name!r} cannot be loaded ({why}): the guide's code blocks "
            "are read without it, and 'mkdocs build' stops on it too",
            "unloadable-extension",
            "install the package that provides it, or correct its name or options under "
            "'markdown_extensions:'",
        )
    ]
    build = mkdocs_build(tmp_path, strict=False)
    assert build.returncode != 0
    assert f"Failed to load extension '{name}'" in build.stderr


def test_lint_and_exec_show_the_extension_warning(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text(
        "# G\n\n* [ ] 1. Go\n\n### 1. Go\n\n```bash { .run }\necho hi\n```\n"
    )
    (tmp_path / "mkdocs.yml").write_text(MISSING)
    warning = "mkdocs.yml:4: warning: markdown extension 'pymdownx.no_such_one' cannot be loaded"
    lint = run_cli(tmp_path, "lint", "docs/index.md")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert lint.stdout.startswith(warning)
    assert "0 errors, 1 warnings" in lint.stderr
    for args in (("--dry-run",), ("--yes",)):
        ran = run_cli(tmp_path, "exec", *args, "docs/index.md")
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert ran.stdout.startswith(warning), ran.stdout
        assert ran.stdout.count("[unloadable-extension]") == 1
    assert "* [x] 1. Go" in (tmp_path / "docs" / "index.md").read_text()
