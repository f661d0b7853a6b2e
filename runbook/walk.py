"""Read a rendered page's structure with markdown-it-py: headings, task lists, directives,
content tabs and admonitions, around the code blocks the site's renderer found.

markdown-it-py is imported here and nowhere else. Its own fence and indented-code rules are
off: a rule takes each block's lines whole, so code is never read as markdown.
"""

from __future__ import annotations

import bisect
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.ruler import RuleOptionsType
from markdown_it.rules_block import StateBlock
from markdown_it.token import Token

from runbook.actions import action_of
from runbook.blocks import CodeBlock
from runbook.model import (
    Action,
    Admonition,
    CheckItem,
    Diagnostic,
    Level,
    Origin,
    Rendered,
    TabRef,
)

_STEP_HEADING_RE = re.compile(
    r"^\s*(?:step\s*(?P<a>\d+)\b\s*[.:)\-\u2013\u2014]?\s*|(?P<b>\d+)(?![.\d]\d)\s*[.:)]\s*)(?P<title>.*)$",
    re.I,
)
_TASK_RE = re.compile(r"^\[([ xX])\](?:[ \t]+|$)")
_CONTAINER_RE = re.compile(
    r"^(?P<marker>!!!|\?\?\?\+?|===[!+]*)(?:[ \t]+(?P<kind>[\w-]+(?:[ \t]+[\w-]+)*))?"
    r'(?:[ \t]*"(?P<title>[^"]*)")?[ \t]*$'
)
_CONTAINER_FIRST = frozenset("!?=")
_ITEM_NUMBER_RE = re.compile(r"^(\d+)[.)]\s")


# -- markdown-it container rule (admonitions and content tabs) -----------------------------


