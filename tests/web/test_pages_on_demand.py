"""The pages are built at the first page request, once, off the event loop; a gateway serving only the API
never imports Jinja2."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from typing import Any

import pytest
from fake_pages import NANO, NOW, FakePageSource

from tokenmux.asgi import Message
from tokenmux.catalog import load_catalog
from tokenmux.web import WebPages
from tokenmux.web.on_demand import PagesOnDemand


def _get(path: str) -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": path, "query_string": b"", "headers": [(b"host", b"gw")]}


async def _request(pages: PagesOnDemand, path: str) -> tuple[int, bytes]:
    handler = pages.route("GET", path)
    assert handler is not None
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await handler(_get(path), receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


class SlowBuild:
    """Builds real pages, but only once the test lets it, counting the builds and where they ran."""

    def __init__(self, fail_first: bool = False) -> None:
        self.release = threading.Event()
        self.builds = 0
        self.threads: list[int] = []
        self.fail_first = fail_first
        self.source = FakePageSource(load_catalog())

    def __call__(self) -> WebPages:
        self.threads.append(threading.get_ident())
        assert self.release.wait(10)
        self.builds += 1
        if self.fail_first and self.builds == 1:
            raise OSError("the package's templates could not be read")
        return WebPages(self.source, clock=lambda: NOW)


async def test_nothing_is_built_until_a_page_is_asked_for_then_once_for_every_waiting_request() -> None:
    build = SlowBuild()
    pages = PagesOnDemand(build)
    assert pages.route("GET", "/api/v1/models") is None and pages.route("POST", "/models") is None
    await asyncio.sleep(0)
    assert build.threads == [] and not pages.built

    waiting = [asyncio.create_task(_request(pages, path)) for path in ("/models", f"/{NANO}", "/status")]
    await asyncio.sleep(0.05)
    # The build runs in a worker thread, and the loop keeps running meanwhile.
    assert len(build.threads) == 1 and build.threads[0] != threading.get_ident()
    assert not any(task.done() for task in waiting)
    build.release.set()
    answers = await asyncio.gather(*waiting)
    assert [status for status, _ in answers] == [200, 200, 200]
    assert b"gpt-4.1-nano" in answers[1][1]
    assert build.builds == 1 and pages.built
    # Later requests go to the built pages' own handlers.
    assert pages.route("GET", "/models") == (await pages.pages()).models_page


async def test_a_failed_build_fails_its_requests_and_the_next_request_builds_again() -> None:
    build = SlowBuild(fail_first=True)
    build.release.set()
    pages = PagesOnDemand(build)
    with pytest.raises(OSError):
        await _request(pages, "/models")
    assert not pages.built
    status, _ = await _request(pages, "/models")
    assert status == 200 and build.builds == 2


async def test_a_waiting_request_that_is_cancelled_does_not_cancel_the_build() -> None:
    build = SlowBuild()
    pages = PagesOnDemand(build)
    first = asyncio.create_task(_request(pages, "/models"))
    await asyncio.sleep(0.05)
    first.cancel()
    second = asyncio.create_task(_request(pages, "/status"))
    build.release.set()
    assert (await second)[0] == 200
    assert build.builds == 1


def test_a_gateway_built_and_serving_the_api_does_not_import_jinja2() -> None:
    script = (
        "import sys\n"
        "from tokenmux.server.build import build_gateway\n"
        "build_gateway({}, database_url='sqlite:///:memory:', env={})\n"
        "assert 'jinja2' not in sys.modules, 'jinja2 imported'\n"
        "assert 'tokenmux.web.pages' not in sys.modules, 'pages imported'\n"
    )
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
