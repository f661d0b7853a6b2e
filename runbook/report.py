"""Present the model and runs: JSON for scripts, plain text for people (``list``, ``show``,
``status``, and ``exec``'s dry run and summary)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbook.inputs import how_to_give
from runbook.model import Action, Diagnostic, Origin, Placeholder, Runbook, Step, rel

if TYPE_CHECKING:
    from runbook.journal import LastRun, Mark


# -- what runs report, for the dry run and the summary ---------------------------------------


@dataclass(frozen=True)
class DryPart:
    """A step as a dry run shows it: a step of the guide, or a step that one runs."""

    step: Step
    """The step."""
    label: str
    """What it runs as (``repeating step 4`` …), empty for the guide's own step."""
    named: str
    """How messages name it."""
    choice: tuple[str, str] | None
    """A choice of tabs a person must make (what, and how to make it ahead), if any."""
    actions: tuple[Action, ...]
    """Its blocks in the chosen tabs (and in undecided ones)."""
    previews: tuple[str, ...]
    """Per block, its code with known values filled in, secrets masked (empty if shown)."""
    places: tuple[str, ...]
    """Per block, where it runs (``this machine``, a host), known values filled in."""
    missing: tuple[Placeholder, ...]
    """Inputs its blocks use that have no value yet."""


@dataclass(frozen=True)
class DryStep:
    """A step of the guide in a dry run: whether it would run, and what."""

    step: Step
    """The step."""
    pending: bool
    """Whether it would run (else it is done and skipped)."""
    parts: tuple[DryPart, ...] = ()
    """The step and every step it runs, when it would run."""
    by_hand: bool = False
    """Whether it is passed as done by hand, not run (``--by-hand``)."""


@dataclass(frozen=True)
class StepResult:
    """How one step went, for the summary."""

    number: int
    """The step number."""
    title: str
    """The step title."""
    result: str
    """``done``, ``skipped``, ``failed``, ``stopped``, ``interrupted``, ``error``,
    ``unknown`` (its host's connection dropped mid-block) or ``already done``."""
    duration: float = 0.0
    """Seconds the step took in this run."""
    note: str = ""
    """A short remark for the summary (``tick refused``, ``unknown outcome`` …)."""


# -- views ----------------------------------------------------------------------------------


def where(origin: Origin | None) -> str:
    """Return ``file:line`` for display."""
    return origin.shown if origin else ""


def placeholder_json(ph: Placeholder) -> dict[str, Any]:
    """Describe an input."""
    return {"name": ph.name, "secret": ph.secret}


def action_json(action: Action) -> dict[str, Any]:
    """Describe one action."""
    return {
        "kind": action.kind,
        "lang": action.lang,
        "origin": where(action.origin),
        "tabs": [t.label for t in action.tabs],
        "host": action.host,
        "where": action.where,
        "ssh": list(action.connection.words) if action.connection else None,
        "expects_output": action.expects_output,
        "placeholders": [placeholder_json(p) for p in action.placeholders],
        "timeout": action.timeout,
        "answers": [{"expect": a.expect} for a in action.answers],
    }


def step_json(step: Step) -> dict[str, Any]:
    """Describe one step."""
    return {
        "number": step.number,
        "title": step.title,
        "checked": step.checked,
        "manual": step.manual,
        "origin": where(step.origin),
        "item": where(step.item.origin) if step.item else None,
        "actions": [action_json(a) for a in step.actions],
        "admonitions": [{"kind": a.kind, "origin": where(a.origin)} for a in step.admonitions],
        "directives": [
            {"name": d.name, "args": list(d.args), "origin": where(d.origin)}
            for d in step.directives
        ],
    }


def diagnostic_json(diag: Diagnostic) -> dict[str, Any]:
    """Describe one diagnostic."""
    return {
        "level": diag.level,
        "origin": where(diag.origin),
        "message": diag.message,
        "code": diag.code,
        "hint": diag.hint,
    }


