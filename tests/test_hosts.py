"""Blocks after an ``ssh`` line run on that host, against the real sshd of test_ssh.

The site names the server by an alias in its own ssh client configuration (the plugin's
``ssh_config``), so a guide says ``ssh <username>@old-server`` as a real one would, and
nothing reads ``~/.ssh/config``. The server is a login on this machine: a block there can
leave files here, and ``$SSH_CONNECTION`` tells which side ran it.
"""

from __future__ import annotations

import getpass
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pexpect

from tests import test_ssh
from tests.test_exec import RUNBOOK, exec_terminal
from tests.test_ssh import SshServer, exec_guide, write_site, write_ssh_config

sshd = test_ssh.sshd  # this module's own server, started as test_ssh starts its own

USER = getpass.getuser()
LOGIN = f"--set=username={USER}"


def site(sshd: SshServer, root: Path, alias: str = "old-server") -> Path:
    """Write a site whose ssh configuration names the server ``alias`` (its host ``new`` is
    that alias too); return its docs folder."""
    write_ssh_config(sshd, root / "ssh_config", alias)
    return write_site(root, alias, [], ssh_config="ssh_config")


def records(root: Path) -> list[dict[str, Any]]:
    """Return every journal record of the site at ``root``."""
    return [
        json.loads(line)
        for path in sorted((root / ".runbook" / "journal").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def server_port(sshd: SshServer) -> str:
    options = list(sshd.options)
    return options[options.index("-p") + 1]


def test_the_blocks_after_an_ssh_line_run_over_ssh_and_the_next_step_here(
    sshd: SshServer, tmp_path: Path
) -> None:
    guide = site(sshd, tmp_path) / "c.md"
    guide.write_text(
        "# C\n\n* [ ] 1. There\n* [ ] 2. Here\n\n"
        "### 1. There\n\n"
        "    ssh <username>@old-server\n\n"
        f'```bash {{ .run }}\necho "${{SSH_CONNECTION:-none}}" > {tmp_path}/there.txt\n'
        "cd /tmp\n```\n\n"
        '```bash { .run }\necho "still in $PWD"\n```\n\n'
        "### 2. Here\n\n"
        f'```bash {{ .run }}\necho "${{SSH_CONNECTION:-none}}" > {tmp_path}/here.txt\n```\n'
    )
    code, text = exec_guide(guide, LOGIN)
    assert code == 0, text
    # sshd sets SSH_CONNECTION to "client port server port": the server's port says it ran there.
    there = (tmp_path / "there.txt").read_text().split()
    assert there[2:] == ["127.0.0.1", server_port(sshd)], there
    here = (tmp_path / "here.txt").read_text().split()
    assert here[2:] != ["127.0.0.1", server_port(sshd)], here
    assert "still in /tmp" in text  # one shell for the line's blocks
    assert f"▶ connect to {USER}@old-server (docs/c.md:8)\n  ssh {USER}@old-server\n" in text
    assert f"▶ run on {USER}@old-server (docs/c.md:10)" in text
    assert "▶ run on this machine (docs/c.md:21)" in text
    assert "* [x] 1. There\n* [x] 2. Here\n" in guide.read_text()
    starts = [(r["step"], r["host"]) for r in records(tmp_path) if r["event"] == "action-start"]
    key = f"ssh {USER}@old-server"
    assert starts == [(1, key), (1, key), (2, "local")]
    transcript = next((tmp_path / ".runbook" / "transcripts").glob("*.log")).read_text()
    assert f"/docs/c.md:10 · {key}\n" in transcript


def test_an_unreachable_server_stops_the_run_and_nothing_runs_here(
    sshd: SshServer, tmp_path: Path
) -> None:
    docs = site(sshd, tmp_path)
    config = tmp_path / "ssh_config"
    # Nothing listens on the port of a socket just closed.
    config.write_text(
        config.read_text().replace(f"Port {server_port(sshd)}", f"Port {test_ssh._free_port()}")
    )
    marker = tmp_path / "ran-somewhere"
    guide = docs / "c.md"
    guide.write_text(
        "# C\n\n* [ ] 1. There\n\n### 1. There\n\n"
        "    ssh -o ConnectTimeout=10 <username>@old-server\n\n"
        f"```bash {{ .run }}\ntouch {marker}\n```\n"
    )
    started = time.monotonic()
    code, text = exec_guide(guide, LOGIN)
    assert code == 1, text
    assert time.monotonic() - started < 30
    assert (
        f"Error: docs/c.md:7: step 1: the shell on {USER}@old-server exited during setup "
        "(status 255)" in text
    )
    assert "Connection refused" in text  # ssh's own reason
    assert not marker.exists()
    assert "* [ ] 1. There" in guide.read_text()
    events = [r["event"] for r in records(tmp_path)]
    assert "connect" in events and "connected" not in events and "action-start" not in events


def test_a_connection_dropped_mid_block_leaves_an_unknown_outcome(
    sshd: SshServer, tmp_path: Path
) -> None:
    guide = site(sshd, tmp_path) / "c.md"
    pid_file, again = tmp_path / "remote.pid", tmp_path / "again"
    guide.write_text(
        "# C\n\n* [ ] 1. There\n\n### 1. There\n\n"
        "    ssh <username>@old-server\n\n"
        "```bash { .run }\n"
        f"echo $$ > {pid_file}\n"
        f"[ -e {again} ] || sleep 60\n"
        "echo finished\n"
        "```\n"
    )
    run = subprocess.Popen(
        [*RUNBOOK, "exec", "docs/c.md", "--yes", LOGIN],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text().strip():
            assert time.monotonic() < deadline and run.poll() is None, "the block never started"
            time.sleep(0.1)
        os.kill(int(pid_file.read_text()), signal.SIGKILL)  # the shell on the server
        text, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 1, text
    assert (
        f"step 1: the connection to {USER}@old-server dropped while the block ran "
        "(status 255): whether it finished there is unknown" in text
    )
    assert "(connection dropped)" in text
    assert "* [ ] 1. There" in guide.read_text()
    steps = [(r["event"], r.get("outcome")) for r in records(tmp_path) if r.get("step") == 1]
    assert ("action-end", "shell-died") in steps and ("step-unknown", None) in steps
    assert not any(event == "step-end" for event, _ in steps)
    # The next run connects again only once told what to do with the unknown outcome.
    code, text = exec_guide(guide, LOGIN)
    assert code == 4, text
    assert "its outcome is unknown" in text and "--retry-unknown" in text
    again.touch()
    code, text = exec_guide(guide, LOGIN, "--retry-unknown")
    assert code == 0, text
    assert "finished" in text
    assert "* [x] 1. There" in guide.read_text()


def test_a_block_that_ends_its_remote_shell_is_a_failed_block(
    sshd: SshServer, tmp_path: Path
) -> None:
    """`exit 3` on the server is the block's own doing, not a dropped connection."""
    guide = site(sshd, tmp_path) / "e.md"
    guide.write_text(
        "# E\n\n* [ ] 1. There\n\n### 1. There\n\n"
        "    ssh <username>@old-server\n\n"
        "```bash { .run }\nexit 3\n```\n"
    )
    code, text = exec_guide(guide, LOGIN)
    assert code == 1, text
    assert "ended its shell (status 3)" in text
    assert "unknown" not in text
    assert "* [ ] 1. There" in guide.read_text()
    steps = [(r["event"], r.get("result")) for r in records(tmp_path) if r.get("step") == 1]
    assert ("step-end", "failed") in steps


def test_a_declined_connection_s_blocks_are_done_by_hand(sshd: SshServer, tmp_path: Path) -> None:
    guide = site(sshd, tmp_path) / "c.md"
    marker = tmp_path / "ran-somewhere"
    guide.write_text(
        "# C\n\n* [ ] 1. There\n\n### 1. There\n\n"
        "    ssh -o ServerAliveInterval=5 <username>@old-server\n\n"
        f"```bash {{ .run }}\ntouch {marker}\n```\n\n"
        f"```bash\ntouch {marker}.offered\n```\n"
    )
    child = exec_terminal(tmp_path, "docs/c.md")
    child.expect_exact("Value for <username>: ")
    child.sendline("operator")
    child.expect_exact(
        "connect to operator@old-server (ssh -o ServerAliveInterval=5 operator@old-server)? "
    )
    child.sendline("d")
    child.expect_exact("▶ run on operator@old-server (docs/c.md:9): to do by hand")
    child.expect_exact("Done by hand on operator@old-server? ")
    child.sendline("d")
    child.expect_exact("▶ suggested on operator@old-server (docs/c.md:13): to do by hand")
    child.expect_exact("Done by hand on operator@old-server? ")
    child.sendline("d")
    child.expect_exact("step 1 done, ticked in docs/c.md")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert not marker.exists() and not Path(f"{marker}.offered").exists()
    journal = records(tmp_path)
    connect = next(r for r in journal if r["event"] == "connect")
    assert (connect["choice"], connect["how"], connect["host"]) == (
        "by-hand",
        "asked",
        "ssh -o ServerAliveInterval=5 operator@old-server",
    )
    confirmed = [(r["choice"], r["how"]) for r in journal if r["event"] == "action-confirmed"]
    assert confirmed == [("by-hand", "connection-declined")] * 2
    assert not any(r["event"] == "action-start" for r in journal)


def test_accept_and_by_hand_are_recorded_in_the_journal_and_summary(
    sshd: SshServer, tmp_path: Path
) -> None:
    guide = site(sshd, tmp_path) / "c.md"
    guide.write_text(
        "# C\n\n* [ ] 1. Offered\n* [ ] 2. Manual\n* [ ] 3. Never\n\n"
        "### 1. Offered\n\n    ssh <username>@old-server\n\n"
        f"```bash\necho accepted > {tmp_path}/accepted.txt\n```\n\n"
        "### 2. Manual\n\nPlug the cable in.\n\n"
        f"### 3. Never\n\n```bash {{ .run }}\ntouch {tmp_path}/never\n```\n"
    )
    code, text = exec_guide(guide, LOGIN)
    assert code == 4, text
    assert "--accept" in text
    code, text = exec_guide(guide, LOGIN, "--accept", "--by-hand", "2,3")
    assert code == 0, text
    assert (tmp_path / "accepted.txt").read_text() == "accepted\n"
    assert not (tmp_path / "never").exists()
    assert "* [x] 1. Offered\n* [x] 2. Manual\n* [x] 3. Never\n" in guide.read_text()
    assert "2. Manual" in text and "(by hand)" in text
    journal = records(tmp_path)
    accepted = [r for r in journal if r["event"] == "action-confirmed"]
    assert [(r["choice"], r["how"], r["option"]) for r in accepted] == [
        ("run", "option", "--accept")
    ]
    passed = [r for r in journal if r["event"] == "step-confirmed"]
    assert [(r["step"], r["choice"], r["how"], r["option"]) for r in passed] == [
        (2, "done", "option", "--by-hand"),
        (3, "done", "option", "--by-hand"),
    ]


def test_the_ssh_config_option_reaches_named_hosts_and_the_dry_run_lists_the_hosts(
    sshd: SshServer, tmp_path: Path
) -> None:
    guide = site(sshd, tmp_path, alias="stand-in") / "c.md"
    guide.write_text(
        "# C\n\n* [ ] 1. Named\n* [ ] 2. Line\n\n"
        '### 1. Named\n\n```bash { .run host="new" }\n'
        'echo "named ${SSH_CONNECTION:-none}"\n```\n\n'
        "### 2. Line\n\n"
        "```bash\nssh -o LogLevel=QUIET <username>@stand-in\n```\n\n"
        '```bash { .run }\necho "line ${SSH_CONNECTION:-none}"\n```\n\n'
        '```bash { .run host="new" }\necho "named again"\n```\n'
    )
    code, text = exec_guide(guide, "--dry-run", "--set", "username=deploy")
    assert code == 0, text
    assert "Runs on: new, deploy@stand-in\n" in text
    assert "[connect] docs/c.md:14 on deploy@stand-in" in text
    assert "[run] docs/c.md:18 on deploy@stand-in" in text
    assert "[run] docs/c.md:22 on new" in text
    code, text = exec_guide(guide, LOGIN)
    assert code == 0, text
    port = server_port(sshd)
    assert "named 127.0.0.1 " in text and f" 127.0.0.1 {port}" in text
    assert "line 127.0.0.1 " in text
    assert "named again" in text


def test_a_sudo_password_answers_sudo_s_prompt_on_a_remote_host(
    sshd: SshServer, tmp_path: Path
) -> None:
    guide = site(sshd, tmp_path) / "c.md"
    password = "s3cret sudo pass"
    # sudo's own prompt, without needing sudo on the server: read it as sudo would.
    guide.write_text(
        "# C\n\n* [ ] 1. There\n\n### 1. There\n\n    ssh <username>@old-server\n\n"
        "```bash { .run }\n"
        'read -r -s -p "[sudo] password for $USER: " pw; echo\n'
        'echo "got $(printf %s "$pw" | wc -c) characters"\n'
        "```\n"
    )
    proc = subprocess.run(
        [*RUNBOOK, "exec", "docs/c.md", "--yes", LOGIN],
        cwd=tmp_path,
        env={**os.environ, "RUNBOOK_SET_SUDO_PASSWORD": password},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    assert f"got {len(password)} characters" in text
    assert password not in text
    for path in (tmp_path / ".runbook").rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
    start = next(r for r in records(tmp_path) if r["event"] == "run-start")
    assert start["secret_inputs"] == ["sudo-password"]


def test_a_resumed_run_gives_each_host_its_own_state_back(sshd: SshServer, tmp_path: Path) -> None:
    guide = site(sshd, tmp_path) / "c.md"
    remote_dir = tmp_path / "remote dir"
    guide.write_text(
        "# C\n\n* [ ] 1. Set up\n* [ ] 2. Use\n\n"
        "### 1. Set up\n\n"
        "```bash { .run }\nWHERE=local\n```\n\n"
        "    ssh <username>@old-server\n\n"
        f"```bash {{ .run }}\nmkdir -p '{remote_dir}'\ncd '{remote_dir}'\nWHERE=remote\n```\n\n"
        "### 2. Use\n\n"
        f'```bash {{ .run }}\necho "here: $WHERE"\n```\n\n'
        "    ssh <username>@old-server\n\n"
        f'```bash {{ .run }}\ntest -e {tmp_path}/ready\necho "there: $PWD $WHERE"\n```\n'
    )
    code, text = exec_guide(guide, LOGIN)
    assert code == 1, text
    states = {r["host"]: r for r in records(tmp_path) if r["event"] == "shell-state"}
    key = f"ssh {USER}@old-server"
    assert states[key]["cwd"] == str(remote_dir) and "WHERE" in states[key]["set"]
    (tmp_path / "ready").touch()
    code, text = exec_guide(guide, LOGIN)
    assert code == 0, text
    assert f"↺ given back on {USER}@old-server: working directory {remote_dir}" in text
    assert f"there: {remote_dir} remote" in text
    assert "here: local" in text and "↺ given back on this machine" in text
