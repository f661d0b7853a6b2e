"""Two rehearsal "production" servers on this machine: old-server and new-server.

Each server is an sshd on 127.0.0.1 and a MariaDB, both started inside a mount namespace of
their own (and a UTS namespace, so ``hostname`` names the server). Per-server folders are
bind-mounted over /etc/mysql, /run/mysqld, /var/lib/mysql, /var/backups, /etc/hosts and the
login user's home, so on each server the guide's commands (``sudo mysql -u root -p``,
``sudo install -d … /var/backups/openboxes``, ``scp rbadmin@old-server:…``) reach that
server's own files and database through the default paths, as they would on two machines.

The namespace lives as long as a process is inside it: the boot step (``_boot``, run under
``unshare``) mounts, starts mariadbd and sshd as daemons and exits; both keep the namespace.
Every file of the servers lives under one state folder ($PRODUCTION_ROOT, by default
``.production`` in the checkout); nothing outside it changes except the login user, its
sudoers file and the host's empty mount points.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from production_data import APP_ACCOUNT, SEED, openboxes_sql, sql_string

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "production"
PACKAGES = ROOT / "tools" / "system-packages"
BACKUP_SNIPPET = ROOT / "snippets" / "admin-guide" / "common" / "_backup_database.md"
SERVERS = ("old-server", "new-server")
OLD, NEW = SERVERS
USER = "rbadmin"
SUDOERS = Path("/etc/sudoers.d/rbadmin-rehearsal")
ROOT_MARKER = ".production-root"
DATABASE = "openboxes"
SSHD = "/usr/sbin/sshd"
MARIADBD = "/usr/sbin/mariadbd"
# What a server sees at these paths is its own folder (source name in the server's folder).
MOUNTS = (
    ("etc-mysql", "/etc/mysql"),
    ("run-mysqld", "/run/mysqld"),
    ("var-lib-mysql", "/var/lib/mysql"),
    ("var-backups", "/var/backups"),
    ("hosts", "/etc/hosts"),
)


class Failure(Exception):
    """A problem to report in one message, without a traceback."""


# --------------------------------------------------------------------------- paths and state


def state_root() -> Path:
    """The folder holding every file of both servers ($PRODUCTION_ROOT or .production)."""
    return Path(os.environ.get("PRODUCTION_ROOT") or ROOT / ".production").expanduser().resolve()


class Server:
    """One rehearsal server's files, under the state folder."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        self.dir = root / name
        self.etc_mysql = self.dir / "etc-mysql"
        self.run_mysqld = self.dir / "run-mysqld"
        self.datadir = self.dir / "var-lib-mysql"
        self.backups = self.dir / "var-backups"
        self.hosts = self.dir / "hosts"
        self.home = self.dir / "home"
        self.ssh = self.dir / "ssh"
        self.sshd_config = self.ssh / "sshd_config"
        self.host_key = self.ssh / "ssh_host_ed25519_key"
        self.sshd_pid = self.dir / "sshd.pid"
        self.mariadbd_pid = self.run_mysqld / "mysqld.pid"
        self.namespace = self.dir / "namespace"
        self.provisioned = self.dir / "provisioned"
        self.boot_log = self.dir / "boot.log"
        self.mariadb_log = self.dir / "mariadb.log"
        self.sshd_log = self.dir / "sshd.log"

    def __repr__(self) -> str:
        return f"Server({self.name!r})"


class State:
    """The state folder: both servers, the operator's ssh files, secrets and ports."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.servers = {name: Server(root, name) for name in SERVERS}
        self.ports_file = root / "ports.json"
        self.ssh_config = root / "ssh_config"
        self.known_hosts = root / "known_hosts"
        self.client_key = root / "client" / "id_ed25519"
        self.secrets = root / "secrets"
        self.root_password = self.secrets / "mysql-root-password"
        self.app_password = self.secrets / "openboxes-password"
        self.root_cnf = self.secrets / "mysql-root.cnf"

    def ports(self) -> dict[str, dict[str, int]]:
        try:
            data = json.loads(self.ports_file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


# --------------------------------------------------------------------------- small helpers


def say(message: str) -> None:
    print(message, flush=True)


def run(
    argv: Sequence[str],
    *,
    input: str | bytes | None = None,
    check: bool = True,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure raise Failure with its output."""
    data = input.encode() if isinstance(input, str) else input
    proc = subprocess.run(
        list(argv),
        input=data,
        stdin=None if data is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
    )
    result = subprocess.CompletedProcess(
        proc.args,
        proc.returncode,
        proc.stdout.decode(errors="replace"),
        proc.stderr.decode(errors="replace"),
    )
    if check and proc.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        # The client repeats a failing statement whole before its ERROR line: keep the line.
        errors = [line for line in lines if line.startswith("ERROR ")]
        detail = "\n".join(errors or lines[-3:])[-1500:]
        raise Failure(f"{shlex.join(argv)} failed (status {proc.returncode}): {detail}")
    return result


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no {path})"
    return "\n".join(text.splitlines()[-lines:])


