"""Load a guide: find its site, render its includes, parse it into a Runbook.

This is the library entry point the CLI, the executor, the benchmarks and the MkDocs plugin
share.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from runbook.blocks import BlockFinder, default_finder, finder_for
from runbook.errors import UsageError
from runbook.inputs import check_value
from runbook.model import Action, Diagnostic, Origin, Rendered, Runbook
from runbook.render import Renderer, split_front_matter
from runbook.section import find_section, merge
from runbook.site import Site, front_matter_data, load_site
from runbook.source import read_source


def read_front_matter(text: str, path: Path) -> tuple[dict[str, Any], str, int]:
    """Return (front matter, body, 1-based line of the body) of a page."""
    raw, body, first = split_front_matter(text)
    return (front_matter_data(raw, path) if raw else {}), body, first


def page_variables(
    site: Site, meta: Mapping[str, Any], sets: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Return the Jinja variables of a page: ``extra:``, then front matter, then ``--set``."""
    variables: dict[str, Any] = dict(site.extra)
    variables.update(meta)
    variables["page"] = {"meta": dict(meta), "title": meta.get("title", "")}
    variables.update(sets or {})
    return variables


def read_guide(path: Path) -> bytes:
    """Read a guide file's bytes, with clear errors for what is not a readable guide."""
    return read_source(path, "guide")


def render_guide(
    path: Path,
    *,
    site: Site | None = None,
    sets: Mapping[str, str] | None = None,
    renderer: Renderer | None = None,
    collect: bool = False,
) -> Rendered:
    """Render ``path`` with its includes, as the site renders it.

    With ``collect``, problems are returned in ``Rendered.problems`` instead of raised
    (see :meth:`Renderer.render`); a guide that cannot be read or decoded still raises.
    """
    path = path.absolute()
    site = site or load_site(path)
    source = read_guide(path)
    text = Renderer.decode_bytes(source, path)
    meta, body, first = read_front_matter(text, path)
    renderer = renderer or Renderer(site.include_dir)
    rendered = renderer.render(
        body, path, first_line=first, variables=page_variables(site, meta, sets), collect=collect
    )
    return replace(rendered, front_matter=meta, source=source)


def load(
    path: str | Path,
    *,
    sets: Mapping[str, str] | None = None,
    site: Site | None = None,
    renderer: Renderer | None = None,
    collect: bool = False,
) -> Runbook:
    """Load a guide into a Runbook; raise a GuideError (with file:line) when it cannot.

    With ``collect`` (``runbook lint``), problems of rendering are diagnostics of the
    Runbook, before those of parsing, and loading goes on past them; a page that cannot be
    rendered at all has no steps, only its problems.

    A page of a guide that spans pages (its overview, or one of its step pages) loads as
    that whole guide, the overview's checklist its progress.
    """
    path = Path(path).absolute()
    site = site or load_site(path)
    section = find_section(site, path)
    if section is None:
        return load_page(path, sets=sets, site=site, renderer=renderer, collect=collect)
    renderer = renderer or Renderer(site.include_dir)
    overview = load_page(section.overview, sets=sets, site=site, renderer=renderer, collect=collect)
    pages = [
        load_page(
            step.path,
            sets=sets,
            site=site,
            renderer=renderer,
            collect=collect,
            page_step=(step.number, step.title),
        )
        for step in section.steps
    ]
    return replace(merge(section, overview, pages), focus=section.focus)


