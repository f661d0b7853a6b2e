"""What the MkDocs plugin changes in a page: read-only boxes in every build, and in the
build ``runbook serve`` makes, the marks its script turns into a live checklist.

The static build (``mkdocs build``) gets nothing but read-only boxes: a box a reader could
click there would show a tick the file never gets.
"""

from __future__ import annotations

import functools
import html
import os
import re
from pathlib import Path

from runbook.errors import RunbookError
from runbook.guide import load
from runbook.model import Rendered
from runbook.render import Renderer
from runbook.site import Site, load_site

SERVE_ENV = "RUNBOOK_SERVE"
"""Set to ``1`` by ``runbook serve`` around its own builds: only those pages get marks."""
ASSETS = "/_runbook/"
"""Where the server answers with the page script and its style."""

# A task-list box pymdownx.tasklist renders clickable (``clickable_checkbox: true``).
_CLICKABLE = re.compile(
    r'(<li class="task-list-item">(?:<label class="task-list-control">)?<input type="checkbox")'
    r"(?=( checked)?/>)"
)


def serving() -> bool:
    """Tell whether this build is ``runbook serve``'s."""
    return os.environ.get(SERVE_ENV) == "1"


def read_only(content: str) -> str:
    """Return the page's HTML with every task-list box read-only, as without
    ``clickable_checkbox``; a page whose boxes already are comes back unchanged."""
    return _CLICKABLE.sub(r"\1 disabled", content)


def with_script(output: str) -> str:
    """Return the page's HTML loading the serve script and style, in the head."""
    tags = (
        f'<link rel="stylesheet" href="{ASSETS}serve.css">'
        f'<script src="{ASSETS}serve.js" defer></script>'
    )
    head, found, rest = output.partition("</head>")
    return f"{head}{tags}{found}{rest}" if found else output + tags


def mark_page(markdown: str, path: Path, site: Site, renderer: Renderer, rendered: Rendered) -> str:
    """Return the page's rendered markdown with the marks of a runbook page: after each
    overview item, a mark naming its step; under each step's heading, a place for what
    exec does with it; at the end, one naming the guide (and, on a step page of a guide
    spanning pages, its step). Other pages come back unchanged."""
    try:
        book = load(path, site=_as_read(site), renderer=renderer)
    except RunbookError:
        return markdown  # the page is shown as it is; lint says what is wrong
    items = {
        s.item.origin.line: s.number
        for s in book.steps
        if s.item is not None and s.item.origin.path == path
    }
    if not items and book.focus is None:
        return markdown
    # A step page says what it is in one line at its top, not under its heading.
    headings = {
        s.origin.line: s.number
        for s in book.steps
        if s.level and s.origin.path == path and book.path == path
    }
    lines: list[str] = []
    for index, line in enumerate(markdown.split("\n")):
        origin = rendered.line_map.origin(index)
        here = origin.path == path
        number = items.get(origin.line) if here else None
        if number is not None:
            end = len(line) - 1 if line.endswith("\r") else len(line)
            line = (
                line[:end] + f' <span class="rb-step" data-rb-step="{number}"></span>' + line[end:]
            )
        lines.append(line)
        number = headings.get(origin.line) if here else None
        if number is not None:
            # Under the step's heading, in its container (a tab, an admonition) if any.
            indent = line[: len(line) - len(line.lstrip())]
            lines += ["", f'{indent}<div class="rb-stepinfo" data-rb-step="{number}"></div>', ""]
    guide = html.escape(os.path.relpath(book.path, site.root), quote=True)
    focus = "" if book.focus is None or book.path == path else f' data-rb-focus="{book.focus}"'
    page = f'<div class="rb-guide" data-rb-guide="{guide}"{focus} hidden></div>'
    return "\n".join(lines).rstrip("\n") + f"\n\n{page}\n"


def _as_read(site: Site) -> Site:
    """Return ``site`` as ``runbook.site`` reads it from mkdocs.yml: with the nav (which
    pages make up a guide spanning pages) and markdown extensions the plugin's lacks."""
    if site.config_file is None:
        return site
    return _read(site.config_file, site.config_file.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _read(config_file: Path, stamp: int) -> Site:
    return load_site(config_file)
