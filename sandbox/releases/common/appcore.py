"""Core shared by every release of the sandbox app: settings, database, HTTP API, lifecycle.

A release module describes only what differs between versions (a `Release`) and calls
`run()`. `sbx install` copies this file next to the release's `server.py`.
"""

from __future__ import annotations

import configparser
import errno
import json
import logging
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

CONF_FILE = Path("conf") / "app.conf"
LOG_FILE = Path("logs") / "app.log"
PID_FILE = Path("run") / "app.pid"
HOST = "127.0.0.1"
MAX_BODY = 1 << 20
MAX_TITLE = 200


class StartupError(Exception):
    """Keep the app from starting; the message tells the operator what to fix."""


@dataclass(frozen=True)
class Settings:
    """Validated settings of one installation."""

    conf_path: Path
    port: int
    database: Path
    site_name: str
    page_size: int


Migration = Callable[[sqlite3.Connection, Settings], str]


@dataclass(frozen=True)
class Release:
    """What one version of the app adds to the shared core."""

    version: str
    schema: int
    create: Callable[[sqlite3.Connection], None]
    insert: Callable[[sqlite3.Connection, str, str], int]
    columns: tuple[str, ...]
    migrations: dict[int, Migration]
    required: tuple[tuple[str, str], ...] = ()


def now() -> str:
    """Return the current UTC time as an ISO 8601 string."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def load_settings(home: Path, release: Release) -> Settings:
    """Read and validate `conf/app.conf` of the installation at `home`."""
    path = home / CONF_FILE
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    except FileNotFoundError:
        raise StartupError(f"configuration file {path} is missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StartupError(f"cannot read configuration file {path}: {exc}") from None
    except configparser.Error as exc:
        raise StartupError(f"{path} is not a valid configuration file: {exc}") from None
    for section, key in release.required:
        if not parser.get(section, key, fallback="").strip():
            raise StartupError(
                f"setting '{key}' in section [{section}] is missing from {path}; version "
                f"{release.version} requires it (carry it over from the previous "
                "installation's configuration)"
            )
    database = Path(parser.get("database", "path", fallback="data/app.db"))
    return Settings(
        conf_path=path,
        port=_int_setting(parser, path, "server", "port", None, 1, 65535),
        database=database if database.is_absolute() else home / database,
        site_name=parser.get("site", "name", fallback="Unnamed site").strip(),
        page_size=_int_setting(parser, path, "records", "page_size", 100, 1, 1000),
    )


def _int_setting(
    parser: configparser.ConfigParser,
    path: Path,
    section: str,
    key: str,
    default: int | None,
    low: int,
    high: int,
) -> int:
    raw = parser.get(section, key, fallback=None)
    if raw is None:
        if default is None:
            raise StartupError(f"setting '{key}' in section [{section}] is missing from {path}")
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise StartupError(
            f"setting '{key}' in section [{section}] of {path} must be a number from "
            f"{low} to {high}, not {raw!r}"
        )
    return value


class App:
    """The running application: one database connection shared by request threads."""

    def __init__(self, release: Release, settings: Settings, log: logging.Logger) -> None:
        self.release = release
        self.settings = settings
        self.log = log
        self.lock = threading.Lock()
        self.db = open_database(release, settings, log)

    def close(self) -> None:
        """Close the database."""
        with self.lock:
            self.db.close()

    def count(self) -> int:
        """Return the number of records."""
        with self.lock:
            row = self.db.execute("SELECT count(*) FROM records").fetchone()
        return int(row[0])

    def health(self) -> dict[str, Any]:
        """Describe this process for monitoring and for `sbx start`."""
        return {
            "status": "ok",
            "version": self.release.version,
            "schema": self.release.schema,
            "records": self.count(),
            "site": self.settings.site_name,
            "pid": os.getpid(),
        }

    def records(self, limit: int, offset: int) -> list[dict[str, Any]]:
        """Return records in id order."""
        columns = ", ".join(self.release.columns)
        with self.lock:
            rows = self.db.execute(
                f"SELECT {columns} FROM records ORDER BY id LIMIT ? OFFSET ?", (limit, offset)
            ).fetchall()
        return [dict(zip(self.release.columns, row, strict=True)) for row in rows]

    def create(self, title: str, body: str) -> dict[str, Any]:
        """Insert one record and return it as stored."""
        columns = ", ".join(self.release.columns)
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                record_id = self.release.insert(self.db, title, body)
                row = self.db.execute(
                    f"SELECT {columns} FROM records WHERE id = ?", (record_id,)
                ).fetchone()
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return dict(zip(self.release.columns, row, strict=True))


def open_database(release: Release, settings: Settings, log: logging.Logger) -> sqlite3.Connection:
    """Open the database, creating or migrating its schema to the release's level."""
    path = settings.database
    path.parent.mkdir(parents=True, exist_ok=True)
    # Autocommit mode: transactions are explicit so a migration is all or nothing.
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
    try:
        level = schema_level(db, path)
        if level is None:
            db.execute("BEGIN IMMEDIATE")
            db.execute("CREATE TABLE schema_info (level INTEGER NOT NULL)")
            release.create(db)
            db.execute("INSERT INTO schema_info (level) VALUES (?)", (release.schema,))
            db.execute("COMMIT")
            log.info("created database schema %d in %s", release.schema, path)
        elif level > release.schema:
            raise StartupError(
                f"database {path} has schema {level}, newer than version {release.version} "
                f"knows (schema {release.schema}); refusing to start so the data is not "
                "damaged: use a release that knows that schema, or restore an older backup"
            )
        else:
            migrate(db, release, settings, level, log)
    except sqlite3.DatabaseError as exc:
        db.close()
        raise StartupError(f"cannot use database {path}: {exc}") from None
    except BaseException:
        db.close()
        raise
    return db


