"""sudo on remote hosts, each with a password of its own, against the real sshd and sudo.

Two logins on test_ssh's sshd stand for two servers, ``old-server`` and ``new-server``
(aliases in the site's own ssh configuration): each is a user of this machine with a
password, and sudo asks each for it (``[sudo] password for …``). A run answers each host's
prompt with that host's own secret input, asks a person once a host for one not given, and
never shows or records either.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest

from tests import test_ssh
from tests.test_exec import RUNBOOK, exec_terminal
from tests.test_ssh import SshServer, write_site, write_ssh_config

sshd = test_ssh.sshd  # this module's own server, started as test_ssh starts its own

SUDOERS = Path("/etc/sudoers.d/runbook-test-sudo")


@dataclass(frozen=True)
class Logins:
    """The two servers' users and their sudo passwords."""

    users: dict[str, str]
    """By host alias: the login user."""
    passwords: dict[str, str]
    """By host alias: that user's password, which sudo asks for."""


@pytest.fixture(scope="module")
def logins(sshd: SshServer) -> Iterator[Logins]:
    """Create a user per server, each with its own password and sudo with a password, who
    logs in with the test client's key."""
    if os.geteuid() != 0 or not shutil.which("sudo") or not shutil.which("useradd"):
        # `make test` runs as root with sudo installed (tools/system-packages).
        pytest.fail("these tests create users and a sudoers rule: run them as root with sudo")
    hosts = {"old-server": "rbtest_sudo_old", "new-server": "rbtest_sudo_new"}
    # Canaries: each must never show up in any output or file of a run.
    passwords = {host: f"canary-{host}-{secrets.token_hex(6)}" for host in hosts}
    for host, user in hosts.items():
        if subprocess.run(["id", user], capture_output=True).returncode != 0:
            subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", user], check=True)
        subprocess.run(["chpasswd"], input=f"{user}:{passwords[host]}\n", text=True, check=True)
        authorize(user, Path(sshd.options[sshd.options.index("-i") + 1] + ".pub"))
    rule = "".join(
        f"{user} ALL=(ALL:ALL) ALL\nDefaults:{user} lecture=never, timestamp_timeout=0\n"
        for user in hosts.values()
    )
    candidate = SUDOERS.with_name(".runbook-test-sudo.new")
    candidate.write_text(rule)
    os.chmod(candidate, 0o440)
    subprocess.run(["visudo", "-c", "-q", "-f", str(candidate)], check=True)
    os.replace(candidate, SUDOERS)
    try:
        yield Logins(hosts, passwords)
    finally:
        SUDOERS.unlink(missing_ok=True)
        for user in hosts.values():
            with contextlib.suppress(OSError):
                subprocess.run(["userdel", "--remove", user], capture_output=True)


def authorize(user: str, key: Path) -> None:
    """Let ``user`` log in with ``key`` (sshd reads it as that user, from their home)."""
    home = Path(os.path.expanduser(f"~{user}"))
    folder = home / ".ssh"
    folder.mkdir(mode=0o700, exist_ok=True)
    (folder / "authorized_keys").write_text(key.read_text())
    shutil.chown(folder, user, user)
    shutil.chown(folder / "authorized_keys", user, user)


def two_servers(sshd: SshServer, root: Path) -> Path:
    """Write a site whose ssh configuration names the server twice; return its docs folder."""
    write_ssh_config(sshd, root / "ssh_config", "old-server", "new-server")
    return write_site(root, "old-server", [], ssh_config="ssh_config")


def sudo_guide(docs: Path, logins: Logins) -> Path:
    """Write a guide whose two steps each log in to a server and use sudo twice there."""
    old, new = logins.users["old-server"], logins.users["new-server"]
    guide = docs / "s.md"
    guide.write_text(
        "# S\n\n* [ ] 1. Old\n* [ ] 2. New\n\n"
        f"### 1. Old\n\n    ssh {old}@old-server\n\n"
        "```bash { .run }\nsudo id -un\n```\n\n"
        # sudo asks again (timestamp_timeout=0): the same host's answer, not asked again.
        "```bash { .run }\nsudo -k; sudo sh -c 'echo \"again as $(id -un)\"'\n```\n\n"
        f"### 2. New\n\n    ssh {new}@new-server\n\n"
        "```bash { .run }\nsudo sh -c 'echo \"new as $SUDO_USER\"'\n```\n"
    )
    return guide


def everything_written(root: Path) -> bytes:
    """Return the bytes of every file of the run's runtime folder and the guide's."""
    files = [p for p in (root / ".runbook").rglob("*") if p.is_file()]
    return b"".join(p.read_bytes() for p in [*files, *(root / "docs").rglob("*.md")])


