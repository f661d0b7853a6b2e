"""The rehearsal sandbox, driven like a guide drives it: real processes, real HTTP, real files."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SBX = Path(__file__).resolve().parent.parent / "sandbox" / "sbx"
NOT_RUNNING = 3


def free_ports(count: int) -> list[int]:
    """Ask the kernel for distinct free ports on 127.0.0.1."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def http_get(port: int, path: str) -> tuple[int, dict[str, str], Any]:
    """GET a JSON resource on 127.0.0.1 (no proxy settings involved)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read())
    finally:
        conn.close()


def alive(pid: int) -> bool:
    """Tell whether a process runs (a zombie awaiting its reaper does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@dataclass
class Sandbox:
    """One isolated sandbox: its own root and free ports."""

    root: Path
    env: dict[str, str]
    old_port: int
    new_port: int
    proxy_port: int

    @property
    def old(self) -> Path:
        return self.root / "old"

    @property
    def new(self) -> Path:
        return self.root / "new"

    def run(
        self, *args: str | Path | int, expect: int | None = 0
    ) -> subprocess.CompletedProcess[str]:
        """Run sbx; check its exit status unless `expect` is None."""
        proc = subprocess.run(
            [sys.executable, str(SBX), *map(str, args)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if expect is not None:
            assert proc.returncode == expect, (proc.returncode, proc.stdout, proc.stderr)
        if proc.returncode not in (0, NOT_RUNNING):
            assert proc.stderr.startswith("sbx: error: ") or "usage:" in proc.stderr
            assert "Traceback" not in proc.stderr
        return proc

    def pid(self, home: Path) -> int:
        return int((home / "run" / "app.pid").read_text())

    def install_new_with_config(self) -> None:
        """Install 2.0.0 and carry the custom configuration over."""
        self.run("install", "2.0.0", self.new)
        self.copy_site_config()

    def copy_site_config(self) -> None:
        """Append the old [site] section to the new configuration, as the guide's step 2 does."""
        old_conf = (self.old / "conf" / "app.conf").read_text()
        site = old_conf[old_conf.index("\n[site]\n") + 1 :]
        with (self.new / "conf" / "app.conf").open("a") as fh:
            fh.write("\n" + site)


@pytest.fixture
def sbx(tmp_path: Path) -> Iterator[Sandbox]:
    old_port, new_port, proxy_port = free_ports(3)
    root = tmp_path / "root"
    env = dict(
        os.environ,
        SBX_ROOT=str(root),
        SBX_OLD_PORT=str(old_port),
        SBX_NEW_PORT=str(new_port),
        SBX_PROXY_PORT=str(proxy_port),
    )
    box = Sandbox(root, env, old_port, new_port, proxy_port)
    yield box
    box.run("teardown", expect=None)


@pytest.fixture
def provisioned(sbx: Sandbox) -> Sandbox:
    sbx.run("provision")
    return sbx


def test_provision_runs_the_old_installation_behind_the_front_door(provisioned: Sandbox) -> None:
    box = provisioned
    status, _, health = http_get(box.old_port, "/health")
    assert status == 200
    assert (health["version"], health["schema"], health["records"]) == ("1.4.2", 1, 50)
    assert health["site"] == "Northwind Field Office"
    status, headers, via_door = http_get(box.proxy_port, "/api/records/count")
    assert (status, via_door) == (200, {"count": 50})
    assert headers["X-Sbx-Upstream"] == f"127.0.0.1:{box.old_port}"
    assert box.run("count", box.old_port).stdout.strip() == "50"
    again = box.run("provision", expect=1)
    assert "already provisioned" in again.stderr


def test_parallel_upgrade_rehearsal(provisioned: Sandbox, tmp_path: Path) -> None:
    box = provisioned
    box.run("install", "2.0.0", box.new)
    missing = box.run("config", "diff", box.old, box.new, "--check", expect=1)
    assert "only in old: [site] name = Northwind Field Office" in missing.stdout
    box.copy_site_config()
    box.run("config", "diff", box.old, box.new, "--check")

    first = tmp_path / "backups" / "first.sql"
    assert "backed up 50 records (schema 1)" in box.run("backup", box.old, first).stdout
    box.run("add", box.old_port, "5")  # users keep working on the old server
    box.run("restore", box.new, first)
    started = box.run("start", box.new).stdout
    assert "version 2.0.0, schema 2, 50 records" in started
    box.run("health", box.new_port, "--expect-version", "2.0.0", "--expect-schema", "2")
    box.run("count", box.new_port, "--expect", "50")
    box.run("count", box.old_port, "--expect", "55")
    log = (box.new / "logs" / "app.log").read_text()
    assert log.count("migrated database schema from 1 to 2") == 1
    _, _, listing = http_get(box.new_port, "/api/records?limit=3")
    assert listing["records"][0]["slug"] == "pallet-of-tiles-for-bergen-001"

    box.run("stop", box.new)
    box.run("stop", box.old)
    second = tmp_path / "backups" / "second.sql"
    assert "backed up 55 records" in box.run("backup", box.old, second).stdout
    box.run("restore", box.new, second)
    box.run("start", box.new)
    box.run("count", box.new_port, "--expect", "55")
    log = (box.new / "logs" / "app.log").read_text()
    assert log.count("migrated database schema from 1 to 2") == 2

    box.run("proxy", "switch", box.new_port)
    _, headers, health = http_get(box.proxy_port, "/health")
    assert (health["version"], health["records"]) == ("2.0.0", 55)
    assert headers["X-Sbx-Upstream"] == f"127.0.0.1:{box.new_port}"


def test_backup_taken_while_running_is_consistent_and_restorable(
    provisioned: Sandbox, tmp_path: Path
) -> None:
    box = provisioned
    dump = tmp_path / "live.sql"
    box.run("backup", box.old, dump)
    restored = sqlite3.connect(":memory:")
    restored.executescript(dump.read_text())
    assert restored.execute("SELECT count(*) FROM records").fetchone() == (50,)
    assert restored.execute("SELECT level FROM schema_info").fetchone() == (1,)


def test_every_version_refuses_a_schema_newer_than_it_knows(
    provisioned: Sandbox, tmp_path: Path
) -> None:
    box = provisioned
    box.install_new_with_config()
    db = sqlite3.connect(box.new / "data" / "app.db")
    db.executescript(
        "CREATE TABLE schema_info (level INTEGER NOT NULL); INSERT INTO schema_info VALUES (3);"
        "CREATE TABLE records (id INTEGER PRIMARY KEY, title TEXT);"
    )
    db.close()
    refused = box.run("start", box.new, expect=1)
    assert "has schema 3, newer than version 2.0.0 knows (schema 2)" in refused.stderr
    assert "last lines of" in refused.stderr
    assert not (box.new / "run" / "app.pid").exists()

    # A backup of a migrated 2.0.0 database cannot go back into 1.4.2 either.
    (box.new / "data" / "app.db").unlink()
    box.run("start", box.new)
    box.run("stop", box.new)
    box.run("backup", box.new, tmp_path / "v2.sql")
    box.run("install", "1.4.2", box.root / "older", "--port", str(free_ports(1)[0]))
    box.run("restore", box.root / "older", tmp_path / "v2.sql")
    refused = box.run("start", box.root / "older", expect=1)
    assert "has schema 2, newer than version 1.4.2 knows (schema 1)" in refused.stderr


def test_new_version_refuses_config_without_the_site_name(sbx: Sandbox) -> None:
    sbx.run("install", "2.0.0", sbx.new)
    refused = sbx.run("start", sbx.new, expect=1)
    conf = sbx.new / "conf" / "app.conf"
    assert f"setting 'name' in section [site] is missing from {conf}" in refused.stderr
    with contextlib.closing(socket.socket()) as probe:
        assert probe.connect_ex(("127.0.0.1", sbx.new_port)) != 0


def test_port_taken_is_a_clear_error_from_sbx_and_from_the_app(sbx: Sandbox) -> None:
    sbx.run("install", "1.4.2", sbx.old)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", sbx.old_port))
        squatter.listen()
        refused = sbx.run("start", sbx.old, expect=1)
        assert f"port {sbx.old_port} is already in use" in refused.stderr
        # The app checks too, for a port taken between sbx's check and its own bind.
        app = subprocess.run(
            [sys.executable, str(sbx.old / "app" / "server.py"), str(sbx.old)],
            capture_output=True,
            timeout=30,
        )
        assert app.returncode == 1
        log = (sbx.old / "logs" / "app.log").read_text()
        assert f"ERROR cannot start: port {sbx.old_port} is already in use" in log
    sbx.run("start", sbx.old)


def test_stop_and_status_of_a_stopped_app(sbx: Sandbox) -> None:
    sbx.run("install", "1.4.2", sbx.old)
    stopped = sbx.run("stop", sbx.old, expect=NOT_RUNNING)
    assert "is not running; nothing to stop" in stopped.stdout
    assert sbx.run("status", sbx.old, expect=NOT_RUNNING).stdout.endswith(": stopped\n")
    sbx.run("start", sbx.old)
    assert "running (pid" in sbx.run("status", sbx.old).stdout
    pid = sbx.pid(sbx.old)
    sbx.run("stop", sbx.old)
    assert not alive(pid)
    assert not (sbx.old / "run" / "app.pid").exists()
    assert "stopped cleanly: database closed" in (sbx.old / "logs" / "app.log").read_text()


def test_stop_lets_the_request_in_flight_finish(provisioned: Sandbox) -> None:
    box = provisioned
    pid = box.pid(box.old)
    with socket.create_connection(("127.0.0.1", box.old_port), timeout=10) as client:
        client.sendall(b"GET /api/records/count HTTP/1.0\r\n")
        time.sleep(0.3)  # the server accepts and starts reading the request
        stopping = subprocess.Popen(
            [sys.executable, str(SBX), "stop", box.old], env=box.env, stdout=subprocess.PIPE
        )
        time.sleep(0.3)
        assert alive(pid), "the app must wait for the request in flight"
        client.sendall(b"\r\n")
        answer = client.makefile("rb").read()
    assert answer.startswith(b"HTTP/1.0 200")
    assert answer.rstrip().endswith(b'{"count": 50}')
    assert stopping.wait(timeout=20) == 0
    assert not alive(pid)


def test_restore_is_refused_while_running_and_checks_the_file(
    provisioned: Sandbox, tmp_path: Path
) -> None:
    box = provisioned
    dump = tmp_path / "ok.sql"
    box.run("backup", box.old, dump)
    refused = box.run("restore", box.old, dump, expect=1)
    assert "is running (pid" in refused.stderr
    assert "stop it first" in refused.stderr
    box.run("stop", box.old)

    missing = box.run("restore", box.old, tmp_path / "nope.sql", expect=1)
    assert f"backup file {tmp_path / 'nope.sql'} does not exist" in missing.stderr
    garbage = tmp_path / "notes.txt"
    garbage.write_text("remember to buy milk\n")
    assert "is not an SQL dump" in box.run("restore", box.old, garbage, expect=1).stderr
    cut = tmp_path / "cut.sql"
    cut.write_text(dump.read_text()[:400])
    assert "is incomplete" in box.run("restore", box.old, cut, expect=1).stderr
    database = box.old / "data" / "app.db"
    assert "not an SQL dump" in box.run("restore", box.old, database, expect=1).stderr

    # Failed restores left the database alone; a good one really replaces its content.
    box.run("start", box.old)
    box.run("add", box.old_port, "3")
    box.run("stop", box.old)
    assert "restored 50 records" in box.run("restore", box.old, dump).stdout
    box.run("start", box.old)
    box.run("count", box.old_port, "--expect", "50")


def test_backup_of_an_install_without_database(sbx: Sandbox, tmp_path: Path) -> None:
    sbx.run("install", "1.4.2", sbx.old)
    failed = sbx.run("backup", sbx.old, tmp_path / "b.sql", expect=1)
    assert "has no database" in failed.stderr
    assert not (tmp_path / "b.sql").exists()


def test_front_door_switches_without_restart_and_answers_502(provisioned: Sandbox) -> None:
    box = provisioned
    door_pid = int((box.root / "proxy" / "frontdoor.pid").read_text())
    box.install_new_with_config()
    box.run("start", box.new)
    switched = box.run("proxy", "switch", box.new_port).stdout
    assert f"now routes to 127.0.0.1:{box.new_port} (was 127.0.0.1:{box.old_port})" in switched
    assert http_get(box.proxy_port, "/health")[2]["version"] == "2.0.0"
    box.run("health", box.proxy_port, "--expect-version", "2.0.0")
    box.run("stop", box.new)
    status, _, body = http_get(box.proxy_port, "/health")
    assert status == 502
    assert body["error"] == (
        f"bad gateway: upstream 127.0.0.1:{box.new_port} is not answering (connection refused)"
    )
    assert "answered 502" in box.run("count", box.proxy_port, expect=1).stderr
    box.run("proxy", "switch", box.old_port)
    assert http_get(box.proxy_port, "/health")[2]["version"] == "1.4.2"
    assert int((box.root / "proxy" / "frontdoor.pid").read_text()) == door_pid
    box.run("proxy", "stop")
    assert box.run("proxy", "status", expect=NOT_RUNNING).stdout == "front door: not running\n"
    assert not alive(door_pid)


def test_teardown_leaves_no_process(provisioned: Sandbox) -> None:
    box = provisioned
    box.install_new_with_config()
    box.run("start", box.new)
    pids = [
        box.pid(box.old),
        box.pid(box.new),
        int((box.root / "proxy" / "frontdoor.pid").read_text()),
    ]
    assert all(alive(pid) for pid in pids)
    assert "3 process(es) stopped" in box.run("teardown").stdout
    assert not any(alive(pid) for pid in pids)
    assert not box.root.exists()
    assert "nothing to tear down" in box.run("teardown").stdout


def test_teardown_refuses_a_folder_it_did_not_create(sbx: Sandbox) -> None:
    sbx.root.mkdir()
    (sbx.root / "precious.txt").write_text("keep me")
    assert "not a sandbox root" in sbx.run("teardown", expect=1).stderr
    assert (sbx.root / "precious.txt").exists()
    (sbx.root / "precious.txt").unlink()


def test_client_expectations_fail_clearly(provisioned: Sandbox) -> None:
    box = provisioned
    wrong = box.run(
        "health", box.old_port, "--expect-version", "2.0.0", "--expect-schema", "2", expect=1
    )
    assert "expected version '2.0.0', found '1.4.2'; expected schema 2, found 1" in wrong.stderr
    wrong = box.run("count", box.old_port, "--expect", "49", expect=1)
    assert "expected 49 records, found 50" in wrong.stderr
    down = box.run("health", f"http://127.0.0.1:{box.new_port}", "--wait", "0.5", expect=1)
    assert "connection refused" in down.stderr
    assert "added 2 records" in box.run("add", box.proxy_port, "2").stdout
    box.run("count", box.old_port, "--expect", "52")


def test_api_rejects_bad_requests(provisioned: Sandbox) -> None:
    box = provisioned
    for body, expected in [
        (b"{not json", "not valid JSON"),
        (b'{"title": ""}', "'title' must be"),
        (b'{"title": "x", "body": 3}', "'body' must be a string"),
    ]:
        conn = http.client.HTTPConnection("127.0.0.1", box.old_port, timeout=5)
        conn.request("POST", "/api/records", body=body)
        response = conn.getresponse()
        assert response.status == 400
        assert expected in json.loads(response.read())["error"]
        conn.close()
    assert http_get(box.old_port, "/nowhere")[0] == 404
    _, _, page = http_get(box.old_port, "/api/records?limit=2&offset=48")
    assert [r["id"] for r in page["records"]] == [49, 50]
    assert page["count"] == 50


def test_usage_errors_and_unknown_things(sbx: Sandbox) -> None:
    usage = sbx.run("install", "1.4.2", expect=2)
    assert "sbx: error: the following arguments are required: DIR" in usage.stderr
    unknown = sbx.run("install", "9.9.9", sbx.root / "x", expect=1)
    assert "unknown version '9.9.9'; available: 1.4.2, 2.0.0" in unknown.stderr
    sbx.run("install", "1.4.2", sbx.old)
    taken = sbx.run("install", "2.0.0", sbx.old, expect=1)
    assert "already holds an installation" in taken.stderr
    assert "is not an app installation" in sbx.run("start", sbx.root, expect=1).stderr
    assert "front door is not running" in sbx.run("proxy", "switch", "9", expect=1).stderr


def test_sigkill_leaves_a_stale_pid_file_that_is_recognised(sbx: Sandbox) -> None:
    sbx.run("install", "1.4.2", sbx.old)
    sbx.run("start", sbx.old)
    pid = sbx.pid(sbx.old)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    sbx.run("status", sbx.old, expect=NOT_RUNNING)
    sbx.run("start", sbx.old)
    assert sbx.pid(sbx.old) != pid
