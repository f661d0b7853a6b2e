"""Guides that span pages: an overview page holds the checklist, and the site's nav lists
the step pages after it, one step a page, titled with their numbers::

    nav:
      - Installation:
          - installation/index.md
          - 1. Provision the server: installation/provision.md
          - 2. Install Java: installation/java.md

The guide is the overview page: its checklist is the progress, and its steps come from the
pages in nav order, bound to the checklist's items by number.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from runbook.model import Diagnostic, Origin, Runbook, Step
from runbook.site import Site
from runbook.walk import step_number


@dataclass(frozen=True)
class NavStep:
    """A step page as the nav lists it."""

    number: int
    """The number its nav title starts with."""
    title: str
    """The nav title without its number."""
    path: Path
    """The page."""


@dataclass(frozen=True)
class Section:
    """A guide spanning pages, as found in the nav."""

    overview: Path
    """The page holding the checklist; the guide's own file."""
    steps: tuple[NavStep, ...]
    """The step pages in nav order."""
    focus: int | None = None
    """The step of the page that was named, when it was a step page."""


def _entries(items: Sequence[Any]) -> Iterator[tuple[str, str | None, Sequence[Any] | None]]:
    """Yield each nav entry as (title, page, children)."""
    for item in items:
        if isinstance(item, str):
            yield "", item, None
        elif isinstance(item, Mapping) and len(item) == 1:
            title, value = next(iter(item.items()))
            if isinstance(value, str):
                yield str(title), value, None
            elif isinstance(value, list):
                yield str(title), None, value


def _sections(items: Sequence[Any], docs: Path) -> Iterator[Section]:
    """Yield every overview page followed by numbered step pages, at any depth of the nav."""
    entries = list(_entries(items))
    for index, (title, page, children) in enumerate(entries):
        if children is not None:
            yield from _sections(children, docs)
            continue
        if page is None or step_number(title) is not None or "://" in page:
            continue
        steps = []
        for next_title, next_page, _ in entries[index + 1 :]:
            found = step_number(next_title)
            if next_page is None or found is None:
                break
            steps.append(NavStep(found[0], found[1], _page(docs, next_page)))
        if steps:
            yield Section(_page(docs, page), tuple(steps))


def _page(docs: Path, page: str) -> Path:
    return Path(os.path.normpath(docs / page.strip()))


def find_section(site: Site, page: Path) -> Section | None:
    """Return the guide spanning pages that ``page`` belongs to (as overview or step)."""
    if not site.nav:
        return None
    page = Path(os.path.normpath(page.absolute()))
    for section in _sections(site.nav, Path(os.path.normpath(site.docs_dir.absolute()))):
        if page == section.overview:
            return section
        for step in section.steps:
            if page == step.path:
                return replace(section, focus=step.number)
    return None


def merge(section: Section, overview: Runbook, pages: Sequence[Runbook]) -> Runbook:
    """Make one guide of the overview page and its step pages (loaded in nav order)."""
    items = {item.number: item for item in overview.checklist if item.number is not None}
    steps: list[Step] = []
    diagnostics = list(overview.diagnostics)
    last = 0
    for nav, page in zip(section.steps, pages, strict=True):
        diagnostics.extend(page.diagnostics)
        step = page.steps[0] if page.steps else None
        if step is None:
            continue
        where = step.origin
        if nav.number <= last:
            diagnostics.append(
                _error(
                    where,
                    f"step {nav.number} comes after step {last} in the nav",
                    "steps-out-of-order",
                    "order the step pages by number in mkdocs.yml's nav",
                )
            )
        last = max(last, nav.number)
        item = items.get(nav.number)
        if item is None and items:
            diagnostics.append(
                _error(
                    where,
                    f"step page {nav.number} has no item in the overview checklist of "
                    f"{overview.path.name}",
                    "page-without-item",
                    f"add '* [ ] {nav.number}. {step.title}' to the overview checklist",
                )
            )
        steps.append(replace(step, item=item))
    numbers = {nav.number for nav in section.steps}
    for item in overview.checklist:
        if item.number is not None and item.number not in numbers:
            diagnostics.append(
                _error(
                    item.origin,
                    f"checklist item {item.number} has no step page in the nav",
                    "item-without-page",
                    f"list the page of step {item.number} in mkdocs.yml's nav after "
                    f"{overview.path.name}, titled '{item.number}. …'",
                )
            )
    blocks = overview.blocks + tuple(b for page in pages for b in page.blocks)
    return replace(
        overview,
        steps=tuple(steps),
        diagnostics=tuple(d for d in diagnostics if d.code not in _PAGE_ONLY),
        blocks=blocks,
    )


# What a lone overview page says of itself that its step pages answer.
_PAGE_ONLY = frozenset({"item-without-step", "no-steps"})


def _error(origin: Origin, message: str, code: str, hint: str) -> Diagnostic:
    return Diagnostic("error", origin, message, code, hint)
