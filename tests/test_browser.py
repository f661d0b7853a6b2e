"""The rendered upgrade guide in headless Chromium: tabs switch, admonitions show, boxes match."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from runbook.guide import load
from tests.conftest import GUIDE

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Flags for a closed network and a root user (see the machine notes): no sandbox, no
# background connections that would be refused.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def served(built_site: Path) -> Iterator[str]:
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(built_site / "out")
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def page(served: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    if not os.access(CHROMIUM, os.X_OK):
        # `make test` installs it first: its absence is a broken set-up, not a reason to skip.
        pytest.fail(
            f"{CHROMIUM} is missing: run the tests with `make test`, which installs chromium "
            "(or `sudo apt-get install chromium`)",
            pytrace=False,
        )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        tab = browser.new_page(viewport={"width": 1280, "height": 1600})
        tab.goto(f"{served}/admin-guide/upgrading/parallel/")
        tab.screenshot(path=str(tmp_path_factory.mktemp("shots") / "guide.png"), full_page=True)
        yield tab
        browser.close()


def test_checkboxes_reflect_the_file(page: Page, built_site: Path) -> None:
    book = load(built_site / GUIDE)
    boxes = page.locator("ul.task-list").first.locator("input[type=checkbox]")
    assert boxes.count() == len(book.checklist)
    shown = [boxes.nth(i).is_checked() for i in range(boxes.count())]
    assert shown == [item.checked for item in book.checklist]
    assert shown[0] and shown[2] and not shown[1]


def test_admonitions_show(page: Page) -> None:
    tip = page.locator(".admonition.tip").first
    assert tip.is_visible()
    assert "Community discussion forum" in tip.inner_text()


def test_tabs_switch(page: Page) -> None:
    first = page.locator(".tabbed-set").first
    blocks = first.locator(":scope > .tabbed-content > .tabbed-block")
    production, sandbox = blocks.nth(0), blocks.nth(1)
    assert production.is_visible() and not sandbox.is_visible()
    first.locator(":scope > .tabbed-labels > label", has_text="Sandbox").click()
    assert sandbox.is_visible() and not production.is_visible()
    assert "sandbox/sbx config diff old new --check" in sandbox.inner_text()
    # Linked tabs: every set offering "Sandbox" follows the choice, as the run remembers it.
    later = page.locator(".tabbed-set", has_text="sandbox/sbx start new").last
    later.scroll_into_view_if_needed()
    visible = later.locator(":scope > .tabbed-content > .tabbed-block:visible")
    assert "sandbox/sbx start new" in visible.inner_text()


def test_screenshot_is_a_real_picture(page: Page, tmp_path: Path) -> None:
    shot = tmp_path / "top.png"
    page.screenshot(path=str(shot))
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
