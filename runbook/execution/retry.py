"""Where a failed block can be retried from: the top-level command holding the line that
failed (the shell knows that line), found as bash itself reads the block.

A line starts a top-level command when everything before it is complete shell code: bash
parses it (``bash -n``) without an error or a warning (an open quote, loop, ``if``,
here-document or ``&&`` at the end is not complete). bash is asked, not a second parser.
"""

from __future__ import annotations

import shutil
import subprocess

# Seconds one parse may take (only after a failure, a few per block at most).
_PARSE_TIMEOUT = 5.0


def complete(code: str) -> bool:
    """Whether ``code`` is complete shell code, as bash reads it."""
    bash = shutil.which("bash")
    if bash is None:
        return False
    try:
        done = subprocess.run(
            [bash, "--norc", "--noprofile", "-n"],
            input=code.encode("utf-8", "surrogateescape"),
            capture_output=True,
            timeout=_PARSE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and not done.stderr


def command_start(code: str, line: int) -> int | None:
    """Return the first line (from 1) of the top-level command of ``code`` that holds line
    ``line``; None when it cannot be told (then only a whole retry is offered)."""
    lines = code.split("\n")
    if not 1 <= line <= len(lines):
        return None
    for start in range(line, 0, -1):
        before = "\n".join(lines[: start - 1])
        if before.endswith("\\") or not complete(before + "\n"):
            continue
        # A line that only closes or continues the one before is no command's start.
        if lines[start - 1].strip():
            return start
    return None


def rest(code: str, start: int) -> str:
    """Return ``code`` from line ``start`` on."""
    return "\n".join(code.split("\n")[start - 1 :])
