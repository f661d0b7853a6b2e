"""Render past a page's problems, for ``runbook lint``.

A missing, cyclic, escaping or unparsable include renders as nothing and is recorded (the
render is done again with each include that stopped it left out), each use of an undefined
variable is its own problem, and a page Jinja cannot render at all comes back empty with the
problems its includes show, found by reading its text.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import jinja2

from runbook.errors import GuideError, IncludeError, TemplateError
from runbook.model import Diagnostic, LineMap, Rendered, location
from runbook.render.problems import RENDER_ERRORS, UNDEFINED_HINT, Problems, traceback_templates
from runbook.render.sources import Sources
from runbook.tags import written_includes

# Stands for an include that a collecting render leaves out (a cycle).
SKIPPED = "\x00skipped include"
# A collecting render is done again for each include it leaves out; past this many, the
# page is reported as one that cannot be rendered.
_MAX_LEFT_OUT = 100


@dataclass
class Collected:
    """What a collecting render found, and the includes it leaves out."""

    problems: dict[tuple[str, str, int | None], GuideError] = field(default_factory=dict)
    """Each problem once, by message and place, in the order found."""
    skipped: set[tuple[str, int | None, str]] = field(default_factory=set)
    """``(file, line, name)``: the include of ``name`` there renders as nothing."""

    def add(self, problem: GuideError) -> None:
        self.problems.setdefault((problem.message, str(problem.path), problem.line), problem)

    def diagnostics(self, page: Path) -> tuple[Diagnostic, ...]:
        """Return what was found: the page's own lines first, in order."""
        found = [problem.diagnostic() for problem in self.problems.values()]
        found.sort(
            key=lambda d: (
                d.origin is None or d.origin.path != page,
                str(d.origin.path) if d.origin else "",
                d.origin.line if d.origin else 0,
            )
        )
        return tuple(found)


class Collector:
    """The collecting side of a renderer: what to leave out, and what to report."""

    def __init__(self, env: jinja2.Environment, problems: Problems, sources: Sources) -> None:
        self.env = env
        self.problems = problems
        self.sources = sources

    def leave_out(self, exc: Exception, collected: Collected) -> bool:
        """Record an include that stopped a collecting render, to leave it out next time.

        Return False when the failure is the page's own.
        """
        problems = self.problems
        if isinstance(exc, jinja2.TemplateNotFound):
            if problems.missing is None or problems.missing[0] != exc.name:
                return False
            key = (problems.missing[1], problems.missing[2], problems.missing[0])
            problem: GuideError = problems.not_found(exc, problems.page_path())
        elif isinstance(exc, RENDER_ERRORS) and not isinstance(exc, jinja2.TemplateSyntaxError):
            frames = traceback_templates(exc.__traceback__)
            if len(frames) < 2 or frames[-1][0].name is None:
                return False
            (outer, outer_line), (inner, inner_line) = frames[-2], frames[-1]
            assert inner.name is not None
            key = (*problems.position(outer, outer_line), inner.name)
            where, line = problems.position(inner, inner_line)
            problem = TemplateError(f"cannot render: {exc}", path=where, line=line)
        else:
            return False
        if key in collected.skipped or len(collected.skipped) >= _MAX_LEFT_OUT:
            return False
        collected.skipped.add(key)
        collected.add(problem)
        return True

    def rendered(self, collected: Collected, rendered: Rendered) -> Rendered:
        """Return a page rendered collecting, with every problem found."""
        for name, where, line in self.problems.undefined_uses():
            collected.add(
                TemplateError(
                    f"undefined variable: '{name}' ({location(where, line)})",
                    path=where,
                    line=line,
                    hint=UNDEFINED_HINT,
                )
            )
        return replace(rendered, problems=collected.diagnostics(rendered.path))

    def unrenderable(
        self, collected: Collected, problem: GuideError, text: str, path: Path, first_line: int
    ) -> Rendered:
        """Return a page Jinja cannot render: empty, with ``problem`` and its includes'."""
        collected.add(problem)
        for found in self.scan_includes(text, path, first_line):
            collected.add(found)
        return Rendered(
            path=path,
            text="",
            line_map=LineMap(
                paths=tuple(self.sources.paths), page=self.sources.index(path), count=1
            ),
            problems=collected.diagnostics(path),
            complete=False,
        )

    def scan_includes(self, text: str, path: Path, first_line: int) -> list[GuideError]:
        """Check the includes written on a page Jinja cannot render, without rendering."""
        problems: list[GuideError] = []
        for n, name in written_includes(text, first_line):
            try:
                self.env.get_template(name)  # loaded and compiled, not rendered
            except jinja2.TemplateNotFound:
                problems.append(self.problems.include_not_found(name, str(path), n))
            except IncludeError as exc:  # placed at the include line, not rendering
                problems.append(IncludeError(exc.message, path=str(path), line=n, hint=exc.hint))
            except GuideError as exc:  # a binary snippet, or not UTF-8
                problems.append(exc)
            except jinja2.TemplateSyntaxError as exc:
                problems.append(self.problems.syntax_problem(exc, path))
        return problems
