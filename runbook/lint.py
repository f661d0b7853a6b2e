"""Check guides for every problem before anything runs (``runbook lint``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from runbook.errors import RunbookError
from runbook.model import Diagnostic
from runbook.render import Renderer
from runbook.site import load_site


@dataclass(frozen=True)
class LintResult:
    """What lint found."""

    pages: tuple[Path, ...]
    """Every page checked."""
    diagnostics: tuple[Diagnostic, ...]
    """Every problem, in page order."""


def pages_under(path: Path) -> Iterator[Path]:
    """Yield the markdown pages at ``path`` (a file, or a folder searched recursively)."""
    if path.is_dir():
        site = load_site(path / "index.md")
        for page in sorted(path.rglob("*.md")):
            if any(part.startswith(".") for part in page.relative_to(path).parts):
                continue
            if not site.is_snippet(page):
                yield page
    else:
        yield path


def error_diagnostic(exc: RunbookError) -> Diagnostic:
    """Turn a raised error into a diagnostic."""
    return exc.diagnostic()


def lint_paths(paths: Iterable[Path]) -> LintResult:
    """Lint every page under ``paths``, reporting every problem in one pass.

    Pages render collecting: a missing include, an undefined variable or a snippet Jinja
    cannot read is reported where it is and the page is still parsed, so its other problems
    show too. A problem in a snippet several pages include is reported once.
    """
    from runbook.guide import load

    pages: list[Path] = []
    diagnostics: dict[Diagnostic, None] = {}  # each once, in order
    renderers: dict[Path, Renderer] = {}
    covered: set[Path] = set()  # pages whose steps a loaded guide already holds
    for given in paths:
        try:
            found = list(pages_under(given))
        except RunbookError as exc:
            diagnostics.setdefault(error_diagnostic(exc))
            continue
        for page in found:
            pages.append(page)
            if page.absolute() in covered:
                continue  # a step page of a guide spanning pages, linted with its overview
            try:
                site = load_site(page)
                renderer = renderers.get(site.include_dir)
                if renderer is None:
                    renderer = renderers[site.include_dir] = Renderer(site.include_dir)
                book = load(page, site=site, renderer=renderer, collect=True)
            except RunbookError as exc:
                diagnostics.setdefault(error_diagnostic(exc))
                continue
            for diagnostic in book.diagnostics:
                diagnostics.setdefault(diagnostic)
            covered.update([book.path, *(step.origin.path for step in book.steps)])
    return LintResult(tuple(pages), tuple(diagnostics))
