"""``runbook serve``: the site over HTTP, its overview boxes ticked from the page, and the
state of each guide pushed to open pages as server-sent events.

Starlette routes the requests and uvicorn serves them, on a socket bound here first, so the
port (``--port 0`` too) is known, and a taken one refused, before the URL is printed. Every
request that changes something needs the token of the printed URL in the
``X-Runbook-Token`` header: a page of another origin cannot send that header without the
server's consent, which it never gives, and cannot read the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import secrets
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from runbook.errors import RunbookError, UsageError
from runbook.live import LiveGuide
from runbook.serve_build import SiteBuild, Wakeup, Watch
from runbook.site import Site, load_site

POLL = 0.005
"""Seconds a look waits after inotify's first event, for the rest of a burst."""
HEARTBEAT = 15.0
"""Seconds of quiet after which an event stream gets a comment, so a gone page is noticed."""
FULL = 0.5
"""Seconds between looks at the whole site (between them, only the guides pages show, when
inotify says something changed)."""
SETTLE = 0.1
"""Seconds to wait after a change of text before building: editors save in several writes."""
TOKEN_HEADER = "X-Runbook-Token"
ASSETS = Path(__file__).parent / "assets"
SAFE_METHODS = frozenset({"GET", "HEAD"})


class Hub:
    """The served site: its build, the guides pages look at, and who waits for a change."""

    def __init__(self, site: Site, build: SiteBuild, token: str, out: TextIO) -> None:
        """Serve ``site`` from ``build``; changes need ``token``; say problems on ``out``."""
        self.site = site
        self.build = build
        self.token = token
        self.out = out
        self.builds = 0
        """How many builds were made after the first: a page seeing it grow reloads."""
        self.guides: dict[Path, LiveGuide] = {}
        self.watch = Watch(_sources(site), site.runtime_dir)
        self._changed = asyncio.Event()
        self._pending = False
        self._building: asyncio.Task[None] | None = None
        self._files: tuple[Path, StaticFiles] | None = None
        self.closing = False
        """Set when the server stops: event streams end, so it need not wait for them."""

    @property
    def changed(self) -> asyncio.Event:
        """Return the event the next change sets."""
        return self._changed

    def notify(self) -> None:
        """Wake every page waiting for a change."""
        old, self._changed = self._changed, asyncio.Event()
        old.set()

    def close(self) -> None:
        """End every event stream: the server is stopping."""
        self.closing = True
        self.notify()

    def allowed(self, request: Request) -> bool:
        """Tell whether ``request`` carries the token."""
        given = request.headers.get(TOKEN_HEADER, "")
        return secrets.compare_digest(given.encode(), self.token.encode())

    def guide(self, name: str | None) -> LiveGuide:
        """Return the guide a page names (relative to the site's folder), refusing any
        other file."""
        docs = self.site.docs_dir.resolve()
        path = (self.site.root / (name or "")).resolve()
        if (
            not name
            or path.suffix != ".md"
            or docs not in path.parents
            or not path.is_file()
            or self.site.is_snippet(path)
        ):
            raise UsageError(f"{name!r} is not a page of this site")
        if path not in self.guides:
            self.guides[path] = LiveGuide(path, self.site, os.path.relpath(path, self.site.root))
        return self.guides[path]

    def files(self) -> StaticFiles:
        """Return the static files of the newest build."""
        current = self.build.current
        assert current is not None  # the first build is made before serving
        if self._files is None or self._files[0] != current:
            self._files = (current, StaticFiles(directory=current, html=True))
        return self._files[1]

    async def watching(self) -> None:
        """Look at the guides pages show and the runtime folder when inotify says something
        changed (every FULL seconds without it), at the whole site every FULL: wake the
        pages, build again on new text.

        On a docs tree so large that a full look takes long, those are spaced out, so
        watching never takes more than about a fifth of a core.
        """
        loop = asyncio.get_running_loop()
        poked = asyncio.Event()
        wakeup = Wakeup(self.watch, lambda: loop.call_soon_threadsafe(poked.set))
        due = 0.0
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(poked.wait(), FULL)
                await asyncio.sleep(POLL)  # the rest of a burst of events: one look
                poked.clear()
                began = time.monotonic()
                shown = None if began >= due else list(self.guides)
                if shown is None:  # the whole tree: off the loop, it may take a while
                    changes = await run_in_threadpool(self.watch.look, shown)
                    due = began + max(FULL, 4 * (time.monotonic() - began))
                    wakeup.follow_runtime()
                else:  # a few stat calls: cheaper than a thread's hand-over
                    changes = self.watch.look(shown)
                if changes.text:
                    for guide in self.guides.values():
                        guide.forget()
                    self._pending = True
                    if self._building is None or self._building.done():
                        self._building = asyncio.create_task(self._rebuild())
                if changes.state:
                    self.notify()
        finally:
            wakeup.stop()

    async def _rebuild(self) -> None:
        while self._pending:
            await asyncio.sleep(SETTLE)
            self._pending = False
            try:
                await run_in_threadpool(self.build.build)
            except RunbookError as exc:
                print(f"runbook serve: {exc.location}: {exc.message}", file=self.out, flush=True)
                continue
            self.builds += 1
            self.notify()


