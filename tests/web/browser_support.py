"""Driving Debian's headless Chromium from tests through playwright, and watching what a page does.

Only ``/usr/bin/chromium`` is used: playwright's own browser download is never run (the machines have no
internet, and a test tool must not fetch a browser). Tests that need the browser skip, saying how to
install it, when it is absent.

    from browser_support import launch_chromium, PageWatch, save_screenshot

    with launch_chromium() as browser:
        page = browser.new_page()
        watch = PageWatch(page)
        page.goto(url)
        watch.assert_clean()               # no console errors, no request off 127.0.0.1
        save_screenshot(page, "model-page")
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = "install Debian's chromium: apt-get install chromium"
# As root in a container Chromium needs --no-sandbox; the rest stop it from calling Google's services,
# which this machine's closed network refuses (each refusal would also be noise in the console).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
LOCAL_HOSTS = frozenset({"127.0.0.1"})


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip(INSTALL_HINT)
    pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")


@contextlib.contextmanager
def launch_chromium() -> Iterator[Browser]:
    """A headless Debian Chromium as a playwright ``Browser``; skips the test when it is not installed."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


class PageWatch:
    """Records every request a page makes and every console error or uncaught exception it raises."""

    def __init__(self, page: Page) -> None:
        self.requests: list[str] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(f"{message.text} ({message.location.get('url')})")

    def outside_requests(self) -> list[str]:
        """Requests to anything but the loopback test server (data: URLs never leave the page)."""
        outside = []
        for url in self.requests:
            parts = urlsplit(url)
            if parts.scheme == "data":
                continue
            if parts.hostname not in LOCAL_HOSTS:
                outside.append(url)
        return outside

    def assert_clean(self) -> None:
        assert self.requests, "the page made no request at all: is the watch attached before goto()?"
        assert self.outside_requests() == [], f"requests left 127.0.0.1: {self.outside_requests()}"
        assert self.console_errors == [], f"console errors: {self.console_errors}"
        assert self.page_errors == [], f"uncaught errors: {self.page_errors}"


def save_screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Writes ``artifacts/screenshots/<name>.png`` under the repository root (CI keeps that folder)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 1000, f"{path} is suspiciously small"
    return path