def runbook_json(book: Runbook) -> dict[str, Any]:
    """Describe a whole runbook (``runbook list --json``)."""
    return {
        "guide": rel(book.path),
        "title": book.title,
        "steps": [step_json(s) for s in book.steps],
        "checklist": [
            {"number": i.number, "text": i.text, "checked": i.checked, "origin": where(i.origin)}
            for i in book.checklist
        ],
        "inputs": [placeholder_json(p) for p in book.inputs],
        "includes": [rel(p) for p in book.rendered.includes],
        "diagnostics": [diagnostic_json(d) for d in book.diagnostics],
    }


def diagnostic_text(diag: Diagnostic) -> str:
    """Format a diagnostic as ``file:line: level: message`` plus its hint."""
    head = f"{where(diag.origin)}: " if diag.origin else ""
    text = f"{head}{diag.level}: {diag.message}"
    if diag.code:
        text += f" [{diag.code}]"
    if diag.hint:
        text += f"\n    next: {diag.hint}"
    return text


def _counts(step: Step) -> str:
    extra = [
        f"runs {d.args[0]}" if d.name == "exec" else f"repeats steps {','.join(d.args)}"
        for d in step.directives
        if d.name in ("exec", "repeat")
    ]
    if not step.actions:
        return ", ".join(extra) or "manual"
    kinds = {"run": 0, "suggested": 0, "shown": 0}
    for a in step.actions:
        kinds[a.kind] += 1
    parts = []
    if kinds["run"]:
        parts.append(f"{kinds['run']} to run")
    if kinds["suggested"]:
        parts.append(f"{kinds['suggested']} to confirm")
    if kinds["shown"]:
        parts.append(f"{kinds['shown']} shown")
    if step.manual:
        parts.insert(0, "manual")
    labels: dict[str, None] = {}
    for a in step.actions:
        if a.tabs:
            labels.setdefault(a.tabs[0].label, None)
    if len(labels) > 1:
        parts.append("tabs: " + " | ".join(labels))
    return ", ".join([*extra, *parts])


def plan_text(book: Runbook) -> str:
    """Return the step list a person reads (``runbook list``)."""
    done = sum(1 for s in book.steps if s.checked)
    lines = [f"{book.title}  ({rel(book.path)})"]
    summary = f"{len(book.steps)} steps, {done} done"
    if book.inputs:
        summary += " · inputs: " + ", ".join(
            f"<{p.name}>" + (" (secret)" if p.secret else "") for p in book.inputs
        )
    lines.append(summary)
    width = max((len(f"{s.number}. {s.title}") for s in book.steps), default=0)
    width = min(width, 56)
    for step in book.steps:
        box = "[x]" if step.checked else ("[ ]" if step.item else " - ")
        label = f"{step.number}. {step.title}"
        if len(label) > width:
            label = label[: width - 1] + "…"
        lines.append(f" {box} {label.ljust(width)}  {_counts(step)}")
    shown = [d for d in book.diagnostics if d.level != "info" or not book.steps]
    if shown:
        lines.append("")
        lines.extend(diagnostic_text(d) for d in shown)
    return "\n".join(lines)


def step_text(book: Runbook, step: Step) -> str:
    """Return one step in full (``runbook show``)."""
    box = "[x]" if step.checked else "[ ]"
    out = [f"{box} {step.number}. {step.title}  ({where(step.origin)})"]
    for adm in step.admonitions:
        if adm.kind in ("danger", "warning"):
            out.append(f"  !! {adm.kind.upper()}: {adm.title or ''} {adm.text}".rstrip())
    if step.manual:
        out.append("  manual step: a person does it and confirms")
    for action in step.actions:
        tabs = " > ".join(t.label for t in action.tabs)
        head = f"  [{action.kind}] {action.lang or 'text'} at {where(action.origin)}"
        if tabs:
            head += f"  (tab: {tabs})"
        if action.executable:
            head += f"  on {action.where}"
        if action.timeout:
            head += f"  timeout={action.timeout:g}s"
        out.append(head)
        out.extend("      " + line for line in action.code.rstrip("\n").split("\n"))
    for item in step.subchecks:
        out.append(f"  - [{'x' if item.checked else ' '}] {item.text}  ({where(item.origin)})")
    return "\n".join(out)


