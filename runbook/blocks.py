"""Find a page's code blocks as the site's renderer finds them (Python-Markdown + pymdownx).

Python-Markdown and pymdown-extensions are imported here and nowhere else. What counts as a
code block is not written down again here: the page goes through the renderer's own
preprocessors and block parser, configured like the site's ``mkdocs.yml``, with two small
hooks that note where each block is. superfences is a preprocessor that sees whole source
lines, so a fence's lines are known exactly; an indented block is found again in the source
by its text, in document order. Inline markup, tree processors and syntax highlighting, which
cannot make or unmake a block, are never run.
"""

from __future__ import annotations

import functools
import html
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import markdown
from markdown import blockprocessors, preprocessors
from markdown.blockprocessors import CodeBlockProcessor
from markdown.extensions import admonition, md_in_html, tables
from markdown.extensions.attr_list import get_attrs_and_remainder
from markdown.extensions.fenced_code import FencedBlockPreprocessor
from pymdownx import details, superfences, tabbed

from runbook.blockplaces import (
    back,
    candidate_starts,
    fences_in_order,
    first_fit,
    in_order,
    line_index,
    match_at,
    normalized,
    splice,
    unique_order,
)

# MkDocs always loads these before the site's own list (mkdocs.config.defaults).
MKDOCS_BUILTINS = ("toc", "tables", "fenced_code")
# What a lone guide (no mkdocs.yml) is read with: mkdocs-material's recommended set.
DEFAULT_EXTENSIONS: tuple[tuple[str, Mapping[str, Any]], ...] = (
    ("admonition", {}),
    ("attr_list", {}),
    ("md_in_html", {}),
    ("pymdownx.details", {}),
    ("pymdownx.superfences", {}),
    ("pymdownx.tabbed", {"alternate_style": True}),
    ("pymdownx.tasklist", {"custom_checkbox": True}),
)
# Extensions that read other files or change the page's lines before the fences are found;
# the blocks they add are not the page's own (runbook includes with Jinja, not --8<--).
_SKIPPED = frozenset({"pymdownx.snippets", "markdown_include.include", "meta"})
_FENCE_LINE_RE = re.compile(r"^[ \t>]*(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
# Lines whose end is part of the syntax around blocks: a fence's info string, a tab's or an
# admonition's title, an HTML tag. A probe's mark at their end would change the blocks.
_UNMARKABLE_RE = re.compile(r"^[ \t>]*(?:`{3,}|~{3,}|===|!!!|\?\?\?|<)")


@dataclass(frozen=True)
class CodeBlock:
    """A code block the site renders as ``<pre>``."""

    start: int
    """0-based line of its first line (the opening fence, or the first indented line)."""
    end: int
    """0-based line after its last line."""
    fenced: bool
    """Whether it is a fenced block (else indented)."""
    code: str
    """Its text as the reader sees it, without the final newline."""
    info: str = ""
    """A fence's text after the fence characters, trimmed."""
    lang: str = ""
    """The language the renderer gives it."""
    attrs: tuple[tuple[str, str], ...] = ()
    """Attributes and options as written, classes as ``("class", name)``, in order."""
    fence: str = ""
    """The fence characters (```` ``` ````, ``~~~~``); empty for indented blocks."""


@dataclass(frozen=True)
class FenceProblem:
    """Something the reader sees that the author surely did not mean."""

    line: int
    """0-based line where it starts."""
    code: str
    """A short stable identifier."""
    message: str
    """What the reader sees, in one sentence."""
    hint: str
    """What to do about it."""


@dataclass(frozen=True)
class PageBlocks:
    """The code blocks of one page and the fence problems found on the way."""

    blocks: tuple[CodeBlock, ...]
    """Every block in document order."""
    problems: tuple[FenceProblem, ...] = ()
    """Fence-looking lines that do not render as the author meant, in line order."""


@dataclass
class _Fence:
    start: int
    end: int
    key: str
    code: str
    info: str
    lang: str
    attrs: tuple[tuple[str, str], ...]
    fence: str
    div: bool  # a custom fence the site renders as a <div>, not a code block


class _Fences(superfences.SuperFencesBlockPreprocessor):  # type: ignore[misc]
    """superfences' own preprocessor, noting each fence instead of highlighting it."""

    found: list[_Fence]

    def process_nested_block(self, ws: str, content: str, start: int, end: int) -> None:
        self.last = ws + self.normalize_ws(content)
        if self.formatter is not None:  # None: superfences leaves the lines as they are
            first = self.first.lstrip(" >")
            fence = re.match(r"`+|~+", first)
            info = first[fence.end() if fence else 0 :].strip()
            # What the page will show here: a mark that says whether the reader sees it.
            placeholder = self.md.htmlStash.store(_shown_mark(f"f{len(self.found)}"))
            self.found.append(
                _Fence(
                    start,
                    end,
                    placeholder[1:-1],
                    self.rebuild_block(self.code),
                    info,
                    self.lang or "",
                    fence_attrs(info),
                    fence.group() if fence else "",
                    getattr(self.formatter, "keywords", {}).get("_fmt")
                    is superfences.fence_div_format,
                )
            )
            self.stack.append((f"{self.ws}{placeholder}", start, end))
            if not self.disabled_indented:
                # An indented block that takes this placeholder in gets the source back.
                self.extension.stash.store(
                    placeholder[1:-1],
                    "{}\n{}{}".format(
                        self.first, self.normalize_ws("\n".join(self.code)) + "\n", self.last
                    ),
                    self.ws_virtual_len,
                )
        self.clear()

    def reassemble(self, lines: list[str]) -> list[str]:
        """Put each fence's placeholder where its lines were, as superfences does, in one
        pass: superfences' own copies the page once per fence, which makes a page's
        load grow with the square of its blocks."""
        if fences_in_order(self.stack, len(lines)):
            return splice(lines, self.stack)
        spliced: list[str] = super().reassemble(lines)
        return spliced


class _PlainFences(FencedBlockPreprocessor):  # type: ignore[misc]
    """Python-Markdown's fenced_code preprocessor (sites without superfences), noting fences.

    Its own loop runs unchanged; its pattern is wrapped to see each match, and a match is a
    fence when the loop stored a block for it.
    """

    found: list[_Fence]

    def run(self, lines: list[str]) -> list[str]:
        pattern: re.Pattern[str] = FencedBlockPreprocessor.FENCED_BLOCK_RE
        pending: list[tuple[re.Match[str], str, int]] = []
        shift = 0  # lines the replaced fences added (or took) so far

        def settle() -> None:
            nonlocal shift
            if not pending:
                return
            match, text, stored = pending.pop()
            if len(self.md.htmlStash.rawHtmlBlocks) == stored:
                return  # skipped (its braces were not an attribute list)
            self.md.htmlStash.rawHtmlBlocks[stored] = _shown_mark(f"f{len(self.found)}")
            start = text.count("\n", 0, match.start()) - shift
            inner = match.group(0).count("\n")
            info = match.group(0).split("\n", 1)[0][len(match.group("fence")) :].strip()
            attrs = fence_attrs(info)
            classes = [v for k, v in attrs if k == "class"]
            lang = match.group("lang") or (classes[0] if match.group("attrs") and classes else "")
            self.found.append(
                _Fence(
                    start,
                    start + inner + 1,
                    "",
                    match.group("code")[:-1],
                    info,
                    lang,
                    attrs,
                    match.group("fence"),
                    False,
                )
            )
            shift += 2 - inner  # the fence became "\n" + placeholder + "\n"

        class Recorder:
            def search(self_, text: str, pos: int) -> re.Match[str] | None:
                settle()
                match: re.Match[str] | None = pattern.search(text, pos)
                if match is not None:
                    pending.append((match, text, len(self.md.htmlStash.rawHtmlBlocks)))
                return match

        self.FENCED_BLOCK_RE = Recorder()
        try:
            result: list[str] = super().run(lines)
        finally:
            del self.FENCED_BLOCK_RE
        settle()
        return result


class _IndentedCode(superfences.SuperFencesCodeBlockProcessor):  # type: ignore[misc]
    """The indented-code processor, noting each ``<code>`` element it fills."""

    elements: dict[int, Any]

    def run(self, parent: Any, blocks: list[str]) -> bool:
        handled = bool(super().run(parent, blocks))
        if handled:
            _note(self.elements, self.lastChild(parent))
        return handled


class _PlainIndentedCode(CodeBlockProcessor):  # type: ignore[misc]
    """The same note for sites without superfences."""

    elements: dict[int, Any]

    def run(self, parent: Any, blocks: list[str]) -> None:
        super().run(parent, blocks)
        _note(self.elements, self.lastChild(parent))


def _note(elements: dict[int, Any], pre: Any) -> None:
    """Note a ``<pre>`` the indented-code processor filled, marked to be found in the page."""
    if id(pre) not in elements:
        pre.set(_SHOWN_ATTR, f"i{len(elements)}")
        elements[id(pre)] = pre


_SHOWN_ATTR = "data-runbook-block"
_SHOWN_RE = re.compile(_SHOWN_ATTR + r'="(\w+)"')
_COMMENT_RE = re.compile(r"<!--.*?-->", re.S)


def _shown_mark(name: str) -> str:
    return f'<pre {_SHOWN_ATTR}="{name}"></pre>'


def _shown(md: markdown.Markdown, root: Any) -> set[str]:
    """Return the marks of the blocks that reach the page (not in a comment, not dropped)."""
    output = md.serializer(root)
    for post in md.postprocessors:
        output = post.run(output)
    return set(_SHOWN_RE.findall(_COMMENT_RE.sub("", output)))


@functools.lru_cache(maxsize=4096)  # a site writes few distinct info strings, many times
def fence_attrs(info: str) -> tuple[tuple[str, str], ...]:
    """Read a fence's attributes as written: ``{ .cls #id key="v" }`` or ``key="v"`` options.

    ``info`` is the opening fence's text after the backticks; superfences' own pattern and
    attr_list's own reader take it apart.
    """
    match = superfences.RE_NESTED_FENCE_START.match("```" + info)
    if match is None:
        return ()
    found: list[tuple[str, str]] = []
    if match.group("attrs") is not None:
        attrs, _ = get_attrs_and_remainder(match.group("attrs"))
        for key, value in attrs:
            found.append(("class" if key == "." else key, key if value is None else value))
    elif match.group("options"):
        for option in superfences.RE_OPTIONS.finditer(match.group("options")):
            value = option.group("value")
            found.append((option.group("key"), option.group("key") if value is None else value))
    return tuple(found)


@dataclass
class BlockFinder:
    """Find code blocks with one site's Markdown configuration; build once per site."""

    extensions: Sequence[tuple[str, Mapping[str, Any]]] = DEFAULT_EXTENSIONS
    """The site's ``markdown_extensions``, as (name, options) pairs."""

    def __post_init__(self) -> None:
        self._mark = f"\u2063{secrets.token_hex(6)}:"  # unknown to any page
        self.md = self._markdown()
        self.fences = self._hook_fences()
        self.indented = self._hook_indented()
        self.md.parser.blockprocessors = _ListedOnce(self.md.parser.blockprocessors)
        # Only with processors known to make code of nothing but what may_hold_code sees.
        self.skippable = all(type(p) in _KNOWN for p in self.md.preprocessors) and all(
            type(p) in _KNOWN for p in self.md.parser.blockprocessors
        )

    def _markdown(self) -> markdown.Markdown:
        names: dict[str, dict[str, Any]] = {name: {} for name in MKDOCS_BUILTINS}
        for name, options in self.extensions:
            if name not in _SKIPPED:
                names.setdefault(name, {}).update(options)
        md = markdown.Markdown()
        failed: list[tuple[str, str]] = []
        for name, options in names.items():
            try:
                md.registerExtensions([name], {name: _safe_options(name, options)})
            except Exception as exc:  # a missing or broken extension, or options it refuses
                failed.append((name, f"{type(exc).__name__}: {exc}"))
        # Read without them, the page's blocks may differ from the site's: lint says so.
        self.unloadable: tuple[tuple[str, str], ...] = tuple(failed)
        return md

    def _hook_fences(self) -> _Fences | _PlainFences | None:
        if "fenced_code_block" not in self.md.preprocessors:
            return None
        current = self.md.preprocessors["fenced_code_block"]
        if isinstance(current, FencedBlockPreprocessor):
            plain = _PlainFences(self.md, current.config)
            plain.found = []
            self.md.preprocessors.register(plain, "fenced_code_block", 25)
            return plain
        if not isinstance(current, superfences.SuperFencesBlockPreprocessor):
            return None
        hooked = _Fences(self.md)
        hooked.config = current.config
        hooked.extension = current.extension
        hooked.found = []
        self.md.preprocessors.register(hooked, "fenced_code_block", 25)
        return hooked

    def _hook_indented(self) -> _IndentedCode | _PlainIndentedCode:
        current = self.md.parser.blockprocessors["code"]
        hooked: _IndentedCode | _PlainIndentedCode
        if isinstance(current, superfences.SuperFencesCodeBlockProcessor):
            hooked = _IndentedCode(self.md.parser)
            hooked.config = current.config
            hooked.extension = current.extension
        else:
            hooked = _PlainIndentedCode(self.md.parser)
        hooked.elements = {}
        self.md.parser.blockprocessors.register(hooked, "code", 80)
        return hooked

    def find(self, text: str) -> PageBlocks:
        """Return the code blocks of a rendered page, in document order."""
        if self.skippable and not may_hold_code(text, self.md.tab_length):
            return PageBlocks(())  # the renderer would make no code block of it
        return self._find(text)

    def _find(self, text: str) -> PageBlocks:
        fences, codes = self._parse(text)
        kept = [f for f in fences if not self._reverted(f)]
        blocks = [
            CodeBlock(f.start, f.end, True, f.code, f.info, f.lang, f.attrs, f.fence)
            for f in kept
            if not f.div
        ]
        taken = {n for f in kept for n in range(f.start, f.end)}
        if codes:  # indented blocks: found again in the source by their text
            source = normalized(text, self.md.tab_length)
            wanted = [[line for line in code.split("\n") if line] for code in codes]
            by_text = line_index(source)
            candidates = [candidate_starts(lines, source, taken, by_text) for lines in wanted]
            starts = unique_order(wanted, candidates, source)
            if starts is None:
                starts = self._probe(text, candidates, wanted, source)
            for code, lines, start in zip(codes, wanted, starts, strict=True):
                end = match_at(lines, source, start) if start is not None else None
                if start is not None and end is not None:
                    blocks.append(CodeBlock(start, end, False, code))
            blocks.sort(key=lambda b: b.start)
        return PageBlocks(tuple(blocks), tuple(self._problems(text, blocks, taken)))

    def _parse(self, text: str) -> tuple[list[_Fence], list[str]]:
        """Run the renderer's preprocessors and block parser; return fences and indented code.

        Only what reaches the page counts: a block inside an HTML comment, or inside HTML
        the renderer drops, is left out.
        """
        md = self.md
        md.reset()
        fences: list[_Fence] = []
        if self.fences is not None:
            self.fences.found = fences
        self.indented.elements = {}
        lines = text.split("\n")
        for prep in md.preprocessors:
            lines = prep.run(lines)
        root = md.parser.parseDocument(lines).getroot()
        pres = list(self.indented.elements.values())
        if _HTML_RE.search(text):
            shown = _shown(md, root)
            fences = [f for i, f in enumerate(fences) if f"f{i}" in shown or self._reverted(f)]
            pres = [pre for i, pre in enumerate(pres) if f"i{i}" in shown]
        codes = [html.unescape(pre[0].text or "").rstrip("\n") for pre in pres]
        return fences, codes

    def _probe(
        self,
        text: str,
        candidates: list[list[int]],
        wanted: list[list[str]],
        source: list[str],
    ) -> list[int | None]:
        """Tell apart places that hold the same text: mark them and let the renderer say.

        A mark at the end of a line changes no block around it (fence lines, whose end is
        their info string, are left unmarked), so the second parse has the same blocks, and
        each block's text carries the lines it came from.
        """
        lines = text.split("\n")
        marked: set[int] = set()
        for found, want in zip(candidates, wanted, strict=True):
            for first in found:
                end = match_at(want, source, first) or first
                marked.update(
                    n
                    for n in range(first, end)
                    if lines[n].strip() and not _UNMARKABLE_RE.match(lines[n])
                )
        for n in marked:
            lines[n] = f"{lines[n]}{self._mark}{n}:"
        _, codes = self._parse("\n".join(lines))
        if len(codes) != len(wanted):
            return [found[0] if found else None for found in candidates]
        mark = re.compile(re.escape(self._mark) + r"(\d+):")
        starts: list[int | None] = []
        cursor = 0
        for code, found, want in zip(codes, candidates, wanted, strict=True):
            before = 0  # non-blank lines of the block above the first marked one
            # Unmarked (only fence lines): the first place after the block above.
            start: int | None = next((n for n in found if n >= cursor), None)
            if start is None and found:
                start = found[0]
            for line in code.split("\n"):
                hit = mark.search(line)
                if hit:
                    start = back(source, int(hit.group(1)), before)
                    break
                before += bool(line)
            starts.append(start)
            if start is not None:
                cursor = match_at(want, source, start) or start
        # The renderer lists blocks in the page's order, each after the one before.
        return starts if in_order(starts, wanted, source) else first_fit(candidates, wanted, source)

    def _reverted(self, fence: _Fence) -> bool:
        """Tell whether an indented block took the fence in as its own text."""
        if not isinstance(self.fences, _Fences) or self.fences.disabled_indented:
            return False
        return self.fences.extension.stash.get(fence.key) is None

    def _problems(
        self, text: str, blocks: list[CodeBlock], fenced: set[int]
    ) -> Iterator[FenceProblem]:
        lines = text.split("\n")
        inside = set(fenced)
        for block in blocks:
            inside.update(range(block.start, block.end))
        for block in blocks:
            if block.fenced:
                yield from _swallowed(block, lines)
            elif block.code.lstrip().startswith(("```", "~~~")):
                yield FenceProblem(
                    block.start,
                    "misindented-fence",
                    "this fence is indented too deep: readers see it as literal text with "
                    "backticks inside a code block",
                    "indent the fence by exactly 4 spaces more than the === / !!! line or list "
                    "item that holds it",
                )
        for n, line in enumerate(lines):
            if "```" not in line and "~~~" not in line:
                continue  # no fence on it (what _FENCE_LINE_RE needs first)
            match = _FENCE_LINE_RE.match(line)
            if match is None or n in inside or "`" in match.group("info"):
                continue  # a backtick after the fence: an inline code span, meant as text
            yield self._as_text(n, match.group("fence"), match.group("info").strip())

    def _accepts(self, fence: str, info: str) -> bool:
        """Tell whether superfences takes ``fence + info`` as the start of a code block."""
        if self.fences is None:
            return False
        found: list[_Fence] = []
        self.fences.found = found
        self.md.reset()
        self.fences.run([f"{fence}{info}", "x", fence, ""])
        return bool(found)

    def _as_text(self, line: int, fence: str, info: str) -> FenceProblem:
        shown = f"{fence}{info}"
        if info and not self._accepts(fence, info):
            return FenceProblem(
                line,
                "fence-as-text",
                f"'{shown}' is not a code fence on the site: readers see it as text and the "
                "lines after it as a paragraph",
                'write the language first and options in braces: ```bash { .run key="value" } '
                "(a space before the braces, values in double quotes); an info string with "
                "other words (log4j:ERROR …) is not accepted",
            )
        return FenceProblem(
            line,
            "unclosed-fence",
            f"'{shown}' opens no code block on the site: it is never closed at its "
            "indentation, so readers see it and the lines after it as text",
            f"add a closing {fence} line at the same indentation, or remove this one",
        )


def _swallowed(block: CodeBlock, lines: list[str]) -> Iterator[FenceProblem]:
    """Report a fenced block that takes in a fence meant to open another block."""
    for n in range(block.start + 1, block.end - 1):
        match = _FENCE_LINE_RE.match(lines[n])
        if (
            match
            and match.group("info").strip()
            and match.group("fence")[0] == block.fence[:1]
            and len(match.group("fence")) >= len(block.fence)
        ):
            yield FenceProblem(
                block.start,
                "fence-swallows",
                f"this code block runs to line {block.end} and takes in the fence "
                f"'{match.group('fence')}{match.group('info').strip()}' of line {n + 1}: readers "
                "see the text and code between them as one code block",
                "check the fence above this line: one that is not closed, or not a fence on the "
                "site, shifts every fence after it",
            )
            return


# A line that may open raw HTML: only then can a block be hidden from the page.
_HTML_RE = re.compile(r"^[ \t>]*<[A-Za-z!/?]", re.M)

# The processors whose code blocks may_hold_code foresees: mkdocs' built-ins and
# mkdocs-material's recommended set (the others register none). With any other, every page
# is parsed.
_KNOWN = frozenset(
    {
        preprocessors.NormalizeWhitespace,
        preprocessors.HtmlBlockPreprocessor,
        md_in_html.HtmlBlockPreprocessor,
        _Fences,
        _PlainFences,
        blockprocessors.EmptyBlockProcessor,
        blockprocessors.ListIndentProcessor,
        _IndentedCode,
        _PlainIndentedCode,
        blockprocessors.HashHeaderProcessor,
        blockprocessors.SetextHeaderProcessor,
        blockprocessors.HRProcessor,
        blockprocessors.OListProcessor,
        blockprocessors.UListProcessor,
        blockprocessors.BlockQuoteProcessor,
        blockprocessors.ReferenceProcessor,
        blockprocessors.ParagraphProcessor,
        tables.TableProcessor,
        admonition.AdmonitionProcessor,
        details.DetailsProcessor,
        tabbed.TabbedProcessor,
        md_in_html.MarkdownInHtmlProcessor,
    }
)


@functools.lru_cache(maxsize=8)
def _indent_re(tab_length: int) -> re.Pattern[str]:
    # Where a block the code processor takes may start: a line's start (\r ends a line too)
    # or right after HTML (md_in_html parses what follows a tag), past '>' quote markers
    # and spaces; a tab there may widen to the full indentation.
    return re.compile(rf"(?:^|[>\r])[ \t>]*(?: {{{tab_length}}}|\t)", re.M)


def may_hold_code(text: str, tab_length: int = 4) -> bool:
    """Tell whether the site's renderer may make a code block of ``text``.

    False is a proof of none, for the processors in ``_KNOWN``: a fence needs three
    backticks or tildes, and an indented block a line indented by ``tab_length`` once
    quote markers, container indentation and any HTML before it are taken away. STX and
    ETX, which the renderer deletes first, may join those characters.
    """
    if any(mark in text for mark in ("```", "~~~", "\x02", "\x03")):
        return True
    return _indent_re(tab_length).search(text) is not None


class _ListedOnce(markdown.util.Registry):  # type: ignore[misc]
    """The block processors, listed in their order once instead of for every block.

    The block parser iterates its registry for each block it reads, and a registry makes a
    new list each time: a tenth of the parse. Same processors, same order.
    """

    def __init__(self, registry: Any) -> None:
        super().__init__()
        self._listed: list[Any] | None = None
        for item in registry._priority:
            self.register(registry[item.name], item.name, item.priority)

    def register(self, item: Any, name: str, priority: float) -> None:
        self._listed = None
        super().register(item, name, priority)

    def deregister(self, name: str, strict: bool = True) -> None:
        self._listed = None
        super().deregister(name, strict)

    def __iter__(self) -> Iterator[Any]:
        if self._listed is None:
            self._listed = list(super().__iter__())
        return iter(self._listed)


def _safe_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Return an extension's options with the ones that name Python code made harmless.

    ``mkdocs.yml`` may name functions (``!!python/name:…``) that runbook never imports. For
    what a code block is, only a custom fence's name and whether it renders as ``<pre>``
    matter, so its format becomes superfences' own.
    """
    clean = {k: v for k, v in options.items() if not _is_code_reference(v)}
    if name == "pymdownx.superfences":
        fences = []
        for custom in options.get("custom_fences") or []:
            if not isinstance(custom, Mapping) or not custom.get("name"):
                continue
            fmt = str(custom.get("format", ""))
            div = fmt.endswith("fence_div_format")
            fences.append(
                {
                    "name": str(custom["name"]),
                    "class": str(custom.get("class") or custom["name"]),
                    "format": superfences.fence_div_format
                    if div
                    else superfences.fence_code_format,
                }
            )
        clean["custom_fences"] = fences
    return clean


def _is_code_reference(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("!!python/")


_FINDERS: dict[str, BlockFinder] = {}


def finder_for(extensions: Sequence[tuple[str, Mapping[str, Any]]]) -> BlockFinder:
    """Return the (cached) finder of one Markdown configuration."""
    key = repr(extensions)
    finder = _FINDERS.get(key)
    if finder is None:
        finder = _FINDERS[key] = BlockFinder(extensions)
    return finder


def default_finder() -> BlockFinder:
    """Return the finder of a lone guide: mkdocs-material's recommended extensions."""
    return finder_for(DEFAULT_EXTENSIONS)
