"""Present the model: JSON for scripts, plain text for people."""

from __future__ import annotations

from typing import Any

from runbook.model import Action, Diagnostic, Origin, Placeholder, Runbook, Step, rel


def where(origin: Origin | None) -> str:
    """Return ``file:line`` for display."""
    return f"{rel(origin.path)}:{origin.line}" if origin else ""


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
        if action.host != "local":
            head += f"  host={action.host}"
        if action.timeout:
            head += f"  timeout={action.timeout:g}s"
        out.append(head)
        out.extend("      " + line for line in action.code.rstrip("\n").split("\n"))
    for item in step.subchecks:
        out.append(f"  - [{'x' if item.checked else ' '}] {item.text}  ({where(item.origin)})")
    return "\n".join(out)


def status_json(book: Runbook) -> dict[str, Any]:
    """Describe a guide's progress and its last run (``runbook status --json``)."""
    from runbook.journal import last_run_of

    done = [s.number for s in book.steps if s.checked]
    pending = [s for s in book.steps if not s.checked]
    last = last_run_of(book)
    return {
        "guide": rel(book.path),
        "steps": len(book.steps),
        "done": done,
        "next": {"number": pending[0].number, "title": pending[0].title} if pending else None,
        "tracked": bool(book.checklist),
        "last_run": last.to_json() if last else None,
        "last_run_text": last.text() if last else "last run: none recorded",
    }


def status_text(book: Runbook) -> str:
    """Describe a guide's progress and its last run for a person."""
    data = status_json(book)
    lines = [f"{book.title}  ({data['guide']})"]
    lines.append(f"progress: {len(data['done'])} of {data['steps']} steps done")
    nxt = data["next"]
    lines.append(f"next: step {nxt['number']}. {nxt['title']}" if nxt else "all steps done")
    if not data["tracked"]:
        lines.append("note: no overview checklist, so progress is not recorded in the file")
    lines.append(data.pop("last_run_text"))
    return "\n".join(lines)