def step_marks_json(step: Step, mark: Mark | None) -> dict[str, Any]:
    """Describe whether ``step`` is done, by whom, how and when (``mark``, its journal
    record): ``how`` is ``exec`` or ``check`` from the journal, ``file`` for a box ticked
    with no record that explains it (an editor), null for a step not done."""
    if not step.checked:
        return {"number": step.number, "done": False, "by": None, "how": None, "at": None}
    if mark is None:
        return {"number": step.number, "done": True, "by": None, "how": "file", "at": None}
    return {"number": step.number, "done": True, "by": mark.by, "how": mark.how, "at": mark.at}


def status_json(
    book: Runbook, last: LastRun | None, marks: Mapping[int, Mark] | None = None
) -> dict[str, Any]:
    """Describe a guide's progress, who did each step and how (``marks``, from the journal),
    and ``last``, its last run (``runbook status --json``)."""
    done = [s.number for s in book.steps if s.checked]
    pending = [s for s in book.steps if not s.checked]
    marks = marks or {}
    return {
        "guide": rel(book.path),
        "steps": [step_marks_json(s, marks.get(s.number)) for s in book.steps],
        "done": done,
        "next": {"number": pending[0].number, "title": pending[0].title} if pending else None,
        "tracked": bool(book.checklist),
        "last_run": last.to_json() if last else None,
        "last_run_text": last.text() if last else "last run: none recorded",
    }


def status_text(
    book: Runbook, last: LastRun | None, marks: Mapping[int, Mark] | None = None
) -> str:
    """Describe a guide's progress, who did each step, and ``last``, its last run."""
    data = status_json(book, last, marks)
    lines = [f"{book.title}  ({data['guide']})"]
    lines.append(f"progress: {len(data['done'])} of {len(data['steps'])} steps done")
    for step in data["steps"]:
        if step["how"] == "file":
            lines.append(f"  [x] {step['number']}  ticked in the file (no record of who)")
        elif step["done"]:
            lines.append(f"  [x] {step['number']}  {step['how']} by {step['by']} at {step['at']}")
    nxt = data["next"]
    lines.append(f"next: step {nxt['number']}. {nxt['title']}" if nxt else "all steps done")
    if not data["tracked"]:
        lines.append("note: no overview checklist, so progress is not recorded in the file")
    lines.append(data.pop("last_run_text"))
    return "\n".join(lines)


# -- exec: the dry run and the summary -------------------------------------------------------

Line = tuple[str, tuple[str, ...]]
"""A line for the terminal and its styles (``bold``, ``yellow`` …)."""

# Step results, as the journal's step-end records and the summary name them.
_MARKS = {
    "done": "✓",
    "failed": "✗",
    "skipped": "–",
    "stopped": "■",
    "interrupted": "■",
    "unknown": "?",
}
_COLOURS = {
    "done": "green",
    "failed": "red",
    "interrupted": "red",
    "error": "red",
    "stopped": "yellow",
    "skipped": "yellow",
    "unknown": "yellow",
}


def dry_run_lines(book: Runbook, steps: Sequence[DryStep], *, accept: bool = False) -> list[Line]:
    """Return what ``runbook exec --dry-run`` prints: each step with what it would run,
    the inputs still missing and what needs a person; with ``accept`` (``--accept``),
    offered blocks run without one."""
    lines: list[Line] = [(f"Dry run of {rel(book.path)}: nothing is executed.", ("bold",))]
    missing: dict[str, Placeholder] = {}
    people: list[str] = []
    for found in steps:
        step = found.step
        state = "to run" if found.pending else "done, skipped"
        if found.by_hand:
            state = "passed as done by hand (--by-hand), nothing run"
        lines += [("", ()), (f"Step {step.number}. {step.title}  [{state}]", ("bold",))]
        for part in found.parts:
            lines += _dry_part_lines(part, missing, people, accept)
    lines.append(("", ()))
    if missing:
        names = ", ".join(f"<{n}>" + (" (secret)" if p.secret else "") for n, p in missing.items())
        lines.append(("Inputs still missing: " + names, ("yellow",)))
        lines.append(
            (
                "  give them with "
                + ", ".join(how_to_give(n, p.secret) for n, p in missing.items()),
                (),
            )
        )
    else:
        lines.append(("Inputs: all known.", ()))
    places = {
        place: None
        for found in steps
        for part in found.parts
        for action, place in zip(part.actions, part.places, strict=True)
        if action.executable
    }
    if places:
        lines.append(("Runs on: " + ", ".join(places), ()))
    if people:
        lines.append(("Needs a person:", ("yellow",)))
        lines += [("  - " + text, ()) for text in people]
    else:
        lines.append(("Needs a person: nothing; it can run with --yes.", ()))
    return lines


