"""Where a render is, and the errors that say what stopped it, placed at file and line.

Positions come from the frames of the templates being rendered (or, after a failure, from
the traceback); the page compiled whole starts at its body's first line.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import NoReturn

import jinja2

from runbook.errors import GuideError, IncludeError, TemplateError
from runbook.model import rel
from runbook.render.sources import Sources
from runbook.tags import include_line, lines_outside_raw, looks_like_shell

UNDEFINED_HINT = (
    "define it in mkdocs.yml 'extra:', the page's front matter, or with --set name=value"
)
# What a template can raise as it renders (an undefined value used, a bad filter argument).
RENDER_ERRORS = (jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError)


@dataclass
class Undefined:
    """One use of an undefined variable."""

    name: str
    path: str
    line: int


def template_frames() -> Iterator[tuple[jinja2.Template, FrameType]]:
    """Yield (template, frame) for the templates being rendered, innermost first."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        tmpl = frame.f_globals.get("__jinja_template__")
        if tmpl is not None:
            yield tmpl, frame
        frame = frame.f_back


def traceback_templates(tb: TracebackType | None) -> list[tuple[jinja2.Template, int]]:
    """Return the templates in a traceback with their lines, outermost first."""
    frames = []
    while tb is not None:
        tmpl = tb.tb_frame.f_globals.get("__jinja_template__")
        if tmpl is not None:
            frames.append((tmpl, tmpl.get_corresponding_lineno(tb.tb_lineno)))
        tb = tb.tb_next
    return frames


class Problems:
    """Locate the render in progress and build the errors of a renderer."""

    def __init__(self, include_root: Path, sources: Sources) -> None:
        self.include_root = include_root
        self.sources = sources
        self.page: tuple[str, int] = ("", 1)
        """The page compiled whole: its file, and the line its body starts at."""
        self.missing: tuple[str, str, int] | None = None
        """The last include not found: its name, and the file and line including it."""
        self.undefined: list[Undefined] = []
        """Each use of an undefined variable in the render in progress."""

    def location(self) -> tuple[str, int]:
        """Return the source file and line of the innermost template being rendered."""
        for tmpl, frame in template_frames():
            return self.position(tmpl, tmpl.get_corresponding_lineno(frame.f_lineno))
        return "<page>", 0

    def position(self, tmpl: jinja2.Template, line: int) -> tuple[str, int]:
        """Return file and line of ``line`` of template ``tmpl`` (the page starts late)."""
        filename = tmpl.filename or tmpl.name or "<page>"
        if tmpl.name is None and filename == self.page[0]:
            line += self.page[1] - 1  # the page's body follows its front matter
        return filename, line

    def page_path(self) -> Path:
        return Path(self.page[0])

    def include_error(self, message: str, *, hint: str | None = None) -> IncludeError:
        """Build an IncludeError located at the include statement being rendered."""
        path, line = self.location()
        return IncludeError(message, path=path, line=line or None, hint=hint)

    def undefined_uses(self) -> list[tuple[str, str, int]]:
        """Return ``(name, file, line)`` of each undefined variable used, once, in order."""
        seen: dict[tuple[str, str, int], None] = {}
        for u in self.undefined:
            seen.setdefault((u.name, u.path, u.line), None)
        return list(seen)

    def undefined_error(self) -> NoReturn:
        items = self.undefined_uses()
        first = items[0]
        listing = ", ".join(f"'{name}' ({rel(p)}:{n})" for name, p, n in items)
        raise TemplateError(
            f"undefined variable{'s' if len(items) > 1 else ''}: {listing}",
            path=first[1],
            line=first[2],
            hint=UNDEFINED_HINT,
        )

    def problem(self, exc: BaseException, path: Path) -> GuideError | None:
        """Return the GuideError telling what stopped the render of ``path``, or None."""
        if isinstance(exc, GuideError):
            return exc
        if isinstance(exc, jinja2.TemplateSyntaxError):
            return self.syntax_problem(exc, path)
        if isinstance(exc, jinja2.TemplateNotFound):
            return self.not_found(exc, path)
        if isinstance(exc, RecursionError):
            return IncludeError(
                "includes nest too deeply (an include cycle?)",
                path=path,
                hint="check the chain of includes for a loop",
            )
        if isinstance(exc, RENDER_ERRORS):
            where, line = self.traceback_location(exc.__traceback__, path)
            return TemplateError(f"cannot render: {exc}", path=where, line=line)
        return None

    def not_found(self, exc: jinja2.TemplateNotFound, page: Path) -> IncludeError:
        if self.missing is not None and self.missing[0] == exc.name:
            where: str = self.missing[1]
            line: int | None = self.missing[2] or None
        else:
            where, line = self._last_include_site(str(exc.name), page)
        return self.include_not_found(exc.name, where, line)

    def include_not_found(self, name: object, where: str, line: int | None) -> IncludeError:
        """Return the error for an include of ``name`` not found, at ``where:line``."""
        return IncludeError(
            f"include {name!r} not found in {rel(self.include_root)}/",
            path=where,
            line=line,
            hint=f"create {rel(self.include_root / str(name))} or fix the name",
        )

    def syntax_problem(self, exc: jinja2.TemplateSyntaxError, path: Path) -> TemplateError:
        """Return the error for a syntax error in page ``path`` or one of its snippets."""
        where = Path(exc.filename) if exc.filename else path
        is_page = where == path
        first_line = self.page[1] if is_page and self.page[0] == str(path) else 1
        line = exc.lineno
        if is_page:
            line += first_line - 1
        hint = "check the Jinja syntax"
        source = self.sources.texts.get(where, "")
        for n, text in lines_outside_raw(source, first_line if is_page else 1):
            if looks_like_shell(text):
                line = n
                hint = (
                    "shell code that looks like Jinja ('{{.Name}}', '${#array[@]}') must be "
                    "wrapped in {% raw %}...{% endraw %}"
                )
                break
        return TemplateError(f"Jinja syntax error: {exc.message}", path=where, line=line, hint=hint)

    def traceback_location(self, tb: TracebackType | None, page: Path) -> tuple[str, int | None]:
        """Return the innermost template position in a traceback."""
        frames = traceback_templates(tb)
        if not frames:
            return str(page), None
        tmpl, line = frames[-1]
        where, at = self.position(tmpl, line)
        return (str(page) if where == "<page>" else where), at

    def _last_include_site(self, name: str | None, page: Path) -> tuple[str, int | None]:
        """Find the line including ``name``: scan the page and known snippets."""
        if name:
            for candidate in [page, *self.sources.paths]:
                line = include_line(self.sources.texts.get(candidate, ""), name)
                if line is not None:
                    return str(candidate), line
        return str(page), None
