"""The tracking benchmark: how fast one server takes positions, next to its trivial endpoint.

Part 1 (here): one ``doorstep serve`` process on a scratch PostgreSQL database (or the URL
given); ``devices`` drivers, each with a device id and an active route. Measured the same way
in the same run:

1. ``GET /healthz`` — the baseline: what the HTTP stack alone costs;
2. ``GET /ingest/osmand?id=..&lat=..`` — OsmAnd's query form, each device driving a straight
   line one metre a second, so the screen takes every fix (no duplicates, no teleports);
3. ``POST /ingest/osmand`` with Traccar Client's JSON body.

The report gives requests/s, p50/p99 and server CPU per request of each, and the ratio of
positions/s to the baseline (target: at least 0.5). After the server is stopped (SIGTERM, so
its buffer is written) the positions in the database are counted: every accepted fix must be
there.

Part 2, with ``live_pages``: position -> SSE event latency with that many tracking pages
connected, by :func:`doorstep.bench.live.run_live_bench` (a fresh server and database, the
pages in separate processes, fixes posted to ``/ingest/osmand``); its figures go to
:attr:`TrackingBenchRun.sse`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from doorstep.bench.fleet import active_routes
from doorstep.bench.http_load import LoadResult, loopback_client, run_load
from doorstep.bench.local_server import (
    DEFAULT_POSTGRES_URL,
    ServerProcess,
    is_postgres,
    scratch_database,
    scratch_workdir,
)
from doorstep.clock import Clock, SystemClock
from doorstep.db.engine import make_engine, make_sessionmaker, transaction
from doorstep.db.migrate import upgrade
from doorstep.domain.accounts.service import create_merchant
from doorstep.domain.tracking.models import Position
from doorstep.domain.tracking.payloads import KNOT_MPS

__all__ = ["TARGET_RATIO", "TrackingBenchRun", "run_tracking_bench"]

BASELINE = "GET /healthz"
OSMAND = "GET /ingest/osmand"
TRACCAR_JSON = "POST /ingest/osmand (JSON)"
TARGET_RATIO = 0.5
START = (43.7285, 7.4150)  # Fontvieille, Monaco
STEP_DEG = 1e-5  # about 1.1 m north per fix
SPEED_MPS = 1.1


@dataclass
class TrackingBenchRun:
    database: str
    database_url: str
    requests: int
    concurrency: int
    devices: int
    results: list[LoadResult] = field(default_factory=list)
    positions_sent: int = 0
    positions_stored: int = 0
    # Part 2, position -> SSE event latency with ``live_pages`` tracking pages (bench live).
    sse: dict[str, Any] | None = None

    def ratio(self, name: str) -> float:
        base = self.results[0].rps if self.results else 0.0
        for r in self.results:
            if r.name == name and base:
                return r.rps / base
        return float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "database_url": self.database_url,
            "requests": self.requests,
            "concurrency": self.concurrency,
            "devices": self.devices,
            "scenarios": [
                {**r.as_dict(), "rps_ratio": round(self.ratio(r.name), 3)} for r in self.results
            ],
            "positions_sent": self.positions_sent,
            "positions_stored": self.positions_stored,
            "target_ratio": TARGET_RATIO,
            "sse": self.sse,
        }


def _prepare(url: str, clock: Clock, devices: int) -> list[str]:
    """Migrate; one merchant whose ``devices`` drivers each have an active route today."""
    engine = make_engine(url)
    try:
        upgrade(engine)
        with transaction(make_sessionmaker(engine)) as s:
            merchant = create_merchant(s, clock, name="Bench Couriers", timezone="Europe/Monaco")
            return [r.device_id for r in active_routes(s, clock, merchant.id, devices, START)]
    finally:
        engine.dispose()


def _count_positions(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(Position)).scalar() or 0)
    finally:
        engine.dispose()


class _Drive:
    """Request ``i`` is fix number ``i // devices`` of device ``i % devices``: each device
    drives north a metre a second from three hours ago, so every fix is plausible and new."""

    def __init__(self, devices: list[str], t0: datetime, offset: int) -> None:
        self.devices = devices
        self.t0 = t0
        self.offset = offset  # so the JSON scenario's fixes follow the query scenario's

    def fix(self, i: int) -> tuple[str, datetime, float, float]:
        n = len(self.devices)
        k = self.offset + i // n
        return (
            self.devices[i % n],
            self.t0 + timedelta(seconds=k),
            START[0] + k * STEP_DEG,
            START[1] + (i % n) * 1e-4,
        )


async def _measure(
    server: ServerProcess,
    devices: list[str],
    requests: int,
    concurrency: int,
    t0: datetime,
    json_form: bool,
) -> tuple[list[LoadResult], int]:
    warmup = min(200, max(concurrency, requests // 10))
    per_scenario = requests + warmup
    query_drive = _Drive(devices, t0, 0)
    json_drive = _Drive(devices, t0, per_scenario // len(devices) + 1)

    async def healthz(client: httpx.AsyncClient, i: int) -> httpx.Response:
        return await client.get("/healthz")

    async def osmand(client: httpx.AsyncClient, i: int) -> httpx.Response:
        device, at, lat, lon = query_drive.fix(i)
        params = {
            "id": device,
            "timestamp": str(int(at.timestamp())),
            "lat": f"{lat:.6f}",
            "lon": f"{lon:.6f}",
            "speed": f"{SPEED_MPS / KNOT_MPS:.2f}",
            "bearing": "0",
            "accuracy": "5",
            "batt": "80",
        }
        return await client.get("/ingest/osmand", params=params)

    async def traccar(client: httpx.AsyncClient, i: int) -> httpx.Response:
        device, at, lat, lon = json_drive.fix(i)
        body = {
            "device_id": device,
            "location": {
                "timestamp": at.isoformat().replace("+00:00", "Z"),
                "coords": {
                    "latitude": lat,
                    "longitude": lon,
                    "speed": SPEED_MPS,
                    "heading": 0,
                    "accuracy": 5,
                },
                "battery": {"level": 0.8},
            },
        }
        return await client.post("/ingest/osmand", json=body)

    sent = 0
    async with loopback_client(server.base_url, concurrency) as client:
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
                OSMAND,
                osmand,
                requests=requests,
                concurrency=concurrency,
                warmup=warmup,
                server_cpu=server.cpu_seconds,
            ),
        ]
        sent += per_scenario
        if json_form:
            results.append(
                await run_load(
                    client,
                    TRACCAR_JSON,
                    traccar,
                    requests=requests,
                    concurrency=concurrency,
                    warmup=warmup,
                    server_cpu=server.cpu_seconds,
                )
            )
            sent += per_scenario
    return results, sent


def run_tracking_bench(
    database_url: str | None = DEFAULT_POSTGRES_URL,
    *,
    requests: int,
    concurrency: int,
    devices: int,
    json_form: bool = True,
    port: int = 0,
    clock: Clock | None = None,
    live_pages: int = 0,
    live_positions: int = 50,
) -> TrackingBenchRun:
    """Benchmark position ingest on a scratch database on ``database_url``'s server; then,
    with ``live_pages``, the fan-out of ``live_positions`` fixes to that many pages."""
    clock = clock or SystemClock()
    fixes_per_device = 2 * (requests + 200) // max(devices, 1) + 2
    t0 = clock.now() - timedelta(seconds=fixes_per_device + 60)
    with scratch_workdir() as workdir, scratch_database(database_url, workdir) as url:
        device_ids = _prepare(url, clock, devices)
        with ServerProcess(url, workdir, port=port) as server:
            results, sent = asyncio.run(
                _measure(server, device_ids, requests, concurrency, t0, json_form)
            )
        # The server has stopped cleanly (SIGTERM): its buffer is written.
        stored = _count_positions(url)
        parsed = make_url(url)
        run = TrackingBenchRun(
            database=parsed.get_backend_name(),
            database_url=parsed.render_as_string(hide_password=True),
            requests=requests,
            concurrency=concurrency,
            devices=devices,
            results=results,
            positions_sent=sent,
            positions_stored=stored,
        )
    if live_pages:
        from doorstep.bench.live import run_live_bench

        postgres = database_url is not None and is_postgres(database_url)
        live = run_live_bench(
            pages=live_pages,
            positions=live_positions,
            database_url=database_url if postgres else None,
        )
        run.sse = live.as_dict()
    return run
