"""Build the runbook model of a rendered page: steps, the overview checklist, diagnostics.

The page's structure comes from runbook.walk, its code blocks from runbook.blocks.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TypeVar

from runbook.blocks import BlockFinder, default_finder
from runbook.inputs import how_to_give
from runbook.model import (
    Action,
    CheckItem,
    Diagnostic,
    Directive,
    Origin,
    Rendered,
    Runbook,
    Step,
    SubStep,
)
from runbook.walk import (
    Found,
    Heading,
    Walker,
    drop_inside_code,
    exec_target,
    parser_for,
)

# -- steps ----------------------------------------------------------------------------------


def _step_level(headings: list[Heading], numbers: set[int]) -> int | None:
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
    walker = Walker(rendered, rendered.path, lines, [])
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


def _read(walker: Walker, finder: BlockFinder) -> Found:
    """Walk the page's structure with the site's code blocks taken out whole."""
    text = walker.rendered.text
    page = finder.find(text)
    found = walker.walk(parser_for(text).parse(text, {"blocks": {b.start: b for b in page.blocks}}))
    for block in page.blocks:
        walker.code(block)
    for problem in page.problems:
        walker.report("error", problem.line, problem.message, problem.code, problem.hint)
    drop_inside_code(found, page.blocks)
    return found


@dataclass(frozen=True)
class _Sections:
    """The lines of each step: (heading, first line, line after), in order, never overlapping."""

    ranges: list[tuple[Heading, int, int]]

    @classmethod
    def of_headings(
        cls, headings: list[Heading], items: list[tuple[int, CheckItem]], end: int
    ) -> _Sections:
        """Steps from numbered headings at the level the checklist's numbers point to."""
        level = _step_level(headings, {it.number for _, it in items if it.number is not None})

        def section_end(h: Heading) -> int:
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
    def of_page(cls, head: Heading, end: int) -> _Sections:
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

    @functools.cached_property
    def numbers(self) -> frozenset[int]:
        # Asked once per step: made once, not once per step (a 200-step guide's load).
        return frozenset(h.number for h, _, _ in self.ranges if h.number is not None)


def _numbered_items(walker: Walker, overview: list[tuple[int, CheckItem]]) -> dict[int, CheckItem]:
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
    walker: Walker, found: Found, sections: _Sections, items: dict[int, CheckItem]
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
        actions = _leads(walker.lines, start + 1, found.ends, _connections(actions_by.get(idx, [])))
        directives = tuple(
            Directive(
                name=name,
                args=args,
                origin=walker.origin(ln),
                after=sum(1 for al, _ in actions if al < ln),
                tabs=tabs,
                target=exec_target(name, args, walker.origin(ln)),
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
            substeps=_substeps(walker, found.headings, h.level, (start, stop), actions),
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


def _leads(
    lines: list[str], first: int, ends: dict[int, int], actions: list[tuple[int, Action]]
) -> list[tuple[int, Action]]:
    """Give each action the markdown between the block before it (or ``first``) and it."""
    led: list[tuple[int, Action]] = []
    for line, action in actions:
        lead = "\n".join(lines[first:line]).strip("\n")
        led.append((line, replace(action, lead=lead)))
        first = max(first, ends.get(line, line + 1))
    return led


def _connections(actions: list[tuple[int, Action]]) -> list[tuple[int, Action]]:
    """Give each block after an ``ssh`` line, to the end of the step or of the line's tab
    or admonition, that line's host (the innermost line in scope); ``host="…"`` wins. An
    ``ssh`` line without placeholders right after one with them, in the same tab, is its
    example: shown."""
    out: list[tuple[int, Action]] = []
    active: list[Action] = []  # ssh lines in scope, outermost first
    for line, action in actions:
        previous = out[-1][1] if out else None
        # Containers are contiguous: a block outside a line's container ends its scope.
        active = [c for c in active if action.within[: len(c.within)] == c.within]
        if action.kind == "connect":
            if (
                previous is not None
                and previous.kind == "connect"
                and previous.placeholders
                and not action.placeholders
                and previous.within == action.within
            ):
                action = replace(action, kind="shown", connection=None)
            else:
                active = [c for c in active if c.within != action.within] + [action]
        elif active and action.attr("host") is None:
            action = replace(action, connection=active[-1].connection)
        out.append((line, action))
    return out


def _check_repeats(
    walker: Walker, number: int, directives: tuple[Directive, ...], numbers: frozenset[int]
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
    walker: Walker, steps: list[Step], overview: list[tuple[int, CheckItem]]
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


def _outside_steps(walker: Walker, found: Found, sections: _Sections) -> None:
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


def _unattended_inputs(walker: Walker, steps: list[Step], defaults: Mapping[str, str]) -> None:
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
                            "it is asked at run time; non-interactive runs need "
                            + how_to_give(ph.name, ph.secret)
                            + ("" if ph.secret else " or an 'inputs:' default"),
                        )
                    )


_T = TypeVar("_T")


def _page_heading(walker: Walker, headings: list[Heading], number: int, title: str) -> Heading:
    """Return the heading of a step page, numbered ``number`` as the nav says."""
    top = [h for h in headings if h.top]
    head = min(top, key=lambda h: (h.level, h.line)) if top else None
    if head is None:
        return Heading(0, 1, title, number, title, True)
    if head.number is not None and head.number != number:
        walker.report(
            "error",
            head.line,
            f"this page's heading says step {head.number}, but the nav lists it as step {number}",
            "page-number-mismatch",
            f"number the heading '{'#' * head.level} {number}. …', or fix the nav title",
        )
    return Heading(head.line, head.level, head.text, number, head.title, True)


def _substeps(
    walker: Walker,
    headings: list[Heading],
    level: int,
    span: tuple[int, int],
    actions: list[tuple[int, Action]],
) -> tuple[SubStep, ...]:
    """The step's parts (``N.M``): its numbered sub-headings at the shallowest level below
    the step's, each with the blocks up to the next heading as high, or the first line
    indented less than the sub-heading (its tab or admonition ends), or the step's end."""
    start, stop = span
    inside = [h for h in headings if start < h.line < stop]
    numbered = [h for h in inside if h.number is not None and h.level > level]
    if not numbered:
        return ()
    sub_level = min(h.level for h in numbered)
    parts = []
    for place, head in enumerate((h for h in numbered if h.level == sub_level), 1):
        end = next((h.line for h in inside if h.line > head.line and h.level <= sub_level), stop)
        indent = _indent(walker.lines[head.line])
        for ln in range(head.line + 1, end):
            text = walker.lines[ln]
            if text.strip() and _indent(text) < indent:
                end = ln
                break
        parts.append(
            SubStep(
                number=place,
                title=head.title,
                origin=walker.origin(head.line),
                actions=tuple(a for ln, a in actions if head.line < ln < end),
            )
        )
    return tuple(parts)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


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
    walker: Walker,
    rendered: Rendered,
    steps: list[Step],
    checklist: tuple[CheckItem, ...],
    headings: list[Heading],
    found: Found,
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
