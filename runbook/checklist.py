"""Tick and clear steps in the guide's own overview checklist (check, uncheck, reset)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from runbook.errors import StateError, UsageError
from runbook.model import Runbook
from runbook.state import Snapshot, Tick, apply_ticks

GITIGNORE = "# runbook's runtime files (journals, transcripts, locks)\n*\n"


def runtime_dir(book: Runbook) -> Path:
    """Return the runtime folder, created private and git-ignored."""
    folder = book.runtime_dir or book.path.parent / ".runbook"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        # A link or another user's folder here would let them choose what runbook writes.
        raise StateError(
            "the runtime folder is "
            + ("a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a private folder of yours")
            + ": runbook writes its journal and locks only into its own folder",
            path=folder,
            hint=f"remove {folder} (runbook makes it again), or run as its owner",
        )
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text(GITIGNORE)
    return folder


def snapshot(book: Runbook) -> Snapshot:
    """Return the guide's bytes as the model was read from them."""
    return Snapshot.of(book.path, book.rendered.source)


def ticks_for(book: Runbook, numbers: Iterable[int], checked: bool) -> list[Tick]:
    """Return the ticks that set steps ``numbers``; refuse steps with nothing to tick."""
    ticks = []
    for number in numbers:
        step = book.step(number)
        if step is None:
            known = ", ".join(str(s.number) for s in book.steps) or "none"
            raise UsageError(f"no step {number} (steps: {known})", path=book.path)
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
        apply_ticks(book.path, ticks, snapshot=snapshot(book), lock_dir=runtime_dir(book) / "locks")
    return changed


def reset(book: Runbook) -> list[int]:
    """Clear every ticked item of the overview checklist; return the step numbers cleared."""
    items = [item for item in book.checklist if item.checked]
    if items:
        apply_ticks(
            book.path,
            [Tick(i.origin.path, i.origin.line, False, i.text) for i in items],
            snapshot=snapshot(book),
            lock_dir=runtime_dir(book) / "locks",
        )
    return [i.number for i in items if i.number is not None]
