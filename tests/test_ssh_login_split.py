"""ssh_login splits a line only when its first word may read ``ssh``: the same answers."""

from __future__ import annotations

import shlex

from hypothesis import given, settings
from hypothesis import strategies as st

from runbook.actions import _SSH_NO_SESSION, ssh_login
from runbook.shellcommands import SSH_ARG_OPTS

PIECES = st.sampled_from(
    [
        "ssh",
        "'ssh'",
        '"ssh"',
        "s's'h",
        "\\ssh",
        "''ssh",
        "s",
        "sh",
        "'",
        '"',
        "\\",
        " ",
        "\t",
        "\x0b",
        "\xa0",
        "$ ",
        "-p",
        "22",
        "host",
        "user@h",
        "-N",
        "x",
        "#",
        "\n",
        "ls",
        "''",
        '""',
    ]
)


def reference(code: str) -> tuple[str, ...] | None:
    """ssh_login as it was: every one-line block split."""
    lines = code.strip().split("\n")
    if len(lines) != 1:
        return None
    try:
        words = shlex.split(lines[0].strip().removeprefix("$ "))
    except ValueError:
        return None
    if len(words) < 2 or words[0] != "ssh":
        return None
    at = 1
    while at < len(words) and words[at].startswith("-") and len(words[at]) > 1:
        letters = words[at][1:]
        for pos, letter in enumerate(letters):
            if letter in _SSH_NO_SESSION or letter == "-":
                return None
            if letter in SSH_ARG_OPTS:
                at += pos == len(letters) - 1
                break
        at += 1
    return tuple(words[1:]) if at == len(words) - 1 else None


@settings(max_examples=3000, deadline=None)
@given(st.lists(PIECES, max_size=8).map("".join))
def test_only_lines_whose_first_word_may_be_ssh_are_split(code: str) -> None:
    assert ssh_login(code) == reference(code)
