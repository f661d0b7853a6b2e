"""runbook serve in headless Chromium: a click ticks the file, a tick from the command line
shows without a reload, no token no tick, two browsers at once, a snippet edit, real
screenshots."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import run_cli
from tests.test_browser import ARGS, CHROMIUM
from tests.test_serve import GUIDE, Server, make_site, start, stop

BOX = "input[data-rb-step='{}']"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run the tests with `make test`", pytrace=False)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Server]:
    server = start(make_site(tmp_path / "site"))
    yield server
    stop(server)


def open_guide(browser: Browser, server: Server, token: bool = True) -> Page:
    """Open the guide's page (through the printed URL, so the token is kept) and wait until
    the live state has arrived."""
    page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
    if token:
        page.goto(server.url)  # the home page keeps the token for the tab
    page.goto(server.base + "/guide/")
    page.wait_for_selector("html[data-rb-live='1']", timeout=20_000)
    page.evaluate("window.rbMarker = 'still here'")
    return page


def ticked_at(before: bytes, number: int) -> bytes:
    offset = before.index(f"* [ ] {number}.".encode()) + 3
    return before[:offset] + b"x" + before[offset + 1 :]


def click(page: Page, number: int) -> None:
    # Material hides the box and draws the label's indicator left of it: click where
    # people see it.
    indicator = page.locator(BOX.format(number)).locator("xpath=following-sibling::span[1]")
    box = indicator.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] - 14, box["y"] + box["height"] / 2)


def test_a_click_ticks_the_byte_and_nothing_else(
    browser: Browser, served: Server, tmp_path: Path
) -> None:
    path = served.site / GUIDE
    before = path.read_bytes()
    page = open_guide(browser, served)
    shots = [tmp_path / "before.png", tmp_path / "after.png"]
    page.locator(".md-content").screenshot(path=str(shots[0]))
    click(page, 1)
    page.wait_for_selector("li.rb-done >> text=done here", timeout=10_000)
    assert path.read_bytes() == ticked_at(before, 1)
    assert page.locator(BOX.format(1)).is_checked()
    page.locator(".md-content").screenshot(path=str(shots[1]))
    pictures = [picture(s) for s in shots]
    assert pictures[0] != pictures[1]
    assert page.evaluate("window.rbMarker") == "still here"
    # Under each step's heading: what exec does there, its state and the command.
    first, second = (page.locator(f".rb-stepinfo[data-rb-step='{n}']") for n in (1, 2))
    assert "done here" in first.inner_text()
    assert "exec runs, asks on this machine, <user>@<old-server>" in second.inner_text()
    assert "runbook exec docs/guide.md --only 2" in second.inner_text()
    assert second.locator("button.rb-copy").count() == 1


def test_a_tick_from_the_command_line_shows_without_a_reload(
    browser: Browser, served: Server
) -> None:
    page = open_guide(browser, served)
    assert not page.locator(BOX.format(2)).is_checked()
    assert run_cli(served.site, "check", GUIDE, "2").returncode == 0
    page.wait_for_function(
        "document.querySelector(\"input[data-rb-step='2']\").checked", timeout=5_000
    )
    page.wait_for_selector("li.rb-done >> text=with runbook check", timeout=5_000)
    assert page.evaluate("window.rbMarker") == "still here"  # the same page: no navigation
    # And back: an uncheck from the command line clears it in place.
    assert run_cli(served.site, "uncheck", GUIDE, "2").returncode == 0
    page.wait_for_function(
        "!document.querySelector(\"input[data-rb-step='2']\").checked", timeout=5_000
    )
    assert page.evaluate("window.rbMarker") == "still here"


def test_a_page_without_the_token_cannot_tick(browser: Browser, served: Server) -> None:
    path = served.site / GUIDE
    before = path.read_bytes()
    page = open_guide(browser, served, token=False)
    click(page, 1)
    note = page.locator(".rb-note").first
    note.wait_for(timeout=10_000)
    page.wait_for_function(
        "document.querySelector('.rb-note').textContent.includes('token')", timeout=10_000
    )
    assert "not ticked" in note.inner_text()
    assert not page.locator(BOX.format(1)).is_checked()
    assert path.read_bytes() == before


def test_two_browsers_ticking_at_once_lose_nothing(browser: Browser, served: Server) -> None:
    path = served.site / GUIDE
    before = path.read_bytes()
    pages = [open_guide(browser, served), open_guide(browser, served)]
    # Both clicks leave before either answer comes back.
    for page in pages:
        page.evaluate("window.rbBox = document.querySelector(\"input[data-rb-step='2']\")")
    for page in pages:
        page.evaluate("setTimeout(() => window.rbBox.click(), 50)")
    for page in pages:
        page.wait_for_function(
            "document.querySelector(\"input[data-rb-step='2']\").checked"
            " && !document.querySelector('li.rb-busy')",
            timeout=10_000,
        )
    assert path.read_bytes() == ticked_at(before, 2)
    run = run_cli(served.site, "status", GUIDE, "--json")
    assert '"how": "serve"' in run.stdout


def test_a_snippet_edit_shows_after_the_rebuild(browser: Browser, served: Server) -> None:
    page = open_guide(browser, served)
    snippet = served.site / "snippets" / "backup.md"
    snippet.write_text(snippet.read_text().replace("Take the backup", "Take the NIGHTLY backup"))
    page.wait_for_selector("text=Take the NIGHTLY backup", timeout=60_000)
    page.wait_for_selector("html[data-rb-live='1']", timeout=20_000)
    assert page.locator(".rb-step").count() == 3


def picture(path: Path) -> bytes:
    """Check that ``path`` is a real PNG picture (decodes, plausible size, not one colour);
    return its pixels."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert width > 300 and height > 200 and depth == 8
    chunks, at = [], 8
    while at < len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        if kind == b"IDAT":
            chunks.append(data[at + 8 : at + 8 + size])
        at += 12 + size
    pixels = zlib.decompress(b"".join(chunks))
    channels = {2: 3, 6: 4}[colour]
    assert len(pixels) == height * (1 + width * channels)
    assert len(set(pixels[1 : 1 + width * channels : channels])) > 1 or len(set(pixels)) > 2
    assert len(set(pixels)) > 10  # text and boxes, not a blank picture
    return pixels


def test_a_running_exec_shows_on_the_page(browser: Browser, served: Server) -> None:
    page = open_guide(browser, served)
    sets = ["--set", "user=nobody", "--set", "old-server=old.invalid"]
    run = subprocess.Popen(
        [sys.executable, "-m", "runbook", "exec", GUIDE, "--yes", "--only", "2", *sets],
        cwd=served.site,
        env={**os.environ, "RUNBOOK_SET_DB_PASSWORD": "pw-Q7k2"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Between the step's start and its block's, the step runs with no block yet.
        running = page.locator("li.rb-running", has_text="running now: block")
        running.wait_for(timeout=20_000)
        assert "running now: block snippets/backup.md:3 on this machine" in running.inner_text()
    finally:
        run.wait(timeout=60)
    page.wait_for_selector("li.rb-running", state="detached", timeout=10_000)
    assert "last run:" in page.locator("li.task-list-item").nth(1).inner_text()
    assert page.evaluate("window.rbMarker") == "still here"
