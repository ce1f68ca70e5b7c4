"""The API benchmark: a real server on a scratch database, measured on three endpoints.

1. ``GET /healthz`` — the trivial endpoint, the baseline for the server and client stack;
2. ``POST /v1/orders`` — distinct references, valid bodies in the shape integrators send;
3. ``GET /v1/orders/{id}`` — the orders just created, in turn.

Each scenario is compared with the baseline (throughput ratio and p50 latency multiple), so
the figures say what the database and the domain cost on top of the HTTP stack.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.engine import make_url

from doorstep.bench.http_load import LoadResult, loopback_client, run_load
from doorstep.bench.local_server import ServerProcess, scratch_database, scratch_workdir
from doorstep.clock import Clock, SystemClock
from doorstep.db.engine import make_engine, make_sessionmaker, transaction
from doorstep.db.migrate import upgrade
from doorstep.domain.accounts.service import create_merchant, issue_api_key

__all__ = ["CPU_TARGETS_MS", "ApiBenchRun", "ScenarioFigures", "order_body", "run_api_bench"]

BASELINE = "GET /healthz"
MERCHANT_TZ = "Europe/Monaco"
# Server CPU per request the API aims at (ADR 0013); the figures say whether a run met them.
CPU_TARGETS_MS = {"POST /v1/orders": 3.0, "GET /v1/orders/{id}": 1.5}


def order_body(reference: str, day: datetime) -> dict[str, Any]:
    """A valid order as integrators send it (the brief's example), for ``day`` 14:00-16:00."""
    tz = ZoneInfo(MERCHANT_TZ)
    start = datetime.combine(day.astimezone(tz).date(), time(14, 0), tz)
    return {
        "reference": reference,
        "recipient": {
            "name": "Ada Lovelace",
            "phone": "+33612345678",
            "email": "ada@example.com",
            "locale": "fr",
        },
        "address": {
            "line1": "1 Avenue de la Costa",
            "city": "Monaco",
            "postal_code": "98000",
            "country": "MC",
            "lat": 43.7405,
            "lon": 7.4263,
        },
        "window": {
            "start": start.isoformat(),
            "end": (start + timedelta(hours=2)).isoformat(),
        },
        "service_level": "scheduled",
        "parcels": [{"weight_kg": 2.5, "fragile": True}],
        "instructions": "Door code 1234",
    }


@dataclass(frozen=True)
class ScenarioFigures:
    """One scenario's result next to the baseline's."""

    result: LoadResult
    rps_ratio: float  # this scenario's req/s ÷ the baseline's
    p50_ratio: float  # this scenario's p50 ÷ the baseline's

    @property
    def cpu_target_ms(self) -> float | None:
        return CPU_TARGETS_MS.get(self.result.name)

    @property
    def meets_cpu_target(self) -> bool | None:
        target, used = self.cpu_target_ms, self.result.server_cpu_ms_per_request
        if target is None or used != used:  # no target, or NaN
            return None
        return used <= target

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.result.as_dict(),
            "rps_ratio": round(self.rps_ratio, 3),
            "p50_ratio": round(self.p50_ratio, 2),
            "server_cpu_target_ms": self.cpu_target_ms,
            "meets_cpu_target": self.meets_cpu_target,
        }


@dataclass
class ApiBenchRun:
    """Every scenario's figures on one database."""

    database: str  # "sqlite" or "postgresql"
    database_url: str  # password hidden
    requests: int
    concurrency: int
    scenarios: list[ScenarioFigures] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "database_url": self.database_url,
            "requests": self.requests,
            "concurrency": self.concurrency,
            "scenarios": [s.as_dict() for s in self.scenarios],
        }


def _prepare(url: str, clock: Clock) -> str:
    """Migrate the scratch database and create the benchmark's merchant; its API key."""
    engine = make_engine(url)
    try:
        upgrade(engine)
        with transaction(make_sessionmaker(engine)) as session:
            merchant = create_merchant(
                session, clock, name="Bench Florist", timezone=MERCHANT_TZ, country="MC"
            )
            return issue_api_key(session, clock, merchant, "bench").plaintext
    finally:
        engine.dispose()


async def _measure(
    server: ServerProcess, api_key: str, requests: int, concurrency: int, day: datetime
) -> list[LoadResult]:
    base_url = server.base_url
    warmup = min(200, max(concurrency, requests // 10))
    created: list[str] = []
    run_tag = f"{day:%Y%m%d}-{base_url.rsplit(':', 1)[-1]}"

    async def healthz(client: httpx.AsyncClient, i: int) -> httpx.Response:
        return await client.get("/healthz")

    async def create(client: httpx.AsyncClient, i: int) -> httpx.Response:
        response = await client.post("/v1/orders", json=order_body(f"BENCH-{run_tag}-{i}", day))
        if response.status_code == 201:
            created.append(response.json()["id"])
        return response

    async def fetch(client: httpx.AsyncClient, i: int) -> httpx.Response:
        return await client.get(f"/v1/orders/{created[i % len(created)]}")

    headers = {"Authorization": f"Bearer {api_key}"}
    async with loopback_client(base_url, concurrency, headers=headers) as client:
        results = [
            await run_load(
                client,
                BASELINE,
                healthz,
                requests=requests,
                concurrency=concurrency,
                warmup=warmup,
                server_cpu=server.cpu_seconds,
            ),
            await run_load(
                client,
                "POST /v1/orders",
                create,
                requests=requests,
                concurrency=concurrency,
                warmup=warmup,
                expect_status=(201,),
                server_cpu=server.cpu_seconds,
            ),
        ]
        if created:
            results.append(
                await run_load(
                    client,
                    "GET /v1/orders/{id}",
                    fetch,
                    requests=requests,
                    concurrency=concurrency,
                    warmup=warmup,
                    server_cpu=server.cpu_seconds,
                )
            )
    return results


def _compare(results: list[LoadResult]) -> list[ScenarioFigures]:
    base = results[0]
    return [
        ScenarioFigures(
            result=r,
            rps_ratio=r.rps / base.rps if base.rps else float("nan"),
            p50_ratio=r.p50_ms / base.p50_ms if base.p50_ms else float("nan"),
        )
        for r in results
    ]


def run_api_bench(
    database_url: str | None,
    *,
    requests: int,
    concurrency: int,
    port: int = 0,
    clock: Clock | None = None,
) -> ApiBenchRun:
    """Benchmark the API on a scratch copy of ``database_url`` (``None``: SQLite)."""
    clock = clock or SystemClock()
    day = clock.now() + timedelta(days=1)
    with scratch_workdir() as workdir, scratch_database(database_url, workdir) as url:
        api_key = _prepare(url, clock)
        with ServerProcess(url, workdir, port=port) as server:
            results = asyncio.run(_measure(server, api_key, requests, concurrency, day))
        parsed = make_url(url)
        return ApiBenchRun(
            database=parsed.get_backend_name(),
            database_url=parsed.render_as_string(hide_password=True),
            requests=requests,
            concurrency=concurrency,
            scenarios=_compare(results),
        )
