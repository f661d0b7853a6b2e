"""runbook serve over HTTP, without a browser: the URL line, the token, ticks through the
library's code, the event stream, concurrent ticks, and the static build left read-only."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, ROOT, mkdocs_build, run_cli

RUNBOOK = str(ROOT / ".venv" / "bin" / "runbook")
GUIDE = "docs/guide.md"
URL_LINE = re.compile(r"^http://127\.0\.0\.1:(\d+)(/\S*)\?token=([A-Za-z0-9_-]{20,})$")

GUIDE_TEXT = """\
# Upgrade

The overview:

* [ ] 1. Stop the service
* [ ] 2. Take a backup
* [x] 3. Tell the users

### 1. Stop the service

```bash { .run }
echo stopping
```

### 2. Take a backup

{% include 'backup.md' %}

### 3. Tell the users

Write to the users by hand.
"""
SNIPPET_TEXT = """\
Take the backup with the password:

```bash { .run }
echo "<db-password>" > /dev/null
sleep 3
```

```bash
ssh <user>@<old-server>
```
"""
CONFIG = """\
site_name: serve test
theme:
  name: material
plugins:
  - runbook:
      include_dir: snippets
markdown_extensions:
  - admonition
  - attr_list
  - pymdownx.superfences
  - pymdownx.tasklist:
      custom_checkbox: true
      clickable_checkbox: true
nav:
  - Home: index.md
  - Upgrade: guide.md
