"""Placeholder substitution: a value reaches the command byte-exact and never runs as code."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook.errors import UsageError
from runbook.inputs import check_value, placeholders_in, preview, shell_var, substitute

CONTEXTS = {
    "unquoted": "printf '%s' <x>",
    "double": "printf '%s' \"<x>\"",
    "double-mixed": 'printf \'%s\' "pre-<x>-post" | sed "s/^pre-//; s/-post$//"',
    "single": "printf '%s' '<x>'",
    "heredoc": "cat <<EOF | head -c -1\n<x>\nEOF",
    "heredoc-tabs": "cat <<-END | head -c -1\n\t<x>\n\tEND",
    "after-heredoc": "cat <<'EOF' >/dev/null\nnot <y> here\nEOF\nprintf '%s' <x>",
    "second-line-of-quote": "printf '%s' \"a\n<x>\" | tail -c +3",
}

hostile = st.one_of(
    st.sampled_from(
        [
            "$(touch PWNED)",
            "`touch PWNED`",
            "'; touch PWNED; '",
            '"; touch PWNED; "',
            "a b  c",
            "\\",
            "$HOME",
            "${x:-$(touch PWNED)}",
            "*",
            "-n",
            "x" * 5000,
            "é ü 中文 🙂",
        ]
    ),
    st.text(
        alphabet=st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="\x7f"),
        max_size=200,
    ),
)


def run_bash(script: str, values: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    # The session sets these variables without typing them; the environment stands in here.
    env = {"PATH": os.environ["PATH"], **{shell_var(k): v for k, v in values.items()}}
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, timeout=10)


@pytest.mark.parametrize("context", sorted(CONTEXTS))
@settings(max_examples=40, deadline=None)
@given(value=hostile)
def test_value_is_data_in_every_quoting_context(
    context: str, value: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cwd = tmp_path_factory.mktemp("bash")
    code = CONTEXTS[context]
    script = substitute(code, ["x"])
    assert "x" in script.inputs
    result = run_bash(script.code, {"x": value}, cwd)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == value
    assert not (cwd / "PWNED").exists()


def test_unknown_placeholders_stay_as_written() -> None:
    script = substitute("echo <x> <other> <<EOF\nEOF", ["x"])
    assert "<other>" in script.code
    assert script.inputs == ("x",)


def test_comments_are_left_alone() -> None:
    assert substitute("echo hi # use <x> here", ["x"]).code == "echo hi # use <x> here"


def test_quoted_heredoc_needs_a_literal() -> None:
    code = "cat <<'EOF'\nhost=<host>\nEOF"
    assert substitute(code, ["host"], literal={"host": "db1"}).code == "cat <<'EOF'\nhost=db1\nEOF"
    with pytest.raises(UsageError, match="quoted heredoc"):
        substitute(code, ["host"])


def test_similar_names_get_distinct_variables() -> None:
    assert shell_var("db-host") != shell_var("db_host")
    assert shell_var("db_host") == "RUNBOOK_IN_db_host"


@pytest.mark.parametrize("value", ["a\x01b", "line\nbreak", "tab\there", "\x1b[31m", "del\x7f"])
def test_control_characters_are_refused(value: str) -> None:
    with pytest.raises(UsageError, match="control character"):
        check_value("x", value)


def test_preview_masks_secrets() -> None:
    text = preview(
        "mysql -u <user> -p<db-password>",
        {"user": "root", "db-password": "hunter2"},
        {"db-password"},
    )
    assert text == "mysql -u root -p********"
    assert placeholders_in("a <b> <c> <b>") == ["b", "c"]
