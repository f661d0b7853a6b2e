"""What a code block asks of exec: secret names (one rule, runbook.actions.is_secret)."""

from __future__ import annotations

import pytest

from runbook.actions import is_secret

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
