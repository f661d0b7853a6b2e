"""Read processes from /proc: state, process group, session, terminal."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Stat:
    """The fields of ``/proc/PID/stat`` a session looks at."""

    state: str
    pgrp: int
    session: int
    tty_nr: int


def read_stat(pid: int) -> Stat:
    """Return the state, process group, session and terminal of process ``pid``."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read()
    # The command name may contain spaces and parentheses: split after the last ")".
    fields = raw[raw.rindex(b")") + 2 :].split()
    return Stat(fields[0].decode(), int(fields[2]), int(fields[3]), int(fields[4]))


def decode_tty_nr(tty_nr: int) -> tuple[int, int] | None:
    """Return the (major, minor) device number of a stat ``tty_nr``; None for no terminal."""
    if tty_nr == 0:
        return None
    return (tty_nr >> 8) & 0xFFF, (tty_nr & 0xFF) | ((tty_nr >> 12) & 0xFFF00)


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def group_members(pgrp: int) -> Iterator[int]:
    """Yield the processes of a process group, its leader first (scanning only if asked)."""
    yield pgrp
    for pid in _all_pids():
        if pid == pgrp:
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            if read_stat(pid).pgrp == pgrp:
                yield pid


def alive(pid: int) -> bool:
    """Tell whether a process exists and is not a zombie waiting to be reaped."""
    try:
        return read_stat(pid).state not in ("Z", "X")
    except (OSError, ValueError, IndexError):
        return False


def session_members(sid: int) -> list[int]:
    """Return the processes of session ``sid``."""
    members = []
    for pid in _all_pids():
        with contextlib.suppress(OSError, ValueError, IndexError):
            if read_stat(pid).session == sid:
                members.append(pid)
    return members
