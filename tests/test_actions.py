"""What a code block asks of exec: secret names and values that cannot be inputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runbook.actions import is_secret, parse_duration
from runbook.errors import UsageError
from runbook.inputs import check_value
from tests.conftest import one_step_guide, run_cli

SECRET = [
    "db-password",
    "dbpassword",
    "DB_PASSWD",
    "passphrase",
    "api-token",
    "client-secret",
    "aws-credentials",
    "encryption-key",
    "ssh-key",
    "signing-key",
    "apiKey",
    "API_KEY",
    "private",
    "tls.private",
    "pwd",
    "sim-pin",
]
NOT_SECRET = [
    "site-name",
    "db_user",
    "old-server",
    "backup-name",
    "monkey",
    "keyboard",
    "spinner",
    "keystone-host",
    "compass",
]


@pytest.mark.parametrize("name", SECRET)
def test_a_name_with_a_secret_word_is_secret(name: str) -> None:
    assert is_secret(name)


@pytest.mark.parametrize("name", NOT_SECRET)
def test_other_names_are_not(name: str) -> None:
    assert not is_secret(name)


@pytest.mark.parametrize("char", ["\x01", "\n", "\x7f", "\x85", "\x9b"])
def test_a_value_with_any_control_character_is_refused_naming_the_input(char: str) -> None:
    with pytest.raises(UsageError, match="<site-name>"):
        check_value("site-name", f"a{char}b")


def test_exec_refuses_a_c1_value_before_anything_runs(tmp_path: Path) -> None:
    one_step_guide(tmp_path, "touch ran\necho <site-name>")
    result = run_cli(tmp_path, "exec", "guide.md", "--yes", "--set", "site-name=a\x85b")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "<site-name>" in result.stderr and "RUNBOOK_IN" not in result.stderr
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize(
    ("text", "seconds"), [("900", 900.0), ("15m", 900.0), ("2h", 7200.0), ("500ms", 0.5)]
)
def test_a_time_limit_reads_one_way(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["-5", "nan", "inf", "0", "0s", "", "ten", "1e99"])
def test_what_is_not_a_time_limit_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize("value", ["-5", "nan", "0", "inf"])
def test_the_timeout_option_takes_the_same_rule(tmp_path: Path, value: str) -> None:
    one_step_guide(tmp_path, "true")
    result = run_cli(tmp_path, "exec", "guide.md", "--yes", f"--timeout={value}")
    assert result.returncode == 2, result.stderr
    assert "--timeout" in result.stderr and "[x]" not in (tmp_path / "guide.md").read_text()


def test_values_come_from_set_then_environment_then_file(tmp_path: Path) -> None:
    one_step_guide(tmp_path, 'printf "%s|%s|%s" <db-password> <site-name> <port> > out.txt')
    (tmp_path / "pw.txt").write_text("from file\n")
    (tmp_path / "port.txt").write_text("8080\n")
    env = {**os.environ, "RUNBOOK_SET_SITE_NAME": "from env", "RUNBOOK_SET_PORT": "9090"}
    result = run_cli(
        tmp_path,
        *("exec", "guide.md", "--yes"),
        *("--set-file", "db-password=pw.txt", "--set-file", "port=port.txt"),
        *("--set", "port=7070"),
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # --set wins over the environment, which wins over the file; one newline dropped.
    assert (tmp_path / "out.txt").read_text() == "from file|from env|7070"
    assert "from file" not in result.stdout + result.stderr  # the secret is masked


def test_a_secret_is_never_suggested_on_the_command_line(tmp_path: Path) -> None:
    one_step_guide(tmp_path, "echo <db-password>")
    result = run_cli(tmp_path, "exec", "guide.md", "--yes")
    assert result.returncode == 4, result.stderr
    assert "--set-file db-password=PATH" in result.stderr
    assert "RUNBOOK_SET_DB_PASSWORD" in result.stderr and "--set db-password" not in result.stderr


def test_lint_refuses_what_the_dry_run_refuses(tmp_path: Path) -> None:
    one_step_guide(tmp_path, "echo hi", 'bash { .run host="nosuch" }')
    lint = run_cli(tmp_path, "lint", "guide.md")
    dry = run_cli(tmp_path, "exec", "guide.md", "--dry-run")
    assert lint.returncode == dry.returncode == 3
    assert "guide.md:7: error: host 'nosuch' is not defined" in lint.stdout
    assert "guide.md:7: host 'nosuch' is not defined" in dry.stderr