def _dry_part_lines(
    part: DryPart, missing: dict[str, Placeholder], people: list[str], accept: bool
) -> list[Line]:
    """Return the lines of one step (or a step it runs); note inputs and people needed."""
    step, named = part.step, part.named
    lines: list[Line] = []
    if part.label:
        lines.append((f"  ↳ {part.label}: {step.title}", ("bold",)))
    if part.choice is not None:
        message, hint = part.choice
        people.append(f"{named}: choose a tab ({message}); {hint}")
        lines.append((f"  needs a choice: {message}", ("yellow",)))
    nested = [d for d in step.directives if d.name in ("exec", "repeat")]
    if not any(a.executable for a in part.actions) and not nested:
        people.append(f"{named}: manual, a person confirms it")
        lines.append(("  manual: a person does it and confirms", ("yellow",)))
    for d in step.directives:
        lines.append((f"  [{d.name}] {' '.join(d.args)}  ({where(d.origin)})", ()))
    for ph in part.missing:
        missing.setdefault(ph.name, ph)
    for action, code, place in zip(part.actions, part.previews, part.places, strict=True):
        tabs = " > ".join(t.label for t in action.tabs)
        at = where(action.origin)
        accepted = accept and action.kind == "suggested"
        lines.append(
            (
                f"  [{action.kind}] {at}"
                + (f" (tab {tabs})" if tabs else "")
                + (f" on {place}" if action.executable else "")
                + (", run as accepted (--accept)" if accepted else ""),
                (),
            )
        )
        if action.kind == "suggested" and not accepted:
            people.append(f"{named}: confirm the block at {at}")
        if action.executable:
            lines += [("      " + text, ()) for text in code.rstrip("\n").split("\n")]
    return lines


def summary_lines(
    results: Sequence[StepResult],
    timed: Sequence[tuple[str, float, str]],
    total: float,
    transcript: Path | None,
    confirmed: Sequence[str] = (),
) -> list[Line]:
    """Return the summary at the end of a run: each step's result, the timers, the blocks
    run or declined after a warning (``confirmed``: which, how, by whom), the totals."""
    from runbook.ui import format_duration

    if not results:
        return []
    lines: list[Line] = [("", ()), ("Summary", ("bold",))]
    already = [r for r in results if r.result == "already done"]
    if already:
        numbers = ", ".join(str(r.number) for r in already)
        lines.append((f"  · steps {numbers} were already done", ("dim",)))
    counts: dict[str, int] = {}
    for r in results:
        counts[r.result] = counts.get(r.result, 0) + 1
        if r.result == "already done":
            continue
        mark = _MARKS.get(r.result, "·")
        duration = format_duration(r.duration) if r.duration else ""
        note = f"  ({r.note})" if r.note else ""
        lines.append(
            (
                f"  {mark} {r.number:>2}. {r.title[:48]:<48} {r.result:<12} {duration:>7}{note}",
                (_COLOURS.get(r.result, "dim"),),
            )
        )
    for name, seconds, span in timed:
        lines.append((f"  ⏱ {name}: {format_duration(seconds)} ({span})", ("bold",)))
    if confirmed:
        lines.append(("  Confirmed after a warning:", ("yellow",)))
        lines += [(f"    · {text}", ()) for text in confirmed]
    parts = ", ".join(f"{n} {k}" for k, n in counts.items())
    kept = f" · transcript {rel(transcript)}" if transcript else ""
    lines.append((f"  {parts} · total {format_duration(total)}{kept}", ("bold",)))
    return lines