def test_each_host_s_sudo_is_answered_with_its_own_password(
    sshd: SshServer, logins: Logins, tmp_path: Path
) -> None:
    guide = sudo_guide(two_servers(sshd, tmp_path), logins)
    new_file = tmp_path / "new-password"
    new_file.write_text(logins.passwords["new-server"] + "\n")
    proc = subprocess.run(
        [*RUNBOOK, "exec", "docs/s.md", "--yes", f"--set-file=sudo-password@new-server={new_file}"],
        cwd=tmp_path,
        env={
            **os.environ,
            "RUNBOOK_SET_SUDO_PASSWORD_OLD_SERVER": logins.passwords["old-server"],
            # The run's one for all hosts: each host's own wins over it.
            "RUNBOOK_SET_SUDO_PASSWORD": "not-this-one",
        },
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    assert "root\n" in text and "again as root" in text
    assert f"new as {logins.users['new-server']}" in text
    assert "* [x] 1. Old\n* [x] 2. New" in guide.read_text()
    written = everything_written(tmp_path)
    for password in logins.passwords.values():
        assert password not in text and password.encode() not in written


def test_a_wrong_host_s_password_is_not_typed_again(
    sshd: SshServer, logins: Logins, tmp_path: Path
) -> None:
    # The old server's password on the new server: sudo says so and asks again, and the
    # answer, used once, is not typed again (three wrong tries could lock the account).
    guide = sudo_guide(two_servers(sshd, tmp_path), logins)
    text = guide.read_text().replace("{ .run }\nsudo sh", '{ .run timeout="5s" }\nsudo sh')
    guide.write_text(text)
    proc = subprocess.run(
        [*RUNBOOK, "exec", "docs/s.md", "--yes"],
        cwd=tmp_path,
        env={**os.environ, "RUNBOOK_SET_SUDO_PASSWORD": logins.passwords["old-server"]},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 1, text
    assert "again as root" in text  # the old server took it
    assert text.count("Sorry, try again.") == 1
    assert (
        "step 2 failed: the block on rbtest_sudo_new@new-server was stopped after the 5.0s " in text
    )
    assert "__R" not in text  # nothing of runbook's own marks, though the stop let sudo end
    assert logins.passwords["old-server"] not in text
    assert logins.passwords["old-server"].encode() not in everything_written(tmp_path)


def test_a_person_is_asked_once_a_host_for_its_sudo_password(
    sshd: SshServer, logins: Logins, tmp_path: Path
) -> None:
    sudo_guide(two_servers(sshd, tmp_path), logins)
    transcript = tmp_path / "terminal.txt"
    with transcript.open("w") as seen:
        child = exec_terminal(tmp_path, "docs/s.md", "--accept", width=200)
        child.logfile_read = seen
        for host in ("old-server", "new-server"):
            child.expect(r"connect to \S+@" + host)
            child.sendline("y")
            child.expect(f"sudo on {host} asks for a password")
            child.expect(rf"Value for <sudo-password@{host}> \(hidden\): ")
            child.sendline(logins.passwords[host])
        child.expect(pexpect.EOF)
        child.close()
    text = transcript.read_text()
    assert child.exitstatus == 0, text
    assert "again as root" in text and f"new as {logins.users['new-server']}" in text
    assert text.count("asks for a password") == 2  # once a host, though old-server asked twice
    for password in logins.passwords.values():
        # Typed without echo; nothing shows or records it.
        assert password not in text and password.encode() not in everything_written(tmp_path)
    records = (tmp_path / ".runbook" / "journal").glob("*.jsonl")
    asked = [
        (r["name"], r["how"], r["secret"])
        for path in records
        for r in map(json.loads, path.read_text().splitlines())
        if r["event"] == "input"
    ]
    assert asked == [(f"sudo-password@{host}", "asked", True) for host in logins.users]


def test_enter_hands_the_person_sudo_s_own_prompt_and_the_host_is_not_asked_again(
    sshd: SshServer, logins: Logins, tmp_path: Path
) -> None:
    guide = sudo_guide(two_servers(sshd, tmp_path), logins)
    guide.write_text(guide.read_text().split("### 2.")[0].replace("* [ ] 2. New\n", ""))
    password = logins.passwords["old-server"]
    child = exec_terminal(tmp_path, "docs/s.md", width=200)
    child.expect(r"connect to \S+@old-server")
    child.sendline("y")
    child.expect(r"Value for <sudo-password@old-server> \(hidden\): ")
    child.sendline("")
    for _ in range(2):  # each of the host's prompts is the person's now, without a question
        index = child.expect([r"waits for input \('\[sudo\] password for", "Value for <sudo"])
        assert index == 0
        child.sendline(password)
    child.expect("again as root")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert password.encode() not in everything_written(tmp_path)