def write(path: Path, text: str, mode: int = 0o644) -> None:
    """Write a file whole, with its mode, replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), mode)
        out.write(text)
    os.replace(temp, path)


def port_free(port: int) -> bool:
    """Whether nothing listens on ``port``: connections of a stopped server lingering in
    TIME_WAIT do not keep sshd or MariaDB (which bind as SO_REUSEADDR does) from it."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(taken: set[int]) -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            return port


def ssh_quote(value: str) -> str:
    """A value for ssh_config or sshd_config: double-quoted, for paths with spaces."""
    if '"' in value:
        raise Failure(f"a path with a double quote cannot go into an ssh config: {value}")
    return f'"{value}"'


# --------------------------------------------------------------------------- processes


def proc_state(pid: int) -> tuple[str, int] | None:
    """(state letter, start time) of a live process, or None when gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[0], int(fields[19])


def proc_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def proc_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def recorded_namespace(server: Server) -> str | None:
    try:
        return server.namespace.read_text().strip() or None
    except OSError:
        return None


def anchors(server: Server) -> dict[str, int]:
    """The server's own mariadbd and sshd that are alive: the pid files' processes, checked
    by name and namespace, so that a recycled pid is never taken for one of ours."""
    namespace = recorded_namespace(server)
    found: dict[str, int] = {}
    if namespace is None:
        return found
    for name, pidfile in (("mariadbd", server.mariadbd_pid), ("sshd", server.sshd_pid)):
        pid = read_pid(pidfile)
        if (
            pid is not None
            and proc_state(pid) is not None
            and proc_name(pid) == name
            and proc_namespace(pid) == namespace
        ):
            found[name] = pid
    return found


def namespace_members(namespace: str) -> dict[int, int]:
    """Every live process in a mount namespace, with its start time."""
    members: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if proc_namespace(pid) == namespace:
            state = proc_state(pid)
            if state is not None:
                members[pid] = state[1]
    return members


def wait_gone(pids: dict[int, int], timeout: float) -> dict[int, int]:
    """Wait until these processes (pid → start time) end; return those still alive."""
    deadline = time.monotonic() + timeout
    while True:
        alive = {pid: start for pid, start in pids.items() if _same(pid, start)}
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def _same(pid: int, start: int) -> bool:
    state = proc_state(pid)
    return state is not None and state[1] == start


def signal_all(pids: dict[int, int], sig: signal.Signals) -> None:
    for pid, start in pids.items():
        if _same(pid, start):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


def stop_server(server: Server) -> str:
    """Stop everything running in the server's namespace; say what was done."""
    found = anchors(server)
    namespace = recorded_namespace(server)
    if not found or namespace is None:
        # Without a live anchor the namespace is gone (or is not ours any more): nothing to
        # sweep, and a namespace id seen again could belong to someone else.
        for stale in (server.sshd_pid, server.mariadbd_pid, server.namespace):
            stale.unlink(missing_ok=True)
        return f"{server.name}: not running"
    members = namespace_members(namespace)
    database = {pid: start for pid, start in members.items() if pid == found.get("mariadbd")}
    others = {pid: start for pid, start in members.items() if pid not in database}
    # Logins and sshd first, so nothing uses the database while it shuts down cleanly.
    signal_all(others, signal.SIGTERM)
    left = wait_gone(others, 5)
    signal_all(left, signal.SIGKILL)
    signal_all(database, signal.SIGTERM)
    left = wait_gone(database, 60)
    killed = bool(left)
    signal_all(left, signal.SIGKILL)
    # Anything that entered the namespace meanwhile (a login racing the stop).
    late = {p: s for p, s in namespace_members(namespace).items() if p not in members}
    signal_all(late, signal.SIGKILL)
    wait_gone({**others, **database, **late}, 10)
    for stale in (server.sshd_pid, server.mariadbd_pid, server.namespace):
        stale.unlink(missing_ok=True)
    how = "killed MariaDB after 60 s" if killed else "MariaDB shut down cleanly"
    return f"{server.name}: stopped {len(members)} process(es), {how}"


