"""`make demo` beside another sandbox: taken default ports move, and the guide follows them.

The sandbox's ports (front door 8080, old 8081, new 8082) are kept when free. When one is
taken (by another copy's sandbox, or anything else), `sbx provision` moves them together to
free ones, says so in one line and records them in $SBX_ROOT, where every later `sbx`
command (and so the guide's Sandbox tab) finds them.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import GUIDE, ROOT, copy_site

SANDBOX = ROOT / "sandbox"
DEFAULTS = {"frontdoor": 8080, "old": 8081, "new": 8082}
PORT_VARIABLES = ("SBX_PROXY_PORT", "SBX_OLD_PORT", "SBX_NEW_PORT")
PORTS_LINE = re.compile(r"^ports: front door (\d+), old (\d+), new (\d+)(?: \((.*)\))?$", re.M)


def taken(port: int) -> bool:
    """Tell whether a port of 127.0.0.1 is taken, as the sandbox decides it."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@contextlib.contextmanager
def holding(ports: list[int]) -> Iterator[None]:
    """Listen on `ports` (any already taken by someone else stays taken all the same)."""
    with contextlib.ExitStack() as stack:
        for port in ports:
            sock = stack.enter_context(socket.socket())
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            with contextlib.suppress(OSError):
                sock.bind(("127.0.0.1", port))
                sock.listen()
        assert all(taken(port) for port in ports)
        yield


def sandbox_env(root: Path) -> dict[str, str]:
    """The environment of a fresh machine: no port imposed, this test's own sandbox root."""
    env = {k: v for k, v in os.environ.items() if k not in PORT_VARIABLES}
    env.update(SBX_ROOT=str(root), NO_COLOR="1")
    return env


def sbx(cwd: Path, env: dict[str, str], *args: str, expect: int = 0) -> str:
    """Run the sandbox's sbx in `cwd`; return its output."""
    proc = subprocess.run(
        [sys.executable, "sandbox/sbx", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == expect, proc.stdout + proc.stderr
    return proc.stdout


# ---- the choice itself, without sockets ------------------------------------------------


@dataclass
class Chooser:
    """The sbx command line module, with the ports in `busy` taken and no others."""

    cli: Any
    busy: set[int]

    def choose(self) -> tuple[dict[str, int], str]:
        return self.cli.choose_ports()  # type: ignore[no-any-return]


@pytest.fixture
def chooser(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Chooser:
    monkeypatch.syspath_prepend(str(SANDBOX))
    from sbxlib import cli

    for variable in PORT_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("SBX_ROOT", str(tmp_path / "root"))
    busy: set[int] = set()
    monkeypatch.setattr(cli, "port_in_use", lambda port: port in busy)
    return Chooser(cli, busy)


def test_free_defaults_are_kept(chooser: Chooser) -> None:
    assert chooser.choose() == (DEFAULTS, "")


def test_taken_defaults_move_together(chooser: Chooser) -> None:
    chooser.busy.update({8080, 8081})  # another sandbox: its front door and old app
    assert chooser.choose() == (
        {"frontdoor": 8180, "old": 8181, "new": 8182},
        " (8080, 8081 in use)",
    )
    chooser.busy.update({8180, 8181, 8182, 8282})  # and a third one, partly
    assert chooser.choose()[0] == {"frontdoor": 8380, "old": 8381, "new": 8382}


def test_an_imposed_port_stays_and_must_be_free(
    chooser: Chooser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SBX_NEW_PORT", "9000")
    chooser.busy.add(8080)
    assert chooser.choose() == (
        {"frontdoor": 8180, "old": 8181, "new": 9000},
        " (8080 in use; set by SBX_NEW_PORT)",
    )
    chooser.busy.add(9000)
    error = chooser.cli.SbxError
    with pytest.raises(error, match=r"port 9000 is already in use.*unset SBX_NEW_PORT"):
        chooser.choose()
    monkeypatch.setenv("SBX_OLD_PORT", "9000")
    with pytest.raises(error, match="SBX_OLD_PORT and SBX_NEW_PORT both name port 9000"):
        chooser.choose()


def test_the_kernel_picks_when_every_shift_is_taken(chooser: Chooser) -> None:
    shifts = range(0, chooser.cli.PORT_STEP * chooser.cli.PORT_SHIFTS, chooser.cli.PORT_STEP)
    chooser.busy.update(8080 + shift for shift in shifts)
    ports, why = chooser.choose()
    assert len(set(ports.values())) == 3
    assert not set(ports.values()) & chooser.busy
    assert why == " (8080 in use)"


# ---- for real: the default ports held by listening sockets -----------------------------


def test_provision_picks_free_ports_and_every_command_follows(tmp_path: Path) -> None:
    env = sandbox_env(tmp_path / "root")
    with holding(list(DEFAULTS.values())):
        try:
            out = sbx(ROOT, env, "provision", "--records", "5")
            line = PORTS_LINE.search(out)
            assert line, out
            front, old, new = (int(p) for p in line.groups()[:3])
            assert not {front, old, new} & set(DEFAULTS.values())
            assert "8080, 8081, 8082 in use" in (line.group(4) or ""), out
            assert sbx(ROOT, env, "ports") == f"front door {front}, old {old}, new {new}\n"
            assert (tmp_path / "root" / "ports").is_file()
            # The old app and the front door answer on the ports picked.
            assert "version 1.4.2" in sbx(ROOT, env, "health", str(old))
            assert "5 records" in sbx(ROOT, env, "health", str(front))
            assert f"routes to 127.0.0.1:{old}" in sbx(ROOT, env, "proxy", "status")
            # The new installation gets the new port picked, checked by name beforehand.
            assert sbx(ROOT, env, "check-port", "new") == f"port {new} is free\n"
            assert f"(port {new})" in sbx(ROOT, env, "install", "2.0.0", "new")
            # Restarting the front door by hand keeps to the ports picked too.
            sbx(ROOT, env, "proxy", "stop")
            assert f"http://127.0.0.1:{front}" in sbx(ROOT, env, "proxy", "start")
            assert f"127.0.0.1:{old}" in sbx(ROOT, env, "proxy", "status")
        finally:
            sbx(ROOT, env, "teardown")


def test_the_demo_runs_while_another_sandbox_holds_the_default_ports(tmp_path: Path) -> None:
    """What `make demo` does, in a copy of the site, with the default ports taken."""
    site = copy_site(tmp_path / "site")
    env = sandbox_env(site / "sandbox" / "var")  # the copy's own default root

    def runbook(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runbook", *args],
            cwd=site,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
        )

    with holding(list(DEFAULTS.values())):
        try:
            assert runbook("reset", str(GUIDE)).returncode == 0
            line = PORTS_LINE.search(sbx(site, env, "provision"))
            assert line
            front, _, new = (int(p) for p in line.groups()[:3])
            run = runbook(
                "exec", str(GUIDE), "--yes", "--tab", "Sandbox", "--set", "site-name=Rehearsal"
            )
            assert run.returncode == 0, run.stdout + run.stderr
            assert f"port {new} is free" in run.stdout + run.stderr
            health = sbx(site, env, "health", str(front), "--expect-version", "2.0.0")
            assert "50 records" in health
            assert f"routes to 127.0.0.1:{new}" in sbx(site, env, "proxy", "status")
        finally:
            sbx(site, env, "teardown")
    assert not (site / "sandbox" / "var").exists()
