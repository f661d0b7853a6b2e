"""Named hosts over SSH, against a real OpenSSH server on loopback.

The server is Debian's ``openssh-server`` (installed by ``make test``, see
``tools/system-packages``), started here on a free port with its own host key and one
authorised client key; blocks reach it through the system's ``ssh`` client exactly as they
would reach another machine.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest

from runbook.shell import Answer, Outcome, Session, ssh_transport
from tests.test_exec import RUNBOOK

SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class SshServer:
    """A running sshd and how to reach it."""

    target: str
    """``user@127.0.0.1``."""
    options: tuple[str, ...]
    """ssh client options: port, key, no known-hosts file, no config."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """Start sshd on a free loopback port for this module's tests."""
    if not (os.path.exists(SSHD) and shutil.which("ssh") and shutil.which("ssh-keygen")):
        # `make test` installs them first: their absence is a broken set-up, not a reason to skip.
        pytest.fail(
            f"{SSHD}, ssh or ssh-keygen is missing: run the tests with `make test`, which installs "
            "openssh-server and openssh-client (or `sudo apt-get install openssh-client "
            "openssh-server`)",
            pytrace=False,
        )
    home = tmp_path_factory.mktemp("sshd")
    for name in ("host", "client"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / name)], check=True
        )
    shutil.copyfile(home / "client.pub", home / "authorized_keys")
    port = _free_port()
    (home / "sshd_config").write_text(
        f"Port {port}\n"
        "ListenAddress 127.0.0.1\n"
        f"HostKey {home / 'host'}\n"
        # The second, a user's own, for other logins than this one (test_sudo's).
        f"AuthorizedKeysFile {home / 'authorized_keys'} .ssh/authorized_keys\n"
        f"PidFile {home / 'sshd.pid'}\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\n"
        "PermitRootLogin prohibit-password\n"
        "UsePAM no\n"
        "StrictModes no\n"
    )
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation
    log = open(home / "sshd.log", "wb")  # noqa: SIM115 - open for the server's lifetime
    server = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(home / "sshd_config")], stdout=log, stderr=log
    )
    options = (
        "-F",
        "/dev/null",
        "-p",
        str(port),
        "-i",
        str(home / "client"),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        f"UserKnownHostsFile={os.devnull}",
        "-o",
        "LogLevel=ERROR",
    )
    target = f"{getpass.getuser()}@127.0.0.1"
    try:
        deadline = time.monotonic() + 15
        while True:
            probe = subprocess.run(
                ["ssh", *options, target, "true"], capture_output=True, text=True, timeout=15
            )
            if probe.returncode == 0:
                break
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"sshd did not come up: {probe.stderr.strip()} / "
                    f"{(home / 'sshd.log').read_text(errors='replace')[-600:]}"
                )
            time.sleep(0.1)
        yield SshServer(target, options)
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


@pytest.fixture
def remote(sshd: SshServer) -> Iterator[Session]:
    """A session whose shell runs behind ssh."""
    transport = ssh_transport(sshd.target, options=sshd.options)
    with Session(host="new", transport=transport, grace=0.5) as session:
        yield session


def run(
    session: Session, script: str, *, timeout: float = 20, answers: Sequence[Answer] = ()
) -> tuple[Outcome, int | None, str]:
    """Run ``script``; return its outcome, status and output."""
    out = bytearray()
    result = session.run(script, timeout=timeout, answers=answers, on_output=out.extend)
    return result.outcome, result.status, out.decode()


def test_directory_and_variables_persist_and_a_block_stops_at_its_failing_command(
    remote: Session,
) -> None:
    assert run(remote, "cd /tmp\nGREETING=hello") == (Outcome.OK, 0, "")
    assert run(remote, 'echo "$GREETING from $PWD"') == (Outcome.OK, 0, "hello from /tmp\n")
    outcome, status, out = run(remote, "echo before\n(exit 7)\necho never")
    assert (outcome, status, out) == (Outcome.FAILED, 7, "before\n")
    assert run(remote, "echo still here") == (Outcome.OK, 0, "still here\n")


def test_hostile_values_arrive_byte_exact_and_never_run(remote: Session, tmp_path: Path) -> None:
    canary = tmp_path / "executed"
    values = [
        f"$(touch {canary})",
        f"`touch {canary}`",
        f"'; touch {canary}; '",
        '"double" and \\back\\slash',
        "x" * 5000,
        "spaces  and ünïcode ✓",
    ]
    for value in values:
        remote.define("VALUE", value)
        outcome, status, out = run(remote, 'printf "%s\\n" "$VALUE"')
        assert (outcome, status) == (Outcome.OK, 0)
        assert out == value + "\n"
    assert not canary.exists()