def server_status(server: Server) -> str:
    """running, stopped or partial (one of mariadbd and sshd is missing)."""
    found = anchors(server)
    if len(found) == 2:
        return "running"
    return "partial" if found else "stopped"


# --------------------------------------------------------------------------- preflight and setup


def preflight() -> None:
    if os.geteuid() != 0:
        raise Failure(
            "tools/production needs root: it starts servers in their own mount namespaces and "
            f"creates the login user {USER}"
        )
    lacking = run([str(PACKAGES), "missing", "production"], check=False).stdout.split()
    if lacking:
        raise Failure(
            f"missing Debian packages: {' '.join(lacking)}; `make production-servers` installs "
            f"them (or: apt-get install {' '.join(lacking)})"
        )
    for tool in ("unshare", "nsenter", "mount", "ssh-keygen", "useradd", "visudo"):
        if shutil.which(tool) is None:
            raise Failure(f"{tool} is not on PATH")


def ensure_root(state: State) -> None:
    root = state.root
    if root.exists() and any(root.iterdir()) and not (root / ROOT_MARKER).exists():
        raise Failure(f"{root} is not empty and has no {ROOT_MARKER}: not using it as state folder")
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    (root / ROOT_MARKER).touch()


def ensure_user() -> pwd.struct_passwd:
    """The login user of both servers, with sudo rights without a password."""
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        run(["useradd", "--create-home", "--shell", "/bin/bash", USER])
        entry = pwd.getpwnam(USER)
        say(f"created user {USER}")
    # sshd refuses a locked account when PAM is off; useradd leaves "!" (locked, no password).
    shadow = run(["getent", "shadow", USER], check=False).stdout.split(":")
    if len(shadow) > 1 and shadow[1] in ("!", "!*"):
        run(["usermod", "-p", "*", USER])
    home = Path(entry.pw_dir)
    if not home.is_dir():
        home.mkdir(parents=True, mode=0o700)
        os.chown(home, entry.pw_uid, entry.pw_gid)
    rule = (
        "# tools/production: the rehearsal servers' login user runs the guide's sudo commands\n"
        f"{USER} ALL=(ALL:ALL) NOPASSWD: ALL\n"
    )
    if not SUDOERS.exists() or SUDOERS.read_text() != rule:
        candidate = SUDOERS.with_name(".rbadmin-rehearsal.new")
        write(candidate, rule, 0o440)
        try:
            run(["visudo", "-c", "-q", "-f", str(candidate)])
        except Failure:
            candidate.unlink(missing_ok=True)
            raise
        os.replace(candidate, SUDOERS)
    return entry


def ensure_key(path: Path, comment: str) -> str:
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    return path.with_suffix(".pub").read_text().strip()