"""


def make_site(folder: Path) -> Path:
    """Write a small site: a guide with an overview checklist, a snippet, a home page."""
    (folder / "docs").mkdir(parents=True)
    (folder / "snippets").mkdir()
    (folder / "mkdocs.yml").write_text(CONFIG)
    (folder / "docs" / "index.md").write_text("# Home\n\nSee the [upgrade](guide.md).\n")
    (folder / GUIDE).write_text(GUIDE_TEXT)
    (folder / "snippets" / "backup.md").write_text(SNIPPET_TEXT)
    return folder


@dataclass
class Server:
    """A running ``runbook serve`` and what its URL line said."""

    proc: subprocess.Popen[str]
    base: str
    path: str
    token: str
    site: Path

    @property
    def url(self) -> str:
        return f"{self.base}{self.path}?token={self.token}"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base + path, timeout=20) as response:
            return json.loads(response.read())

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/_runbook/state?guide={GUIDE}")
        return result

    def post(self, body: dict[str, Any], token: str | None = None) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["X-Runbook-Token"] = token
        request = urllib.request.Request(
            self.base + "/_runbook/tick", json.dumps(body).encode(), headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def tick(self, step: int, checked: bool = True, **extra: Any) -> tuple[int, dict[str, Any]]:
        body = {"guide": GUIDE, "step": step, "checked": checked} | extra
        return self.post(body, token=self.token)


def start(site: Path, *args: str) -> Server:
    """Start ``runbook serve`` on ``site`` and wait until it answers."""
    proc = subprocess.Popen(
        [RUNBOOK, "serve", str(site), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    match = URL_LINE.match(line)
    assert match, f"not a URL line: {line!r}; stderr: {proc.stderr.read() if proc.stderr else ''}"
    server = Server(proc, f"http://127.0.0.1:{match[1]}", match[2], match[3], site)
    deadline = time.monotonic() + 120
    while True:  # the first build runs after the URL is printed; requests wait for it
        try:
            urllib.request.urlopen(server.base + "/_runbook/serve.js", timeout=20).close()
            return server
        except (urllib.error.URLError, ConnectionError):
            assert time.monotonic() < deadline and proc.poll() is None, "serve did not answer"
            time.sleep(0.2)


def stop(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Server]:
    server = start(make_site(tmp_path / "site"))
    yield server
    stop(server)


def events(server: Server) -> Iterator[dict[str, Any]]:
    """Yield the states the event stream sends for the guide, as they come."""
    conn = http.client.HTTPConnection(server.base.removeprefix("http://"), timeout=10)
    conn.request("GET", f"/_runbook/events?guide={GUIDE}")
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("content-type", "").startswith("text/event-stream")
    try:
        while line := response.readline():
            if line.startswith(b"data: "):
                yield json.loads(line[6:])
    finally:
        conn.close()


def test_the_url_line_comes_first_with_a_token(served: Server) -> None:
    assert served.path == "/"
    with urllib.request.urlopen(served.url, timeout=20) as response:
        page = response.read().decode()
    assert "/_runbook/serve.js" in page
    with urllib.request.urlopen(served.base + "/guide/", timeout=20) as response:
        guide = response.read().decode()
    assert guide.count('class="rb-step"') == 3
    assert re.findall(r'class="rb-stepinfo" data-rb-step="(\d)"', guide) == ["1", "2", "3"]
    assert 'data-rb-guide="docs/guide.md"' in guide


def test_a_tick_without_the_token_is_refused(served: Server) -> None:
    before = (served.site / GUIDE).read_bytes()
    body = {"guide": GUIDE, "step": 1, "checked": True}
    assert served.post(body)[0] == 403
    assert served.post(body, token="wrong")[0] == 403
    assert served.post(body, token=served.token[:-1])[0] == 403
    assert (served.site / GUIDE).read_bytes() == before
    assert not served.state()["steps"][0]["done"]


def test_a_tick_changes_only_the_box_and_is_recorded_as_serve(served: Server) -> None:
    path = served.site / GUIDE
    before = path.read_bytes()
    status, body = served.tick(1)
    assert status == 200 and body["changed"]
    after = path.read_bytes()
    offset = before.index(b"* [ ] 1.") + 3
    assert after == before[:offset] + b"x" + before[offset + 1 :]
    step = body["state"]["steps"][0]
    assert step["done"] and step["how"] == "serve" and step["by"]
    status_json = json.loads(run_cli(served.site, "status", GUIDE, "--json").stdout)
    assert status_json["steps"][0]["how"] == "serve"
    # Unticking is the same code as uncheck.
    status, body = served.tick(1, checked=False)
    assert status == 200 and body["changed"] and path.read_bytes() == before


def test_a_tick_of_a_changed_item_is_refused(served: Server) -> None:
    before = (served.site / GUIDE).read_bytes()
    status, body = served.tick(2, text="2. Take a backup of something else")
    assert status == 409
    assert "changed" in body["error"] and "2. Take a backup" in body["error"]
    assert (served.site / GUIDE).read_bytes() == before


def test_what_each_step_would_do(served: Server) -> None:
    steps = {s["number"]: s for s in served.state()["steps"]}
    assert steps[1]["does"] == ["runs"] and steps[1]["hosts"] == ["this machine"]
    assert steps[2]["does"] == ["runs", "asks"]
    assert "<user>@<old-server>" in steps[2]["hosts"]
    assert steps[3]["does"] == ["manual"] and steps[3]["done"] and steps[3]["how"] == "file"
    assert steps[2]["command"] == "runbook exec docs/guide.md --only 2"


def test_only_pages_of_the_site_are_guides(served: Server) -> None:
    for name in (
        "../mkdocs.yml",
        "mkdocs.yml",
        "snippets/backup.md",
        "docs/none.md",
        "/etc/passwd",
    ):
        with pytest.raises(urllib.error.HTTPError) as caught:
            served.get(f"/_runbook/state?guide={name}")
        assert caught.value.code == 404


def test_two_ticks_at_once_land_once(served: Server) -> None:
    path = served.site / GUIDE
    before = path.read_bytes()
    results: list[tuple[int, dict[str, Any]]] = []
    gate = threading.Barrier(6)

    def click() -> None:
        gate.wait()
        results.append(served.tick(2))

    threads = [threading.Thread(target=click) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [status for status, _ in results] == [200] * 6
    assert sum(body["changed"] for _, body in results) == 1
    assert all(body["state"]["steps"][1]["done"] for _, body in results)
    offset = before.index(b"* [ ] 2.") + 3
    assert path.read_bytes() == before[:offset] + b"x" + before[offset + 1 :]
    journal = list((served.site / ".runbook" / "journal").glob("*.jsonl"))
    records = [json.loads(x) for x in journal[0].read_text().splitlines()]
    assert [(r["event"], r["step"], r["how"]) for r in records] == [("check", 2, "serve")]


def test_the_stream_hears_a_tick_from_the_command_line(served: Server) -> None:
    stream = events(served)
    assert not next(stream)["steps"][0]["done"]
    began = time.monotonic()
    assert run_cli(served.site, "check", GUIDE, "1").returncode == 0
    # The box may show a moment before the journal's record of who ticked it.
    state = next(stream)
    while state["steps"][0]["how"] != "check":
        assert state["steps"][0]["done"] and state["steps"][0]["how"] == "file"
        state = next(stream)
    assert state["steps"][0]["done"]
    assert time.monotonic() - began < 5  # the CLI's own start-up is most of it


def test_a_running_exec_shows_its_step_and_block_and_no_secret(served: Server) -> None:
    canary = "canary-Zq81xX"
    env = {**os.environ, "RUNBOOK_SET_DB_PASSWORD": canary}
    sets = ["--set", "user=nobody", "--set", "old-server=old.invalid"]
    run = subprocess.Popen(
        [sys.executable, "-m", "runbook", "exec", GUIDE, "--yes", "--only", "2", "--accept", *sets],
        cwd=served.site,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    try:
        for state in events(served):
            seen.append(json.dumps(state))
            found = state.get("run") or {}
            if found.get("running") and found.get("block"):
                assert found["step"] == 2
                assert found["block"] == "snippets/backup.md:3"
                break
    finally:
        output = run.communicate(timeout=60)[0]
    final = served.state()
    seen.append(json.dumps(final))
    assert not final["run"]["running"]
    assert final["run"]["results"].get("2"), output
    assert not any(canary in text for text in seen)


def test_a_taken_port_is_refused(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [RUNBOOK, "serve", str(site), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is taken" in result.stderr and "--port 0" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_folder_without_a_site_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [RUNBOOK, "serve", str(tmp_path), "--port", "0"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "no mkdocs.yml" in result.stderr
    assert "Traceback" not in result.stderr


def test_another_host_says_the_token_is_needed(tmp_path: Path) -> None:
    server = start(make_site(tmp_path / "site"), "--host", "0.0.0.0")
    try:
        assert server.post({"guide": GUIDE, "step": 1, "checked": True})[0] == 403
    finally:
        stop(server)
    assert server.proc.stderr is not None
    assert "token" in server.proc.stderr.read()


def test_the_static_build_stays_read_only(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site")
    assert mkdocs_build(site).returncode == 0
    page = (site / "out" / "guide" / "index.html").read_text()
    boxes = re.findall(r'<input type="checkbox"[^>]*>', page)
    assert len(boxes) == 3 and all(" disabled" in b for b in boxes)
    assert "rb-step" not in page and "_runbook" not in page


def test_a_guide_spanning_pages_has_its_checklist_on_the_overview(tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(FIXTURES / "multipage", site)
    server = start(site)
    try:
        with urllib.request.urlopen(server.base + "/upgrade/", timeout=20) as response:
            overview = response.read().decode()
        with urllib.request.urlopen(server.base + "/upgrade/prepare/", timeout=20) as response:
            step = response.read().decode()
        state = server.get("/_runbook/state?guide=docs/upgrade/index.md")
    finally:
        stop(server)
    assert re.findall(r'data-rb-step="(\d)"', overview) == ["1", "2", "3"]
    assert 'data-rb-guide="docs/upgrade/index.md"' in overview
    assert "data-rb-focus" not in overview
    assert 'data-rb-guide="docs/upgrade/index.md" data-rb-focus="1"' in step
    assert "rb-step" not in step
    assert [s["number"] for s in state["steps"]] == [1, 2, 3]
    assert state["steps"][0]["command"] == "runbook exec docs/upgrade/index.md --only 1"


def test_a_change_of_boxes_only_keeps_the_text_key(tmp_path: Path) -> None:
    from runbook.guide import load
    from runbook.live import Stale, content_key, with_boxes

    site = make_site(tmp_path / "site")
    data = (site / GUIDE).read_bytes()
    ticked = data.replace(b"* [ ] 1.", b"* [x] 1.").replace(b"* [x] 3.", b"* [ ] 3.")
    edited = data.replace(b"Stop the service\n", b"Stop the services\n", 1)
    assert content_key(ticked) == content_key(data) != content_key(edited)
    book = load(site / GUIDE)
    now = with_boxes(book, ticked)
    assert [s.checked for s in now.steps] == [True, False, False]
    assert [c.checked for c in now.checklist] == [True, False, False]
    with pytest.raises(Stale):
        with_boxes(book, edited)
