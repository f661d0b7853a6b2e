"""Tick and clear steps in the guide's own overview checklist (check, uncheck, reset)."""

from __future__ import annotations

from collections.abc import Iterable

from runbook import runtime
from runbook.errors import StateError, step_of
from runbook.model import Runbook
from runbook.state import Snapshot, Tick, apply_ticks


def snapshot(book: Runbook) -> Snapshot:
    """Return the guide's bytes as the model was read from them."""
    return Snapshot.of(book.path, book.rendered.source)


def ticks_for(book: Runbook, numbers: Iterable[int], checked: bool) -> list[Tick]:
    """Return the ticks that set steps ``numbers``; refuse steps with nothing to tick."""
    ticks = []
    for number in numbers:
        step = step_of(book, number)
        if step.item is None:
            raise StateError(
                f"step {number} has no item in the overview checklist, so its progress "
                "cannot be recorded in the guide",
                path=step.origin.path,
                line=step.origin.line,
                hint=f"add '* [ ] {number}. {step.title}' to the overview checklist",
            )
        ticks.append(Tick(step.item.origin.path, step.item.origin.line, checked, step.item.text))
    return ticks


def set_steps(book: Runbook, numbers: Iterable[int], checked: bool) -> list[int]:
    """Tick (or clear) steps ``numbers``; return the numbers whose box changed."""
    wanted = list(numbers)
    ticks = ticks_for(book, wanted, checked)
    changed = [n for n in wanted if (s := book.step(n)) is not None and s.checked != checked]
    if ticks:
        apply_ticks(
            book.path, ticks, snapshot=snapshot(book), lock_dir=runtime.locks(runtime.prepare(book))
        )
    return changed


def reset(book: Runbook) -> list[int]:
    """Clear every ticked item of the overview checklist; return the step numbers cleared."""
    items = [item for item in book.checklist if item.checked]
    if items:
        apply_ticks(
            book.path,
            [Tick(i.origin.path, i.origin.line, False, i.text) for i in items],
            snapshot=snapshot(book),
            lock_dir=runtime.locks(runtime.prepare(book)),
        )
    return [i.number for i in items if i.number is not None]