def ensure_secret(path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write(path, secrets.token_urlsafe(18) + "\n", 0o600)
    return path.read_text().strip()


def choose_ports(state: State, running: set[str]) -> dict[str, dict[str, int]]:
    """Keep each server's recorded ports while free (or in use by the server itself)."""
    recorded = state.ports()
    chosen: dict[str, dict[str, int]] = {}
    taken: set[int] = set()
    for name in SERVERS:
        if name in running and name in recorded:
            chosen[name] = dict(recorded[name])
            taken.update(chosen[name].values())
    for name in SERVERS:
        if name in chosen:
            continue
        ports: dict[str, int] = {}
        for kind in ("ssh", "mysql"):
            port = recorded.get(name, {}).get(kind)
            if not isinstance(port, int) or port in taken or not port_free(port):
                port = free_port(taken)
            ports[kind] = port
            taken.add(port)
        chosen[name] = ports
    write(state.ports_file, json.dumps(chosen, indent=2) + "\n", 0o600)
    return chosen


def mysql_config(server: Server, ports: dict[str, int]) -> None:
    """The server's /etc/mysql: Debian's, plus the installation guide's settings (once, so an
    operator's later edit stays) and this server's port (at every start)."""
    etc = server.etc_mysql
    if not etc.exists():
        shutil.copytree("/etc/mysql", etc, symlinks=False)
        modes = "STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO"
        write(
            etc / "mariadb.conf.d" / "60-openboxes.cnf",
            textwrap.dedent(f"""\
                # The installation guide's settings (docs/installation/mysql.md, step 3).
                [mysqld]
                sql_mode = {modes},NO_ENGINE_SUBSTITUTION
                # The guide says 1G on a dedicated server; two rehearsal servers share this one.
                innodb_buffer_pool_size = 256M
                max_allowed_packet = 64M
                """),
        )
    write(
        etc / "mariadb.conf.d" / "99-rehearsal.cnf",
        textwrap.dedent(f"""\
            # Written by tools/production at each start: {server.name} shares this machine's
            # network with the other rehearsal server, so each has a TCP port of its own.
            [client-server]
            port = {ports["mysql"]}

            [mysqld]
            user = mysql
            bind-address = 127.0.0.1
            # Not the shared /tmp: a starting MariaDB deletes every #sql* file in its tmpdir,
            # the other server's temporary tables included (measured during two bootstraps).
            tmpdir = /run/mysqld/tmp
            """),
    )


def ssh_block(state: State, alias: str, port: int, *, for_operator: bool) -> str:
    lines = [f"Host {alias}", "    HostName 127.0.0.1", f"    Port {port}", f"    User {USER}"]
    # One known-hosts name per server, whatever its port.
    lines.append(f"    HostKeyAlias {alias}")
    if for_operator:
        lines += [
            f"    IdentityFile {ssh_quote(str(state.client_key))}",
            "    IdentitiesOnly yes",
            f"    UserKnownHostsFile {ssh_quote(str(state.known_hosts))}",
            "    GlobalKnownHostsFile /dev/null",
            "    StrictHostKeyChecking yes",
            "    BatchMode yes",
            # Quiet "Connection to … closed." after a -t session; errors still show.
            "    LogLevel ERROR",
        ]
    else:
        lines += ["    IdentityFile ~/.ssh/id_ed25519", "    StrictHostKeyChecking yes"]
    return "\n".join(lines) + "\n"


def write_configs(state: State, ports: dict[str, dict[str, int]], user: pwd.struct_passwd) -> None:
    client_pub = ensure_key(state.client_key, "operator@rehearsal")
    host_pubs: dict[str, str] = {}
    user_pubs: dict[str, str] = {}
    for name, server in state.servers.items():
        server.dir.mkdir(parents=True, exist_ok=True)
        host_pubs[name] = ensure_key(server.host_key, f"root@{name}")
        user_pubs[name] = ensure_key(server.ssh / "user_id_ed25519", f"{USER}@{name}")
    known = "".join(f"{name} {' '.join(pub.split()[:2])}\n" for name, pub in host_pubs.items())
    write(state.known_hosts, known)
    write(
        state.ssh_config,
        "# Written by tools/production up: the rehearsal servers on this machine.\n"
        "# Use it as: ssh -F THIS_FILE old-server\n\n"
        + "\n".join(
            ssh_block(state, name, ports[name]["ssh"], for_operator=True) for name in SERVERS
        ),
    )
    mysql_uid = pwd.getpwnam("mysql")
    for name, server in state.servers.items():
        server.ssh.mkdir(parents=True, exist_ok=True)
        write(
            server.sshd_config,
            textwrap.dedent(f"""\
                # Written by tools/production: {name}'s sshd, on loopback only.
                Port {ports[name]["ssh"]}
                ListenAddress 127.0.0.1
                HostKey {ssh_quote(str(server.host_key))}
                PidFile {ssh_quote(str(server.sshd_pid))}
                AllowUsers {USER}
                PermitRootLogin no
                PubkeyAuthentication yes
                PasswordAuthentication no
                KbdInteractiveAuthentication no
                UsePAM no
                X11Forwarding no
                PrintMotd no
                AcceptEnv LANG LC_*
                # What PAM's /etc/default/locale gives a login on a Debian server (PAM is
                # off here): without it the mysql client talks latin1 and mangles UTF-8.
                SetEnv LANG=C.UTF-8
                Subsystem sftp /usr/lib/openssh/sftp-server
                """),
        )
        mysql_config(server, ports[name])
        base_hosts = Path("/etc/hosts").read_text()
        write(server.hosts, base_hosts.rstrip("\n") + f"\n127.0.1.1\t{name}\n")
        for folder, owner, mode in (
            (server.run_mysqld, mysql_uid, 0o755),
            (server.run_mysqld / "tmp", mysql_uid, 0o700),
            (server.datadir, mysql_uid, 0o755),
            (server.backups, None, 0o755),
        ):
            folder.mkdir(parents=True, exist_ok=True)
            if owner is not None:
                os.chown(folder, owner.pw_uid, owner.pw_gid)
            os.chmod(folder, mode)
        # The login user's home on this server: its own key, known hosts and ssh config,
        # so that one server reaches the other by name (the restore's `scp` from old-server).
        dot_ssh = server.home / ".ssh"
        dot_ssh.mkdir(parents=True, exist_ok=True)
        key = server.ssh / "user_id_ed25519"
        shutil.copyfile(key, dot_ssh / "id_ed25519")
        shutil.copyfile(key.with_suffix(".pub"), dot_ssh / "id_ed25519.pub")
        write(
            dot_ssh / "authorized_keys",
            "".join(f"{k}\n" for k in [client_pub, *user_pubs.values()]),
        )
        write(dot_ssh / "known_hosts", known)
        write(
            dot_ssh / "config",
            "\n".join(ssh_block(state, n, ports[n]["ssh"], for_operator=False) for n in SERVERS),
        )
        for skel in (".bashrc", ".profile", ".bash_logout"):
            source = Path("/etc/skel") / skel
            if source.exists() and not (server.home / skel).exists():
                shutil.copyfile(source, server.home / skel)
        for path in [server.home, *server.home.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)
        os.chmod(server.home, 0o700)
        os.chmod(dot_ssh, 0o700)
        for private in ("id_ed25519", "authorized_keys", "config", "known_hosts"):
            os.chmod(dot_ssh / private, 0o600)


# --------------------------------------------------------------------------- boot, in the namespace


def boot(name: str) -> int:
    """Inside a fresh mount and UTS namespace: mount, start MariaDB and sshd, leave them."""
    state = State(state_root())
    server = state.servers[name]
    home = pwd.getpwnam(USER).pw_dir
    for source, target in (*((server.dir / s, t) for s, t in MOUNTS), (server.home, home)):
        run(["mount", "--bind", str(source), target])
    socket.sethostname(name)
    write(server.namespace, os.readlink("/proc/self/ns/mnt") + "\n")
    if not (server.datadir / "mysql").is_dir():
        say(f"{name}: creating the MariaDB data directory")
        run(
            [
                "mariadb-install-db",
                "--user=mysql",
                "--datadir=/var/lib/mysql",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            timeout=300,
        )
    with open(server.mariadb_log, "ab") as log:
        # As the system's service starts it: Debian's /etc/mysql decides everything, and no
        # ~/.my.cnf of root's slips in.
        daemon = subprocess.Popen(
            [MARIADBD],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd="/",
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/nonexistent"},
            start_new_session=True,
        )
    deadline = time.monotonic() + 120
    while True:
        alive = run(
            ["mariadb-admin", "--no-defaults", "--socket=/run/mysqld/mysqld.sock", "ping"],
            check=False,
            timeout=10,
        )
        if alive.returncode == 0:
            break
        if daemon.poll() is not None or time.monotonic() > deadline:
            raise Failure(f"{name}: MariaDB did not start:\n{tail(server.mariadb_log)}")
        time.sleep(0.1)
    run([SSHD, "-t", "-f", str(server.sshd_config)])
    run([SSHD, "-f", str(server.sshd_config), "-E", str(server.sshd_log)])
    deadline = time.monotonic() + 20
    while read_pid(server.sshd_pid) is None:
        if time.monotonic() > deadline:
            raise Failure(f"{name}: sshd wrote no pid file:\n{tail(server.sshd_log)}")
        time.sleep(0.05)
    say(f"{name}: MariaDB pid {daemon.pid}, sshd pid {read_pid(server.sshd_pid)}")
    return 0


def start_servers(state: State, names: Sequence[str]) -> None:
    """Boot servers side by side, each in a namespace of its own."""
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation
    os.makedirs("/run/mysqld", exist_ok=True)  # a mount point; the package creates it at start
    Path(pwd.getpwnam(USER).pw_dir).mkdir(exist_ok=True)
    procs = {}
    for name in names:
        server = state.servers[name]
        with open(server.boot_log, "wb") as log:
            procs[name] = subprocess.Popen(
                [
                    "unshare",
                    "--mount",
                    "--uts",
                    "--propagation",
                    "private",
                    "--",
                    sys.executable,
                    str(TOOL),
                    "_boot",
                    name,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PRODUCTION_ROOT": str(state.root)},
                start_new_session=True,
            )
    problems = []
    for name, proc in procs.items():
        if proc.wait(timeout=300) != 0:
            problems.append(f"{name} did not start:\n{tail(state.servers[name].boot_log)}")
    if problems:
        for name in names:
            stop_server(state.servers[name])
        raise Failure("\n".join(problems))


def wait_for_ssh(state: State, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        probe = run(ssh_argv(state, name, "true"), check=False, timeout=30)
        if probe.returncode == 0:
            return
        if time.monotonic() > deadline:
            server = state.servers[name]
            raise Failure(
                f"{name}: ssh does not answer: {probe.stderr.strip()}\n{tail(server.sshd_log)}"
            )
        time.sleep(0.1)


def ssh_argv(state: State, name: str, command: str) -> list[str]:
    return ["ssh", "-F", str(state.ssh_config), name, command]


# --------------------------------------------------------------------------- SQL on a server


def mysql(
    state: State,
    name: str,
    sql: str,
    *,
    database: str | None = None,
    password: bool = True,
    timeout: float = 300,
) -> str:
    """Run SQL as MariaDB root on a server, through its own socket; return the output."""
    server = state.servers[name]
    pid = anchors(server).get("mariadbd")
    if pid is None:
        raise Failure(f"{name} is not running: run tools/production up")
    # --defaults-file alone: a ~/.my.cnf of the caller must not change where this goes.
    cnf = state.root_cnf if password else state.secrets / "mysql-root-nopassword.cnf"
    argv = ["nsenter", "--target", str(pid), "--mount", "--", "mariadb", f"--defaults-file={cnf}"]
    argv += ["-N", "-B"]
    if database:
        argv.append(database)
    return run(argv, input=sql, timeout=timeout).stdout


def write_client_cnfs(state: State, root_password: str) -> None:
    common = "[client]\nuser = root\nsocket = /run/mysqld/mysqld.sock\n"
    common += "default-character-set = utf8mb4\n"
    write(state.root_cnf, common + f"password = {root_password}\n", 0o600)
    write(state.secrets / "mysql-root-nopassword.cnf", common, 0o600)


def provision(state: State, name: str) -> None:
    """A freshly installed server, as the installation guide leaves it; the old one with data."""
    root_password = ensure_secret(state.root_password)
    app_password = ensure_secret(state.app_password)
    secure = textwrap.dedent(f"""\
        ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password
            USING PASSWORD({sql_string(root_password)});
        -- What mysql_secure_installation removes, and root's password-less TCP accounts
        -- (127.0.0.1 reaches root@localhost, by name, with the password).
        DELETE FROM mysql.global_priv WHERE User = '' OR (User = 'root' AND Host <> 'localhost');
        DROP DATABASE IF EXISTS test;
        FLUSH PRIVILEGES;
        """)
    try:
        mysql(state, name, secure)
    except Failure as error:
        if "Access denied" not in str(error):
            raise
        try:
            mysql(state, name, secure, password=False)  # the first start: no password yet
        except Failure:
            raise Failure(
                f"{name}: MariaDB root takes neither the password in {state.root_password} "
                "nor none: `tools/production up --fresh` starts both servers over"
            ) from error
    mysql(
        state,
        name,
        textwrap.dedent(f"""\
            DROP DATABASE IF EXISTS {DATABASE};
            CREATE DATABASE {DATABASE} DEFAULT CHARACTER SET utf8 COLLATE utf8_general_ci;
            CREATE USER IF NOT EXISTS {APP_ACCOUNT} IDENTIFIED BY {sql_string(app_password)};
            GRANT ALL PRIVILEGES ON {DATABASE}.* TO {APP_ACCOUNT};
            """),
    )
    if name == OLD:
        started = time.monotonic()
        mysql(state, name, openboxes_sql(SEED), database=DATABASE, timeout=600)
        say(f"{name}: loaded the openboxes database in {time.monotonic() - started:.1f} s")
    state.servers[name].provisioned.touch()


# --------------------------------------------------------------------------- verification


def counts_query() -> str:
    """The backup snippet's counts query (step 2), read from the snippet itself."""
    lines = BACKUP_SNIPPET.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines):
        if "counts.txt" in line and line.rstrip().endswith("<<'SQL'"):
            indent = len(line) - len(line.lstrip())
            body: list[str] = []
            for following in lines[n + 1 :]:
                if following.strip() == "SQL":
                    return "\n".join(body) + "\n"
                body.append(following[indent:] if following[:indent].isspace() else following)
            break
    raise Failure(f"{BACKUP_SNIPPET}: no counts query (a heredoc <<'SQL' writing *.counts.txt)")


def figures(text: str) -> list[tuple[str, str]]:
    """(name, value) per line of a counts file: the name is every column but the last."""
    result = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.strip():
            name, _, number = line.rstrip().rpartition("\t")
            result.append((name or number, number if name else ""))
    return result


def checksums(state: State, name: str) -> dict[str, str]:
    tables = mysql(
        state,
        name,
        "SELECT TABLE_NAME FROM information_schema.TABLES "
        f"WHERE TABLE_SCHEMA = '{DATABASE}' AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME;",
    ).split()
    if not tables:
        return {}
    listed = ", ".join(f"`{DATABASE}`.`{table}`" for table in tables)
    result = {}
    for line in mysql(state, name, f"CHECKSUM TABLE {listed};").splitlines():
        table, _, checksum = line.rpartition("\t")
        result[table.split(".", 1)[1]] = checksum
    return result


def verify(state: State, counts_file: Path) -> list[str]:
    """What differs between the backup's counts and the restore, and between the servers."""
    problems: list[str] = []
    expected = figures(counts_file.read_text(encoding="utf-8"))
    try:
        restored = figures(mysql(state, NEW, counts_query(), database=DATABASE))
    except Failure as error:
        problems.append(f"the counts query fails on {NEW}: {str(error).rpartition(': ')[2]}")
        restored = expected
    if expected != restored:
        before, after = dict(expected), dict(restored)
        for name in dict.fromkeys([*before, *after]):
            if before.get(name) != after.get(name):
                problems.append(
                    f"count differs: {name}: {before.get(name, 'missing')} in "
                    f"{counts_file.name}, {after.get(name, 'missing')} on {NEW}"
                )
        if not problems:
            problems.append(f"the counts are in another order than in {counts_file.name}")
    old, new = checksums(state, OLD), checksums(state, NEW)
    for table in sorted(set(old) | set(new)):
        if table not in new:
            problems.append(f"table missing on {NEW}: {table}")
        elif table not in old:
            problems.append(f"table only on {NEW}: {table}")
        elif old[table] != new[table]:
            problems.append(f"checksum differs: {table} ({OLD} {old[table]}, {NEW} {new[table]})")
    if not old:
        problems.append(f"{OLD} has no tables in {DATABASE}")
    return problems


# --------------------------------------------------------------------------- commands


def describe(state: State) -> Iterator[str]:
    ports = state.ports()
    for name in SERVERS:
        server = state.servers[name]
        status = server_status(server)
        found = anchors(server)
        if name in ports and status != "stopped":
            port = ports[name]
            sshd, mariadbd = found.get("sshd", "-"), found.get("mariadbd", "-")
            yield (
                f"{name}: {status}, ssh 127.0.0.1:{port['ssh']} (sshd pid {sshd}), "
                f"MariaDB 127.0.0.1:{port['mysql']} (pid {mariadbd}), data in {server.dir}"
            )
        else:
            yield f"{name}: {status}"


def cmd_up(args: argparse.Namespace) -> int:
    preflight()
    state = State(state_root())
    started = time.monotonic()
    if args.fresh and state.root.exists():
        cmd_down(args)
        if (state.root / ROOT_MARKER).exists():
            shutil.rmtree(state.root)
            say(f"removed {state.root}")
    ensure_root(state)
    user = ensure_user()
    statuses = {name: server_status(state.servers[name]) for name in SERVERS}
    for name, status in statuses.items():
        if status == "partial":
            say(f"{name} is half running: {stop_server(state.servers[name])}")
            statuses[name] = "stopped"
    running = {name for name, status in statuses.items() if status == "running"}
    ports = choose_ports(state, running)
    write_configs(state, ports, user)
    write_client_cnfs(state, ensure_secret(state.root_password))
    ensure_secret(state.app_password)
    to_start = [name for name in SERVERS if name not in running]
    if to_start:
        say(f"starting {', '.join(to_start)}")
        start_servers(state, to_start)
    for name in SERVERS:
        wait_for_ssh(state, name)
    pending = [name for name in SERVERS if not state.servers[name].provisioned.exists()]
    if pending:
        with ThreadPoolExecutor(len(pending)) as pool:
            list(pool.map(lambda name: provision(state, name), pending))
    say(f"up in {time.monotonic() - started:.1f} s; state folder: {state.root}")
    for line in describe(state):
        say(f"  {line}")
    config = shlex.quote(str(state.ssh_config))
    say(
        textwrap.dedent(f"""\
        Log in:           ssh -F {config} old-server   (or new-server; {USER}, sudo, no password)
        A query:          ssh -F {config} -t old-server sudo mysql -u root -p openboxes
        Root password:    {state.root_password}  (MariaDB root@localhost on both servers)
        App password:     {state.app_password}  ('openboxes'@'localhost')
        Shell exports:    eval "$(tools/production env)"
        Check a restore:  tools/production verify BACKUP.counts.txt
        Stop both:        tools/production down""")
    )
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    state = State(state_root())
    if not state.root.exists():
        say(f"nothing to stop: {state.root} does not exist")
        return 0
    if os.geteuid() != 0:
        raise Failure("tools/production down needs root, as up did")
    for name in SERVERS:
        say(stop_server(state.servers[name]))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state = State(state_root())
    say(f"state folder: {state.root}{'' if state.root.exists() else ' (does not exist)'}")
    lines = list(describe(state))
    for line in lines:
        say(line)
    return 0 if all(": running" in line for line in lines) else 3


def cmd_env(args: argparse.Namespace) -> int:
    state = State(state_root())
    exports = {
        "PRODUCTION_ROOT": str(state.root),
        "PRODUCTION_SSH_CONFIG": str(state.ssh_config),
        "PRODUCTION_DB_ROOT_PASSWORD_FILE": str(state.root_password),
        "PRODUCTION_DB_PASSWORD_FILE": str(state.app_password),
        "PRODUCTION_USER": USER,
        "PRODUCTION_OLD_SERVER": OLD,
        "PRODUCTION_NEW_SERVER": NEW,
        # The guide's own placeholders, for runbook (RUNBOOK_SET_<NAME>).
        "RUNBOOK_SET_USERNAME": USER,
        "RUNBOOK_SET_OLD_SERVER": OLD,
        "RUNBOOK_SET_NEW_SERVER": NEW,
    }
    for name, value in exports.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    state = State(state_root())
    counts_file = Path(args.counts_file)
    if not counts_file.is_file():
        raise Failure(f"no counts file {counts_file}")
    for name in SERVERS:
        if server_status(state.servers[name]) != "running":
            raise Failure(f"{name} is not running: run tools/production up")
    problems = verify(state, counts_file)
    if problems:
        for problem in problems:
            say(problem)
        say(f"not verified: {len(problems)} difference(s)")
        return 1
    tables = len(checksums(state, OLD))
    say(f"verified: {tables} tables, counts equal, checksums equal")
    return 0


def cmd_boot(args: argparse.Namespace) -> int:
    return boot(args.server)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tools/production",
        description=(
            "Two rehearsal servers on this machine, old-server and new-server: sshd and "
            "MariaDB each, in mount namespaces of their own. State: $PRODUCTION_ROOT "
            "(default: .production in the checkout)."
        ),
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="{up,down,status,env,verify}"
    )
    up = sub.add_parser("up", help="start both servers (creating them the first time)")
    up.add_argument(
        "--fresh", action="store_true", help="stop and delete both servers first, start over"
    )
    up.set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop both servers, keeping their data").set_defaults(func=cmd_down)
    sub.add_parser("status", help="which servers run, where").set_defaults(func=cmd_status)
    sub.add_parser("env", help="shell exports for a rehearsal").set_defaults(func=cmd_env)
    verify_parser = sub.add_parser(
        "verify", help="compare a backup's counts file and the old database with the restore"
    )
    verify_parser.add_argument("counts_file", metavar="COUNTS_FILE")
    verify_parser.set_defaults(func=cmd_verify)
    boot_parser = sub.add_parser("_boot")  # internal: run inside the server's namespaces
    boot_parser.add_argument("server", choices=SERVERS)
    boot_parser.set_defaults(func=cmd_boot)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except Failure as error:
        print(f"tools/production {args.command}: {error}", file=sys.stderr)
        return 1
    except subprocess.TimeoutExpired as error:
        print(f"tools/production {args.command}: timed out: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `tools/production status | head -1`: the reader left; end quietly, as cat would.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
