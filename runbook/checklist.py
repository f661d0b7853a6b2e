"""Tick and clear steps in the guide's own overview checklist (check, uncheck, reset)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from runbook import runtime
from runbook.errors import StateError, step_of
from runbook.journal import record_hand_changes
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
        folder = runtime.prepare(book)
        apply_ticks(book.path, ticks, snapshot=snapshot(book), lock_dir=runtime.locks(folder))
        how = "check" if checked else "uncheck"
        _record(book, folder, [(n, None, checked) for n in changed], how)
    return changed


def _record(
    book: Runbook, folder: Path, changes: list[tuple[int, int | None, bool]], how: str
) -> None:
    # The run's own journal, whether or not a run holds the guide: its appends are whole
    # lines, so a record from here never tears one of the run's.
    record_hand_changes(runtime.journal_path(folder, book.path), changes, how)


def reset(book: Runbook) -> list[int]:
    """Clear every ticked item of the overview checklist; return the step numbers cleared."""
    items = [item for item in book.checklist if item.checked]
    cleared = [i.number for i in items if i.number is not None]
    if items:
        folder = runtime.prepare(book)
        apply_ticks(
            book.path,
            [Tick(i.origin.path, i.origin.line, False, i.text) for i in items],
            snapshot=snapshot(book),
            lock_dir=runtime.locks(folder),
        )
        _record(book, folder, [(n, None, False) for n in cleared], "reset")
    return cleared