def test_a_large_block_is_delivered_through_the_terminal(remote: Session) -> None:
    lines = [f"echo line-{n:05d}-{'y' * 60}" for n in range(2000)]  # about 150 KB
    outcome, status, out = run(remote, "\n".join(lines), timeout=60)
    assert (outcome, status) == (Outcome.OK, 0)
    assert out.splitlines() == [f"line-{n:05d}-{'y' * 60}" for n in range(2000)]


def test_a_prompt_is_answered_from_the_declared_answers(remote: Session) -> None:
    outcome, status, out = run(
        remote,
        'read -r -p "Database password: " pw\necho "length ${#pw}"',
        answers=[Answer(expect="Database password:", send="s3cret!")],
    )
    assert (outcome, status) == (Outcome.OK, 0)
    assert out.endswith("length 7\n")


def test_an_unanswered_remote_prompt_is_left_to_the_timeout(remote: Session) -> None:
    # Nothing of the far side's processes is visible here: the quiet, prompt-like tail is
    # only a guess, and a command is never interrupted on a guess.
    started = time.monotonic()
    outcome, status, out = run(remote, 'read -r -p "Continue? [y/N] " answer', timeout=4)
    assert outcome is Outcome.TIMEOUT and status is None
    assert out.startswith("Continue? [y/N] ")  # then the ^C that stopped it
    assert time.monotonic() - started >= 4
    assert run(remote, "echo next") == (Outcome.OK, 0, "next\n")


def test_a_remote_command_showing_a_label_while_it_works_is_not_stopped(remote: Session) -> None:
    outcome, status, out = run(remote, "printf 'Migrating schema: '; sleep 3; echo done")
    assert (outcome, status, out) == (Outcome.OK, 0, "Migrating schema: done\n")


def test_a_timeout_stops_the_remote_command_and_keeps_the_shell(remote: Session) -> None:
    run(remote, "MARK=kept")
    started = time.monotonic()
    outcome, status, _ = run(remote, "sleep 60", timeout=2)
    assert outcome is Outcome.TIMEOUT and status is None
    assert time.monotonic() - started < 15
    assert run(remote, 'echo "$MARK"') == (Outcome.OK, 0, "kept\n")


def write_ssh_config(sshd: SshServer, path: Path, *aliases: str) -> Path:
    """Write an ssh client configuration in which each host of ``aliases`` is the server;
    return it."""
    options = list(sshd.options)
    path.write_text(
        "".join(
            f"Host {alias}\n"
            "  HostName 127.0.0.1\n"
            f"  Port {options[options.index('-p') + 1]}\n"
            f"  IdentityFile {options[options.index('-i') + 1]}\n"
            "  IdentitiesOnly yes\n"
            "  StrictHostKeyChecking no\n"
            f"  UserKnownHostsFile {os.devnull}\n"
            "  LogLevel ERROR\n"
            for alias in aliases
        )
    )
    return path


def write_site(
    root: Path, target: str, options: Sequence[str], *, ssh_config: str | None = None
) -> Path:
    """Write a site naming host ``new`` (and the plugin's ``ssh_config`` when given); return
    its docs folder."""
    (root / "mkdocs.yml").write_text(
        "site_name: SSH\n"
        "plugins:\n"
        "  - runbook:\n"
        + (f"      ssh_config: {ssh_config}\n" if ssh_config else "")
        + "      hosts:\n"
        "        new:\n"
        f"          ssh: {target}\n"
        f"          options: {json.dumps(list(options))}\n"  # JSON is YAML
        "markdown_extensions:\n"
        "  - attr_list\n"
        "  - pymdownx.superfences\n"
    )
    (root / "docs").mkdir()
    return root / "docs"


