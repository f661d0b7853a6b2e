"""Render a page's Jinja includes exactly as the site does, keeping a map back to the sources.

Jinja is imported here and nowhere else. The MkDocs plugin and ``runbook exec`` both call
:func:`Renderer.render`, so what readers see is what runs.

To know where each rendered line came from, every source line that starts outside a Jinja
tag gets an invisible marker (private-use characters carrying file and line, and a random
nonce of the renderer, see :class:`runbook.model.Marks`) before Jinja sees it; after
rendering the markers are read and stripped. Since no source can know the nonce, nothing
but a marker is ever stripped or read as one. Lines where a marker could change the output
(whitespace control such as ``{%-``) are left unmarked and inherit their position from the
line above.

Most pages use Jinja only for ``{{ variables }}``, ``{% include %}`` and ``{% raw %}``.
Such a page is rendered tag by tag: each distinct tag is compiled once per site, the text
between tags is copied, and only lines after a tag need a marker. Compiling each page
whole, which is most of what a Jinja render costs, is left to pages using anything else.

``runbook lint`` renders collecting (``render(..., collect=True)``): a missing, cyclic,
escaping or unparsable include renders as nothing and is recorded, undefined variables are
recorded one per use, and the page is still rendered, so that everything else on it can be
checked in the same pass.
"""

from __future__ import annotations

import bisect
import os
import re
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, ClassVar, NoReturn

import jinja2

from runbook.errors import GuideError, IncludeError, TemplateError
from runbook.model import Diagnostic, LineMap, Marks, Rendered, rel

_NEWLINE_RE = re.compile(r"\r\n|\r|\n")
# Shell idioms that Jinja reads as its own syntax; authors wrap them in {% raw %}.
_SHELL_JINJA_RE = re.compile(r"\{\{\s*\.|\$\{#|\{\{\s*\$|\{#\s*\w+\[")
_RAW_RE = re.compile(r"\{%-?\s*(raw|endraw)\s*-?%\}")
_UNDEFINED_HINT = (
    "define it in mkdocs.yml 'extra:', the page's front matter, or with --set name=value"
)
# An include statement with a constant name, for pages Jinja cannot read.
_INCLUDE_SCAN_RE = re.compile(
    r"""\{%[-+]?\s*include\s+(?:'([^'\\]*)'|"([^"\\]*)")(\s+ignore\s+missing\b)?"""
)
# Stands for an include that a collecting render leaves out (a cycle).
_SKIPPED = "\x00skipped include"
# A collecting render is done again for each include it leaves out; past this many, the
# page is reported as one that cannot be rendered.
_MAX_LEFT_OUT = 100
_FRONT_MATTER_RE = re.compile(
    r"\A(?:\ufeff)?---[ \t]*\r?\n(.*?\r?\n)?(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S
)


def split_lines(text: str) -> list[str]:
    """Split on ``\\r\\n``, ``\\r`` and ``\\n`` only (``str.splitlines`` splits on more)."""
    return _NEWLINE_RE.split(text)


def split_front_matter(text: str) -> tuple[str, str, int]:
    """Return ``(front_matter_yaml, body, body_first_line)``; line is 1-based."""
    match = _FRONT_MATTER_RE.match(text)
    if not match:
        return "", text, 1
    lines = len(_NEWLINE_RE.findall(match.group(0)))
    return match.group(1) or "", text[match.end() :], lines + 1


@dataclass
class _Undefined:
    """One use of an undefined variable."""

    name: str
    path: str
    line: int


