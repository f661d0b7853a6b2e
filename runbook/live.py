"""A guide as the page of ``runbook serve`` shows it: its steps' boxes, who ticked them and
how, what ``exec`` would do with each step, and where a running ``exec`` is.

Everything here reads the guide's file and journal, or ticks through ``runbook.checklist``
(the code of ``runbook check``); nothing holds a secret input's value: blocks are named by
file and line, hosts as written, with their ``<placeholders>``.
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from runbook.checklist import set_parts
from runbook.errors import StateError, UsageError, step_of
from runbook.guide import load
from runbook.journal import last_run_of, read_records, step_marks_of
from runbook.model import CheckItem, Origin, Runbook, Step
from runbook.runtime import folder_of, journal_path
from runbook.site import Site
from runbook.state import Snapshot, digest

HOW = "serve"
"""How the journal records a box ticked on the page (``how`` of its check record)."""


class Stale(Exception):
    """The guide's text changed beyond its boxes: load it again."""


def content_key(data: bytes) -> str:
    """Return the fingerprint of a guide's text with every box cleared: equal keys mean only
    boxes differ, so the built page is still right and nothing needs rebuilding."""
    snap = Snapshot.of("/", data)
    cleared = bytearray(data)
    for item in snap.items:
        cleared[item.offset] = 0x20
    return digest(bytes(cleared))


def with_boxes(book: Runbook, data: bytes) -> Runbook:
    """Return ``book`` with the box states of ``data``, the guide's bytes now.

    Raise Stale when an item's line no longer holds it: the text changed, not only boxes.
    """
    snap = Snapshot.of(book.path, data)

    def item(found: CheckItem | None) -> CheckItem | None:
        if found is None or not found.in_guide:
            return found
        now = snap.item_at(found.origin.line)
        if now is None or now.text != found.text:
            raise Stale(found.text)
        return replace(found, checked=now.checked)

    steps = tuple(replace(s, item=item(s.item)) for s in book.steps)
    checklist = tuple(item(c) or c for c in book.checklist)
    rendered = replace(book.rendered, source=data)
    return replace(book, steps=steps, checklist=checklist, rendered=rendered)


def does(step: Step) -> list[str]:
    """Say what ``exec`` does with ``step``: ``runs`` (``.run`` blocks), ``asks`` (blocks it
    offers, ``ssh`` lines), ``manual`` (nothing to run: a person confirms it)."""
    kinds = {a.kind for a in step.actions}
    found = ["runs"] if "run" in kinds or step.directives else []
    if kinds & {"suggested", "connect"}:
        found.append("asks")
    return found or ["manual"]


def hosts(step: Step) -> list[str]:
    """Return where the step's blocks run, as written (``this machine``, ``<user>@<host>``)."""
    seen: dict[str, None] = {}
    for action in step.actions:
        if action.executable:
            seen.setdefault(action.where, None)
    return list(seen)


def step_view(step: Step, guide_arg: str) -> dict[str, Any]:
    """Describe a step for the page: its item, what exec does, where, the command."""
    return {
        "number": step.number,
        "title": step.title,
        "item": step.item.text if step.item else None,
        "does": does(step),
        "hosts": hosts(step),
        "command": f"runbook exec {guide_arg} --only {step.number}",
    }


def shown(origin: Origin, root: Path) -> str:
    """Return ``file:line`` with the file relative to the site's folder."""
    path = os.path.relpath(origin.path, root)
    return f"{origin.path if path.startswith('..') else path}:{origin.line}"


def run_view(book: Runbook, root: Path) -> dict[str, Any] | None:
    """Describe the last run: whether it still runs, the step and block it is on, and each
    step's result."""
    last = last_run_of(book)
    if last is None:
        return None
    view: dict[str, Any] = {
        "running": last.running,
        "who": last.who,
        "result": last.result,
        "results": {str(n): r for n, r, _ in last.steps},
        "step": last.in_progress[0] if last.in_progress else None,
        "block": None,
        "host": None,
    }
    if last.running:
        view.update(_current_block(book, last.run, root))
    return view


def _current_block(book: Runbook, run: str, root: Path) -> dict[str, Any]:
    """Return the block the live run ``run`` has started and not ended (file:line, host)."""
    started: dict[str, Any] | None = None
    for rec in read_records(journal_path(folder_of(book), book.path)):
        if rec.get("run") != run:
            continue
        if rec.get("event") == "action-start":
            started = rec
        elif rec.get("event") in ("action-end", "step-end") and started is not None:
            started = None
    if started is None:
        return {}
    origin = str(started.get("origin", ""))
    for step in book.steps:
        for action in step.actions:
            if str(action.origin) == origin:
                # The host as the guide writes it: a value filled in could be an input's.
                return {"block": shown(action.origin, root), "host": action.where}
    path, _, line = origin.rpartition(":")
    return {"block": shown(Origin(Path(path), int(line) if line.isdigit() else 0), root)}


class LiveGuide:
    """One guide the server shows: its model, kept while only its boxes change."""

    def __init__(self, path: Path, site: Site, guide_arg: str) -> None:
        """Watch the guide at ``path`` of ``site``; ``guide_arg`` is how the operator names
        it in a command (relative to the site's folder)."""
        self.path = path
        self.site = site
        self.guide_arg = guide_arg
        self._book: Runbook | None = None
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Drop the model: a page or snippet changed, so the next look loads it again."""
        self._book = None

    def book(self) -> Runbook:
        """Return the model with the box states of the file as it is now."""
        data = self.path.read_bytes()
        if self._book is not None:
            try:
                return with_boxes(self._book, data)
            except Stale:
                pass
        self._book = load(self.path, site=self.site)
        return with_boxes(self._book, self._book.rendered.source)

    def state(self) -> dict[str, Any]:
        """Return what the page shows: each step's box, mark and view, and the last run."""
        book = self.book()
        marks = step_marks_of(book)
        steps = []
        for step in book.steps:
            mark = marks.get(step.number) if step.checked else None
            steps.append(
                step_view(step, self.guide_arg)
                | {
                    "done": step.checked,
                    "by": mark.by if mark else None,
                    "how": (mark.how if mark else "file") if step.checked else None,
                    "at": mark.at if mark else None,
                }
            )
        return {"guide": self.guide_arg, "steps": steps, "run": run_view(book, self.site.root)}

    def tick(self, number: int, checked: bool, text: str | None) -> dict[str, Any]:
        """Tick (or clear) step ``number`` as ``runbook check`` does, recorded as done on
        the page; ``text`` is the item as the page showed it. Return whether the box
        changed and the state after it; refuse (StateError) an item whose text changed."""
        with self._lock:  # one tick at a time: the second of two sees the first's result
            book = self.book()
            step = step_of(book, number)
            if step.item is None:
                raise UsageError(f"step {number} has no box in the overview checklist")
            if text is not None and step.item.text != text:
                raise StateError(
                    f"the item changed: step {number} now reads {step.item.text!r}, "
                    f"not {text!r}; nothing was ticked",
                    at=step.item.origin,
                    hint="look at the item again, then tick it",
                )
            changed = set_parts(book, [(number, None)], checked, how=HOW)
            return {"changed": bool(changed), "state": self.state()}
