"""The two rehearsal servers of ``tools/production``, against the real sshd and MariaDB.

``make test`` installs what they need (openssh-server, mariadb-server, sudo: see
``tools/system-packages``). The servers run as root in mount namespaces of their own, with
their state in a temporary folder ($PRODUCTION_ROOT); the database round trip below uses
the backup and restore snippets' own commands, over ssh, answering the password prompts
through a terminal as an operator would.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import shutil
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "production"
SNIPPETS = ROOT / "snippets" / "admin-guide" / "common"
COUNTED = (
    "DATABASECHANGELOG",
    "location",
    "user",
    "product",
    "inventory_item",
    "transaction",
    "transaction_entry",
    "shipment",
    "requisition",
    "document",
)


@dataclass
class Servers:
    """Two running rehearsal servers and what a test needs to reach them."""

    env: dict[str, str]
    exports: dict[str, str]
    up_output: str
    up_seconds: float

    @property
    def root(self) -> Path:
        return Path(self.exports["PRODUCTION_ROOT"])

    @property
    def ssh_config(self) -> str:
        return self.exports["PRODUCTION_SSH_CONFIG"]

    @property
    def root_password(self) -> str:
        return Path(self.exports["PRODUCTION_DB_ROOT_PASSWORD_FILE"]).read_text().strip()

    @property
    def app_password(self) -> str:
        return Path(self.exports["PRODUCTION_DB_PASSWORD_FILE"]).read_text().strip()


def tool(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run ``tools/production ARGS`` without a terminal."""
    return subprocess.run(
        [str(TOOL), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """Both servers, up for this module's tests; down (and their files gone) afterwards."""
    root = tmp_path_factory.mktemp("production")
    env = {**os.environ, "PRODUCTION_ROOT": str(root)}
    try:
        started = time.monotonic()
        up = tool(env, "up")
        seconds = time.monotonic() - started
        # A missing package is a set-up to fix (`make test` installs them), never a skip.
        assert up.returncode == 0, up.stdout + up.stderr
        exported = tool(env, "env")
        assert exported.returncode == 0, exported.stderr
        exports = {}
        for line in exported.stdout.splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            exports[name] = shlex.split(value)[0]
        yield Servers(env, exports, up.stdout, seconds)
    finally:
        down = tool(env, "down")
        assert down.returncode == 0, down.stdout + down.stderr
        shutil.rmtree(root, ignore_errors=True)  # hundreds of MB of database files


def ssh(servers: Servers, host: str, command: str, input: str | None = None) -> str:
    """Run a command on a server without a terminal; return its output."""
    result = subprocess.run(
        ["ssh", "-F", servers.ssh_config, host, command],
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"{command}: {result.stderr}"
    return result.stdout


def over_tty(
    servers: Servers, host: str, command: str, passwords: Sequence[str], timeout: float = 120
) -> tuple[int, str]:
    """Run a command on a server in a terminal, typing one password per ``Enter password:``
    prompt, in order; return its exit status and what the terminal showed."""
    child = pexpect.spawn(
        "ssh",
        ["-tt", "-F", servers.ssh_config, host, command],
        encoding="utf-8",
        codec_errors="replace",
        timeout=timeout,
        dimensions=(50, 200),
    )
    shown: list[str] = []
    answers = list(passwords)
    while child.expect(["Enter password:", pexpect.EOF]) == 0:
        shown.append(child.before + "Enter password:")
        assert answers, "".join(shown) + " ← one more password prompt than expected"
        child.sendline(answers.pop(0))
    shown.append(child.before)
    child.close()
    text = "".join(shown).replace("\r\n", "\n")
    assert not answers, f"{len(answers)} password prompt(s) never came:\n{text}"
    return int(child.exitstatus if child.exitstatus is not None else -1), text


def sql(servers: Servers, host: str, query: str, database: str = "openboxes") -> str:
    """A query as the guide runs one (``sudo mysql -u root -p``), tab-separated output."""
    command = f"sudo mysql -u root -p -N -B {database} -e {shlex.quote(query)}"
    status, text = over_tty(servers, host, command, [servers.root_password])
    assert status == 0, text
    return text.split("Enter password:", 1)[1].strip(" \n")


def production_blocks(snippet: str) -> list[str]:
    """The bash blocks of a snippet's Production tab, dedented, in document order."""
    text = (SNIPPETS / snippet).read_text(encoding="utf-8")
    production = text.split('=== "Sandbox"', 1)[0]
    blocks = re.findall(r"^( *)```bash(?: \{[^}\n]*\})?\n(.*?)^\1```$", production, re.M | re.S)
    return [textwrap.dedent(body) for _, body in blocks]


def run_script(
    servers: Servers, host: str, name: str, script: str, passwords: Sequence[str]
) -> str:
    """Copy a script into the login user's home on a server, run it there in a terminal."""
    ssh(servers, host, f"cat > {name}", input=script)
    status, text = over_tty(servers, host, f"bash -e {name}", passwords, timeout=300)
    assert status == 0, text
    return text


# --------------------------------------------------------------------------- the servers


def test_up_says_where_the_servers_are_and_how_to_look_at_them(servers: Servers) -> None:
    out = servers.up_output
    assert f"state folder: {servers.root}" in out
    for host in ("old-server", "new-server"):
        assert re.search(rf"{host}: running, ssh 127\.0\.0\.1:\d+ .*MariaDB 127\.0\.0\.1:\d+", out)
    assert f"ssh -F {servers.ssh_config} old-server" in out
    assert "tools/production down" in out
    status = tool(servers.env, "status")
    assert status.returncode == 0, status.stdout
    assert status.stdout.count(": running,") == 2
    config = Path(servers.ssh_config).read_text()
    assert "StrictHostKeyChecking yes" in config and "BatchMode yes" in config


def test_each_server_answers_ssh_under_its_own_name(servers: Servers) -> None:
    assert ssh(servers, "old-server", "hostname") == "old-server\n"
    assert ssh(servers, "new-server", "hostname; id -un; sudo -n id -un") == (
        "new-server\nrbadmin\nroot\n"
    )
    # The restore copies the backup from the old server by name, from the new one.
    assert ssh(servers, "new-server", "ssh old-server hostname") == "old-server\n"
    # Each server's folders are its own, at the paths the guide uses.
    ssh(servers, "old-server", "sudo touch /var/backups/only-on-old")
    assert ssh(servers, "new-server", "ls /var/backups") == ""
    assert ssh(servers, "old-server", "ls /var/backups") == "only-on-old\n"
    ssh(servers, "old-server", "sudo rm /var/backups/only-on-old")


def test_each_server_has_a_database_of_its_own(servers: Servers) -> None:
    old_port = sql(servers, "old-server", "SELECT @@hostname, @@port, @@datadir")
    new_port = sql(servers, "new-server", "SELECT @@hostname, @@port, @@datadir")
    assert old_port.startswith("old-server\t") and new_port.startswith("new-server\t")
    assert old_port.split("\t")[1] != new_port.split("\t")[1]
    marker = f"marker-{os.getpid()}"
    sql(
        servers,
        "old-server",
        "CREATE DATABASE rehearsal_marker; CREATE TABLE rehearsal_marker.m (v varchar(40)); "
        f"INSERT INTO rehearsal_marker.m VALUES ('{marker}');",
        database="",
    )
    try:
        assert sql(servers, "old-server", "SELECT v FROM rehearsal_marker.m", "") == marker
        assert sql(servers, "new-server", "SHOW DATABASES LIKE 'rehearsal_marker'", "") == ""
    finally:
        sql(servers, "old-server", "DROP DATABASE rehearsal_marker", "")
    # The new server is a fresh installation: the database and the application's account
    # exist (the restore grants to it), and nothing is in the database yet.
    assert sql(servers, "new-server", "SHOW TABLES") == ""
    grants = sql(servers, "new-server", "SHOW GRANTS FOR 'openboxes'@'localhost'", "")
    assert "GRANT ALL PRIVILEGES ON `openboxes`.* TO `openboxes`@`localhost`" in grants


def test_the_old_server_holds_an_openboxes_shaped_database(servers: Servers) -> None:
    counts = dict(
        line.split("\t")
        for line in sql(
            servers,
            "old-server",
            " UNION ALL ".join(f"SELECT '{t}', COUNT(*) FROM `{t}`" for t in COUNTED),
        ).splitlines()
    )
    assert set(counts) == set(COUNTED)
    assert all(int(n) > 0 for n in counts.values()), counts
    assert int(counts["transaction_entry"]) >= 10000
    schema = sql(
        servers,
        "old-server",
        "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
        "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'openboxes'; "
        "SELECT GROUP_CONCAT(DISTINCT ENGINE) FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = 'openboxes' AND TABLE_TYPE = 'BASE TABLE'; "
        "SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS "
        "WHERE CONSTRAINT_SCHEMA = 'openboxes'; "
        "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'openboxes'; "
        "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'openboxes'; "
        "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'openboxes'",
    ).splitlines()
    assert schema[0] == "utf8mb3\tutf8mb3_general_ci"
    assert schema[1] == "InnoDB"
    assert int(schema[2]) >= 10  # foreign keys
    assert schema[3:] == ["product_stock", "product_version_before_update", "quantity_on_hand"]
    # The stored code works, and the text is the UTF-8 it was written as.
    assert float(sql(servers, "old-server", "SELECT MAX(quantity) FROM product_stock")) > 0
    assert (
        sql(
            servers,
            "old-server",
            "SELECT quantity_on_hand(product_id) = quantity FROM product_stock LIMIT 1",
        )
        == "1"
    )
    text = sql(
        servers,
        "old-server",
        "SELECT SUM(name LIKE '%Paracétamol%') > 0, SUM(name LIKE '%口罩%') > 0 FROM product; "
        "SELECT SUM(comment LIKE '%✅%') > 0 FROM `transaction`",
    )
    assert text.split() == ["1", "1", "1"]
    # Binary documents hold every byte value, and their recorded size.
    all_bytes = bytes(range(256)).hex()
    blobs = sql(
        servers,
        "old-server",
        f"SET @all = '{all_bytes}'; SELECT COUNT(*), SUM(LENGTH(file_content) = size), "
        "SUM(LEFT(file_content, 256) = UNHEX(@all)) FROM document",
    )
    total, sized, every_byte = blobs.split("\t")
    assert int(total) > 0 and sized == total and every_byte == total


def test_sudo_mysql_root_asks_for_the_root_password(servers: Servers) -> None:
    command = "sudo mysql -u root -p -N -B -e 'SELECT CURRENT_USER()'"
    status, text = over_tty(servers, "old-server", command, [servers.root_password])
    assert status == 0 and "root@localhost" in text, text
    status, text = over_tty(servers, "new-server", command, ["not-the-password"])
    assert status == 1, text
    assert "Access denied for user 'root'@'localhost' (using password: YES)" in text
    # Nor does root get in through the socket without one: the password is the only way.
    status, text = over_tty(servers, "old-server", "sudo mysql -u root -e 'SELECT 1'", [])
    assert status == 1 and "Access denied" in text, text


# --------------------------------------------------------------------------- the round trip


def test_a_backup_and_restore_with_the_snippets_commands_verifies(servers: Servers) -> None:
    root, app = servers.root_password, servers.app_password
    backup_blocks = [
        block
        for block in production_blocks("_backup_database.md")
        if not re.search(r"<[a-z][a-z-]*>", block)  # the copy to a backup host of one's own
    ]
    assert len(backup_blocks) == 4, backup_blocks
    shown = run_script(servers, "old-server", "backup.sh", "\n".join(backup_blocks), [root, root])
    name = re.search(r"^(openboxes-\d{8}-\d{4})$", shown, re.M)
    assert name, shown
    backup = name.group(1)
    assert "gzip OK" in shown and "-- Dump completed on" in shown

    restore_blocks = [
        block
        for block in production_blocks("_restore_database_from_backup.md")
        # rsync is the other tab of the copy; these servers run no Tomcat to stop.
        if not block.startswith("rsync") and "systemctl" not in block
    ]
    script = "\n".join(restore_blocks)
    for placeholder, value in {
        "<username>": "rbadmin",
        "<old-server>": "old-server",
        "<backup-name>": backup,
    }.items():
        script = script.replace(placeholder, value)
    assert not re.search(r"<[a-z][a-z-]*>", script), script
    shown = run_script(servers, "new-server", "restore.sh", script, [root, root, root, app])
    assert f"{backup}.sql.gz: OK" in shown
    assert "new-server" in shown.splitlines()  # `hostname` before the DROP DATABASE
    assert "Restore matches the backup" in shown
    # The application's account reads the restored data (the snippet's last check).
    assert re.search(r"\| products \|\n\+-+\+\n\|\s+[1-9]\d* \|", shown), shown

    counts = servers.root / "check" / f"{backup}.counts.txt"
    counts.parent.mkdir(exist_ok=True)
    counts.write_text(ssh(servers, "old-server", f"cat /var/backups/openboxes/{backup}.counts.txt"))
    assert "transaction_entry\t" in counts.read_text()
    verified = tool(servers.env, "verify", str(counts))
    assert (verified.returncode, verified.stdout) == (
        0,
        "verified: 12 tables, counts equal, checksums equal\n",
    ), verified.stderr
    documents = "SELECT GROUP_CONCAT(SHA2(file_content, 256) ORDER BY id) FROM document"
    assert sql(servers, "old-server", documents) == sql(servers, "new-server", documents)

    sql(servers, "new-server", "DELETE FROM transaction_entry ORDER BY id LIMIT 1")
    tampered = tool(servers.env, "verify", str(counts))
    assert tampered.returncode == 1, tampered.stdout + tampered.stderr
    lines = tampered.stdout.splitlines()
    assert any(
        line.startswith("count differs: transaction_entry:") and "new-server" in line
        for line in lines
    ), lines
    assert any(line.startswith("checksum differs: transaction_entry") for line in lines), lines
    assert not any("verified:" in line and "not" not in line for line in lines)


def test_verify_reads_the_counts_query_out_of_the_backup_snippet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "tools"))
    query = importlib.import_module("production_servers").counts_query()
    snippet = (SNIPPETS / "_backup_database.md").read_text(encoding="utf-8")
    assert query.startswith("SELECT REPLACE(DEFAULT_CHARACTER_SET_NAME")
    assert textwrap.indent(query.strip(), "    ") in snippet
    assert "FROM document;" in query


# --------------------------------------------------------------------------- up and down


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _ours(root: Path) -> dict[str, list[int]]:
    """Live mariadbd and sshd processes in the servers' recorded namespaces."""
    namespaces = {
        (root / host / "namespace").read_text().strip()
        for host in ("old-server", "new-server")
        if (root / host / "namespace").exists()
    }
    found: dict[str, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            namespace = os.readlink(f"/proc/{entry}/ns/mnt")
            name = Path(f"/proc/{entry}/comm").read_text().strip()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if namespace in namespaces and state != "Z" and name in ("mariadbd", "sshd"):
            found.setdefault(name, []).append(int(entry))
    return found


def test_up_again_keeps_the_running_servers(servers: Servers) -> None:
    before = tool(servers.env, "status").stdout
    started = time.monotonic()
    again = tool(servers.env, "up")
    assert again.returncode == 0, again.stdout + again.stderr
    assert time.monotonic() - started < 10
    assert "starting" not in again.stdout
    assert tool(servers.env, "status").stdout == before


def test_down_stops_everything_and_up_brings_the_servers_back(servers: Servers) -> None:
    ports = [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", tool(servers.env, "status").stdout)]
    assert len(ports) == 4 and all(_listening(port) for port in ports)
    entries = sql(servers, "new-server", "SELECT COUNT(*) FROM transaction_entry")
    assert set(_ours(servers.root)) == {"mariadbd", "sshd"}
    # A login in progress does not keep a server up.
    session = subprocess.Popen(
        ["ssh", "-F", servers.ssh_config, "old-server", "sleep 300"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1)
        namespaces = {
            (servers.root / host / "namespace").read_text().strip()
            for host in ("old-server", "new-server")
        }
        down = tool(servers.env, "down")
        assert down.returncode == 0, down.stdout + down.stderr
        assert "old-server: stopped" in down.stdout and "new-server: stopped" in down.stdout
        assert session.wait(timeout=30) != 0
    finally:
        session.kill()
        session.wait()
    assert not _ours(servers.root)
    leftovers = [
        pid
        for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
        if _namespace(pid) in namespaces and _state(pid) not in ("Z", None)
    ]
    assert leftovers == []
    assert not any(_listening(port) for port in ports)
    status = tool(servers.env, "status")
    assert status.returncode == 3 and status.stdout.count(": stopped") == 2, status.stdout
    assert tool(servers.env, "down").returncode == 0  # again: nothing to do

    # Something else took the old server's ssh port meanwhile: it gets another one.
    with socket.socket() as squatter:
        # The stopped server's closed connections may linger in TIME_WAIT on that port.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", ports[0]))
        squatter.listen()
        up = tool(servers.env, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "starting old-server, new-server" in up.stdout
    assert f"old-server: running, ssh 127.0.0.1:{ports[0]} " not in up.stdout
    # Data survives a restart, the restore (and its tampering) included.
    assert sql(servers, "new-server", "SELECT COUNT(*) FROM transaction_entry") == entries
    assert ssh(servers, "old-server", "hostname") == "old-server\n"


def test_up_restarts_a_server_whose_database_died(servers: Servers) -> None:
    pid = int((servers.root / "new-server" / "run-mysqld" / "mysqld.pid").read_text())
    os.kill(pid, 9)
    deadline = time.monotonic() + 10
    while _state(pid) not in (None, "Z") and time.monotonic() < deadline:
        time.sleep(0.05)
    status = tool(servers.env, "status")
    assert "new-server: partial" in status.stdout, status.stdout
    up = tool(servers.env, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "new-server is half running" in up.stdout and "starting new-server\n" in up.stdout
    assert tool(servers.env, "status").stdout.count(": running,") == 2
    assert sql(servers, "new-server", "SELECT COUNT(*) FROM product") == "6000"


def _namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None