def _template_frames() -> Iterator[tuple[jinja2.Template, FrameType]]:
    """Yield (template, frame) for the templates being rendered, innermost first."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        tmpl = frame.f_globals.get("__jinja_template__")
        if tmpl is not None:
            yield tmpl, frame
        frame = frame.f_back


@dataclass
class _Collect:
    """What a collecting render found, and the includes it leaves out."""

    problems: dict[tuple[str, str, int | None], GuideError] = field(default_factory=dict)
    """Each problem once, by message and place, in the order found."""
    skipped: set[tuple[str, int | None, str]] = field(default_factory=set)
    """``(file, line, name)``: the include of ``name`` there renders as nothing."""

    def add(self, problem: GuideError) -> None:
        self.problems.setdefault((problem.message, str(problem.path), problem.line), problem)


class _RecordingUndefined(jinja2.Undefined):
    """Record every use of an undefined variable so all can be reported at once."""

    __slots__ = ()
    renderer: ClassVar[Renderer]  # each Renderer subclasses this, naming itself

    def _record(self) -> None:
        renderer = type(self).renderer
        path, line = renderer.location()
        name = self._undefined_name or "?"
        if self._undefined_obj is not jinja2.utils.missing:
            name = f"{jinja2.utils.object_type_repr(self._undefined_obj)}.{name}"
        renderer._undefined.append(_Undefined(name, path, line))

    def __str__(self) -> str:
        self._record()
        return ""

    def __iter__(self) -> Iterator[Any]:
        self._record()
        return iter(())

    def __len__(self) -> int:
        self._record()
        return 0

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":
            raise AttributeError(name)
        self._record()
        return self


class _SiteLoader(jinja2.BaseLoader):
    """Load includes from the include root only, and mark their lines."""

    def __init__(self, root: Path, renderer: Renderer) -> None:
        self.root = root
        self.real_root = Path(os.path.realpath(root))
        self.renderer = renderer

    def resolve(self, template: str) -> Path:
        """Return the file ``template`` names, refusing anything outside the root."""
        parts = template.replace("\\", "/").split("/")
        if template.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
            raise self.renderer.include_error(
                f"include {template!r} leaves the include root {rel(self.root)}/",
                hint="name includes relative to the include directory, without '..'",
            )
        path = self.root.joinpath(*[p for p in parts if p not in ("", ".")])
        real = Path(os.path.realpath(path))
        if real != self.real_root and self.real_root not in real.parents:
            raise self.renderer.include_error(
                f"include {template!r} resolves to {real}, outside the include root "
                f"{rel(self.root)}/ (through a symbolic link)",
                hint="keep snippets inside the include directory",
            )
        return path

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Any]:
        path = self.resolve(template)
        try:
            data = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise jinja2.TemplateNotFound(template) from None
        except OSError as exc:
            raise self.renderer.include_error(f"cannot read include {template!r}: {exc}") from None
        text = self.renderer.decode_bytes(data, path)
        mtime = path.stat().st_mtime
        marked = self.renderer.mark(text, path)
        return marked, str(path), lambda: path.exists() and path.stat().st_mtime == mtime


class _Environment(jinja2.Environment):
    """An environment that reports include cycles instead of recursing forever.

    While a render collects, an include that cannot be loaded is recorded and renders as
    nothing.
    """

    renderer: Renderer

    def join_path(self, template: str, parent: str) -> str:
        stack = [t.name or "<page>" for t, _ in _template_frames()]
        if template in stack:
            chain = [*reversed(stack[: stack.index(template) + 1]), template]
            error = self.renderer.include_error(
                "include cycle: " + " -> ".join(chain),
                hint="remove one of these includes",
            )
            collect = self.renderer._collect
            if collect is None:
                raise error
            collect.add(error)
            return _SKIPPED
        return template

    def _load_template(
        self, name: str, globals: MutableMapping[str, Any] | None
    ) -> jinja2.Template:
        # Jinja's one loading path for include, import and extends (get_template,
        # select_template); overridden to locate and, while collecting, skip failures.
        renderer = self.renderer
        collect = renderer._collect
        if collect is not None:
            site = renderer.location()
            if name == _SKIPPED or (*site, name) in collect.skipped:
                return renderer.empty_template()
        try:
            return super()._load_template(name, globals)
        except jinja2.TemplateNotFound:
            # Where it was included from, for the error; "ignore missing" may yet catch it.
            renderer._missing = (name, *renderer.location())
            raise
        except (jinja2.TemplateSyntaxError, GuideError) as exc:
            # Not found, leaving the root, binary, not UTF-8, or not Jinja.
            if collect is None:
                raise
            if isinstance(exc, jinja2.TemplateSyntaxError):
                collect.add(renderer._syntax_problem(exc, renderer._page_path()))
            else:
                collect.add(exc)
            collect.skipped.add((*site, name))
            return renderer.empty_template()


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
        self._paths: list[Path] = []
        self._path_index: dict[Path, int] = {}
        self._undefined: list[_Undefined] = []
        self._sources: dict[Path, str] = {}
        self._tags: dict[str, jinja2.Template] = {}
        self.marks = Marks.new()
        """This renderer's position markers."""
        self._page: tuple[str, int] = ("", 1)  # the page compiled whole: its file, first line
        self._collect: _Collect | None = None  # set while a render collects its problems
        self._missing: tuple[str, str, int] | None = None  # the last include not found
        self._empty: jinja2.Template | None = None
        undefined = type("Undefined", (_RecordingUndefined,), {"renderer": self})
        env = _Environment(
            loader=_SiteLoader(self.include_root, self),
            undefined=undefined,
            autoescape=False,
            keep_trailing_newline=False,
        )
        env.renderer = self
        self.env = env

    # -- helpers used by the loader -------------------------------------------------------

    def include_error(self, message: str, *, hint: str | None = None) -> IncludeError:
        """Build an IncludeError located at the include statement being rendered."""
        path, line = self.location()
        return IncludeError(message, path=path, line=line or None, hint=hint)

    def location(self) -> tuple[str, int]:
        """Return the source file and line of the innermost template being rendered."""
        for tmpl, frame in _template_frames():
            return self._position(tmpl, tmpl.get_corresponding_lineno(frame.f_lineno))
        return "<page>", 0

    def _position(self, tmpl: jinja2.Template, line: int) -> tuple[str, int]:
        """Return file and line of ``line`` of template ``tmpl`` (the page starts late)."""
        filename = tmpl.filename or tmpl.name or "<page>"
        if tmpl.name is None and filename == self._page[0]:
            line += self._page[1] - 1  # the page's body follows its front matter
        return filename, line

    def _page_path(self) -> Path:
        return Path(self._page[0])

    def empty_template(self) -> jinja2.Template:
        """Return a template that renders as nothing (for a left-out include)."""
        if self._empty is None:
            self._empty = self.env.from_string("")
        return self._empty

    @staticmethod
    def decode_bytes(data: bytes, path: Path) -> str:
        """Decode a source file as UTF-8 (BOM allowed), or fail naming the file."""
        if b"\x00" in data[:8192]:
            raise TemplateError(
                "this is a binary file, not markdown",
                path=path,
                hint="point runbook at a markdown guide",
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise TemplateError(
                f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
                path=path,
                line=line,
                hint="save the file as UTF-8",
            ) from None
        return text[1:] if text.startswith("\ufeff") else text

    def _index(self, path: Path) -> int:
        idx = self._path_index.get(path)
        if idx is None:
            idx = self._path_index[path] = len(self._paths)
            self._paths.append(path)
        return idx

    def mark(self, text: str, path: Path, first_line: int = 1, *, exact: bool = True) -> str:
        """Prefix each markable line of ``text`` with an invisible position marker.

        ``exact`` finds multi-line tags with Jinja's own lexer; otherwise a regular
        expression does it, faster, and a page whose marked text does not compile is
        marked again exactly.
        """
        idx = self._index(path)
        marker = self.marks.marker
        self._sources[path] = text
        lines = split_lines(text)
        if not _has_tags(text):
            skip: set[int] = set()
        else:
            skip = self._unmarkable(text) if exact else _unmarkable_fast(text)
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
        if not _has_tags(text):
            return self._plain(text, path, first_line)
        context = {**self.variables, **(variables or {})}
        del self._undefined[:]
        fast = None if self.whole_pages else self._render_tags(text, path, first_line, context)
        if fast is not None:
            return fast
        if collect:
            return self._render_collecting(text, path, first_line, context)
        try:
            output = self._render_whole(text, path, first_line, context, None)
        except Exception as exc:
            problem = self._problem(exc, path)
            if problem is None:
                raise
            raise problem from None
        if self._undefined:
            self._undefined_error()
        return self._unmark(output, path, first_line)

    def _render_collecting(
        self, text: str, path: Path, first_line: int, context: dict[str, Any]
    ) -> Rendered:
        collect = _Collect()
        try:
            output = self._render_whole(text, path, first_line, context, collect)
        except Exception as exc:
            problem = self._problem(exc, path)
            if problem is None:
                raise
            collect.add(problem)
            for found in self._scan_includes(text, path, first_line):
                collect.add(found)
            return Rendered(
                path=path,
                text="",
                line_map=LineMap(paths=tuple(self._paths), page=self._index(path), count=1),
                problems=_diagnostics(collect, path),
                complete=False,
            )
        seen: dict[tuple[str, str, int], None] = {}
        for u in self._undefined:
            seen.setdefault((u.name, u.path, u.line), None)
        for name, where, line in seen:
            collect.add(
                TemplateError(
                    f"undefined variable: '{name}' ({rel(where)}:{line})",
                    path=where,
                    line=line,
                    hint=_UNDEFINED_HINT,
                )
            )
        rendered = self._unmark(output, path, first_line)
        return replace(rendered, problems=_diagnostics(collect, path))

    def _render_whole(
        self,
        text: str,
        path: Path,
        first_line: int,
        context: dict[str, Any],
        collect: _Collect | None,
    ) -> str:
        """Compile the page as one template and render it; Jinja's exceptions propagate.

        While collecting, a render stopped by an include (one not found, or failing as it
        runs) is done again with that include left out, until the page renders.
        """
        self._page = (str(path), first_line)
        self._missing = None
        try:
            try:
                marked = self.mark(text, path, first_line, exact=False)
                code = self.env.compile(marked, name=None, filename=str(path))
            except jinja2.TemplateSyntaxError:
                marked = self.mark(text, path, first_line, exact=True)
                code = self.env.compile(marked, name=None, filename=str(path))
            template = self.env.template_class.from_code(
                self.env, code, self.env.make_globals(None), None
            )
            self._collect = collect
            while True:
                del self._undefined[:]
                try:
                    # Template.render would rewrite the traceback, losing the templates'
                    # frames that place a failure.
                    return self.env.concat(template.root_render_func(template.new_context(context)))
                except Exception as exc:
                    if collect is None or not self._leave_out(exc, collect):
                        raise
        finally:
            self._collect = None

    def _leave_out(self, exc: Exception, collect: _Collect) -> bool:
        """Record an include that stopped a collecting render, to leave it out next time.

        Return False when the failure is the page's own.
        """
        if isinstance(exc, jinja2.TemplateNotFound):
            if self._missing is None or self._missing[0] != exc.name:
                return False
            key = (self._missing[1], self._missing[2], self._missing[0])
            problem: GuideError = self._not_found(exc, self._page_path())
        elif isinstance(exc, _RENDER_ERRORS) and not isinstance(exc, jinja2.TemplateSyntaxError):
            frames = _traceback_templates(exc.__traceback__)
            if len(frames) < 2 or frames[-1][0].name is None:
                return False
            (outer, outer_line), (inner, inner_line) = frames[-2], frames[-1]
            assert inner.name is not None
            key = (*self._position(outer, outer_line), inner.name)
            where, line = self._position(inner, inner_line)
            problem = TemplateError(f"cannot render: {exc}", path=where, line=line)
        else:
            return False
        if key in collect.skipped or len(collect.skipped) >= _MAX_LEFT_OUT:
            return False
        collect.skipped.add(key)
        collect.add(problem)
        return True

    def _problem(self, exc: BaseException, path: Path) -> GuideError | None:
        """Return the GuideError telling what stopped the render of ``path``, or None."""
        if isinstance(exc, GuideError):
            return exc
        if isinstance(exc, jinja2.TemplateSyntaxError):
            return self._syntax_problem(exc, path)
        if isinstance(exc, jinja2.TemplateNotFound):
            return self._not_found(exc, path)
        if isinstance(exc, RecursionError):
            return IncludeError(
                "includes nest too deeply (an include cycle?)",
                path=path,
                hint="check the chain of includes for a loop",
            )
        if isinstance(exc, _RENDER_ERRORS):
            where, line = self._traceback_location(exc.__traceback__, path)
            return TemplateError(f"cannot render: {exc}", path=where, line=line)
        return None

    def _not_found(self, exc: jinja2.TemplateNotFound, page: Path) -> IncludeError:
        if self._missing is not None and self._missing[0] == exc.name:
            where: str = self._missing[1]
            line: int | None = self._missing[2] or None
        else:
            where, line = self._last_include_site(str(exc.name), page)
        return IncludeError(
            f"include {exc.name!r} not found in {rel(self.include_root)}/",
            path=where,
            line=line,
            hint=f"create {rel(self.include_root / str(exc.name))} or fix the name",
        )

    def _scan_includes(self, text: str, path: Path, first_line: int) -> list[GuideError]:
        """Check the includes written on a page Jinja cannot render, without rendering."""
        problems: list[GuideError] = []
        for n, line in _lines_outside_raw(text, first_line):
            if "include" not in line:
                continue
            for match in _INCLUDE_SCAN_RE.finditer(line):
                if match.group(3):
                    continue  # "ignore missing"
                name = match.group(1) if match.group(1) is not None else match.group(2)
                try:
                    self.env.get_template(name)  # loaded and compiled, not rendered
                except jinja2.TemplateNotFound:
                    problems.append(
                        IncludeError(
                            f"include {name!r} not found in {rel(self.include_root)}/",
                            path=str(path),
                            line=n,
                            hint=f"create {rel(self.include_root / name)} or fix the name",
                        )
                    )
                except IncludeError as exc:  # placed at the include line, not rendering
                    problems.append(
                        IncludeError(exc.message, path=str(path), line=n, hint=exc.hint)
                    )
                except GuideError as exc:  # a binary snippet, or not UTF-8
                    problems.append(exc)
                except jinja2.TemplateSyntaxError as exc:
                    problems.append(self._syntax_problem(exc, path))
        return problems

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
        self._sources[path] = text
        pieces = _split_tags(text)
        if pieces is None:
            return None
        idx = self._index(path)
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
        if self._undefined:
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
        self._sources[path] = text
        idx = self._index(path)
        lines = split_lines(text)
        if len(lines) > 1 and lines[-1] == "":
            lines.pop()  # Jinja drops a template's final newline (keep_trailing_newline=False)
        return Rendered(
            path=path,
            text="\n".join(lines),
            line_map=LineMap(
                paths=tuple(self._paths), page=idx, first_line=first_line, count=len(lines)
            ),
        )

    def _unmark(self, output: str, path: Path, first_line: int) -> Rendered:
        page = self._index(path)
        # Everything here runs at C speed; positions are read later, for asked lines only.
        marked = tuple(output.split("\n"))
        files = {int(i) for i in self.marks.file_pattern.findall(output)}
        files.discard(page)
        return Rendered(
            path=path,
            text=self.marks.strip(output),
            line_map=LineMap(
                paths=tuple(self._paths),
                marked=marked,
                page=page,
                first_line=first_line,
                count=len(marked),
                marks=self.marks,
            ),
            includes=tuple(self._paths[i] for i in sorted(files)),
        )

    def _last_include_site(self, name: str | None, page: Path) -> tuple[str, int | None]:
        """Find the line including ``name``: scan the page and known snippets."""
        if name:
            needle = re.compile(r"\{%-?\s*include\s+['\"]" + re.escape(name) + "['\"]")
            for candidate in [page, *self._paths]:
                text = self._sources.get(candidate, "")
                for n, line in enumerate(split_lines(text), start=1):
                    if needle.search(line):
                        return str(candidate), n
        return str(page), None

    def _syntax_problem(self, exc: jinja2.TemplateSyntaxError, path: Path) -> TemplateError:
        """Return the error for a syntax error in page ``path`` or one of its snippets."""
        where = Path(exc.filename) if exc.filename else path
        is_page = where == path
        first_line = self._page[1] if is_page and self._page[0] == str(path) else 1
        line = exc.lineno
        if is_page:
            line += first_line - 1
        hint = "check the Jinja syntax"
        source = self._sources.get(where, "")
        for n, text in _lines_outside_raw(source, first_line if is_page else 1):
            if _SHELL_JINJA_RE.search(text):
                line = n
                hint = (
                    "shell code that looks like Jinja ('{{.Name}}', '${#array[@]}') must be "
                    "wrapped in {% raw %}...{% endraw %}"
                )
                break
        return TemplateError(f"Jinja syntax error: {exc.message}", path=where, line=line, hint=hint)

    def _undefined_error(self) -> NoReturn:
        seen: dict[tuple[str, str, int], None] = {}
        for u in self._undefined:
            seen.setdefault((u.name, u.path, u.line), None)
        items = list(seen)
        first = items[0]
        listing = ", ".join(f"'{name}' ({rel(p)}:{n})" for name, p, n in items)
        raise TemplateError(
            f"undefined variable{'s' if len(items) > 1 else ''}: {listing}",
            path=first[1],
            line=first[2],
            hint=_UNDEFINED_HINT,
        )

    def _traceback_location(self, tb: TracebackType | None, page: Path) -> tuple[str, int | None]:
        """Return the innermost template position in a traceback."""
        frames = _traceback_templates(tb)
        if not frames:
            return str(page), None
        tmpl, line = frames[-1]
        where, at = self._position(tmpl, line)
        return (str(page) if where == "<page>" else where), at


# What a template can raise as it renders (an undefined value used, a bad filter argument).
_RENDER_ERRORS = (jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError)


def _traceback_templates(tb: TracebackType | None) -> list[tuple[jinja2.Template, int]]:
    """Return the templates in a traceback with their lines, outermost first."""
    frames = []
    while tb is not None:
        tmpl = tb.tb_frame.f_globals.get("__jinja_template__")
        if tmpl is not None:
            frames.append((tmpl, tmpl.get_corresponding_lineno(tb.tb_lineno)))
        tb = tb.tb_next
    return frames


def _lines_outside_raw(text: str, first_line: int) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, line)`` of ``text`` outside ``{% raw %}`` blocks."""
    in_raw = False
    for n, line in enumerate(split_lines(text), start=first_line):
        if _RAW_RE.search(line):
            in_raw = "endraw" not in _RAW_RE.findall(line)[-1]
            continue
        if not in_raw:
            yield n, line


def _diagnostics(collect: _Collect, page: Path) -> tuple[Diagnostic, ...]:
    """Return what a collecting render found: the page's own lines first, in order."""
    found = [problem.diagnostic() for problem in collect.problems.values()]
    found.sort(
        key=lambda d: (
            d.origin is None or d.origin.path != page,
            str(d.origin.path) if d.origin else "",
            d.origin.line if d.origin else 0,
        )
    )
    return tuple(found)