def _sources(site: Site) -> list[Path]:
    """Return what the site is built from: its docs, its snippets, its config."""
    found = [site.docs_dir, site.include_dir]
    if site.config_file is not None:
        found.append(site.config_file)
    return list(dict.fromkeys(p.resolve() for p in found))


def _error(exc: RunbookError, status: int, **extra: Any) -> JSONResponse:
    where = f"{exc.location}: " if exc.location else ""
    return JSONResponse({"error": where + exc.message, "hint": exc.hint, **extra}, status)


def make_app(hub: Hub) -> Starlette:
    """Return the application: the site, the page script, state, ticks and event streams."""

    async def state(request: Request) -> Response:
        try:
            guide = hub.guide(request.query_params.get("guide"))
            return JSONResponse(await run_in_threadpool(guide.state))
        except RunbookError as exc:
            return _error(exc, 404)
        except OSError as exc:  # the guide went away under us
            return JSONResponse({"error": str(exc)}, 404)

    async def tick(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        step, checked = (body or {}).get("step"), (body or {}).get("checked")
        text = (body or {}).get("text")
        if (
            not isinstance(body, dict)
            or not isinstance(step, int)
            or isinstance(step, bool)
            or not isinstance(checked, bool)
            or not isinstance(text, str | None)
        ):
            return JSONResponse({"error": "send {guide, step, checked, text}"}, 400)
        try:
            guide = hub.guide(body.get("guide"))
        except RunbookError as exc:
            return _error(exc, 404)
        try:
            done = await run_in_threadpool(guide.tick, step, checked, text)
        except RunbookError as exc:
            hub.notify()
            return _error(exc, 409, state=await run_in_threadpool(guide.state))
        except OSError as exc:
            return JSONResponse({"error": f"{guide.guide_arg}: {exc.strerror or exc}"}, 409)
        hub.notify()  # the other pages hear it now, not at the next look
        return JSONResponse(done)

    async def events(request: Request) -> Response:
        try:
            guide = hub.guide(request.query_params.get("guide"))
        except RunbookError as exc:
            return _error(exc, 404)
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(
            _stream(hub, guide), media_type="text/event-stream", headers=headers
        )

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ("serve.js", "serve.css"):
            return Response("not found", 404)
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return FileResponse(ASSETS / name, media_type=kind, headers={"Cache-Control": "no-store"})

    async def site(scope: Scope, receive: Receive, send: Send) -> None:
        await hub.files()(scope, receive, send)

    routes = [
        Route("/_runbook/state", state, methods=["GET"]),
        Route("/_runbook/tick", tick, methods=["POST"]),
        Route("/_runbook/events", events, methods=["GET"]),
        Route("/_runbook/{name}", asset, methods=["GET", "HEAD"]),
        Mount("/", app=site),
    ]
    return Starlette(routes=routes, middleware=[Middleware(TokenGuard, hub=hub)])


class TokenGuard:
    """Refuse (403) every request that could change something and lacks the token,
    whatever its path: only the holder of the printed URL changes anything."""

    def __init__(self, app: ASGIApp, hub: Hub) -> None:
        """Guard ``app`` with ``hub``'s token."""
        self.app = app
        self.hub = hub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 403 to a request that changes state without the token; pass the rest."""
        changes = scope["type"] == "http" and scope["method"] not in SAFE_METHODS
        if changes and not self.hub.allowed(Request(scope)):
            refusal = JSONResponse(
                {
                    "error": "refused: a change needs the token of the URL runbook serve "
                    f"printed, in the {TOKEN_HEADER} header (open that URL)"
                },
                403,
            )
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)


class Server(uvicorn.Server):
    """uvicorn's server, ending the event streams as soon as it is told to stop."""

    def __init__(self, config: uvicorn.Config, hub: Hub) -> None:
        """Serve ``config``'s application; tell ``hub`` when stopping."""
        super().__init__(config)
        self.hub = hub

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Stop as uvicorn does, ending the open event streams first."""
        # Called in a signal handler: the loop ends the streams between its own steps.
        asyncio.get_event_loop().call_soon_threadsafe(self.hub.close)
        super().handle_exit(sig, frame)


async def _stream(hub: Hub, guide: LiveGuide) -> AsyncIterator[str]:
    """Yield the guide's state at once and again whenever it changes; ``reload`` after a
    new build."""
    sent = ""
    builds = hub.builds
    while True:
        changed = hub.changed  # taken first: a change while reading is not missed
        if hub.closing:
            return
        if hub.builds != builds:
            yield "event: reload\ndata: {}\n\n"
            return
        try:
            text = json.dumps(await run_in_threadpool(guide.state), ensure_ascii=False)
        except RunbookError as exc:
            text = json.dumps({"error": exc.message})
        except OSError as exc:
            text = json.dumps({"error": str(exc)})
        if text != sent:
            yield f"data: {text}\n\n"
            sent = text
        try:
            await asyncio.wait_for(changed.wait(), HEARTBEAT)
        except TimeoutError:
            yield ": still here\n\n"


def bind(host: str, port: int) -> socket.socket:
    """Return a listening socket on ``host``:``port`` (0: a free port), or refuse clearly."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise UsageError(f"--host {host!r} is not an address of this machine ({exc})") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        taken = exc.errno == 98  # EADDRINUSE
        raise UsageError(
            f"port {port} on {host} is taken by another program"
            if taken
            else f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="pick another with --port N, or --port 0 for a free one",
        ) from None
    return sock


def loopback(sock: socket.socket) -> bool:
    """Tell whether ``sock`` listens on a loopback address only."""
    return ipaddress.ip_address(sock.getsockname()[0]).is_loopback


def page_url(site: Site, path: Path) -> str:
    """Return the URL path of ``path``: ``/`` for the site, the page's own for a page."""
    docs = site.docs_dir.resolve()
    page = path.resolve()
    if page.suffix != ".md" or docs not in page.parents:
        return "/"
    rel = page.relative_to(docs).with_suffix("")
    parts = list(rel.parts[:-1] if rel.name in ("index", "README") else rel.parts)
    return "/" + "".join(f"{p}/" for p in parts)


def serve(path: Path, *, host: str, port: int, out: TextIO = sys.stdout) -> int:
    """Build the site of ``path`` (a site's folder, its mkdocs.yml or a page) and serve it
    until interrupted; print its URL, with the token, at once."""
    site = load_site(path if path.is_file() else path / "mkdocs.yml")
    if site.config_file is None:
        raise UsageError(
            f"no mkdocs.yml at or above {path}: runbook serve shows a site",
            hint="give the folder of mkdocs.yml (or run it there)",
        )
    if site.plugin != "runbook":
        print(
            "runbook serve: the site does not use runbook's plugin (plugins: - runbook in "
            "mkdocs.yml), so its pages are served as they are, without live checklists",
            file=sys.stderr,
            flush=True,
        )
    sock = bind(host, port)
    token = secrets.token_urlsafe(24)
    bound = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    print(f"http://{shown}:{bound}{page_url(site, path)}?token={token}", file=out, flush=True)
    if not loopback(sock):
        print(
            f"runbook serve: listening on {host}, reachable from other machines: every change "
            "needs the token of the URL above; anyone who has it can tick boxes",
            file=sys.stderr,
            flush=True,
        )
    with tempfile.TemporaryDirectory(prefix="runbook-serve-") as work:
        build = SiteBuild(site.config_file, Path(work))
        build.build()  # a site that does not build stops here, saying why
        hub = Hub(site, build, token, sys.stderr)
        app = make_app(hub)

        @contextlib.asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            task = asyncio.create_task(hub.watching())
            try:
                yield
            finally:
                task.cancel()

        app.router.lifespan_context = lifespan
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, timeout_graceful_shutdown=1
        )
        Server(config, hub).run(sockets=[sock])
    return 0
