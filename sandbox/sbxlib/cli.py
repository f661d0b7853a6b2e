"""The sbx command line: install, run, back up, restore and route the sandbox app."""

from __future__ import annotations

import argparse
import configparser
import contextlib
import os
import shutil
import socket
import sqlite3
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from sbxlib.frontdoor import LOG_FILE as FRONTDOOR_LOG
from sbxlib.frontdoor import PID_FILE as FRONTDOOR_PID
from sbxlib.frontdoor import STATUS_PATH, UPSTREAM_FILE, read_upstream
from sbxlib.proc import (
    HOST,
    Endpoint,
    SbxError,
    get_ok,
    live_pid,
    port_in_use,
    request_json,
    spawn_daemon,
    terminate,
    terminate_all,
    write_atomic,
)

SANDBOX = Path(__file__).resolve().parent.parent
RELEASES = SANDBOX / "releases"
FRONTDOOR = Path(__file__).resolve().with_name("frontdoor.py")
OLD_VERSION = "1.4.2"
ROOT_MARKER = ".sbx-root"
REGISTRY = "installs"
EXIT_NOT_RUNNING = 3
CUSTOM_SITE = """[site]
# Customised by the operator: carry these settings over on upgrades.
name = Northwind Field Office
contact_email = ops@northwind.example
"""
GOODS = ("Pallet of tiles", "Crate of valves", "Box of cables", "Drum of sealant", "Roll of mesh")
PLACES = ("Bergen", "Lyon", "Porto", "Gdańsk", "Tampere", "Ghent", "Brno")


def env_port(name: str, default: int) -> int:
    """Read a port number from the environment."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SbxError(f"{name}={raw!r} is not a port number")
    return int(raw)


# ---- ports -----------------------------------------------------------------------------

# Every port the sandbox hands out: its name, the variable that imposes it, its default.
PORTS: tuple[tuple[str, str, int], ...] = (
    ("frontdoor", "SBX_PROXY_PORT", 8080),
    ("old", "SBX_OLD_PORT", 8081),
    ("new", "SBX_NEW_PORT", 8082),
)
PORTS_FILE = "ports"
# When a default is taken, the ports move together by a step of this size (8180-8182,
# 8280-8282, ...): below the kernel's ephemeral range, so no outgoing connection takes
# them between the provisioning and the start of the new installation.
PORT_STEP = 100
PORT_SHIFTS = 40


def recorded_ports() -> dict[str, int]:
    """Return the ports `sbx provision` chose, from $SBX_ROOT/ports (empty before it ran)."""
    ports: dict[str, int] = {}
    with contextlib.suppress(OSError, UnicodeDecodeError):
        for line in (sandbox_root() / PORTS_FILE).read_text(encoding="utf-8").splitlines():
            name, _, value = line.partition(" ")
            if value.strip().isdigit():
                ports[name] = int(value)
    return ports


def assigned_port(name: str) -> int:
    """Return the port for `name`: its $SBX_*_PORT, else the one provisioned, else the default."""
    for role, variable, default in PORTS:
        if role == name:
            if os.environ.get(variable, "").strip():
                return env_port(variable, default)
            return recorded_ports().get(name, default)
    raise SbxError(f"no port is assigned to {name!r}")


def _free_kernel_port(avoid: set[int]) -> int:
    """Ask the kernel for a free port on the loopback address, not one of `avoid`."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port not in avoid:
            return port


def choose_ports() -> tuple[dict[str, int], str]:
    """Pick the sandbox's ports; also say why any is not its default ("" when none).

    A port set by its variable must be free. The others keep their defaults when those are
    all free; else they move together by PORT_STEP until all are free (8180-8182, ...), and
    as a last resort take ports the kernel picks.
    """
    variables = {role: variable for role, variable, _ in PORTS}
    imposed = {
        role: env_port(variable, default)
        for role, variable, default in PORTS
        if os.environ.get(variable, "").strip()
    }
    owner: dict[int, str] = {}
    for role, port in imposed.items():
        if port in owner:
            raise SbxError(f"{variables[owner[port]]} and {variables[role]} both name port {port}")
        owner[port] = role
    for role, port in imposed.items():
        if port_in_use(port):
            raise SbxError(
                f"port {port} is already in use on {HOST}; free it, or unset {variables[role]} "
                "to let the sandbox pick a free port"
            )
    defaults = {role: default for role, _, default in PORTS if role not in imposed}
    for shift in range(0, PORT_STEP * PORT_SHIFTS, PORT_STEP):
        chosen = {role: default + shift for role, default in defaults.items()}
        if not set(chosen.values()) & owner.keys() and not any(map(port_in_use, chosen.values())):
            break
    else:
        chosen = {}
        for role in defaults:
            chosen[role] = _free_kernel_port({*owner, *chosen.values()})
    ports = {role: {**imposed, **chosen}[role] for role in variables}
    why = []
    if any(chosen[role] != default for role, default in defaults.items()):
        busy = [str(d) for d in defaults.values() if d in owner or port_in_use(d)]
        why.append(f"{', '.join(busy)} in use" if busy else "the defaults are in use")
    if any(imposed[role] != default for role, _, default in PORTS if role in imposed):
        why.append("set by " + ", ".join(variables[role] for role in imposed))
    return ports, f" ({'; '.join(why)})" if why else ""


