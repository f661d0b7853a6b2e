"""A resumed run gets back each shell's working directory, variables and functions.

The state is what the shell itself prints (``declare -p``, ``declare -f``), read after a
block that may change it and recorded in the journal without secrets; a fresh shell of the
same host gets it back before its next block. Real bash throughout.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from runbook.execution.shellstate import DUMP, changes, may_change, parse
from runbook.shell.session import Session
from tests.test_exec import CANARY, RUNBOOK, Workspace, cli_env

SECRET = {"RUNBOOK_SET_DB_PASSWORD": CANARY}


def dump(script: str, cwd: Path) -> bytes:
    """Run ``script`` then the state dump in a plain bash; return what it printed."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "INHERITED": "from the operator"}
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", f"{script}\n{DUMP}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        check=True,
    )
    return done.stdout


HOSTILE = [
    "$(touch PWNED)",
    "`touch PWNED`",
    "'; touch PWNED; '",
    '"; touch PWNED; "',
    "a\nb\n\ndeclare -x X=1",
    "\\$HOME \\\\ \\",
    "__RBQ0123456789abcdef",
    "\x01\x02 control",
    "ünïcödé ✓",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_value_comes_back_byte_for_byte_and_never_runs(tmp_path: Path, value: str) -> None:
    start = parse(dump("", tmp_path))
    assert start is not None
    quoted = "'" + value.replace("'", "'\\''") + "'"
    now = parse(dump(f"V={quoted}; export E={quoted}; arr=({quoted} x)", tmp_path))
    assert now is not None
    state = changes(start, now, {})
    assert set(state.set) == {"V", "E", "arr"}
    check = (
        f"{state.script()}\n"
        'printf \'%s\\0\' "$V" "$E" "${arr[0]}"; [[ $(declare -p E) == \'declare -x\'* ]]'
    )
    back = subprocess.run(
        ["bash", "--norc", "-c", f"f() {{ source /dev/stdin; }}; f <<'XX'\n{check}\nXX"],
        cwd=tmp_path,
        capture_output=True,
        check=True,
    )
    assert back.stdout == (value.encode() + b"\0") * 3
    assert not (tmp_path / "PWNED").exists()


def test_only_what_the_guide_changed_is_kept(tmp_path: Path) -> None:
    start = parse(dump("", tmp_path))
    assert start is not None and "INHERITED" in start.variables
    now = parse(dump("mkdir d; cd d; unset INHERITED; X=1; f() { :; }; IFS=,", tmp_path))
    assert now is not None
    state = changes(start, now, {})
    assert state.cwd == str(tmp_path / "d")
    assert set(state.set) == {"X", "IFS"} and state.unset == ("INHERITED",)
    assert set(state.functions) == {"f"}
    # The operator's environment, the shell's own variables: never recorded.
    assert "PATH" not in state.set and "RANDOM" not in state.set and "PWD" not in state.set


def test_a_variable_holding_a_secret_is_named_never_kept(tmp_path: Path) -> None:
    start = parse(dump("", tmp_path))
    now = parse(dump(f"A='{CANARY}'; export B='x{CANARY}x'; C=plain; API_TOKEN=t0k", tmp_path))
    assert start is not None and now is not None
    state = changes(start, now, {"db-password": CANARY})
    # API_TOKEN holds no input's value, but its name says what it is.
    assert dict(state.secret) == {"A": "db-password", "B": "", "API_TOKEN": ""}
    assert state.exported == ("B",) and set(state.set) == {"C"}
    assert CANARY not in json.dumps(state.record())


@pytest.mark.parametrize(
    ("code", "changes_state"),
    [
        ("echo hello", False),
        ("ls --color=never /tmp", False),
        ("cd /tmp", True),
        ("X=1", True),
        ("export X", True),
        ("f() { :; }", True),
        (". ./env.sh", True),
        ("for i in 1 2; do echo $i; done", False),
        ("read -r line < file", True),
    ],
)
def test_blocks_that_cannot_change_the_state_cost_no_look(code: str, changes_state: bool) -> None:
    assert may_change(code) is changes_state


def test_a_look_at_the_shell_is_not_fooled_by_a_value_holding_its_prompt(tmp_path: Path) -> None:
    transcript = tmp_path / "transcript"
    with transcript.open("wb") as sink, Session(cwd=tmp_path, transcript=sink) as shell:
        shell.run('X="${PS1@P}"; SECRET_ENV=shown-to-no-one\n', timeout=10)
        state = parse(shell.query(DUMP))
        assert state is not None and state.cwd == str(tmp_path)
        assert "SECRET_ENV" in state.variables and "X" in state.variables
        # The shell answers the next block as usual.
        out = bytearray()
        assert shell.run("echo after\n", timeout=10, on_output=out.extend).ok
        assert b"after" in out
    assert b"shown-to-no-one" not in transcript.read_bytes()


def test_a_resumed_run_gets_the_state_back_and_says_so(tmp_path: Path) -> None:
    ws = Workspace(tmp_path, "resume.md")
    first = ws.exec("--yes", env=cli_env(**SECRET))
    assert first.code == 1 and ws.ticked() == {1}
    records = ws.events("shell-state", step=1)
    assert records and records[-1]["cwd"] == str(tmp_path / "work dir")
    assert set(records[-1]["set"]) == {"APP", "COUNT", "TRICKY", "items"}
    assert records[-1]["secret"] == {"PASS": "db-password", "TOKEN": "db-password"}
    assert ws.all_runtime_bytes().count(CANARY.encode()) == 0

    (tmp_path / "ready").touch()
    resumed = ws.exec("--yes", env=cli_env(**SECRET))
    assert resumed.code == 0, resumed.text
    assert (
        f"↺ given back on this machine: working directory {tmp_path / 'work dir'}; "
        "variables APP, COUNT, TRICKY, items; functions greet" in resumed.out
    )
    assert "↺ PASS set again from <db-password>" in resumed.out
    assert f"pwd={tmp_path / 'work dir'}" in resumed.out
    assert (
        'app=/srv/my app count=3 tricky=$(touch PWNED) "q" `touch PWNED` ; touch PWNED '
        "items=two words" in resumed.out
    )
    assert f"pass={len(CANARY)} token={len(CANARY)}" in resumed.out
    assert "hello from resumed" in resumed.out
    assert ws.log() == ["set-up", "used"]
    assert not list(tmp_path.rglob("PWNED"))
    assert ws.events("shell-restored")[0]["asked"] == ["PASS", "TOKEN"]
    assert ws.all_runtime_bytes().count(CANARY.encode()) == 0


def test_without_the_secret_a_resumed_run_stops_naming_it(tmp_path: Path) -> None:
    ws = Workspace(tmp_path, "resume.md")
    assert ws.exec("--yes", env=cli_env(**SECRET)).code == 1
    (tmp_path / "ready").touch()
    resumed = ws.exec("--yes")
    assert resumed.code == 4
    assert "needs <db-password>" in resumed.err and "RUNBOOK_SET_DB_PASSWORD" in resumed.err


def test_a_reset_or_a_run_from_the_start_gets_nothing_back(tmp_path: Path) -> None:
    ws = Workspace(tmp_path, "resume.md")
    assert ws.exec("--yes", env=cli_env(**SECRET)).code == 1
    (tmp_path / "ready").touch()
    again = ws.exec("--yes", "--from", "1", env=cli_env(**SECRET))
    assert again.code == 0 and "given back" not in again.out
    subprocess.run(
        [*RUNBOOK, "reset", ws.guide.name], cwd=tmp_path, check=True, capture_output=True
    )
    fresh = ws.exec("--yes", "--only", "2")
    assert fresh.code == 1 and "given back" not in fresh.out  # ../ready: not in work dir


def test_a_block_that_ends_its_shell_does_not_wipe_the_state(tmp_path: Path) -> None:
    ws = Workspace(tmp_path, "resume.md")
    text = ws.guide.read_text().replace("test -e ../ready", "test -e ../ready || exit 7")
    ws.guide.write_text(text)
    first = ws.exec("--yes", env=cli_env(**SECRET))
    assert first.code == 1 and "ended its shell" in first.text
    (tmp_path / "ready").touch()
    resumed = ws.exec("--yes", env=cli_env(**SECRET))
    assert resumed.code == 0, resumed.text
    assert f"pwd={tmp_path / 'work dir'}" in resumed.out


def test_a_look_that_takes_too_long_leaves_nothing_for_later_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runbook.shell import session as sessions
    from runbook.shell.model import SessionError

    monkeypatch.setattr(sessions, "_QUERY_TIMEOUT", 0.5)
    transcript = tmp_path / "transcript"
    with transcript.open("wb") as sink, Session(cwd=tmp_path, transcript=sink) as shell:
        with pytest.raises(SessionError):
            shell.query("command sleep 2; builtin printf LATE-LOOK")
        out = bytearray()
        # A fresh shell takes the next block; what the look printed late goes nowhere.
        assert shell.run("sleep 2.5; echo next\n", timeout=10, on_output=out.extend).ok
        assert b"next" in out and b"LATE-LOOK" not in out
    assert b"LATE-LOOK" not in transcript.read_bytes()
