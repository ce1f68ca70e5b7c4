"""Fixtures for real-browser tests: a live uvicorn server and a headless Debian Chromium.

``live_server`` serves the app built on the ``runtime`` fixture (so once on SQLite and once on
PostgreSQL) from a thread, on 127.0.0.1 and a free port, and yields its base URL. The
listening socket is bound before the server starts, so the port cannot be taken in between.

``browser`` launches ``/usr/bin/chromium`` through Playwright (once per test module); without
it the test is skipped with the reason shown (and fails when ``CI=true``).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import uvicorn

from doorstep.runtime import Runtime
from doorstep.web.app import create_app
from tests.conftest import require_service

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Request

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def live_server(runtime: Runtime) -> Iterator[str]:
    """The base URL (``http://127.0.0.1:PORT``) of a real server for this test's runtime."""
    app = create_app(runtime, migrate=False)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the live server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A headless Chromium shared by one module's tests. Not session-wide: Playwright's sync
    API keeps an event loop running in the main thread while it is open, which would break
    later tests that call ``asyncio.run``."""
    if not CHROMIUM.exists():
        require_service("Chromium", f"{CHROMIUM} missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield instance
        finally:
            instance.close()


def is_real_failure(request: Request) -> bool:
    """A failed request that is a defect: not one the browser cancelled itself because the
    page navigated away while it was in flight (``net::ERR_ABORTED``)."""
    return request.failure != "net::ERR_ABORTED"