def ports_line(ports: dict[str, int]) -> str:
    """Describe the sandbox's ports in one line."""
    names = {"frontdoor": "front door", "old": "old", "new": "new"}
    return ", ".join(f"{names.get(role, role)} {port}" for role, port in ports.items())


def sandbox_root() -> Path:
    """Return the folder holding all sandbox state ($SBX_ROOT, default sandbox/var)."""
    return Path(os.environ.get("SBX_ROOT") or SANDBOX / "var").expanduser().resolve()


def ensure_root() -> Path:
    """Create the sandbox root and mark it as ours, so teardown may remove it."""
    root = sandbox_root()
    root.mkdir(parents=True, exist_ok=True)
    (root / ROOT_MARKER).touch()
    return root


def _is_name(text: str) -> bool:
    return bool(text) and "/" not in text and text not in (".", "..") and not text.startswith("~")


def location(text: str) -> Path:
    """Resolve an installation given by path, or by bare name inside $SBX_ROOT (`new`)."""
    if _is_name(text):
        return sandbox_root() / text
    return Path(text).expanduser().resolve()


def backup_file(text: str) -> Path:
    """Resolve a backup file given by path, or by bare name in $SBX_ROOT/backups."""
    if _is_name(text):
        return sandbox_root() / "backups" / text
    return Path(text).expanduser().resolve()


def endpoint(text: str) -> Endpoint:
    """Accept an address, `frontdoor`, or an installation's name (its configured port)."""
    if text == "frontdoor":
        port = proxy_port()
        if port is None:
            raise SbxError("the front door is not running; start it with `sbx proxy start`")
        return Endpoint(HOST, port)
    if _is_name(text) and not text.isdigit() and ":" not in text:
        port = Install.open(text).port()
        if port is None:
            raise SbxError(f"{location(text)}/conf/app.conf names no [server] port")
        return Endpoint(HOST, port)
    return Endpoint.parse(text)


def known_versions() -> list[str]:
    """List the releases shipped with the sandbox, oldest first."""
    names = [p.name for p in RELEASES.iterdir() if (p / "server.py").is_file()]
    return sorted(names, key=lambda v: tuple(int(x) for x in v.split(".") if x.isdigit()))


class Install:
    """One installation directory of the app."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.conf_path = home / "conf" / "app.conf"
        self.log_path = home / "logs" / "app.log"
        self.pid_path = home / "run" / "app.pid"
        self.server_py = home / "app" / "server.py"

    @classmethod
    def open(cls, text: str) -> Install:
        """Open an existing installation, or explain why `text` is not one."""
        install = cls(location(text))
        if not (install.home / "VERSION").is_file() or not install.server_py.is_file():
            raise SbxError(
                f"{install.home} is not an app installation (no VERSION or app/server.py); "
                "create one with `sbx install VERSION DIR`"
            )
        return install

    @property
    def version(self) -> str:
        """Return the installed release."""
        return (self.home / "VERSION").read_text(encoding="utf-8").strip()

    @property
    def label(self) -> str:
        """Name the installation in messages."""
        return f"app {self.version} in {self.home}"

    def config(self) -> configparser.ConfigParser:
        """Parse the installation's configuration file."""
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(self.conf_path.read_text(encoding="utf-8"), str(self.conf_path))
        except (OSError, UnicodeDecodeError, configparser.Error) as exc:
            raise SbxError(f"cannot read configuration {self.conf_path}: {exc}") from None
        return parser

    def port(self) -> int | None:
        """Return the configured port, or None when the app itself must report the problem."""
        with contextlib.suppress(SbxError, ValueError):
            return int(self.config().get("server", "port", fallback=""))
        return None

    def database(self) -> Path:
        """Return the configured database path."""
        path = Path(self.config().get("database", "path", fallback="data/app.db"))
        return path if path.is_absolute() else self.home / path

    def pid(self) -> int | None:
        """Return the pid of the running app, or None."""
        return live_pid(self.pid_path, str(self.server_py))


