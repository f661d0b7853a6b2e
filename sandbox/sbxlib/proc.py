"""Process, file and HTTP helpers shared by the sbx commands."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HOST = "127.0.0.1"


class SbxError(Exception):
    """A failure to report as `sbx: error: ...` with an exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` so that readers see the old or the new content, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def pid_alive(pid: int) -> bool:
    """Tell whether `pid` is a live process (a zombie awaiting its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    # The state follows the parenthesised command name, which may itself contain ")".
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def pid_runs(pid: int, marker: str) -> bool:
    """Tell whether `pid` is alive and its command line contains `marker` (guards pid reuse)."""
    if not pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return True
    return marker in cmdline


def live_pid(pid_file: Path, marker: str) -> int | None:
    """Return the pid recorded in `pid_file` if it still runs `marker`; drop a stale file."""
    try:
        text = pid_file.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if text.isdigit() and pid_runs(int(text), marker):
        return int(text)
    pid_file.unlink(missing_ok=True)
    return None


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait until `pid` has exited; return False on timeout."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def terminate(pid: int, timeout: float) -> bool:
    """Send SIGTERM, then SIGKILL after `timeout`; return True when the stop was clean."""
    return terminate_all([pid], timeout)[0]


def terminate_all(pids: list[int], timeout: float) -> list[bool]:
    """Stop several processes at once (SIGTERM to all first); report which stopped cleanly."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    clean = [wait_gone(pid, max(0.0, deadline - time.monotonic())) for pid in pids]
    for pid, ok in zip(pids, clean, strict=True):
        if not ok:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_gone(pid, 5)
    return clean


def port_in_use(port: int) -> bool:
    """Tell whether something already listens on (or holds) 127.0.0.1:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same option the servers use, so a port in TIME_WAIT does not count as taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def spawn_daemon(argv: list[str], log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """Start a detached process: own session, no terminal, output appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )


@dataclass(frozen=True)
class Endpoint:
    """Where an HTTP service answers."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """Accept `8082`, `127.0.0.1:8082` or `http://127.0.0.1:8082/`."""
        raw = text.strip()
        if raw.isdigit():
            raw = f"{HOST}:{raw}"
        if "://" not in raw:
            raw = f"http://{raw}"
        url = urlsplit(raw)
        try:
            port = url.port or 80
        except ValueError:
            port = 0
        if url.scheme != "http" or not url.hostname or not 0 < port < 65536:
            raise SbxError(f"{text!r} is not an address: use PORT, HOST:PORT or http://HOST:PORT")
        return cls(url.hostname, port)

    def __str__(self) -> str:
        return f"http://{self.host}:{self.port}"


def request_json(
    where: Endpoint, method: str, path: str, payload: Any = None, timeout: float = 5.0
) -> tuple[int, Any]:
    """Make one HTTP request and decode the JSON answer (proxy settings are ignored on purpose)."""
    conn = http.client.HTTPConnection(where.host, where.port, timeout=timeout)
    body = None if payload is None else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"} if body is not None else {}
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        status, data = response.status, response.read()
    except ConnectionRefusedError:
        raise SbxError(f"nothing answers at {where} (connection refused)") from None
    except TimeoutError:
        raise SbxError(f"{where}{path} did not answer within {timeout:g} s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise SbxError(f"{where}{path} failed: {exc}") from None
    finally:
        conn.close()
    try:
        return status, json.loads(data)
    except ValueError:
        snippet = data[:200].decode(errors="replace")
        raise SbxError(f"{where}{path} answered {status} with a non-JSON body: {snippet}") from None


def get_ok(where: Endpoint, path: str, timeout: float = 5.0) -> dict[str, Any]:
    """GET `path` and return its JSON object, failing on any non-200 answer."""
    status, data = request_json(where, "GET", path, timeout=timeout)
    if status != 200 or not isinstance(data, dict):
        detail = data.get("error") if isinstance(data, dict) else data
        raise SbxError(f"{where}{path} answered {status}: {detail}")
    return data
