"""Who is running runbook, and whom a file belongs to, as people read it."""

from __future__ import annotations

import getpass
import os
import pwd
import socket


def current_user() -> str:
    """Return the name of the user running runbook (their id when it has no name)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def this_host() -> str:
    """Return this machine's name, as locks and journals record it."""
    return socket.gethostname()


def who() -> str:
    """Return ``user@host``: who a journal says ran a step."""
    return f"{current_user()}@{this_host()}"


def owner_name(uid: int) -> str:
    """Return ``user NAME`` for a file owner's id (``user id N`` when it has no name)."""
    try:
        return f"user {pwd.getpwuid(uid).pw_name}"
    except KeyError:
        return f"user id {uid}"
