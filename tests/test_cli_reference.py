"""The CLI reference in docs/cli.md names every command and every option."""

from __future__ import annotations

import re

import click
import pytest

from runbook.cli import main
from tests.conftest import ROOT

REFERENCE = (ROOT / "docs" / "cli.md").read_text()
COMMANDS = sorted(main.commands)


def section(name: str) -> str:
    match = re.search(rf"^## runbook {name}\n(.*?)(?=^## |\Z)", REFERENCE, re.M | re.S)
    assert match, f"docs/cli.md has no '## runbook {name}' section"
    return match.group(1)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_and_option_is_documented(name: str) -> None:
    text = section(name)
    command = main.commands[name]
    for param in command.params:
        if isinstance(param, click.Option):
            for flag in [*param.opts, *param.secondary_opts]:
                if flag in ("-h", "--help"):
                    continue
                pattern = rf"(?<![\w-]){re.escape(flag)}(?![\w-])"
                assert re.search(pattern, text), f"{flag} of {name} is not documented"


def test_no_stale_commands_are_documented() -> None:
    documented = set(re.findall(r"^## runbook (\S+)", REFERENCE, re.M))
    assert documented == set(COMMANDS)


def test_exit_codes_match_the_code() -> None:
    from runbook import errors

    for code in (0, 1, 2, 3, 4, 130):
        assert f"| {code} |" in REFERENCE
    assert errors.EXIT_NEEDS_OPERATOR == 4 and errors.EXIT_INTERRUPTED == 130