def exec_guide(guide: Path, *args: str) -> tuple[int, str]:
    """Run ``runbook exec`` on ``guide`` without a terminal; return exit code and output."""
    proc = subprocess.run(
        [*RUNBOOK, "exec", str(guide), "--yes", *args],
        cwd=guide.parent.parent,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_exec_runs_a_named_hosts_steps_over_ssh(sshd: SshServer, tmp_path: Path) -> None:
    guide = write_site(tmp_path, sshd.target, sshd.options) / "remote.md"
    # The remote shell is a login on this machine, so its block can leave a file here.
    out_file = tmp_path / "from-remote.txt"
    guide.write_text(
        "# Remote\n\n"
        "* [ ] 1. Here\n"
        "* [ ] 2. There\n"
        "* [ ] 3. Fail there\n\n"
        "### 1. Here\n\n"
        '```bash { .run }\necho "local $$" > here.txt\n```\n\n'
        "### 2. There\n\n"
        '```bash { .run host="new" }\n'
        "cd /tmp\n"
        f'echo "remote <site-name>" > {out_file}\n'
        "```\n\n"
        '```bash { .run host="new" }\n'
        'echo "still in $PWD"\n'
        "```\n\n"
        "### 3. Fail there\n\n"
        '```bash { .run host="new" }\n'
        "(exit 9)\n"
        "```\n"
    )
    code, text = exec_guide(guide, "--set", "site-name=Main $(id)")
    assert code == 1, text
    assert (tmp_path / "here.txt").exists()
    assert out_file.read_text() == "remote Main $(id)\n"
    assert "still in /tmp" in text
    assert "remote.md:26: step 3 failed: the block on new exited with status 9" in text
    assert "* [x] 1. Here\n* [x] 2. There\n* [ ] 3. Fail there\n" in guide.read_text()
    journal = "".join(p.read_text() for p in (tmp_path / ".runbook" / "journal").glob("*.jsonl"))
    records = [json.loads(line) for line in journal.splitlines()]
    hosts = {r.get("host") for r in records if r.get("event") == "action-start"}
    assert "new" in hosts


@pytest.mark.parametrize("problem", ["wrong key", "nothing listening"])
def test_a_host_that_cannot_be_reached_stops_the_run_with_ssh_s_reason(
    sshd: SshServer, tmp_path: Path, problem: str
) -> None:
    options = list(sshd.options)
    if problem == "wrong key":
        options[options.index("-i") + 1] = str(tmp_path / "stranger")
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "stranger")],
            check=True,
        )
        reason = "Permission denied (publickey"
    else:
        options[options.index("-p") + 1] = str(_free_port())
        reason = "Connection refused"
    guide = write_site(tmp_path, sshd.target, options) / "r.md"
    guide.write_text(
        '# R\n\n* [ ] 1. There\n\n### 1. There\n\n```bash { .run host="new" }\necho hi\n```\n'
    )
    started = time.monotonic()
    code, text = exec_guide(guide)
    assert code == 1, text
    assert time.monotonic() - started < 30  # no password or host-key question waits
    assert "Error: docs/r.md:7: step 1: the shell on new exited during setup (status 255)" in text
    assert reason in text
    assert "next: check that 'ssh -tt" in text and f"{sshd.target} true' works" in text
    assert "* [ ] 1. There" in guide.read_text()


def test_a_remote_prompt_is_handed_to_the_operator_in_a_terminal(
    sshd: SshServer, tmp_path: Path
) -> None:
    guide = write_site(tmp_path, sshd.target, sshd.options) / "r.md"
    guide.write_text(
        "# R\n\n* [ ] 1. There\n\n### 1. There\n\n"
        '```bash { .run host="new" }\n'
        'read -r -p "Proceed with <db-name>? [y/N] " ok\n'
        'echo "you said $ok"\n'
        "```\n"
    )
    child = pexpect.spawn(
        RUNBOOK[0],
        [*RUNBOOK[1:], "exec", "docs/r.md"],
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 120),
    )
    child.expect("Value for <db-name>: ")
    child.sendline("openboxes")
    child.expect(r"waits for input \('Proceed with openboxes\? \[y/N\]'\)")
    child.sendline("y")
    child.expect("you said y")
    child.expect("step 1 done, ticked in docs/r.md")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "* [x] 1. There" in guide.read_text()


# --------------------------------------------------------------------------- waits over ssh


def one_remote_step(sshd: SshServer, root: Path, info: str, code: str) -> Path:
    """Write a site naming host ``new`` and a one-step guide running ``code`` there."""
    guide = write_site(root, sshd.target, sshd.options) / "r.md"
    guide.write_text(f"# R\n\n* [ ] 1. There\n\n### 1. There\n\n```bash {info}\n{code}\n```\n")
    return guide


def test_exec_lets_a_remote_command_showing_a_label_finish(sshd: SshServer, tmp_path: Path) -> None:
    # Quiet after an unterminated "…: " looks like a prompt from here; nobody answers it
    # (no terminal, --yes), and still the command is not interrupted.
    code = "printf 'Migrating schema: '; sleep 3; echo done"
    guide = one_remote_step(sshd, tmp_path, '{ .run host="new" }', code)
    status, text = exec_guide(guide)
    assert status == 0, text
    assert "Migrating schema: done" in text
    assert "* [x] 1. There" in guide.read_text()


