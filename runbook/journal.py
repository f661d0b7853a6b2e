"""The run journal: an append-only record of who ran what, where, when, and how it ended.

One JSON object per line, each written with a single ``write`` on an ``O_APPEND`` file, so a
record is whole or absent even when the process is killed. Records that gate a tick are
also fsynced first: a tick never outruns the journal.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook.lock import lock_name


def who() -> str:
    """Return ``user@host``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def now() -> str:
    """Return the current time, ISO 8601 with UTC offset, to the millisecond."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def new_run_id() -> str:
    """Return a short, sortable, unique run id."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


def journal_path(runtime_dir: Path, guide: Path) -> Path:
    """Return the journal file of ``guide``."""
    return runtime_dir / "journal" / f"{lock_name(guide, 'run').rsplit('.', 1)[0]}.jsonl"


def transcript_path(runtime_dir: Path, run_id: str) -> Path:
    """Return the transcript file of one run."""
    return runtime_dir / "transcripts" / f"{run_id}.log"


class Journal:
    """Append records for one run."""

    def __init__(self, path: Path, run_id: str) -> None:
        self.path = path
        self.run_id = run_id
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def write(self, event: str, *, sync: bool = False, **fields: Any) -> None:
        """Append one record; with ``sync``, make it durable before returning."""
        record = {"time": now(), "run": self.run_id, "event": event, **fields}
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        os.write(self._fd, line.encode("utf-8"))
        if sync:
            os.fsync(self._fd)

    def close(self) -> None:
        """Close the file (records are already on disk)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the journal's records, skipping a torn last line."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            continue  # a line cut short by a crash
        if isinstance(record, dict):
            yield record


@dataclass(frozen=True)
class Unknown:
    """A step that started but has no recorded end."""

    step: int
    """The step number."""
    run: str
    """The run that started it."""
    time: str
    """When it started."""
    who: str
    """Who ran it."""


@dataclass(frozen=True)
class LastRun:
    """What the journal says about the most recent run."""

    run: str
    """The run id."""
    who: str
    """``user@host``."""
    started: str
    """When it started."""
    ended: str | None
    """When it ended, or None if it has no end record (killed, or still running)."""
    result: str | None
    """``done``, ``failed``, ``stopped``, ``interrupted`` …, or None."""
    steps: tuple[tuple[int, str, float], ...]
    """Per step: number, result, seconds."""


def unknown_steps(path: Path) -> list[Unknown]:
    """Return steps whose latest record is a start with no end."""
    state: dict[int, dict[str, Any]] = {}
    runs: dict[str, str] = {}
    for rec in read_records(path):
        if rec.get("event") == "run-start":
            runs[str(rec.get("run"))] = str(rec.get("who", "?"))
        step = rec.get("step")
        if not isinstance(step, int):
            continue
        if rec.get("event") in ("step-start", "step-end", "step-resolved"):
            state[step] = rec
    return [
        Unknown(step, str(rec.get("run")), str(rec.get("time")), runs.get(str(rec.get("run")), "?"))
        for step, rec in sorted(state.items())
        if rec.get("event") == "step-start"
    ]


def last_run(path: Path) -> LastRun | None:
    """Summarise the most recent run in the journal."""
    current: dict[str, Any] | None = None
    steps: dict[int, tuple[str, float]] = {}
    end: dict[str, Any] | None = None
    for rec in read_records(path):
        event = rec.get("event")
        if event == "run-start":
            current, steps, end = rec, {}, None
        elif current is None or rec.get("run") != current.get("run"):
            continue
        elif event == "step-end" and isinstance(rec.get("step"), int):
            steps[rec["step"]] = (str(rec.get("result")), float(rec.get("duration", 0.0)))
        elif event == "run-end":
            end = rec
    if current is None:
        return None
    return LastRun(
        run=str(current.get("run")),
        who=str(current.get("who", "?")),
        started=str(current.get("time")),
        ended=str(end.get("time")) if end else None,
        result=str(end.get("result")) if end else None,
        steps=tuple((n, r, d) for n, (r, d) in steps.items()),
    )