_TAG_RE = re.compile(r"\{%.*?%\}|\{\{.*?\}\}|\{#.*?#\}", re.S)
# A page's tags in order; a raw block is one match, its text in the group "raw".
_PAGE_TAG_RE = re.compile(
    r"\{%\s*raw\s*%\}(?P<raw>.*?)\{%\s*endraw\s*%\}|\{\{.*?\}\}|\{%.*?%\}|\{#", re.S
)
_INCLUDE_TAG_RE = re.compile(r"""\{%\s*include\s+(?:'[^'\\]*'|"[^"\\]*")\s*%\}""")
_ENDRAW_RE = re.compile(r"\{%[-+]?\s*endraw")
_MAX_TAGS = 4096
_SPACE_RE = re.compile(r"\s*")
_DASH_OPEN_RE = re.compile(r"\{[%{#]-")


def _unmarkable_fast(text: str) -> set[int]:
    """Like ``Renderer._unmarkable`` but with a regular expression instead of the lexer.

    Lines are counted as ``split_lines`` counts them (a lone ``\r`` ends one too).
    """
    skip: set[int] = set()
    starts = [m.end() for m in _NEWLINE_RE.finditer(text)]  # where lines 2, 3 … start

    def line_of(pos: int) -> int:  # 1-based line holding offset pos
        return bisect.bisect_right(starts, pos) + 1

    def strip_before(start: int) -> None:
        # "{%-" strips the whitespace before it, line breaks included.
        before = start
        while before > 0 and text[before - 1].isspace():
            before -= 1
        skip.update(range(line_of(before) + 1, line_of(start) + 1))

    for match in _TAG_RE.finditer(text):
        start, end = match.span()
        tag = match.group()
        if "\n" in tag or "\r" in tag:
            skip.update(range(line_of(start) + 1, line_of(end - 1) + 1))
        if tag[2] == "-":
            strip_before(start)
        if tag[-3] == "-":
            after = _SPACE_RE.match(text, end)
            stop = after.end() if after else end
            skip.update(range(line_of(end) + 1, line_of(stop) + 1))
    if "-" in text:
        # A tag Jinja ends at the end of the text without closing it ("{#-" last) strips
        # just the same.
        for match in _DASH_OPEN_RE.finditer(text):
            strip_before(match.start())
    return skip


