"""What one API request costs in this process, without HTTP: ``POST /v1/orders``,
``GET /v1/orders/{id}`` and ``GET /healthz`` driven through the ASGI app on a scratch SQLite
database (ADR 0013).

Two figures per request: **Python function calls** (cProfile around the requests, with the
pool hand-off run inline so the profiler sees the work): deterministic, so a change's effect
shows on a loaded machine; and **process CPU time** (the pool hand-off kept; the lowest of
``rounds`` rounds), which the machine's load inflates.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import pstats
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from doorstep.bench.api import _prepare, order_body
from doorstep.bench.local_server import scratch_workdir
from doorstep.clock import SystemClock
from doorstep.runtime import Runtime
from doorstep.settings import Settings
from doorstep.web import calls
from doorstep.web.app import create_app

__all__ = ["RequestCost", "run_api_calls_bench"]

ASGIApp = Callable[..., Awaitable[None]]


@dataclass(frozen=True)
class RequestCost:
    name: str
    python_calls: float  # per request
    cpu_ms: float  # per request, lowest round


async def _call(
    app: ASGIApp, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        return {}

    status, chunks = 0, []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


@contextmanager
def _inline_pool() -> Iterator[None]:
    """Run the request's pool call in the event loop's thread, where cProfile sees it."""
    names = vars(calls)  # the module's globals: its handlers look the name up there
    saved = names["run_in_threadpool"]

    async def inline(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    names["run_in_threadpool"] = inline
    try:
        yield
    finally:
        names["run_in_threadpool"] = saved


async def _measure(app: ASGIApp, key: str, requests: int, rounds: int) -> list[RequestCost]:
    clock = SystemClock()
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Host": "b"}
    day = clock.now() + timedelta(days=1)
    ids: list[str] = []
    count = 0

    async def create() -> None:
        nonlocal count
        count += 1
        body = json.dumps(order_body(f"CALLS-{count}", day)).encode()
        status, out = await _call(
            app, "POST", "/v1/orders", {**auth, "Content-Length": str(len(body))}, body
        )
        if status != 201:
            raise RuntimeError(f"POST /v1/orders answered {status}: {out[:200]!r}")
        ids.append(json.loads(out)["id"])

    async def read() -> None:
        status, out = await _call(app, "GET", f"/v1/orders/{ids[count % len(ids)]}", auth)
        if status != 200:
            raise RuntimeError(f"GET /v1/orders/{{id}} answered {status}: {out[:200]!r}")

    async def healthz() -> None:
        await _call(app, "GET", "/healthz", {"Host": "b"})

    scenarios = {"POST /v1/orders": create, "GET /v1/orders/{id}": read, "GET /healthz": healthz}
    for step in scenarios.values():  # warm-up
        for _ in range(20):
            await step()
    result = []
    for name, step in scenarios.items():
        best = float("inf")
        for _ in range(rounds):
            started = time.process_time()
            for _ in range(requests):
                await step()
            best = min(best, (time.process_time() - started) / requests)
        profile = cProfile.Profile()
        with _inline_pool():
            profile.enable()
            for _ in range(requests):
                await step()
            profile.disable()
        calls_made = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
        result.append(RequestCost(name, calls_made / requests, best * 1000))
    return result


def run_api_calls_bench(requests: int = 100, rounds: int = 5) -> list[RequestCost]:
    """Measure the three requests ``requests`` at a time (CPU: the lowest of ``rounds``)."""
    with scratch_workdir() as workdir:
        url = f"sqlite:///{Path(workdir) / 'bench.sqlite3'}"
        key = _prepare(url, SystemClock())
        settings = Settings(database_url=url, data_dir=Path(workdir) / "data", run_worker=False)
        runtime = Runtime.from_settings(settings, SystemClock())
        try:
            app = create_app(runtime, migrate=False)

            async def run() -> list[RequestCost]:
                async with app.router.lifespan_context(app):
                    return await _measure(app, key, requests, rounds)

            return asyncio.run(run())
        finally:
            runtime.close()