def load_page(
    path: Path,
    *,
    sets: Mapping[str, str] | None,
    site: Site,
    renderer: Renderer | None,
    collect: bool = False,
    page_step: tuple[int, str] | None = None,
) -> Runbook:
    """Load one page (``page_step``: the step page of that number, see runbook.parse)."""
    from runbook.parse import build

    rendered = render_guide(path, site=site, sets=sets, renderer=renderer, collect=collect)
    if not rendered.complete:
        return Runbook(
            path=path,
            title=path.name,
            steps=(),
            checklist=(),
            diagnostics=rendered.problems,
            rendered=rendered,
            runtime_dir=site.runtime_dir,
        )
    inputs = dict(site.inputs)
    meta_inputs = rendered.front_matter.get("inputs")
    if isinstance(meta_inputs, Mapping):
        inputs.update({str(k): str(v) for k, v in meta_inputs.items()})
    inputs.update(sets or {})
    finder = block_finder(site)
    book = build(rendered, inputs=inputs, finder=finder, page_step=page_step)
    return replace(
        book,
        runtime_dir=site.runtime_dir,
        diagnostics=rendered.problems
        + book.diagnostics
        + _site_checks(book, site)
        + _extension_checks(finder, site),
    )


def block_finder(site: Site) -> BlockFinder:
    """Return the finder that reads code blocks as this site's renderer does."""
    if site.markdown_extensions is None:
        return default_finder()
    return finder_for(site.markdown_extensions)


def _site_checks(book: Runbook, site: Site) -> tuple[Diagnostic, ...]:
    """Check what the page names in its site: guides that directives run, hosts of blocks.

    These are lint's diagnostics and what stops ``exec`` before it runs: one checker.
    """
    problems = []
    for step in book.steps:
        for d in step.directives:
            if d.target is not None and not d.target.is_file():
                problems.append(
                    Diagnostic(
                        "error",
                        d.origin,
                        f"step {step.number} runs {d.args[0]}, which does not exist",
                        "bad-directive",
                        "give the guide's path relative to this file",
                    )
                )
        for action in step.actions:
            if action.executable and action.host != "local" and action.host not in site.hosts:
                problems.append(
                    Diagnostic(
                        "error",
                        action.origin,
                        f"host {action.host!r} is not defined",
                        "unknown-host",
                        "add it under 'plugins: - runbook: hosts:' in mkdocs.yml "
                        "(e.g. new: {ssh: admin@10.0.0.5}, or new: local)",
                    )
                )
            problems.extend(_default_checks(action, book, site))
    return tuple(problems)


def _default_checks(action: Action, book: Runbook, site: Site) -> list[Diagnostic]:
    """Check the defaults of a block's inputs against the contexts they stand in."""
    if not action.executable:
        return []
    meta = book.rendered.front_matter.get("inputs")
    defaults = {**site.inputs, **(meta if isinstance(meta, dict) else {})}
    problems = []
    for ph in action.placeholders:
        if ph.name not in defaults or not ph.limits:
            continue
        try:
            check_value(ph.name, str(defaults[ph.name]), ph.limits)
        except UsageError as exc:
            problems.append(
                Diagnostic("error", action.origin, exc.message, "bad-default", exc.hint or "")
            )
    return problems


def _extension_checks(finder: BlockFinder, site: Site) -> tuple[Diagnostic, ...]:
    """Warn of each of the site's Markdown extensions that cannot be loaded."""
    if site.config_file is None:
        return ()
    return tuple(
        Diagnostic(
            "warning",
            Origin(site.config_file, _config_line(site.config_file, name)),
            f"markdown extension {name!r} cannot be loaded ({why}): the guide's code blocks "
            "are read without it, and 'mkdocs build' stops on it too",
            "unloadable-extension",
            "install the package that provides it, or correct its name or options under "
            "'markdown_extensions:'",
        )
        for name, why in finder.unloadable
    )


def _config_line(config_file: Path, name: str) -> int:
    """Return the line of ``mkdocs.yml`` naming extension ``name`` (else that of
    ``markdown_extensions:``, else 1): an inherited configuration may name it elsewhere."""
    try:
        lines = config_file.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return 1
    entry = re.compile(rf"""^\s*(?:-\s*)?["']?{re.escape(name)}["']?\s*(?::|$)""")
    section = None
    for number, line in enumerate(lines, 1):
        if section is None and line.startswith("markdown_extensions"):
            section = number
        elif section is not None and entry.match(line):
            return number
    return section or 1
