"""Parse rendered guide markdown into the runbook model (markdown-it-py is imported here only)."""

from __future__ import annotations

import bisect
import functools
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from markdown_it import MarkdownIt
from markdown_it.ruler import RuleOptionsType
from markdown_it.rules_block import StateBlock
from markdown_it.token import Token

from runbook.actions import action_of
from runbook.blocks import BlockFinder, CodeBlock, default_finder
from runbook.model import (
    Action,
    Admonition,
    CheckItem,
    Diagnostic,
    Directive,
    Level,
    Origin,
    Rendered,
    Runbook,
    Step,
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
    block = state.env["blocks"].get(start)
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


def _parser(text: str) -> MarkdownIt:
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
class _Heading:
    line: int
    level: int
    text: str
    number: int | None
    title: str
    top: bool  # not inside an admonition or tab


@dataclass
class _Found:
    """Everything the walk collects, positioned by rendered line."""

    headings: list[_Heading] = field(default_factory=list)
    actions: list[tuple[int, Action]] = field(default_factory=list)
    admonitions: list[tuple[int, Admonition]] = field(default_factory=list)
    tasks: list[tuple[int, CheckItem]] = field(default_factory=list)
    directives: list[tuple[int, str, tuple[str, ...], tuple[TabRef, ...]]] = field(
        default_factory=list
    )
    tab_paths: list[tuple[int, tuple[TabRef, ...]]] = field(default_factory=list)


class _Walker:
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
        self.found = _Found()
        # What encloses the current token, recomputed when a container opens or closes.
        self.tabs: tuple[TabRef, ...] = ()
        self.admonitions: tuple[str, ...] = ()
        # Every tab and admonition as (first line, line after, TabRef or kind), in order.
        self.spans: list[tuple[int, int, TabRef | str]] = []

    def origin(self, line: int) -> Origin:
        return self.rendered.line_map.origin(line)

    def report(self, level: Level, line: int, message: str, code: str, hint: str = "") -> None:
        self.diag.append(Diagnostic(level, self.origin(line), message, code, hint))

    def walk(self, tokens: list[Token]) -> _Found:
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
            _Heading(tok.map[0], int(tok.tag[1]), text, number, title or text, top)
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

        action = action_of(block, self.origin(line), tabs, admonitions, problem)
        self.found.actions.append((line, action))

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


def _exec_target(name: str, args: tuple[str, ...], origin: Origin) -> Path | None:
    """Return the guide an ``exec`` directive runs (relative to the file it is written in)."""
    if name != "exec" or len(args) != 1:
        return None
    return Path(os.path.normpath((origin.path.parent / args[0]).absolute()))


def _directive_problem(name: str, args: tuple[str, ...]) -> str:
    """Return what is wrong with a directive, or an empty string."""
    if name == "exec":
        return "" if len(args) == 1 else "'exec' takes one guide path"
    if name == "repeat":
        text = ",".join(args)
        if not args or not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", text):
            return "'repeat' takes step numbers such as 3-6 or 3,5"
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


# -- steps ----------------------------------------------------------------------------------


def _step_level(headings: list[_Heading], numbers: set[int]) -> int | None:
    """Pick the heading level whose numbered headings are the guide's steps."""
    by_level: dict[int, set[int]] = {}
    for h in headings:
        if h.number is not None and h.top:
            by_level.setdefault(h.level, set()).add(h.number)
    if not by_level:
        return None
    if numbers:
        return max(by_level, key=lambda lvl: (len(by_level[lvl] & numbers), -lvl))
    return min(by_level)


def build(
    rendered: Rendered,
    *,
    inputs: Mapping[str, str] | None = None,
    finder: BlockFinder | None = None,
    page_step: tuple[int, str] | None = None,
) -> Runbook:
    """Parse a rendered page into a Runbook; ``finder`` reads code as the site does.

    ``page_step`` (number, title) makes the whole page that one step: a step page of a
    guide that spans pages, numbered by the site's nav.
    """
    lines = rendered.text.split("\n")
    walker = _Walker(rendered, rendered.path, lines, [])
    found = _read(walker, finder or default_finder())
    # The overview checklist: numbered items in the guide file itself, outside any step.
    candidates = [(ln, it) for ln, it in found.tasks if it.in_guide and it.number is not None]
    if page_step is None:
        sections = _Sections.of_headings(found.headings, candidates, len(lines))
    else:
        # One step a page: the page from its first heading on, numbered by the nav.
        candidates = []
        sections = _Sections.of_page(_page_heading(walker, found.headings, *page_step), len(lines))
    overview = [(ln, it) for ln, it in candidates if sections.step_of(ln) is None]
    checklist = tuple(it for _, it in overview)
    items = _numbered_items(walker, overview)
    steps = _steps(walker, found, sections, items)
    steps = _checklist_steps(walker, steps, overview)
    _outside_steps(walker, found, sections)
    _describe(walker, rendered, steps, checklist, found.headings, found)
    _unattended_inputs(walker, steps, inputs or {})
    title = str(rendered.front_matter.get("title") or "") or next(
        (h.text for h in found.headings if h.level == 1), rendered.path.stem
    )
    walker.diag.sort(
        key=lambda d: (str(d.origin.path) if d.origin else "", d.origin.line if d.origin else 0)
    )
    return Runbook(
        path=rendered.path,
        title=title,
        steps=tuple(steps),
        checklist=checklist,
        diagnostics=tuple(walker.diag),
        rendered=rendered,
        blocks=tuple(action for _, action in found.actions),
    )


def _read(walker: _Walker, finder: BlockFinder) -> _Found:
    """Walk the page's structure with the site's code blocks taken out whole."""
    text = walker.rendered.text
    page = finder.find(text)
    found = walker.walk(_parser(text).parse(text, {"blocks": {b.start: b for b in page.blocks}}))
    for block in page.blocks:
        walker.code(block)
    for problem in page.problems:
        walker.report("error", problem.line, problem.message, problem.code, problem.hint)
    _drop_inside_code(found, page.blocks)
    return found


@dataclass(frozen=True)
class _Sections:
    """The lines of each step: (heading, first line, line after), in order, never overlapping."""

    ranges: list[tuple[_Heading, int, int]]

    @classmethod
    def of_headings(
        cls, headings: list[_Heading], items: list[tuple[int, CheckItem]], end: int
    ) -> _Sections:
        """Steps from numbered headings at the level the checklist's numbers point to."""
        level = _step_level(headings, {it.number for _, it in items if it.number is not None})

        def section_end(h: _Heading) -> int:
            for other in headings:
                if other.line > h.line and other.top and other.level <= h.level:
                    return other.line
            return end

        return cls(
            [
                (h, h.line, section_end(h))
                for h in headings
                if level is not None and h.top and h.level == level and h.number is not None
            ]
        )

    @classmethod
    def of_page(cls, head: _Heading, end: int) -> _Sections:
        """The whole page, from its heading on, as one step."""
        return cls([(head, head.line, end)])

    def step_of(self, line: int) -> int | None:
        """Return the index of the step holding ``line``, or None."""
        idx = bisect.bisect_right(self.starts, line) - 1
        if idx >= 0 and line < self.ranges[idx][2]:
            return idx
        return None

    @functools.cached_property
    def starts(self) -> list[int]:
        return [start for _, start, _ in self.ranges]

    @property
    def numbers(self) -> set[int]:
        return {h.number for h, _, _ in self.ranges if h.number is not None}


def _numbered_items(walker: _Walker, overview: list[tuple[int, CheckItem]]) -> dict[int, CheckItem]:
    """Index the overview checklist by step number, reporting numbers used twice."""
    items: dict[int, CheckItem] = {}
    for ln, it in overview:
        assert it.number is not None
        if it.number in items:
            walker.report(
                "error",
                ln,
                f"checklist item {it.number} appears twice",
                "duplicate-item",
                "number each overview item once",
            )
        else:
            items[it.number] = it
    return items


def _steps(
    walker: _Walker, found: _Found, sections: _Sections, items: dict[int, CheckItem]
) -> list[Step]:
    """Build the steps of the sections, with what each holds, bound to their items."""
    actions_by = _group(found.actions, sections.step_of)
    adms_by = _group(found.admonitions, sections.step_of)
    tasks_by = _group(found.tasks, sections.step_of)
    tab_paths_by = _group(found.tab_paths, sections.step_of)
    directives_by = _group(
        [(ln, (name, args, tabs)) for ln, name, args, tabs in found.directives], sections.step_of
    )
    steps: list[Step] = []
    seen: set[int] = set()
    for idx, (h, start, stop) in enumerate(sections.ranges):
        assert h.number is not None
        if h.number in seen:
            walker.report(
                "error",
                start,
                f"step number {h.number} is used twice",
                "duplicate-step",
                "renumber the step headings",
            )
        seen.add(h.number)
        actions = actions_by.get(idx, [])
        directives = tuple(
            Directive(
                name=name,
                args=args,
                origin=walker.origin(ln),
                after=sum(1 for al, _ in actions if al < ln),
                tabs=tabs,
                target=_exec_target(name, args, walker.origin(ln)),
            )
            for ln, (name, args, tabs) in directives_by.get(idx, [])
        )
        _check_repeats(walker, h.number, directives, sections.numbers)
        item = items.get(h.number)
        step = Step(
            number=h.number,
            title=h.title,
            origin=walker.origin(start),
            level=h.level,
            item=item,
            actions=tuple(a for _, a in actions),
            admonitions=tuple(a for _, a in adms_by.get(idx, [])),
            subchecks=tuple(it for _, it in tasks_by.get(idx, [])),
            directives=directives,
            tab_paths=tuple(path for _, path in tab_paths_by.get(idx, [])),
            body="\n".join(walker.lines[start + 1 : stop]).strip("\n"),
            end_line=stop,
        )
        steps.append(step)
        if item is None and items:
            walker.report(
                "error",
                start,
                f"step {h.number} has no item in the overview checklist",
                "step-without-item",
                f"add '* [ ] {h.number}. {h.title}' to the overview checklist",
            )
        for adm in step.admonitions:
            if adm.kind == "todo":
                walker.diag.append(
                    Diagnostic(
                        "warning",
                        adm.origin,
                        f"step {h.number} is unfinished (!!! todo)",
                        "todo",
                        "finish the step and remove the todo admonition",
                    )
                )
    return steps


def _check_repeats(
    walker: _Walker, number: int, directives: tuple[Directive, ...], numbers: set[int]
) -> None:
    """Report a ``repeat`` of a step that is not an earlier one."""
    for d in directives:
        if d.name != "repeat":
            continue
        bad = [n for n in d.steps if n >= number or n not in numbers]
        if bad:
            walker.diag.append(
                Diagnostic(
                    "error",
                    d.origin,
                    f"step {number} repeats step {bad[0]}, which is not an earlier step",
                    "bad-directive",
                    "repeat only steps that come before this one",
                )
            )


def _checklist_steps(
    walker: _Walker, steps: list[Step], overview: list[tuple[int, CheckItem]]
) -> list[Step]:
    """Make manual steps of a checklist with no headings; else report items without one."""
    if not steps:
        # A guide with only a checklist: each item is a manual step.
        made: list[Step] = []
        for ln, it in overview:
            assert it.number is not None
            if any(s.number == it.number for s in made):
                continue
            made.append(
                Step(
                    number=it.number,
                    title=_strip_number(it.text),
                    origin=it.origin,
                    level=0,
                    item=it,
                    end_line=ln + 1,
                )
            )
        return made
    numbers = {s.number for s in steps}
    for ln, it in overview:
        if it.number not in numbers:
            walker.report(
                "error",
                ln,
                f"checklist item {it.number} has no step heading",
                "item-without-step",
                f"add a heading like '### {it.number}. …' or remove the item",
            )
    return steps


def _outside_steps(walker: _Walker, found: _Found, sections: _Sections) -> None:
    """Report unfinished sections and .run blocks that are in no step."""
    for ln, adm in found.admonitions:
        if sections.step_of(ln) is None and adm.kind == "todo":
            walker.diag.append(
                Diagnostic(
                    "warning",
                    adm.origin,
                    "unfinished section (!!! todo)",
                    "todo",
                    "finish it and remove the todo admonition",
                )
            )
    for ln, action in found.actions:
        if sections.step_of(ln) is None and action.kind == "run":
            walker.diag.append(
                Diagnostic(
                    "warning",
                    action.origin,
                    "a .run block outside any numbered step is never run",
                    "run-outside-step",
                    "move it under a numbered step heading",
                )
            )


def _unattended_inputs(walker: _Walker, steps: list[Step], defaults: Mapping[str, str]) -> None:
    """Warn of inputs a .run block needs that nothing gives a value."""
    for step in steps:
        for action in step.actions:
            if action.kind != "run":
                continue
            for ph in action.placeholders:
                if ph.name not in defaults:
                    walker.diag.append(
                        Diagnostic(
                            "warning",
                            action.origin,
                            f"step {step.number} runs unattended but needs <{ph.name}>, "
                            "which has no value",
                            "input-without-source",
                            f"it is asked at run time; non-interactive runs need --set "
                            f"{ph.name}=…" + ("" if ph.secret else " or an 'inputs:' default"),
                        )
                    )


_T = TypeVar("_T")


def step_number(text: str) -> tuple[int, str] | None:
    """Return (number, title) of a step title such as ``3. Backup`` or ``Step 3: Backup``."""
    match = _STEP_HEADING_RE.match(text)
    if match is None:
        return None
    return int(match.group("a") or match.group("b")), match.group("title").strip()


def _page_heading(walker: _Walker, headings: list[_Heading], number: int, title: str) -> _Heading:
    """Return the heading of a step page, numbered ``number`` as the nav says."""
    top = [h for h in headings if h.top]
    head = min(top, key=lambda h: (h.level, h.line)) if top else None
    if head is None:
        return _Heading(0, 1, title, number, title, True)
    if head.number is not None and head.number != number:
        walker.report(
            "error",
            head.line,
            f"this page's heading says step {head.number}, but the nav lists it as step {number}",
            "page-number-mismatch",
            f"number the heading '{'#' * head.level} {number}. …', or fix the nav title",
        )
    return _Heading(head.line, head.level, head.text, number, head.title, True)


def _drop_inside_code(found: _Found, blocks: tuple[CodeBlock, ...]) -> None:
    """Forget structure markdown-it saw inside code (where its blocks and the site's differ)."""
    starts = [b.start for b in blocks]

    def outside(line: int) -> bool:
        at = bisect.bisect_right(starts, line) - 1
        return at < 0 or line >= blocks[at].end

    found.headings = [h for h in found.headings if outside(h.line)]
    found.tasks = [t for t in found.tasks if outside(t[0])]
    found.directives = [d for d in found.directives if outside(d[0])]


def _group(
    items: list[tuple[int, _T]], step_of: Callable[[int], int | None]
) -> dict[int | None, list[tuple[int, _T]]]:
    """Group positioned items by the index of the step holding them."""
    groups: dict[int | None, list[tuple[int, _T]]] = {}
    for line, item in items:
        groups.setdefault(step_of(line), []).append((line, item))
    return groups


def _strip_number(text: str) -> str:
    return re.sub(r"^\d+[.)]\s*", "", text)


def _describe(
    walker: _Walker,
    rendered: Rendered,
    steps: list[Step],
    checklist: tuple[CheckItem, ...],
    headings: list[_Heading],
    found: _Found,
) -> None:
    """Say what was found when the guide has no steps or no checklist."""
    origin = Origin(rendered.path, rendered.line_map.origin(0).line if rendered.text else 1)
    if not steps:
        walker.diag.append(
            Diagnostic(
                "info",
                origin,
                f"no numbered steps found ({len(headings)} headings, {len(found.actions)} code "
                f"blocks, {len(found.tasks)} checklist items)",
                "no-steps",
                "number step headings ('### 1. Install') and add an overview checklist "
                "('* [ ] 1. Install') to make the page a runbook",
            )
        )
    elif not checklist:
        walker.diag.append(
            Diagnostic(
                "info",
                origin,
                f"{len(steps)} steps but no overview checklist: progress is not recorded in "
                "the file",
                "no-checklist",
                "add '* [ ] N. …' items for the steps to record progress in the guide",
            )
        )