def schema_level(db: sqlite3.Connection, path: Path) -> int | None:
    """Return the database's schema level, or None when the database is empty."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables:
        return None
    if "schema_info" not in tables:
        raise StartupError(f"database {path} has no schema_info table: it is not this app's")
    rows = db.execute("SELECT level FROM schema_info").fetchall()
    if len(rows) != 1 or not isinstance(rows[0][0], int):
        raise StartupError(f"database {path} has a damaged schema_info table ({rows!r})")
    return int(rows[0][0])


def migrate(
    db: sqlite3.Connection, release: Release, settings: Settings, level: int, log: logging.Logger
) -> None:
    """Apply the release's migrations one level at a time, each in its own transaction."""
    while level < release.schema:
        step = release.migrations.get(level)
        if step is None:
            raise StartupError(
                f"version {release.version} cannot migrate database schema {level} "
                f"of {settings.database}"
            )
        db.execute("BEGIN IMMEDIATE")
        try:
            detail = step(db, settings)
            db.execute("UPDATE schema_info SET level = ?", (level + 1,))
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            db.execute("ROLLBACK")
            raise StartupError(
                f"migrating database schema from {level} to {level + 1} failed: {exc}; "
                "the database is unchanged"
            ) from None
        log.info("migrated database schema from %d to %d: %s", level, level + 1, detail)
        level += 1