def _container_rule(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """Parse ``!!! kind "title"`` / ``??? kind`` / ``=== "Label"`` blocks with their content.

    Python-Markdown ends such a block at the first non-blank line indented less than its
    content, never at blank lines, so fences with blank lines stay inside.
    """
    if state.sCount[start] - state.blkIndent >= 4:
        return False
    pos = state.bMarks[start] + state.tShift[start]
    # This rule is tried at every block start: look at one character before slicing a line.
    if state.src[pos : pos + 1] not in _CONTAINER_FIRST:
        return False
    match = _CONTAINER_RE.match(state.src[pos : state.eMarks[start]])
    if not match:
        return False
    marker = match.group("marker")
    is_tab = marker.startswith("===")
    if is_tab and match.group("title") is None:
        return False
    if not is_tab and not match.group("kind"):
        return False
    if silent:
        return True
    content_indent = state.sCount[start] + 4
    last = start
    nxt = start + 1
    while nxt < end:
        if state.isEmpty(nxt):
            nxt += 1
            continue
        if state.sCount[nxt] < content_indent:
            break
        last = nxt
        nxt += 1
    stop = last + 1
    old = (state.parentType, state.lineMax, state.blkIndent)
    name = "tab" if is_tab else "admonition"
    token = state.push(f"{name}_open", "div", 1)
    token.markup = marker
    token.map = [start, stop]
    token.meta = {
        "kind": (match.group("kind") or "").split(" ")[0].lower(),
        "title": match.group("title") or "",
        "new_group": "!" in marker,
    }
    state.parentType = "blockquote"  # lets nested blocks interrupt paragraphs as they should
    state.lineMax = stop
    state.blkIndent = content_indent
    state.md.block.tokenize(state, start + 1, stop)
    state.push(f"{name}_close", "div", -1)
    state.parentType, state.lineMax, state.blkIndent = old
    state.line = stop
    return True


def _code_rule(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """Take the lines of a code block the site's renderer found (``env["blocks"]``) whole.

    markdown-it's own fence and indented-code rules are off: what is code is decided by
    runbook.blocks, and this rule only keeps markdown-it from reading code as markdown.
    """
    block = state.env.get("blocks", {}).get(start)
    if block is None:
        return False
    if silent:
        return True
    token = state.push("code_block", "code", 0)
    token.map = [start, min(block.end, end)]
    state.line = min(block.end, end)
    return True


def make_parser() -> MarkdownIt:
    """Return a markdown-it parser for the structure of pages (headings, lists, containers)."""
    md = MarkdownIt("commonmark").enable("table")
    # Only block structure matters here (inline tokens keep their raw .content), so the
    # inline pass, a large share of parse time, is skipped.
    md.disable(["inline", "text_join", "code", "fence"])
    alt: RuleOptionsType = {"alt": ["paragraph", "reference", "blockquote", "list"]}
    md.block.ruler.before("table", "runbook_code", _code_rule, alt)
    md.block.ruler.before("blockquote", "runbook_container", _container_rule, alt)
    return md


_PARSERS: dict[bool, MarkdownIt] = {}
# A setext heading needs an underline of = or - alone on its line.
_UNDERLINE_RE = re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$", re.M)


def parser_for(text: str) -> MarkdownIt:
    """Return the parser for ``text``: without the setext rule when nothing can trigger it.

    The setext rule runs on every paragraph and is a tenth of parse time; most pages
    have no underline line at all, and then it cannot change the result.
    """
    setext = _UNDERLINE_RE.search(text) is not None
    parser = _PARSERS.get(setext)
    if parser is None:
        parser = _PARSERS[setext] = make_parser()
        if not setext:
            parser.disable("lheading")
    return parser


# -- the walk -------------------------------------------------------------------------------


@dataclass
class Heading:
    line: int
    level: int
    text: str
    number: int | None
    title: str
    top: bool  # not inside an admonition or tab


@dataclass
class Found:
    """Everything the walk collects, positioned by rendered line."""

    headings: list[Heading] = field(default_factory=list)
    actions: list[tuple[int, Action]] = field(default_factory=list)
    admonitions: list[tuple[int, Admonition]] = field(default_factory=list)
    tasks: list[tuple[int, CheckItem]] = field(default_factory=list)
    directives: list[tuple[int, str, tuple[str, ...], tuple[TabRef, ...]]] = field(
        default_factory=list
    )
    tab_paths: list[tuple[int, tuple[TabRef, ...]]] = field(default_factory=list)
    ends: dict[int, int] = field(default_factory=dict)
    """The line after each code block, by its first line: where the prose after it starts."""


class Walker:
    def __init__(
        self,
        rendered: Rendered,
        guide: Path,
        lines: list[str],
        diagnostics: list[Diagnostic],
    ) -> None:
        self.rendered = rendered
        self.guide = guide
        self.lines = lines
        self.diag = diagnostics
        self.found = Found()
        # What encloses the current token, recomputed when a container opens or closes.
        self.tabs: tuple[TabRef, ...] = ()
        self.admonitions: tuple[str, ...] = ()
        # Every tab and admonition as (first line, line after, TabRef or kind), in order.
        self.spans: list[tuple[int, int, TabRef | str]] = []

    def origin(self, line: int) -> Origin:
        return self.rendered.line_map.origin(line)

    def report(self, level: Level, line: int, message: str, code: str, hint: str = "") -> None:
        self.diag.append(Diagnostic(level, self.origin(line), message, code, hint))

    def walk(self, tokens: list[Token]) -> Found:
        # Open containers, outermost first: ("tab", TabRef) or ("admonition", kind).
        stack: list[tuple[str, TabRef | str]] = []
        closed_group: Origin | None = None  # group of a tab that closed just before
        for i, tok in enumerate(tokens):
            if tok.type not in _WALKED:
                closed_group = None
                continue
            if tok.type == "tab_open":
                assert tok.map is not None
                # Tabs directly following each other are one set of alternatives.
                group = closed_group
                if group is None or tok.meta.get("new_group"):
                    group = self.origin(tok.map[0])
                tab = TabRef(tok.meta["title"], group)
                stack.append(("tab", tab))
                self.spans.append((tok.map[0], tok.map[1], tab))
                self._enclosing(stack)
                self.found.tab_paths.append((tok.map[0], self.tabs))
            elif tok.type == "tab_close":
                _, ref = stack.pop()
                self._enclosing(stack)
                assert isinstance(ref, TabRef)
                closed_group = ref.group
                continue
            elif tok.type == "admonition_open":
                self._admonition(tok)
                assert tok.map is not None
                stack.append(("admonition", tok.meta["kind"]))
                self.spans.append((tok.map[0], tok.map[1], tok.meta["kind"]))
                self._enclosing(stack)
            elif tok.type == "admonition_close":
                stack.pop()
                self._enclosing(stack)
            elif tok.type == "heading_open":
                self._heading(tok, tokens[i + 1], top=not stack)
            elif tok.type == "list_item_open":
                self._task(tokens, i)
            elif tok.type == "html_block" and "runbook:" in tok.content:
                self._directive(tok)
            closed_group = None
        return self.found

    def _enclosing(self, stack: list[tuple[str, TabRef | str]]) -> None:
        self.tabs = tuple(ref for kind, ref in stack if isinstance(ref, TabRef))
        self.admonitions = tuple(ref for kind, ref in stack if isinstance(ref, str))

    def _heading(self, tok: Token, inline: Token, *, top: bool) -> None:
        assert tok.map is not None
        text = inline.content.strip()
        number, title = step_number(text) or (None, text)
        self.found.headings.append(
            Heading(tok.map[0], int(tok.tag[1]), text, number, title or text, top)
        )

    def _task(self, tokens: list[Token], i: int) -> None:
        # The item's first block must be a paragraph starting with "[ ]".
        if i + 2 >= len(tokens) or tokens[i + 1].type != "paragraph_open":
            return
        inline = tokens[i + 2]
        match = _TASK_RE.match(inline.content)
        if not match or inline.map is None:
            return
        text = inline.content[match.end() :].split("\n", 1)[0].strip()
        origin = self.origin(inline.map[0])
        num = _ITEM_NUMBER_RE.match(text + " ")
        number = int(num.group(1)) if num else None
        item = CheckItem(
            text=text,
            checked=match.group(1) != " ",
            origin=origin,
            number=number,
            in_guide=origin.path == self.guide,
        )
        self.found.tasks.append((inline.map[0], item))

    def _admonition(self, tok: Token) -> None:
        assert tok.map is not None
        start, stop = tok.map
        body = "\n".join(_dedent(self.lines[start + 1 : stop], 4)).strip("\n")
        kind = tok.meta["kind"]
        adm = Admonition(
            kind=kind,
            title=tok.meta["title"],
            text=body,
            origin=self.origin(start),
            tabs=self.tabs,
        )
        self.found.admonitions.append((start, adm))

    def code(self, block: CodeBlock) -> None:
        """Turn a code block the renderer found into an action, in its tabs and admonitions."""
        line = block.start
        around = [ref for start, stop, ref in self.spans if start <= line < stop]
        tabs = tuple(ref for ref in around if isinstance(ref, TabRef))
        admonitions = tuple(ref for ref in around if isinstance(ref, str))

        def problem(message: str, code: str, hint: str) -> None:
            self.report("error", line, message, code, hint)

        within = tuple(start for start, stop, _ in self.spans if start <= line < stop)
        action = action_of(block, self.origin(line), tabs, admonitions, problem, within)
        self.found.actions.append((line, action))
        self.found.ends[line] = block.end

    def _directive(self, tok: Token) -> None:
        assert tok.map is not None
        for offset, text in enumerate(tok.content.split("\n")):
            match = _DIRECTIVE_RE.search(text)
            if not match:
                continue
            line = tok.map[0] + offset
            words = tuple(match.group(1).split())
            name, args = words[0].lower(), words[1:]
            problem = _directive_problem(name, args)
            if problem:
                self.report("error", line, problem, "bad-directive", _DIRECTIVE_HELP)
                continue
            self.found.directives.append((line, name, args, self.tabs))


_DIRECTIVE_RE = re.compile(r"<!--\s*runbook:\s*(\S.*?)\s*-->")
_DIRECTIVE_HELP = (
    "directives: <!-- runbook: exec PATH.md -->, <!-- runbook: repeat 3-6 -->, "
    "<!-- runbook: timer start NAME --> / <!-- runbook: timer stop NAME -->"
)


def exec_target(name: str, args: tuple[str, ...], origin: Origin) -> Path | None:
    """Return the guide an ``exec`` directive runs (relative to the file it is written in)."""
    if name != "exec" or len(args) != 1:
        return None
    return Path(os.path.normpath((origin.path.parent / args[0]).absolute()))


_MAX_STEP = 10_000  # far beyond any guide; keeps `repeat 1-1000000000` from filling memory


def _directive_problem(name: str, args: tuple[str, ...]) -> str:
    """Return what is wrong with a directive, or an empty string."""
    if name == "exec":
        return "" if len(args) == 1 else "'exec' takes one guide path"
    if name == "repeat":
        text = ",".join(args)
        if not args or not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", text):
            return "'repeat' takes step numbers such as 3-6 or 3,5"
        numbers = [int(n) for n in re.findall(r"\d+", text)]
        if max(numbers) > _MAX_STEP or len(text) > 200:
            return f"'repeat' names steps up to {_MAX_STEP}; this is not a guide's step list"
        return ""
    if name == "timer":
        if len(args) != 2 or args[0] not in ("start", "stop"):
            return "'timer' takes start or stop and a name"
        return ""
    return f"unknown runbook directive {name!r}"


# Token types the walk looks at; paragraphs, inline text and the like are skipped fast.
_WALKED = frozenset(
    {
        "tab_open",
        "tab_close",
        "admonition_open",
        "admonition_close",
        "heading_open",
        "list_item_open",
        "html_block",
    }
)


def _dedent(lines: list[str], width: int) -> list[str]:
    out = []
    for line in lines:
        expanded = line.expandtabs(4)
        strip = len(expanded) - len(expanded.lstrip(" "))
        out.append(expanded[min(strip, width) :])
    return out


def step_number(text: str) -> tuple[int, str] | None:
    """Return (number, title) of a step title such as ``3. Backup`` or ``Step 3: Backup``."""
    match = _STEP_HEADING_RE.match(text)
    if match is None:
        return None
    return int(match.group("a") or match.group("b")), match.group("title").strip()


def drop_inside_code(found: Found, blocks: tuple[CodeBlock, ...]) -> None:
    """Forget structure markdown-it saw inside code (where its blocks and the site's differ)."""
    starts = [b.start for b in blocks]

    def outside(line: int) -> bool:
        at = bisect.bisect_right(starts, line) - 1
        return at < 0 or line >= blocks[at].end

    found.headings = [h for h in found.headings if outside(h.line)]
    found.tasks = [t for t in found.tasks if outside(t[0])]
    found.directives = [d for d in found.directives if outside(d[0])]
