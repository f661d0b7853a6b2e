"""``make demo-production``: the guide's Production path on two real servers, end to end.

Runs ``tools/demo-production`` (what the make target runs after installing packages) twice in
a row against real sshd and MariaDB servers in a temporary $PRODUCTION_ROOT, then a backup
with a wrong database password.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "tools" / "demo-production"
TOOL = ROOT / "tools" / "production"
VERIFIED = "verified: 12 tables, counts equal, checksums equal"


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("production")
    env = {**os.environ, "PRODUCTION_ROOT": str(root), "NO_MKDOCS_2_WARNING": "1"}
    yield env
    subprocess.run([str(TOOL), "down"], env=env, capture_output=True, timeout=120)


def demo(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(DEMO)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_the_production_path_verifies_twice_in_a_row(state: dict[str, str]) -> None:
    root = Path(state["PRODUCTION_ROOT"])
    for _ in range(2):
        done = demo(state)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert done.stdout.rstrip().splitlines()[-1] == VERIFIED
        # The blocks after the ssh lines ran there, answered from the secret input.
        assert "▶ connect to rbadmin@old-server" in done.stdout
        assert "▶ suggested on rbadmin@new-server" in done.stdout
        assert "Restore matches the backup" in done.stdout
        assert "done by hand (--by-hand-block)" in done.stdout
    password = (root / "secrets" / "mysql-root-password").read_text().strip()
    site = root / "site"
    assert password not in done.stdout + done.stderr
    for path in (site / ".runbook").rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path


def test_a_wrong_database_password_stops_clearly_and_is_nowhere(state: dict[str, str]) -> None:
    root = Path(state["PRODUCTION_ROOT"])
    wrong = root / "wrong-password"
    wrong.write_text("not-the-Password-123\n")
    wrong.chmod(0o600)
    guide = root / "site" / "docs" / "admin-guide" / "upgrading" / "parallel.md"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runbook",
            "exec",
            str(guide),
            "--yes",
            "--accept",
            "--tab",
            "Production",
            "--tab",
            "mysqldump",
            "--tab",
            "scp",
            "--only",
            "3",
            "--redo",
            "--set-file",
            f"db-root-password={wrong}",
            "--set",
            "backup-host=new-server",
            "--set",
            "backup-directory=/home/rbadmin",
        ],
        cwd=ROOT,
        env={**state, "RUNBOOK_SET_USERNAME": "rbadmin", "RUNBOOK_SET_OLD_SERVER": "old-server"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Access denied for user 'root'@'localhost'" in done.stdout
    assert "step 3" in done.stderr and "_backup_database.md:" in done.stderr
    assert "Traceback" not in done.stderr
    secret = "not-the-Password-123"
    assert secret not in done.stdout + done.stderr
    for path in (root / "site" / ".runbook").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