class AppServer(ThreadingHTTPServer):
    """HTTP server whose shutdown waits for requests in flight."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, app: App, port: int) -> None:
        self.app = app
        super().__init__((HOST, port), Handler)


class Handler(BaseHTTPRequestHandler):
    """The JSON API."""

    server: AppServer
    protocol_version = "HTTP/1.0"
    # A client that stops mid-request must not hold up a shutdown forever.
    timeout = 10

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        app = self.server.app
        if url.path == "/health":
            self.reply(HTTPStatus.OK, app.health())
        elif url.path == "/api/records/count":
            self.reply(HTTPStatus.OK, {"count": app.count()})
        elif url.path == "/api/records":
            query = parse_qs(url.query)
            try:
                limit = int(query.get("limit", [str(app.settings.page_size)])[0])
                offset = int(query.get("offset", ["0"])[0])
            except ValueError:
                self.reply(HTTPStatus.BAD_REQUEST, {"error": "limit and offset must be numbers"})
                return
            limit = max(0, min(limit, 1000))
            records = app.records(limit, max(0, offset))
            self.reply(HTTPStatus.OK, {"records": records, "count": app.count()})
        else:
            self.reply(HTTPStatus.NOT_FOUND, {"error": f"no such resource: {url.path}"})

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/api/records":
            self.reply(HTTPStatus.NOT_FOUND, {"error": "only POST /api/records is supported"})
            return
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY:
            self.reply(HTTPStatus.BAD_REQUEST, {"error": "send a JSON body up to 1 MiB"})
            return
        try:
            data = json.loads(self.rfile.read(length))
        except (ValueError, UnicodeDecodeError):
            self.reply(HTTPStatus.BAD_REQUEST, {"error": "the body is not valid JSON"})
            return
        title = data.get("title") if isinstance(data, dict) else None
        body = data.get("body", "") if isinstance(data, dict) else None
        if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE:
            message = f"'title' must be a non-empty string of at most {MAX_TITLE} characters"
            self.reply(HTTPStatus.BAD_REQUEST, {"error": message})
            return
        if not isinstance(body, str):
            self.reply(HTTPStatus.BAD_REQUEST, {"error": "'body' must be a string"})
            return
        self.reply(HTTPStatus.CREATED, self.server.app.create(title.strip(), body))

    def do_PUT(self) -> None:
        self.reply(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "method not allowed"})

    do_DELETE = do_PUT

    def reply(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        """Send `payload` as a JSON response."""
        data = json.dumps(payload).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except sqlite3.Error as exc:
            self.server.app.log.error("database error on %s %s: %s", self.command, self.path, exc)
            # Replies are built before anything is sent, so the client still gets a status.
            self.reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"database error: {exc}"})

    def version_string(self) -> str:
        return f"sbx-app/{self.server.app.release.version}"

    def log_message(self, format: str, *args: Any) -> None:
        self.server.app.log.info("%s %s", self.address_string(), format % args)


def setup_logging(home: Path) -> logging.Logger:
    """Log to the installation's log file (and to a terminal when there is one)."""
    path = home / LOG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    log = logging.getLogger("app")
    log.setLevel(logging.INFO)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    handlers: list[logging.Handler] = [logging.FileHandler(path, encoding="utf-8")]
    if sys.stderr.isatty():
        handlers.append(logging.StreamHandler())
    for handler in handlers:
        handler.setFormatter(formatter)
        log.addHandler(handler)
    return log


def bind(app: App, port: int) -> AppServer:
    """Listen on the configured port, translating the usual failures."""
    try:
        return AppServer(app, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"port {port} is already in use on {HOST}: another server (perhaps another "
                f"installation) listens there; stop it or change [server] port in "
                f"{app.settings.conf_path}"
            ) from None
        raise StartupError(f"cannot listen on {HOST}:{port}: {exc.strerror}") from None


def write_pid(path: Path) -> None:
    """Write this process's pid atomically, so a reader never sees half a number."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(f"{os.getpid()}\n", encoding="ascii")
    os.replace(tmp, path)


def remove_pid(path: Path) -> None:
    """Remove the pid file if it is still ours."""
    try:
        if path.read_text(encoding="ascii").strip() == str(os.getpid()):
            path.unlink()
    except OSError:
        pass


def run(release: Release, argv: Sequence[str] | None = None) -> int:
    """Serve the installation whose home is the first argument until SIGTERM or SIGINT."""
    args = list(sys.argv[1:] if argv is None else argv)
    home = Path(args[0]).resolve() if args else Path(__file__).resolve().parent.parent
    log = setup_logging(home)
    log.info("app %s starting in %s (pid %d)", release.version, home, os.getpid())
    app: App | None = None
    try:
        settings = load_settings(home, release)
        app = App(release, settings, log)
        server = bind(app, settings.port)
    except StartupError as exc:
        log.error("cannot start: %s", exc)
        if app is not None:
            app.close()
        return 1

    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if not stopping.is_set():
            stopping.set()
            log.info(
                "received %s: finishing requests and shutting down", signal.Signals(signum).name
            )
            # shutdown() waits for serve_forever(), which runs in this very thread.
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    pid_path = home / PID_FILE
    write_pid(pid_path)
    log.info(
        "listening on http://%s:%d (version %s, schema %d, %d records, site %r)",
        HOST,
        settings.port,
        release.version,
        release.schema,
        app.count(),
        settings.site_name,
    )
    try:
        server.serve_forever(poll_interval=0.05)
    finally:
        server.server_close()
        app.close()
        remove_pid(pid_path)
        log.info("stopped cleanly: database closed, pid file removed")
    return 0
