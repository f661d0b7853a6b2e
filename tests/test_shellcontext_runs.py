"""The scanner takes runs of plain characters at once: the same result as one at a time.

``runbook.shellcontext`` reads most of a block's characters through no rule at all; taking
them as a run is only faster. Here the scan with runs is held to the scan without them on
generated shell code full of the characters the rules do look at.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runbook import shellcontext
from runbook.inputs import _AnyLiteral, shell_var
from runbook.shellcontext import scan

PIECES = st.sampled_from(
    [
        "<name>",
        "<db-host>",
        "<<EOF\nx <name>\nEOF\n",
        "<<'EOF'\n<name>\nEOF\n",
        "<<<",
        "echo",
        "eval",
        "let",
        "printf -v",
        "read",
        "declare -A a",
        "bash -c",
        "ssh host",
        "[[",
        "]]",
        "-gt",
        "$((",
        "))",
        "((",
        "$(",
        "${",
        "}",
        "a[",
        "]",
        "=(",
        "a=",
        "x+=",
        "#",
        "'",
        '"',
        "$'",
        "`",
        "\\",
        "\\\n",
        " ",
        "\t",
        "\n",
        ";",
        "&&",
        "|",
        "(",
        ")",
        "<",
        ">",
        "case",
        "esac",
        "in",
        "word",
        "x_1",
        "/usr/bin/env",
        "!",
        "*",
        "~",
        ":",
        "\r",
    ]
)
CODE = st.lists(PIECES, max_size=30).map("".join)


def scanned(code: str) -> tuple[str, list[object]] | str:
    try:
        out, uses = scan(code, {"name", "db-host"}, shell_var, _AnyLiteral())
    except Exception as exc:  # the same refusal either way
        return f"{type(exc).__name__}: {exc}"
    return out, list(uses)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CODE)
def test_runs_of_plain_characters_scan_as_single_ones(code: str) -> None:
    fast = scanned(code)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(shellcontext, "_PLAIN_RE", re.compile(r"(?!)"))  # never a run
        slow = scanned(code)
    assert fast == slow