def test_exec_answers_a_remote_prompt_from_the_guide(sshd: SshServer, tmp_path: Path) -> None:
    info = '{ .run host="new" expect="Name:" send="alice" }'
    guide = one_remote_step(sshd, tmp_path, info, "read -r -p 'Name: ' x\necho \"hi $x\"")
    status, text = exec_guide(guide)
    assert status == 0, text
    assert "hi alice" in text
    assert "* [x] 1. There" in guide.read_text()


def test_exec_stops_an_unanswered_remote_prompt_at_the_block_s_timeout(
    sshd: SshServer, tmp_path: Path
) -> None:
    guide = one_remote_step(
        sshd, tmp_path, '{ .run host="new" timeout="4s" }', "read -p 'Name: ' x"
    )
    started = time.monotonic()
    status, text = exec_guide(guide)
    assert time.monotonic() - started >= 4
    assert status == 1, text
    assert "step 1 failed: the block on new was stopped after the 4.0s timeout" in text
    assert "* [ ] 1. There" in guide.read_text()
    journal = "".join(p.read_text() for p in (tmp_path / ".runbook" / "journal").glob("*.jsonl"))
    ends = [r for r in map(json.loads, journal.splitlines()) if r["event"] == "action-end"]
    assert [(r["outcome"], r["status"]) for r in ends] == [("timeout", None)]
    assert ends[0]["duration"] >= 4


# --------------------------------------------------------------------------- a replaced shell


@pytest.mark.parametrize("code", ["exec bash", "exec bash --norc --noprofile --noediting -i"])
def test_a_block_that_replaces_the_remote_shell_fails_at_once(remote: Session, code: str) -> None:
    # Over ssh nothing shows the far side's processes: the shell's own watch says so, and
    # the new shell's prompt, a guess at most, never makes it "waiting for input".
    run(remote, "cd /tmp")
    started = time.monotonic()
    outcome, status, _ = run(remote, code, timeout=30)
    assert (outcome, status) == (Outcome.SHELL_REPLACED, None)
    assert time.monotonic() - started < 5
    # This session starts a fresh shell by itself (a run's remote ones do not).
    assert run(remote, "echo fresh in $PWD") == (Outcome.OK, 0, f"fresh in {Path.home()}\n")


def test_a_remote_block_replaced_after_its_subshell_is_still_found_out(remote: Session) -> None:
    # A subshell started before keeps a copy of what closes on exec: the watch looks again.
    run(remote, "(sleep 20; true) &")
    started = time.monotonic()
    assert run(remote, "exec sleep 30", timeout=30)[:2] == (Outcome.SHELL_REPLACED, None)
    assert time.monotonic() - started < 6


def test_output_cannot_fake_a_replaced_shell(remote: Session) -> None:
    outcome, status, out = run(remote, "printf '__R%s0123456789abcdef:0;\\n' X; echo on")
    assert (outcome, status) == (Outcome.OK, 0) and out.endswith("on\n")
    assert run(remote, "exit 3")[:2] == (Outcome.SHELL_DIED, 3)  # an ended shell is not replaced


def test_exec_fails_a_block_that_replaces_its_remote_shell_without_a_timeout(
    sshd: SshServer, tmp_path: Path
) -> None:
    guide = write_site(tmp_path, sshd.target, sshd.options) / "r.md"
    after = tmp_path / "after.txt"
    guide.write_text(
        "# R\n\n* [ ] 1. There\n* [ ] 2. Again\n\n### 1. There\n\n"
        '```bash { .run host="new" }\ncd /tmp\nexec bash\n```\n\n'
        "### 2. Again\n\n"
        f'```bash {{ .run host="new" }}\ntouch {after}\n```\n'
    )
    started = time.monotonic()
    status, text = exec_guide(guide)  # --yes, no terminal, no timeout anywhere
    assert time.monotonic() - started < 20
    assert status == 1, text
    assert "r.md:8: step 1 failed: the block on new replaced its shell with another program" in text
    assert "waiting for input" not in text and not after.exists()
    assert "* [ ] 1. There\n* [ ] 2. Again" in guide.read_text()
    journal = "".join(p.read_text() for p in (tmp_path / ".runbook" / "journal").glob("*.jsonl"))
    ends = [r for r in map(json.loads, journal.splitlines()) if r["event"] == "action-end"]
    assert [(r["outcome"], r["status"]) for r in ends] == [("shell-replaced", None)]