def registered_installs(root: Path) -> list[Path]:
    """List installations made under this root, plus any directory inside it that holds one."""
    homes: list[Path] = []
    with contextlib.suppress(OSError):
        homes = [Path(line) for line in (root / REGISTRY).read_text().splitlines() if line]
    with contextlib.suppress(OSError):
        homes += sorted(p for p in root.iterdir() if (p / "VERSION").is_file())
    return [h for h in dict.fromkeys(homes) if (h / "VERSION").is_file()]


# ---- installation and life cycle -------------------------------------------------------


def install_release(version: str, home: Path, port: int) -> Install:
    """Copy a release into `home` and write its default configuration."""
    release = RELEASES / version
    if not (release / "server.py").is_file():
        available = ", ".join(known_versions())
        raise SbxError(f"unknown version {version!r}; available: {available}")
    if home.exists() and (not home.is_dir() or any(home.iterdir())):
        what = "an installation" if (home / "VERSION").exists() else "files"
        raise SbxError(f"{home} already holds {what}; install into a new, empty directory")
    (home / "app").mkdir(parents=True, exist_ok=True)
    for source in [*sorted((RELEASES / "common").glob("*.py")), release / "server.py"]:
        shutil.copy2(source, home / "app" / source.name)
    template = (release / "app.conf.default").read_text(encoding="utf-8")
    conf = template.replace("{version}", version).replace("{port}", str(port))
    write_atomic(home / "conf" / "app.conf", conf)
    for folder in ("data", "logs", "run"):
        (home / folder).mkdir(exist_ok=True)
    write_atomic(home / "VERSION", f"{version}\n")
    root = ensure_root()
    known = registered_installs(root)
    if home not in known:
        with (root / REGISTRY).open("a", encoding="utf-8") as fh:
            fh.write(f"{home}\n")
    return Install(home)


def log_size(path: Path) -> int:
    """Return the size of a log file, 0 when it does not exist yet."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def log_tail(path: Path, offset: int, count: int) -> list[str]:
    """Return the last `count` non-blank lines written to `path` after `offset`."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-count:]


def startup_failure(what: str, log_path: Path, offset: int, fallback: str) -> str:
    """Explain a failed start from what the process logged."""
    lines = log_tail(log_path, offset, 40)
    errors = [line.split(" ERROR ", 1)[1] for line in lines if " ERROR " in line]
    cause = errors[-1].removeprefix("cannot start: ") if errors else fallback
    tail = "\n".join(f"  {line}" for line in lines[-8:]) or "  (nothing)"
    return f"{what} did not start: {cause}\nlast lines of {log_path}:\n{tail}"


def start_app(install: Install, timeout: float) -> dict[str, Any]:
    """Start the app detached and wait until its health check answers from that very process."""
    pid = install.pid()
    if pid is not None:
        raise SbxError(f"{install.label} is already running (pid {pid})")
    port = install.port()
    if port is not None and port_in_use(port):
        raise SbxError(
            f"port {port} is already in use on {HOST}, so {install.label} cannot start; stop "
            f"what listens there (see `sbx status`) or change [server] port in "
            f"{install.conf_path}"
        )
    offset = log_size(install.log_path)
    proc = spawn_daemon([str(install.server_py), str(install.home)], install.log_path, install.home)
    deadline = time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is not None:
            fallback = f"it exited with status {code}"
            raise SbxError(startup_failure(install.label, install.log_path, offset, fallback))
        # The app writes its pid file only once it listens and its database is ready.
        if port is not None and install.pid() == proc.pid:
            with contextlib.suppress(SbxError):
                health = get_ok(Endpoint(HOST, port), "/health", timeout=2)
                if health.get("pid") == proc.pid:
                    return health
        if time.monotonic() > deadline:
            terminate(proc.pid, 5)
            fallback = f"no healthy answer within {timeout:g} s, so it was stopped"
            raise SbxError(startup_failure(install.label, install.log_path, offset, fallback))
        time.sleep(0.03)


def describe(health: dict[str, Any]) -> str:
    """Summarise a health answer in one line."""
    return (
        f"{health.get('status')}, version {health.get('version')}, schema "
        f"{health.get('schema')}, {health.get('records')} records, site {health.get('site')!r}"
    )