def _split_tags(text: str) -> list[tuple[bool, str, int]] | None:
    """Split a page into ``(is_tag, text, source lines)`` pieces for tag-by-tag rendering.

    Text pieces are what Jinja outputs for them (a raw block's content, newlines
    normalised, the final newline dropped); a tag is a ``{{ … }}`` or an include. Return
    None when the page uses anything else, before anything is rendered.
    """
    text = "\n".join(split_lines(text))
    if text.endswith("\n"):
        text = text[:-1]  # keep_trailing_newline=False drops one final newline
    pieces: list[tuple[bool, str, int]] = []
    pos = 0
    for match in _PAGE_TAG_RE.finditer(text):
        data = text[pos : match.start()]
        if _has_tags(data):
            return None  # an unclosed tag: Jinja reports it
        pieces.append((False, data, data.count("\n")))
        pos = match.end()
        whole = match.group()
        raw = match.group("raw")
        if raw is not None:
            if _ENDRAW_RE.search(raw):
                return None  # an endraw with whitespace control ends it earlier
            pieces.append((False, raw, whole.count("\n")))
        elif whole[1] == "#" or whole[2] in "-+" or whole[-3] in "-+":
            return None  # whitespace control and comments take Jinja's own lexer
        elif whole[1] == "%" and not _INCLUDE_TAG_RE.fullmatch(whole):
            return None  # statements that span text (if, for, set …)
        else:
            pieces.append((True, whole, whole.count("\n")))
    data = text[pos:]
    if _has_tags(data):
        return None
    pieces.append((False, data, data.count("\n")))
    return pieces


def _has_tags(text: str) -> bool:
    return "{%" in text or "{{" in text or "{#" in text
