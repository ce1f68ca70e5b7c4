"""A real uvicorn server around an app, for tests that need concurrent HTTP requests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on an ephemeral 127.0.0.1 port in a background thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def send_while_first_is_held(
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
    target: object,
    name: str,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
) -> dict[str, httpx.Response]:
    """POST ``body`` to ``path`` on a live server three times with the same headers: "first",
    held inside ``target.name`` until "second" has its answer, then "retry" once both are
    done. Returns the three responses by name."""
    entered, release = threading.Event(), threading.Event()
    real: Callable[..., Any] = getattr(target, name)

    def held(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        assert release.wait(20), "the test never released the first request"
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, held)
    results: dict[str, httpx.Response] = {}
    with live_server(app) as url:

        def send(label: str) -> None:
            results[label] = httpx.post(f"{url}{path}", json=body, headers=headers, timeout=30)

        first = threading.Thread(target=send, args=("first",))
        first.start()
        assert entered.wait(20), f"the first request never reached {name}"
        second = threading.Thread(target=send, args=("second",))
        second.start()
        second.join(20)
        assert not second.is_alive()
        release.set()
        first.join(30)
        send("retry")
    return results
