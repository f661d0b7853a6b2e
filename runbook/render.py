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
"""

from __future__ import annotations

import bisect
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, ClassVar, NoReturn

import jinja2

from runbook.errors import IncludeError, TemplateError
from runbook.model import LineMap, Marks, Rendered, rel

_NEWLINE_RE = re.compile(r"\r\n|\r|\n")
# Shell idioms that Jinja reads as its own syntax; authors wrap them in {% raw %}.
_SHELL_JINJA_RE = re.compile(r"\{\{\s*\.|\$\{#|\{\{\s*\$|\{#\s*\w+\[")
_RAW_RE = re.compile(r"\{%-?\s*(raw|endraw)\s*-?%\}")
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


def _current_location() -> tuple[str, int]:
    """Return the source file and line of the innermost template being rendered."""
    for tmpl, frame in _template_frames():
        return tmpl.filename or tmpl.name or "<page>", tmpl.get_corresponding_lineno(frame.f_lineno)
    return "<page>", 0


class _RecordingUndefined(jinja2.Undefined):
    """Record every use of an undefined variable so all can be reported at once."""

    __slots__ = ()
    sink: ClassVar[list[_Undefined]] = []  # each Renderer subclasses this with its own list

    def _record(self) -> None:
        path, line = _current_location()
        name = self._undefined_name or "?"
        if self._undefined_obj is not jinja2.utils.missing:
            name = f"{jinja2.utils.object_type_repr(self._undefined_obj)}.{name}"
        type(self).sink.append(_Undefined(name, path, line))

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
    """An environment that reports include cycles instead of recursing forever."""

    renderer: Renderer

    def join_path(self, template: str, parent: str) -> str:
        stack = [t.name or "<page>" for t, _ in _template_frames()]
        if template in stack:
            chain = [*reversed(stack[: stack.index(template) + 1]), template]
            raise self.renderer.include_error(
                "include cycle: " + " -> ".join(chain),
                hint="remove one of these includes",
            )
        return template


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
        undefined = type("Undefined", (_RecordingUndefined,), {"sink": self._undefined})
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
        path, line = _current_location()
        return IncludeError(message, path=path, line=line or None, hint=hint)

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
    ) -> Rendered:
        """Render page body ``text`` (front matter removed) of file ``path``."""
        if not _has_tags(text):
            return self._plain(text, path, first_line)
        context = {**self.variables, **(variables or {})}
        del self._undefined[:]
        fast = None if self.whole_pages else self._render_tags(text, path, first_line, context)
        if fast is not None:
            return fast
        del self._undefined[:]
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
            output = template.render(context)
        except jinja2.TemplateSyntaxError as exc:
            self._syntax_error(exc, path, first_line)
        except jinja2.TemplateNotFound as exc:
            where, line = self._last_include_site(str(exc.name), path)
            raise IncludeError(
                f"include {exc.name!r} not found in {rel(self.include_root)}/",
                path=where,
                line=line,
                hint=f"create {rel(self.include_root / str(exc.name))} or fix the name",
            ) from None
        except RecursionError:
            raise IncludeError(
                "includes nest too deeply (an include cycle?)",
                path=path,
                hint="check the chain of includes for a loop",
            ) from None
        except (jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as exc:
            where, line = _traceback_location(exc.__traceback__, path)
            raise TemplateError(f"cannot render: {exc}", path=where, line=line) from None
        if self._undefined:
            self._undefined_error()
        return self._unmark(output, path, first_line)

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

    def _syntax_error(
        self, exc: jinja2.TemplateSyntaxError, path: Path, first_line: int
    ) -> NoReturn:
        where = Path(exc.filename) if exc.filename else path
        line = exc.lineno
        if where == path:
            line += first_line - 1
        hint = "check the Jinja syntax"
        source = self._sources.get(where, "")
        in_raw = False
        for n, text in enumerate(split_lines(source), start=first_line if where == path else 1):
            if _RAW_RE.search(text):
                in_raw = "endraw" not in _RAW_RE.findall(text)[-1]
                continue
            if not in_raw and _SHELL_JINJA_RE.search(text):
                line = n
                hint = (
                    "shell code that looks like Jinja ('{{.Name}}', '${#array[@]}') must be "
                    "wrapped in {% raw %}...{% endraw %}"
                )
                break
        raise TemplateError(
            f"Jinja syntax error: {exc.message}", path=where, line=line, hint=hint
        ) from None

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
            hint="define it in mkdocs.yml 'extra:', the page's front matter, or with "
            "--set name=value",
        )


def _traceback_location(tb: TracebackType | None, page: Path) -> tuple[str, int | None]:
    """Return the innermost template position in a traceback."""
    where: tuple[str, int | None] = (str(page), None)
    while tb is not None:
        tmpl = tb.tb_frame.f_globals.get("__jinja_template__")
        if tmpl is not None:
            where = (tmpl.filename or str(page), tmpl.get_corresponding_lineno(tb.tb_lineno))
        tb = tb.tb_next
    return where


_TAG_RE = re.compile(r"\{%.*?%\}|\{\{.*?\}\}|\{#.*?#\}", re.S)
# A page's tags in order; a raw block is one match, its text in the group "raw".
_PAGE_TAG_RE = re.compile(
    r"\{%\s*raw\s*%\}(?P<raw>.*?)\{%\s*endraw\s*%\}|\{\{.*?\}\}|\{%.*?%\}|\{#", re.S
)
_INCLUDE_TAG_RE = re.compile(r"""\{%\s*include\s+(?:'[^'\\]*'|"[^"\\]*")\s*%\}""")
_ENDRAW_RE = re.compile(r"\{%[-+]?\s*endraw")
_MAX_TAGS = 4096
_SPACE_RE = re.compile(r"\s*")


def _unmarkable_fast(text: str) -> set[int]:
    """Like ``Renderer._unmarkable`` but with a regular expression instead of the lexer."""
    skip: set[int] = set()
    newlines = [m.start() for m in re.finditer("\n", text)]

    def line_of(pos: int) -> int:  # 1-based line holding offset pos
        return bisect.bisect_right(newlines, pos - 1) + 1

    for match in _TAG_RE.finditer(text):
        start, end = match.span()
        tag = match.group()
        if "\n" in tag:
            skip.update(range(line_of(start) + 1, line_of(end - 1) + 1))
        if tag[2] == "-":
            # "{%-" strips the whitespace before it, line breaks included.
            before = start
            while before > 0 and text[before - 1].isspace():
                before -= 1
            skip.update(range(line_of(before) + 1, line_of(start) + 1))
        if tag[-3] == "-":
            after = _SPACE_RE.match(text, end)
            stop = after.end() if after else end
            skip.update(range(line_of(end) + 1, line_of(stop) + 1))
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
