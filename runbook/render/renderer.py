"""The :class:`Renderer`: one site's Jinja environment, pages rendered with a line map."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from runbook.errors import TemplateError
from runbook.model import LineMap, Marks, Rendered
from runbook.render.collect import Collected, Collector
from runbook.render.environment import SiteEnvironment
from runbook.render.limits import TooCostly, bounded
from runbook.render.problems import Problems
from runbook.render.sources import Sources, decode
from runbook.tags import has_tags, split_lines, split_tags, unmarkable_fast

# Tag templates kept per site; past this many, the cache starts over.
_MAX_TAGS = 4096


@dataclass
class Renderer:
    """Render pages of one site: one Jinja environment, shared caches."""

    include_root: Path
    """Where ``{% include %}`` names are resolved."""
    variables: Mapping[str, Any] = field(default_factory=dict)
    """Site-wide variables (``extra:`` and the like)."""
    whole_pages: bool = False
    """Compile every page as one template, never tag by tag (to compare the two paths)."""

    def __post_init__(self) -> None:
        self.sources = Sources()
        """The files read, numbered for the line maps."""
        self.problems = Problems(self.include_root, self.sources)
        """Where the render is, and the errors that stop it."""
        self.marks = Marks.new()
        """This renderer's position markers."""
        self.env = SiteEnvironment(self.include_root, self.problems, self.mark)
        self.collector = Collector(self.env, self.problems, self.sources)
        """What ``render(..., collect=True)`` leaves out and reports."""
        self._tags: dict[str, jinja2.Template] = {}

    decode_bytes = staticmethod(decode)

    def mark(self, text: str, path: Path, first_line: int = 1, *, exact: bool = True) -> str:
        """Prefix each markable line of ``text`` with an invisible position marker.

        ``exact`` finds multi-line tags with Jinja's own lexer; otherwise a regular
        expression does it, faster, and a page whose marked text does not compile is
        marked again exactly.
        """
        idx = self.sources.index(path)
        marker = self.marks.marker
        self.sources.texts[path] = text
        lines = split_lines(text)
        if not has_tags(text):
            skip: set[int] = set()
        else:
            skip = self._unmarkable(text) if exact else unmarkable_fast(text)
        out = []
        after_tag = True  # the first line, and every line after one that may hold a tag
        for n, line in enumerate(lines, start=1):
            # Other lines continue the position of the line above, counted by the line map.
            # Blank lines stay unmarked: "{%-" and a final newline must still strip them.
            if after_tag and n not in skip and line.strip():
                out.append(marker(idx, n + first_line - 1) + line)
                after_tag = "{" in line or "}" in line
            else:
                out.append(line)
                after_tag = after_tag or "{" in line or "}" in line
        return "\n".join(out)

    def _unmarkable(self, text: str) -> set[int]:
        """Return line numbers where a marker would sit inside a tag or defeat ``-``."""
        skip: set[int] = set()
        try:
            for lineno, kind, value in self.env.lexer.tokeniter(text, None):
                if kind != "data" and "\n" in value:
                    for k in range(1, value.count("\n") + 1):
                        skip.add(lineno + k)
        except jinja2.TemplateSyntaxError:
            pass  # reported properly when the template is compiled
        for n, line in enumerate(split_lines(text), start=1):
            head = line.lstrip()
            if head.startswith(("{%-", "{{-", "{#-")):
                skip.add(n)
        return skip

    # -- rendering ------------------------------------------------------------------------

    def render(
        self,
        text: str,
        path: Path,
        *,
        first_line: int = 1,
        variables: Mapping[str, Any] | None = None,
        collect: bool = False,
    ) -> Rendered:
        """Render page body ``text`` (front matter removed) of file ``path``.

        Raise a GuideError at the first problem; or, with ``collect``, return every problem
        in ``Rendered.problems``: includes that cannot be loaded render as nothing, each
        use of an undefined variable is one problem, and a page Jinja cannot render at all
        comes back empty and not ``complete``, with the problems its includes show.
        """
        if not has_tags(text):
            return self._plain(text, path, first_line)
        try:
            with bounded():
                return self._render(text, path, first_line, variables, collect)
        except TooCostly as exc:
            raise TemplateError(
                f"{exc}; stopped",
                path=path,
                line=first_line,
                hint="look for loops, ranges or repetitions that make huge values "
                "({{ range(10**9)|list }}, {{ 'a' * 10**10 }})",
            ) from None

    def _render(
        self,
        text: str,
        path: Path,
        first_line: int,
        variables: Mapping[str, Any] | None,
        collect: bool,
    ) -> Rendered:
        context = {**self.variables, **(variables or {})}
        del self.problems.undefined[:]
        fast = None if self.whole_pages else self._render_tags(text, path, first_line, context)
        if fast is not None:
            return fast
        if collect:
            return self._render_collecting(text, path, first_line, context)
        try:
            output = self._render_whole(text, path, first_line, context, None)
        except Exception as exc:
            problem = self.problems.problem(exc, path)
            if problem is None:
                raise
            raise problem from None
        if self.problems.undefined:
            self.problems.undefined_error()
        return self._unmark(output, path, first_line)

    def _render_collecting(
        self, text: str, path: Path, first_line: int, context: dict[str, Any]
    ) -> Rendered:
        collected = Collected()
        try:
            output = self._render_whole(text, path, first_line, context, collected)
        except Exception as exc:
            problem = self.problems.problem(exc, path)
            if problem is None:
                raise
            return self.collector.unrenderable(collected, problem, text, path, first_line)
        return self.collector.rendered(collected, self._unmark(output, path, first_line))

    def _render_whole(
        self,
        text: str,
        path: Path,
        first_line: int,
        context: dict[str, Any],
        collected: Collected | None,
    ) -> str:
        """Compile the page as one template and render it; Jinja's exceptions propagate.

        While collecting, a render stopped by an include (one not found, or failing as it
        runs) is done again with that include left out, until the page renders.
        """
        env = self.env
        self.problems.page = (str(path), first_line)
        self.problems.missing = None
        try:
            try:
                marked = self.mark(text, path, first_line, exact=False)
                code = env.compile(marked, name=None, filename=str(path))
            except jinja2.TemplateSyntaxError:
                marked = self.mark(text, path, first_line, exact=True)
                code = env.compile(marked, name=None, filename=str(path))
            template = env.template_class.from_code(env, code, env.make_globals(None), None)
            env.collected = collected
            while True:
                del self.problems.undefined[:]
                try:
                    # Template.render would rewrite the traceback, losing the templates'
                    # frames that place a failure.
                    output: str = env.concat(
                        template.root_render_func(template.new_context(context))
                    )
                    return output
                except Exception as exc:
                    if collected is None or not self.collector.leave_out(exc, collected):
                        raise
        finally:
            env.collected = None

    def _render_tags(
        self, text: str, path: Path, first_line: int, context: Mapping[str, Any]
    ) -> Rendered | None:
        """Render a page whose Jinja is only ``{{ … }}``, ``{% include '…' %}`` and raw blocks.

        Such a page, which most guides are, need not be compiled as a whole: each distinct
        tag is compiled once for the site and rendered in the page's context, and the text
        between tags is copied as Jinja would copy it. Return None for any other page, and
        whenever something goes wrong, so that the whole-page path renders it (or reports
        the error with its exact position).
        """
        self.sources.texts[path] = text
        pieces = split_tags(text)
        if pieces is None:
            return None
        idx = self.sources.index(path)
        marker = self.marks.marker
        out: list[str] = [marker(idx, first_line)]
        line = first_line  # source line where the current piece starts
        pending = False  # the next source line needs a marker: a tag's output came before it
        try:
            for is_tag, piece, source_lines in pieces:
                if is_tag:
                    out.append(self._tag_template(piece).render(context))
                    pending = True
                elif pending and "\n" in piece:
                    head, tail = piece.split("\n", 1)
                    out.append(f"{head}\n{marker(idx, line + 1)}{tail}")
                    pending = source_lines != piece.count("\n")
                else:
                    out.append(piece)
                    pending = pending or source_lines != piece.count("\n")
                line += source_lines
        except Exception:  # the whole-page path below raises the precise error
            return None
        if self.problems.undefined:
            return None
        return self._unmark("".join(out), path, first_line)

    def _tag_template(self, tag: str) -> jinja2.Template:
        """Return the compiled template of one tag, compiled once per site."""
        template = self._tags.get(tag)
        if template is None:
            if len(self._tags) >= _MAX_TAGS:
                self._tags.clear()
            template = self._tags[tag] = self.env.from_string(tag)
        return template

    def _plain(self, text: str, path: Path, first_line: int) -> Rendered:
        """Render a page with no Jinja syntax: what Jinja would give, without Jinja."""
        self.sources.texts[path] = text
        idx = self.sources.index(path)
        lines = split_lines(text)
        if len(lines) > 1 and lines[-1] == "":
            lines.pop()  # Jinja drops a template's final newline (keep_trailing_newline=False)
        return Rendered(
            path=path,
            text="\n".join(lines),
            line_map=LineMap(
                paths=tuple(self.sources.paths), page=idx, first_line=first_line, count=len(lines)
            ),
        )

    def _unmark(self, output: str, path: Path, first_line: int) -> Rendered:
        page = self.sources.index(path)
        paths = self.sources.paths
        # Everything here runs at C speed; positions are read later, for asked lines only.
        marked = tuple(output.split("\n"))
        files = {int(i) for i in self.marks.file_pattern.findall(output)}
        files.discard(page)
        return Rendered(
            path=path,
            text=self.marks.strip(output),
            line_map=LineMap(
                paths=tuple(paths),
                marked=marked,
                page=page,
                first_line=first_line,
                count=len(marked),
                marks=self.marks,
            ),
            includes=tuple(paths[i] for i in sorted(files)),
        )
