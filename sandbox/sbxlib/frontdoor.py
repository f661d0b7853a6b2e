"""The front door: a small threaded reverse proxy on 127.0.0.1 (run by `sbx proxy start`).

The upstream port is read from a file on every request, so `sbx proxy switch` takes
effect for the next request without a restart.

Usage: frontdoor.py STATE_DIR PORT
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import signal
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

HOST = "127.0.0.1"
STATUS_PATH = "/__frontdoor__"
UPSTREAM_FILE = "upstream"
PID_FILE = "frontdoor.pid"
LOG_FILE = "frontdoor.log"
UPSTREAM_TIMEOUT = 30.0
MAX_BODY = 16 << 20
# Headers that describe one connection, not the message (RFC 9110, section 7.6.1).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


def read_upstream(state: Path) -> int | None:
    """Return the current upstream port, or None when the file is missing or garbled."""
    try:
        text = (state / UPSTREAM_FILE).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() and 0 < int(text) < 65536 else None


class FrontDoor(ThreadingHTTPServer):
    """Proxy server whose shutdown waits for requests in flight."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, state: Path, port: int, log: logging.Logger) -> None:
        self.state = state
        self.log = log
        super().__init__((HOST, port), Handler)


class Handler(BaseHTTPRequestHandler):
    """Forward every request to the current upstream."""

    server: FrontDoor
    protocol_version = "HTTP/1.0"
    server_version = "sbx-frontdoor"
    # A client that stops mid-request must not hold up a shutdown forever.
    timeout = 10

    def forward(self) -> None:
        """Relay this request upstream and the answer back, or answer 502."""
        upstream = read_upstream(self.server.state)
        if self.path == STATUS_PATH:
            self.reply(HTTPStatus.OK, {"pid": os.getpid(), "upstream": upstream})
            return
        if upstream is None:
            self.bad_gateway("no upstream is configured (see `sbx proxy switch`)", None)
            return
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.reply(HTTPStatus.BAD_REQUEST, {"error": "bad or too large Content-Length"})
            return
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Host"] = f"{HOST}:{upstream}"
        headers["X-Forwarded-For"] = self.client_address[0]
        conn = http.client.HTTPConnection(HOST, upstream, timeout=UPSTREAM_TIMEOUT)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except ConnectionRefusedError:
            self.bad_gateway("connection refused", upstream)
            return
        except TimeoutError:
            self.bad_gateway(f"no answer within {UPSTREAM_TIMEOUT:g} s", upstream)
            return
        except (OSError, http.client.HTTPException) as exc:
            self.bad_gateway(str(exc) or type(exc).__name__, upstream)
            return
        finally:
            conn.close()
        self.send_response(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() not in HOP_BY_HOP | {"content-length", "server", "date"}:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Sbx-Upstream", f"{HOST}:{upstream}")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = forward

    def bad_gateway(self, reason: str, upstream: int | None) -> None:
        """Answer 502, saying which upstream failed and how."""
        where = f"upstream {HOST}:{upstream}" if upstream else "front door"
        self.server.log.warning("502 for %s %s: %s: %s", self.command, self.path, where, reason)
        self.reply(
            HTTPStatus.BAD_GATEWAY,
            {
                "error": f"bad gateway: {where} is not answering ({reason})",
                "upstream": f"{HOST}:{upstream}" if upstream else None,
            },
        )

    def reply(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        """Send `payload` as a JSON response of the front door itself."""
        data = json.dumps(payload).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        upstream = read_upstream(self.server.state)
        self.server.log.info("%s -> %s: %s", self.address_string(), upstream, format % args)


def main(argv: list[str]) -> int:
    """Serve until SIGTERM or SIGINT."""
    if len(argv) != 2 or not argv[1].isdigit():
        print("usage: frontdoor.py STATE_DIR PORT", file=sys.stderr)
        return 2
    state, port = Path(argv[0]).resolve(), int(argv[1])
    state.mkdir(parents=True, exist_ok=True)
    log = logging.getLogger("frontdoor")
    log.setLevel(logging.INFO)
    handler = logging.FileHandler(state / LOG_FILE, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    try:
        server = FrontDoor(state, port, log)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", HOST, port, exc.strerror)
        return 1
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if not stopping.is_set():
            stopping.set()
            log.info("received %s: shutting down", signal.Signals(signum).name)
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    pid_path = state / PID_FILE
    tmp = state / f".{PID_FILE}.{os.getpid()}"
    tmp.write_text(f"{os.getpid()}\n", encoding="ascii")
    os.replace(tmp, pid_path)
    log.info("listening on http://%s:%d, upstream %s", HOST, port, read_upstream(state))
    try:
        server.serve_forever(poll_interval=0.05)
    finally:
        server.server_close()
        with contextlib.suppress(OSError):
            if pid_path.read_text(encoding="ascii").strip() == str(os.getpid()):
                pid_path.unlink()
        log.info("stopped cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
