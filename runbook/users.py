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


def person() -> str:
    """Return the person behind this command: ``SUDO_USER`` when set, else the login name.

    Under sudo the process runs as root, but records must name the person who typed the
    command, so journals and ``status`` say who did a step.
    """
    return os.environ.get("SUDO_USER") or current_user()


def who() -> str:
    """Return ``person@host``: who a journal says ran or ticked a step."""
    return f"{person()}@{this_host()}"


def owner_name(uid: int) -> str:
    """Return ``user NAME`` for a file owner's id (``user id N`` when it has no name)."""
    try:
        return f"user {pwd.getpwuid(uid).pw_name}"
    except KeyError:
        return f"user id {uid}"
