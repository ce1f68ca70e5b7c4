"""What a console page request costs, in this process (``doorstep bench page-calls``): threadpool
hand-offs (deterministic), process CPU per request (lowest round) and the wall time of 64
concurrent form posts on a scratch SQLite database, driven through the ASGI app with httpx.

Issue 18 §6 and ADR 0013: a console request used to cost a hand-off per sync dependency
(session, signed-in user, role check), one for the handler and one for the commit; now its
sign-in check, work, commit and render are one pool call. Only public HTTP is used, so the same
file measures an older checkout (run it with that checkout's interpreter) for a before/after.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx

from doorstep.bench.api import _prepare, order_body
from doorstep.bench.local_server import scratch_workdir
from doorstep.clock import SystemClock
from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Merchant, Role
from doorstep.domain.accounts.users import create_user
from doorstep.runtime import Runtime
from doorstep.settings import Settings
from doorstep.web.app import create_app

__all__ = ["PageCost", "run_page_calls_bench"]

EMAIL = "bench-dispatch@example.com"
CONCURRENT = 64
TIMEOUT_S = 60.0  # a request of the concurrent batch unanswered by then counts as an error


@dataclass(frozen=True)
class PageCost:
    name: str
    handoffs: float  # pool hand-offs per request
    cpu_ms: float  # process CPU per request, lowest round
    concurrent_wall_s: float | None = None  # CONCURRENT requests at once, wall time
    concurrent_errors: int | None = None  # answers other than the expected status


@contextmanager
def _counting_handoffs() -> Iterator[list[int]]:
    """Count calls to ``anyio.to_thread.run_sync`` (Starlette's and FastAPI's pool calls)."""
    count = [0]
    real = anyio.to_thread.run_sync

    async def counting(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return await real(func, *args, **kwargs)

    anyio.to_thread.run_sync = counting  # type: ignore[assignment]
    try:
        yield count
    finally:
        anyio.to_thread.run_sync = real


def _csrf(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    if match is None:
        raise RuntimeError(f"{page.request.url} has no CSRF field ({page.status_code})")
    return match.group(1)


async def _measure(app: Any, key: str, password: str, requests: int, rounds: int) -> list[PageCost]:
    transport = httpx.ASGITransport(app=app)
    limits = httpx.Limits(max_connections=CONCURRENT)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://bench", limits=limits, follow_redirects=False
    ) as client:
        day = SystemClock().now() + timedelta(days=1)
        auth = {"Authorization": f"Bearer {key}"}
        ids: list[str] = []
        for n in range(CONCURRENT):
            made = await client.post("/v1/orders", json=order_body(f"PAGE-{n}", day), headers=auth)
            if made.status_code != 201:
                raise RuntimeError(f"POST /v1/orders answered {made.status_code}: {made.text}")
            ids.append(made.json()["id"])
        token = _csrf(await client.get("/console/login"))
        form = {"email": EMAIL, "password": password, "csrf_token": token}
        signed_in = await client.post("/console/login", data=form)
        if signed_in.status_code != 303:
            raise RuntimeError(f"sign-in answered {signed_in.status_code}")
        token = _csrf(await client.get("/console"))
        edits = [0]

        async def order_page(i: int) -> httpx.Response:
            return await client.get(f"/console/orders/{ids[i % len(ids)]}")

        async def orders_list(i: int) -> httpx.Response:
            return await client.get("/console/orders")

        async def edit(i: int) -> httpx.Response:
            edits[0] += 1
            fields = {
                "recipient_name": f"Edited {edits[0]}",
                "recipient_phone": "+33612345678",
                "address_line1": "1 Avenue de la Costa",
                "city": "Monaco",
                "postal_code": "98000",
                "csrf_token": token,
            }
            return await client.post(f"/console/orders/{ids[i % len(ids)]}/edit", data=fields)

        scenarios: dict[str, tuple[Callable[[int], Awaitable[httpx.Response]], int]] = {
            "GET /console/orders/{id}": (order_page, 200),
            "GET /console/orders": (orders_list, 200),
            "POST /console/orders/{id}/edit": (edit, 303),
        }
        result = []
        for name, (step, status) in scenarios.items():
            for i in range(10):  # warm-up
                await step(i)
            with _counting_handoffs() as count:
                for i in range(requests):
                    answer = await step(i)
                    if answer.status_code != status:
                        raise RuntimeError(f"{name} answered {answer.status_code}")
            handoffs = count[0] / requests
            best = float("inf")
            for _ in range(rounds):
                started = time.process_time()
                for i in range(requests):
                    await step(i)
                best = min(best, (time.process_time() - started) / requests)
            started = time.perf_counter()
            answers = await asyncio.gather(
                *(asyncio.wait_for(step(i), TIMEOUT_S) for i in range(CONCURRENT)),
                return_exceptions=True,
            )
            wall = time.perf_counter() - started
            errors = sum(
                1 for a in answers if not isinstance(a, httpx.Response) or a.status_code != status
            )
            result.append(PageCost(name, handoffs, best * 1000, wall, errors))
        return result


def run_page_calls_bench(requests: int = 100, rounds: int = 3) -> list[PageCost]:
    """Measure three console requests ``requests`` at a time (CPU: the lowest of ``rounds``)."""
    with scratch_workdir() as workdir:
        url = f"sqlite:///{Path(workdir) / 'bench.sqlite3'}"
        key = _prepare(url, SystemClock())
        settings = Settings(database_url=url, data_dir=Path(workdir) / "data", run_worker=False)
        runtime = Runtime.from_settings(settings, SystemClock())
        password = secrets.token_urlsafe(18)  # a scratch user's, never shown
        try:
            with transaction(runtime.sessions) as session:
                merchant = session.query(Merchant).one()
                create_user(
                    session, runtime.clock, merchant, EMAIL, "Bench", Role.DISPATCHER, password
                )
            app = create_app(runtime, migrate=False)

            async def run() -> list[PageCost]:
                async with app.router.lifespan_context(app):
                    return await _measure(app, key, password, requests, rounds)

            return asyncio.run(run())
        finally:
            runtime.close()


if __name__ == "__main__":  # an older checkout's interpreter: python page_calls.py
    for cost in run_page_calls_bench():
        print(cost)