def cmd_install(args: argparse.Namespace) -> int:
    """Install a release into a new directory."""
    version: str = args.version
    port = args.port
    if port is None:
        port = assigned_port("old" if version == OLD_VERSION else "new")
    install = install_release(version, location(args.dir), port)
    print(f"installed {version} in {install.home}")
    print(f"configuration: {install.conf_path} (port {port})")
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    """Start an installation."""
    install = Install.open(args.dir)
    health = start_app(install, args.timeout)
    port = install.port()
    print(f"started {install.label} (pid {health['pid']}) on http://{HOST}:{port}")
    print(f"health: {describe(health)}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    """Stop an installation; status 3 when it was not running."""
    install = Install.open(args.dir)
    pid = install.pid()
    if pid is None:
        print(f"{install.label} is not running; nothing to stop")
        return EXIT_NOT_RUNNING
    if terminate(pid, args.timeout):
        print(f"stopped {install.label} (pid {pid})")
    else:
        install.pid_path.unlink(missing_ok=True)
        print(f"{install.label} (pid {pid}) ignored SIGTERM for {args.timeout:g} s; killed it")
    return 0


def status_line(install: Install) -> tuple[str, int]:
    """Describe one installation and return the matching exit status."""
    pid = install.pid()
    if pid is None:
        return f"{install.label}: stopped", EXIT_NOT_RUNNING
    where = f"http://{HOST}:{install.port()}"
    try:
        health = get_ok(Endpoint(HOST, install.port() or 0), "/health", timeout=3)
    except SbxError as exc:
        return f"{install.label}: running (pid {pid}) but unhealthy: {exc}", 1
    return f"{install.label}: running (pid {pid}) on {where}: {describe(health)}", 0


def cmd_status(args: argparse.Namespace) -> int:
    """Show one installation, or everything under the sandbox root."""
    if args.dir is not None:
        line, status = status_line(Install.open(args.dir))
        print(line)
        return status
    root = sandbox_root()
    installs = registered_installs(root)
    if not installs:
        print(f"no installations under {root}")
    for home in installs:
        print(status_line(Install(home))[0])
    print(proxy_status_line()[0])
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    """Print the end of an installation's log."""
    install = Install.open(args.dir)
    for line in log_tail(install.log_path, 0, args.lines):
        print(line)
    return 0


# ---- backup and restore ----------------------------------------------------------------


def snapshot_facts(db: sqlite3.Connection, where: str) -> tuple[int, int]:
    """Return (schema level, record count) of an app database, or explain why it is not one."""
    try:
        level = db.execute("SELECT level FROM schema_info").fetchone()
        count = db.execute("SELECT count(*) FROM records").fetchone()
    except sqlite3.Error as exc:
        raise SbxError(f"{where} is not an app database ({exc})") from None
    if level is None:
        raise SbxError(f"{where} is not an app database (empty schema_info)")
    return int(level[0]), int(count[0])


def cmd_backup(args: argparse.Namespace) -> int:
    """Dump the database to an SQL file, consistently even while the app runs."""
    install = Install.open(args.dir)
    database = install.database()
    if not database.is_file():
        raise SbxError(f"{install.label} has no database at {database} yet; nothing to back up")
    target = backup_file(args.file)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_dir():
        raise SbxError(f"{target} is a directory; give the backup a file name")
    source = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True, timeout=10)
    snapshot = sqlite3.connect(":memory:")
    try:
        # The online backup API copies one consistent state even while the app writes.
        source.backup(snapshot)
        level, count = snapshot_facts(snapshot, str(database))
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        header = (
            f"-- sbx backup of {install.home} (app {install.version}, schema {level}, "
            f"{count} records) taken {stamp}\n"
        )
        write_atomic(target, header + "\n".join(snapshot.iterdump()) + "\n")
    except sqlite3.Error as exc:
        raise SbxError(f"cannot back up {database}: {exc}") from None
    finally:
        source.close()
        snapshot.close()
    print(f"backed up {count} records (schema {level}) from {install.home} to {target}")
    return 0


