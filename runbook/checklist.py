"""Tick and clear steps in the guide's own overview checklist (check, uncheck, reset)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from runbook import runtime
from runbook.errors import StateError, UsageError, step_of
from runbook.journal import record_hand_changes
from runbook.model import CheckItem, Runbook
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
                at=step.origin,
                hint=f"add '* [ ] {number}. {step.title}' to the overview checklist",
            )
        ticks.append(Tick(step.item.origin.path, step.item.origin.line, checked, step.item.text))
    return ticks


def set_steps(book: Runbook, numbers: Iterable[int], checked: bool) -> list[int]:
    """Tick (or clear) steps ``numbers``; return the numbers whose box changed."""
    return [n for n, _ in set_parts(book, [(n, None) for n in numbers], checked)]


def set_parts(
    book: Runbook, refs: Iterable[tuple[int, int | None]], checked: bool, how: str | None = None
) -> list[tuple[int, int | None]]:
    """Tick (or clear) steps and sub-checklist items: ``(N, None)`` is step N's overview
    item, ``(N, M)`` the M-th ``- [ ]`` item inside step N. Return those whose box changed;
    each gets a journal record saying ``how`` (``check`` or ``uncheck`` when not given;
    ``serve`` for a click on the page ``runbook serve`` shows)."""
    wanted = list(refs)
    ticks: list[Tick] = []
    changed: list[tuple[int, int | None]] = []
    for number, sub in wanted:
        if sub is None:
            ticks.extend(ticks_for(book, [number], checked))
            is_set = step_of(book, number).checked
        else:
            item = sub_item(book, number, sub)
            ticks.append(Tick(item.origin.path, item.origin.line, checked, item.text))
            is_set = item.checked
        if is_set != checked and (number, sub) not in changed:
            changed.append((number, sub))
    if ticks:
        folder = runtime.prepare(book)
        apply_ticks(book.path, ticks, snapshot=snapshot(book), lock_dir=runtime.locks(folder))
        how = how or ("check" if checked else "uncheck")
        _record(book, folder, [(n, m, checked) for n, m in changed], how)
    return changed


def sub_item(book: Runbook, number: int, sub: int) -> CheckItem:
    """Return item ``sub`` (from 1) of step ``number``'s sub-checklist, or refuse clearly."""
    step = step_of(book, number)
    if not step.subchecks:
        raise UsageError(
            f"step {number} has no sub-checklist ('- [ ] …' items under it), so there is no "
            f"item {number}.{sub} to tick",
            at=step.origin,
            hint=f"tick the whole step with 'runbook check GUIDE {number}'; 'runbook show "
            f"GUIDE {number}.{sub}' shows part {sub} of it",
        )
    if not 1 <= sub <= len(step.subchecks):
        raise UsageError(
            f"step {number} has {len(step.subchecks)} sub-checklist items, not {sub}",
            at=step.origin,
            hint=f"'runbook show GUIDE {number}' lists them",
        )
    item = step.subchecks[sub - 1]
    if not item.in_guide:
        raise StateError(
            f"item {number}.{sub} is in a snippet, and runbook writes only the guide itself",
            at=item.origin,
            hint="tick it by hand in your notes, or move the item into the guide",
        )
    return item


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