def read_dump(path: Path) -> str:
    """Read a backup file and check that it is a complete SQL dump."""
    if not path.exists():
        raise SbxError(f"backup file {path} does not exist")
    if not path.is_file():
        raise SbxError(f"backup {path} is not a file")
    data = path.read_bytes()
    if data.startswith(b"SQLite format 3\0"):
        raise SbxError(f"{path} is an SQLite database file, not an SQL dump (see `sbx backup`)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SbxError(f"{path} is not an SQL dump (it is not text)") from None
    lines = [s for s in (raw.strip() for raw in text.splitlines()) if s and not s.startswith("--")]
    statements = [s for s in lines if not s.upper().startswith("PRAGMA")]
    if not statements or statements[0].upper() != "BEGIN TRANSACTION;":
        raise SbxError(f"{path} is not an SQL dump (it does not start with BEGIN TRANSACTION;)")
    if statements[-1].upper() != "COMMIT;":
        raise SbxError(f"{path} is incomplete (no COMMIT; at the end): was the backup cut short?")
    return text


def cmd_restore(args: argparse.Namespace) -> int:
    """Replace an installation's database with the content of an SQL dump."""
    install = Install.open(args.dir)
    pid = install.pid()
    if pid is not None:
        raise SbxError(
            f"{install.label} is running (pid {pid}); stop it first with `sbx stop "
            f"{install.home}`: replacing the database under a running app loses data"
        )
    source = backup_file(args.file)
    text = read_dump(source)
    database = install.database()
    database.parent.mkdir(parents=True, exist_ok=True)
    staging = database.with_name(f"{database.name}.restoring")
    staging.unlink(missing_ok=True)
    try:
        with contextlib.closing(sqlite3.connect(staging)) as db:
            db.executescript(text)
            level, count = snapshot_facts(db, f"the dump {source}")
    except sqlite3.Error as exc:
        staging.unlink(missing_ok=True)
        raise SbxError(f"{source} is not a valid SQL dump: {exc}") from None
    except SbxError:
        staging.unlink(missing_ok=True)
        raise
    # A leftover journal would be replayed onto the restored file: it belongs to the old one.
    for suffix in ("-journal", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    os.replace(staging, database)
    print(f"restored {count} records (schema {level}) from {source} into {install.home}")
    return 0


# ---- configuration ---------------------------------------------------------------------


def read_conf(text: str) -> tuple[Path, configparser.ConfigParser]:
    """Parse an installation's configuration, given the installation or the file itself."""
    path = location(text)
    if path.is_dir():
        path = path / "conf" / "app.conf"
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text(encoding="utf-8"), str(path))
    except FileNotFoundError:
        raise SbxError(f"configuration file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise SbxError(f"cannot read configuration {path}: {exc}") from None
    return path, parser


def cmd_config_diff(args: argparse.Namespace) -> int:
    """Show which settings differ between two configurations."""
    old_path, old = read_conf(args.old)
    new_path, new = read_conf(args.new)
    missing: list[str] = []
    lines: list[str] = []
    for section in old.sections():
        for key, value in old.items(section):
            name = f"[{section}] {key}"
            if not new.has_option(section, key):
                missing.append(name)
                lines.append(f"only in old: {name} = {value}")
            elif new.get(section, key) != value:
                lines.append(f"differs:     {name} = {value} (old) / {new.get(section, key)} (new)")
    for section in new.sections():
        for key, value in new.items(section):
            if not old.has_option(section, key):
                lines.append(f"only in new: [{section}] {key} = {value}")
    print(f"comparing {old_path} (old) with {new_path} (new)")
    print("\n".join(lines) if lines else "no differences")
    if args.check and missing:
        raise SbxError(f"{len(missing)} setting(s) of the old configuration missing from the new")
    return 0


# ---- the front door --------------------------------------------------------------------


def proxy_state() -> Path:
    """Return the front door's state folder."""
    return sandbox_root() / "proxy"


def proxy_pid() -> int | None:
    """Return the pid of the running front door, or None."""
    return live_pid(proxy_state() / FRONTDOOR_PID, str(FRONTDOOR))


def proxy_port() -> int | None:
    """Return the front door's port, or None."""
    with contextlib.suppress(OSError, ValueError):
        return int((proxy_state() / "port").read_text(encoding="ascii"))
    return None


def start_proxy(port: int, upstream: int, timeout: float) -> int:
    """Start the front door detached and return its pid once it answers."""
    pid = proxy_pid()
    if pid is not None:
        raise SbxError(
            f"the front door already runs on {HOST}:{proxy_port()} (pid {pid}); change its "
            "upstream with `sbx proxy switch PORT`"
        )
    if port_in_use(port):
        raise SbxError(
            f"port {port} is already in use on {HOST}, so the front door cannot listen there; "
            "choose another with --port or SBX_PROXY_PORT"
        )
    state = ensure_root() / "proxy"
    write_atomic(state / "port", f"{port}\n")
    write_atomic(state / UPSTREAM_FILE, f"{upstream}\n")
    log_path = state / FRONTDOOR_LOG
    offset = log_size(log_path)
    proc = spawn_daemon([str(FRONTDOOR), str(state), str(port)], log_path, state)
    deadline = time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is not None:
            fallback = f"it exited with status {code}"
            raise SbxError(startup_failure("the front door", log_path, offset, fallback))
        with contextlib.suppress(SbxError):
            if get_ok(Endpoint(HOST, port), STATUS_PATH, timeout=2).get("pid") == proc.pid:
                return proc.pid
        if time.monotonic() > deadline:
            terminate(proc.pid, 5)
            raise SbxError(startup_failure("the front door", log_path, offset, "no answer"))
        time.sleep(0.03)


def proxy_status_line() -> tuple[str, int]:
    """Describe the front door and return the matching exit status."""
    pid = proxy_pid()
    if pid is None:
        return "front door: not running", EXIT_NOT_RUNNING
    upstream = read_upstream(proxy_state())
    head = f"front door: http://{HOST}:{proxy_port()} (pid {pid}) routes to {HOST}:{upstream}"
    try:
        health = get_ok(Endpoint(HOST, upstream or 0), "/health", timeout=3)
    except SbxError as exc:
        return f"{head}, which is down: {exc}", 0
    return f"{head}: {describe(health)}", 0


def cmd_proxy_start(args: argparse.Namespace) -> int:
    """Start the front door."""
    port = args.port if args.port is not None else assigned_port("frontdoor")
    upstream = args.upstream if args.upstream is not None else assigned_port("old")
    pid = start_proxy(port, upstream, args.timeout)
    print(f"front door listening on http://{HOST}:{port} (pid {pid}), routing to {HOST}:{upstream}")
    return 0


def cmd_proxy_switch(args: argparse.Namespace) -> int:
    """Point the front door at another upstream port."""
    if proxy_pid() is None:
        raise SbxError("the front door is not running; start it with `sbx proxy start`")
    previous = read_upstream(proxy_state())
    port = endpoint(args.port).port
    write_atomic(proxy_state() / UPSTREAM_FILE, f"{port}\n")
    print(f"front door now routes to {HOST}:{port} (was {HOST}:{previous})")
    try:
        health = get_ok(Endpoint(HOST, port), "/health", timeout=3)
    except SbxError as exc:
        print(f"sbx: warning: {exc}; requests through the front door get 502 until it answers")
    else:
        print(f"upstream health: {describe(health)}")
    return 0


def cmd_proxy_status(args: argparse.Namespace) -> int:
    """Show where the front door routes."""
    line, status = proxy_status_line()
    print(line)
    return status


def cmd_proxy_stop(args: argparse.Namespace) -> int:
    """Stop the front door; status 3 when it was not running."""
    pid = proxy_pid()
    if pid is None:
        print("the front door is not running; nothing to stop")
        return EXIT_NOT_RUNNING
    terminate(pid, args.timeout)
    print(f"stopped the front door (pid {pid})")
    return 0


# ---- the rehearsal as a whole ----------------------------------------------------------


def add_records(where: Endpoint, titles: list[str]) -> None:
    """Create one record per title through the API, as users would."""
    for title in titles:
        payload = {"title": title, "body": f"entered via {where}"}
        status, data = request_json(where, "POST", "/api/records", payload)
        if status != 201:
            detail = data.get("error") if isinstance(data, dict) else data
            raise SbxError(f"{where}/api/records answered {status}: {detail}")


def cmd_provision(args: argparse.Namespace) -> int:
    """Set up the old installation, running with sample data behind the front door."""
    root = sandbox_root()
    home = root / "old"
    if home.exists():
        raise SbxError(
            f"the sandbox at {root} is already provisioned ({home} exists); run `sbx teardown` "
            "first to start over"
        )
    ports, why = choose_ports()
    print(f"ports: {ports_line(ports)}{why}", flush=True)
    app_port, front_port = ports["old"], ports["frontdoor"]
    write_atomic(
        ensure_root() / PORTS_FILE, "".join(f"{role} {port}\n" for role, port in ports.items())
    )
    install = install_release(OLD_VERSION, home, app_port)
    text = install.conf_path.read_text(encoding="utf-8")
    write_atomic(install.conf_path, text[: text.index("[site]\n")] + CUSTOM_SITE)
    start_app(install, args.timeout)
    titles = [
        f"{GOODS[i % len(GOODS)]} for {PLACES[i % len(PLACES)]} #{i + 1:03d}"
        for i in range(args.records)
    ]
    where = Endpoint(HOST, app_port)
    add_records(where, titles)
    health = get_ok(where, "/health")
    pid = start_proxy(front_port, app_port, args.timeout)
    print(f"provisioned {install.label} (pid {health['pid']}) on {where}")
    print(f"health: {describe(health)}")
    print(f"customised configuration: {install.conf_path} ([site] section)")
    print(f"front door: http://{HOST}:{front_port} (pid {pid}) routes to {HOST}:{app_port}")
    return 0


def cmd_teardown(args: argparse.Namespace) -> int:
    """Stop every sandbox process and remove the sandbox root."""
    root = sandbox_root()
    if not root.exists():
        print(f"nothing to tear down: {root} does not exist")
        return 0
    if not (root / ROOT_MARKER).exists() and any(root.iterdir()):
        raise SbxError(f"{root} has no {ROOT_MARKER} marker: not a sandbox root, not removing it")
    # The front door goes first so that no request reaches an app that is stopping.
    targets: list[tuple[str, int]] = []
    pid = proxy_pid()
    if pid is not None:
        targets.append(("the front door", pid))
    for home in registered_installs(root):
        install = Install(home)
        pid = install.pid()
        if pid is not None:
            targets.append((install.label, pid))
        if not home.is_relative_to(root):
            print(f"leaving {home} in place: it is outside {root}")
    clean = terminate_all([pid for _, pid in targets], args.timeout)
    for (label, pid), ok in zip(targets, clean, strict=True):
        print(f"stopped {label} (pid {pid})" if ok else f"killed {label} (pid {pid})")
    stopped = len(targets)
    shutil.rmtree(root)
    print(f"removed {root} ({stopped} process(es) stopped)")
    return 0


# ---- client checks ---------------------------------------------------------------------


def cmd_health(args: argparse.Namespace) -> int:
    """Check an app's health against the given expectations."""
    where = endpoint(args.url)
    deadline = time.monotonic() + args.wait
    while True:
        try:
            health = get_ok(where, "/health")
            wanted = [
                ("status", "ok"),
                ("version", args.expect_version),
                ("schema", args.expect_schema),
                ("site", args.expect_site),
            ]
            wrong = [
                f"expected {key} {value!r}, found {health.get(key)!r}"
                for key, value in wanted
                if value is not None and health.get(key) != value
            ]
            if wrong:
                raise SbxError(f"{where}: " + "; ".join(wrong))
            break
        except SbxError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)
    print(f"{where}: {describe(health)}")
    return 0


def cmd_count(args: argparse.Namespace) -> int:
    """Print the number of records, optionally checking it."""
    where = endpoint(args.url)
    count = get_ok(where, "/api/records/count").get("count")
    if args.expect is not None and count != args.expect:
        raise SbxError(f"{where}: expected {args.expect} records, found {count}")
    print(count)
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    """Create records through the API, as live users would."""
    where = endpoint(args.url)
    stamp = datetime.now(UTC).strftime("%H:%M:%S")
    add_records(where, [f"{args.title} {stamp} #{i + 1}" for i in range(args.count)])
    total = get_ok(where, "/api/records/count").get("count")
    print(f"added {args.count} records at {where} (now {total})")
    return 0


# ---- argument parsing ------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """Argument parser whose errors read `sbx: error: ...` at every level."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"sbx: error: {message}\n")


def port_arg(text: str) -> int:
    """Parse a port number argument."""
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number")
    return int(text)


def count_arg(text: str) -> int:
    """Parse a non-negative count argument."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number")
    return int(text)


def cmd_dump_count(args: argparse.Namespace) -> int:
    """Print how many records a dump holds."""
    source = backup_file(args.file)
    text = read_dump(source)
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        try:
            db.executescript(text)
        except sqlite3.Error as exc:
            raise SbxError(f"{source} is not a valid SQL dump: {exc}") from None
        _, count = snapshot_facts(db, f"the dump {source}")
    print(count)
    return 0


def port_of(text: str) -> int:
    """Return a port given as a number, an installation's name or `frontdoor`.

    `old`, `new` and `frontdoor` name their assigned port (see `sbx ports`) until the
    installation exists or the front door runs.
    """
    if text.isdigit():
        return int(text)
    if text == "frontdoor":
        running = proxy_port() if proxy_pid() is not None else None
        return running if running is not None else assigned_port(text)
    if text in ("old", "new") and not (location(text) / "VERSION").is_file():
        return assigned_port(text)
    return endpoint(text).port


def cmd_check_port(args: argparse.Namespace) -> int:
    """Fail clearly when a port (or an installation's port) is taken."""
    port = port_of(args.port)
    if port_in_use(port):
        raise SbxError(f"port {port} is already in use; stop what listens there or pick another")
    print(f"port {port} is free")
    return 0


def cmd_ports(args: argparse.Namespace) -> int:
    """Print the port of each part of the sandbox."""
    print(ports_line({role: assigned_port(role) for role, _, _ in PORTS}))
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    """Delete a stopped installation made by `sbx install`."""
    install = Install.open(args.dir)
    pid = install.pid()
    if pid is not None:
        raise SbxError(f"{install.label} is running (pid {pid}); stop it first with `sbx stop`")
    root = sandbox_root()
    if root not in install.home.parents:
        raise SbxError(f"{install.home} is outside the sandbox root {root}; remove it yourself")
    shutil.rmtree(install.home)
    print(f"removed {install.home}")
    return 0


def cmd_path(args: argparse.Namespace) -> int:
    """Print where an installation (or the sandbox root) lives."""
    print(location(args.name) if args.name else sandbox_root())
    return 0


def build_parser() -> Parser:
    """Describe the command line."""
    parser = Parser(
        prog="sbx",
        description="Rehearsal sandbox: a small app in two releases, its database and a front "
        "door, all on 127.0.0.1. State lives in $SBX_ROOT (default: sandbox/var).",
        epilog="Exit status: 0 done, 1 error, 2 usage error, 3 not running.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable[[argparse.Namespace], int], text: str) -> Parser:
        p: Parser = sub.add_parser(name, help=text, description=text)
        p.set_defaults(func=func)
        return p

    p = command("install", cmd_install, "install a release into a new directory")
    p.add_argument("version", metavar="VERSION", help=f"one of {', '.join(known_versions())}")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--port", type=port_arg, help="port to configure (default by release)")
    p = command("start", cmd_start, "start an installation and wait until it is healthy")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds (default 20)")
    p = command("stop", cmd_stop, "stop an installation (status 3 if it was not running)")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds before SIGKILL")
    p = command("status", cmd_status, "show an installation (status 3 if stopped), or all")
    p.add_argument("dir", metavar="DIR", nargs="?")
    p = command("logs", cmd_logs, "print the last lines of an installation's log")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("-n", "--lines", type=count_arg, default=20)
    p = command("backup", cmd_backup, "write a consistent SQL dump of the database")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("file", metavar="FILE")
    p = command("restore", cmd_restore, "replace the database with an SQL dump (app stopped)")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("file", metavar="FILE")

    p = command("config", cmd_config_diff, "compare configurations: config diff OLD NEW")
    config = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    d = config.add_parser("diff", help="show settings that differ between two installations")
    d.add_argument("old", metavar="OLD", help="installation directory or configuration file")
    d.add_argument("new", metavar="NEW", help="installation directory or configuration file")
    d.add_argument("--check", action="store_true", help="fail if a setting of OLD is missing")
    d.set_defaults(func=cmd_config_diff)

    p = command("proxy", cmd_proxy_status, "the front door: proxy start|switch|status|stop")
    proxy = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    s = proxy.add_parser("start", help="start the front door")
    s.set_defaults(func=cmd_proxy_start)
    s.add_argument("--port", type=port_arg, help="listen port (default: see `sbx ports`)")
    s.add_argument("--upstream", type=port_arg, help="app port (default: old's, see `sbx ports`)")
    s.add_argument("--timeout", type=float, default=10.0)
    s = proxy.add_parser("switch", help="route the next requests to another port")
    s.set_defaults(func=cmd_proxy_switch)
    s.add_argument("port", metavar="PORT", help="a port, or an installation's name (new)")
    proxy.add_parser("status", help="show where the front door routes").set_defaults(
        func=cmd_proxy_status
    )
    s = proxy.add_parser("stop", help="stop the front door (status 3 if not running)")
    s.set_defaults(func=cmd_proxy_stop)
    s.add_argument("--timeout", type=float, default=10.0)

    p = command("dump-count", cmd_dump_count, "print how many records a dump holds")
    p.add_argument("file", metavar="FILE")
    p = command("check-port", cmd_check_port, "fail if a port (or an installation's) is taken")
    p.add_argument(
        "port", metavar="PORT", help="a port, or old, new or frontdoor (their assigned port)"
    )
    command("ports", cmd_ports, "print the ports of the front door, old and new")
    p = command("remove", cmd_remove, "delete a stopped installation")
    p.add_argument("dir", metavar="DIR")
    p = command("path", cmd_path, "print an installation's folder, or the sandbox root")
    p.add_argument("name", metavar="NAME", nargs="?")

    p = command("provision", cmd_provision, "set up the running old installation and front door")
    p.add_argument("--records", type=count_arg, default=50, help="sample records (default 50)")
    p.add_argument("--timeout", type=float, default=20.0)
    p = command("teardown", cmd_teardown, "stop everything and remove $SBX_ROOT")
    p.add_argument("--timeout", type=float, default=10.0)

    p = command("health", cmd_health, "check an app's health, optionally against expectations")
    p.add_argument(
        "url",
        metavar="URL",
        help="an installation name (new), frontdoor, PORT, HOST:PORT or http://HOST:PORT",
    )
    p.add_argument("--expect-version")
    p.add_argument("--expect-schema", type=int)
    p.add_argument("--expect-site")
    p.add_argument("--wait", type=float, default=0.0, help="keep trying for this many seconds")
    p = command("count", cmd_count, "print the number of records")
    p.add_argument("url", metavar="URL")
    p.add_argument("--expect", type=count_arg, help="fail unless the count is exactly this")
    p = command("add", cmd_add, "create N records through the API, as live users would")
    p.add_argument("url", metavar="URL")
    p.add_argument("count", metavar="N", type=count_arg)
    p.add_argument("--title", default="Live record", help="title prefix")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one sbx command and return its exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SbxError as exc:
        print(f"sbx: error: {exc}", file=sys.stderr)
        return exc.status
    except OSError as exc:
        print(f"sbx: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sbx: interrupted", file=sys.stderr)
        return 130
