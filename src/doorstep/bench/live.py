"""``doorstep bench live``: how long a driver position takes to reach the tracking pages.

A server (uvicorn, in this process, on a free 127.0.0.1 port) serves one out-for-delivery order
whose tracking stream ``/t/{token}/events`` is opened ``pages`` times. Then ``positions`` GPS
fixes of its route are written through the domain, one at a time; for each, the time from just
before its commit to its arrival as an SSE ``position`` message is recorded at every page. The
figures: p50/p99/max of those latencies, and how many arrivals were missed (waited at most
``timeout_s`` per fix). With ``redis_url`` the messages go through Redis pub/sub.

The clients share the process (and its GIL) with the server, so the figures are an upper
bound of what a separate browser population would see.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import uvicorn

from doorstep.bench.local_server import scratch_database
from doorstep.clock import SystemClock
from doorstep.db.engine import transaction
from doorstep.db.migrate import upgrade
from doorstep.domain.accounts.service import create_merchant
from doorstep.domain.dispatch.models import Depot, Driver, Plan, Route, Shift, Stop, Vehicle
from doorstep.domain.errors import Actor
from doorstep.domain.orders.events import change_status
from doorstep.domain.orders.schemas import OrderCreate
from doorstep.domain.orders.service import create_order
from doorstep.domain.orders.status import Status
from doorstep.domain.tracking.links import tracking_token_for
from doorstep.domain.tracking.models import Position
from doorstep.ids import new_id
from doorstep.runtime import Runtime
from doorstep.settings import Settings
from doorstep.web.app import create_app

MAX_PAGES = 5000
MAX_POSITIONS = 1000


@dataclass(frozen=True)
class LiveBenchResult:
    database: str
    bus: str
    pages: int
    positions: int
    deliveries: int
    missed: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def _seed(runtime: Runtime) -> tuple[str, str, str, str]:
    """A merchant, one route with one out-for-delivery order; answers (merchant, driver,
    route, token)."""
    clock = runtime.clock
    now = clock.now()
    system = Actor.system()
    with transaction(runtime.sessions) as s:
        merchant = create_merchant(s, clock, name="Bench Florist", timezone="UTC")
        payload = OrderCreate.model_validate(
            {
                "reference": "BENCH-1",
                "recipient": {"name": "Ada Lovelace", "phone": "+37799999999"},
                "address": {
                    "line1": "1 Avenue de la Costa",
                    "city": "Monaco",
                    "country": "MC",
                    "lat": 43.7405,
                    "lon": 7.4263,
                },
                "window": {
                    "start": (now + timedelta(hours=1)).isoformat(),
                    "end": (now + timedelta(hours=3)).isoformat(),
                },
                "service_level": "same_day",
                "parcels": [{"weight_kg": 1.0}],
            }
        )
        secret = runtime.settings.effective_secret_key
        order = create_order(s, clock, merchant.id, payload, actor=system, secret_key=secret)
        for status in (Status.SCHEDULED, Status.PICKED_UP, Status.OUT_FOR_DELIVERY):
            change_status(s, clock, order, status, actor=system)
        depot = Depot(
            id=new_id("dep", now),
            merchant_id=merchant.id,
            name="Depot",
            address_line1="Quai",
            city="Monaco",
            country="MC",
            lat=43.7285,
            lon=7.415,
            opening_hours={},
            created_at=now,
        )
        vehicle = Vehicle(
            id=new_id("veh", now),
            merchant_id=merchant.id,
            name="Van",
            capacity_weight_kg=300,
            capacity_parcels=60,
            created_at=now,
        )
        driver = Driver(
            id=new_id("drv", now),
            merchant_id=merchant.id,
            name="Marco Rossi",
            device_id="bench-" + secrets.token_hex(6),
            created_at=now,
        )
        s.add_all([depot, vehicle, driver])
        s.flush()
        shift = Shift(
            id=new_id("shf", now),
            merchant_id=merchant.id,
            driver_id=driver.id,
            vehicle_id=vehicle.id,
            depot_id=depot.id,
            start_at=now,
            end_at=now + timedelta(hours=8),
            created_at=now,
        )
        plan = Plan(
            id=new_id("pln", now),
            merchant_id=merchant.id,
            depot_id=depot.id,
            date=now.date(),
            status="published",
            seed=1,
            time_limit_s=1.0,
            travel_provider="straight",
            created_at=now,
            published_at=now,
        )
        s.add_all([shift, plan])
        s.flush()
        route = Route(
            id=new_id("rte", now),
            merchant_id=merchant.id,
            plan_id=plan.id,
            shift_id=shift.id,
            driver_id=driver.id,
            vehicle_id=vehicle.id,
            position=0,
            status="active",
        )
        s.add(route)
        s.flush()
        s.add(
            Stop(
                id=new_id("stp", now),
                merchant_id=merchant.id,
                route_id=route.id,
                order_id=order.id,
                sequence=1,
                status="planned",
                planned_arrival=now + timedelta(hours=2),
            )
        )
        token = tracking_token_for(secret, order)
        return merchant.id, driver.id, route.id, token


def _write_position(runtime: Runtime, ids: tuple[str, str, str], lat: float) -> None:
    merchant_id, driver_id, route_id = ids
    now = runtime.clock.now()
    with transaction(runtime.sessions) as s:
        s.add(
            Position(
                merchant_id=merchant_id,
                driver_id=driver_id,
                route_id=route_id,
                source="sim",
                recorded_at=now,
                received_at=now,
                lat=lat,
                lon=7.42,
            )
        )


class _Server:
    def __init__(self, runtime: Runtime) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        app = create_app(runtime, migrate=False)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> _Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the bench server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


async def _measure(
    url: str,
    path: str,
    pages: int,
    positions: int,
    timeout_s: float,
    write: Callable[[float], None],
) -> tuple[list[float], int]:
    arrivals: list[dict[int, float]] = [{} for _ in range(pages)]
    ready = asyncio.Event()
    connected = 0
    limits = httpx.Limits(max_connections=pages + 10, max_keepalive_connections=pages + 10)
    timeout = httpx.Timeout(10.0, read=60.0)  # streams get a ping every 15 s
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:

        async def page(index: int) -> None:
            nonlocal connected
            async with client.stream("GET", path) as resp:
                event = ""
                async for line in resp.aiter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:") and event == "snapshot":
                        connected += 1
                        if connected == pages:
                            ready.set()
                    elif line.startswith("data:") and event == "position":
                        fix = round((json.loads(line[5:])["lat"] - 43.0) * 1000)
                        arrivals[index][fix] = time.perf_counter()

        tasks = [asyncio.create_task(page(i)) for i in range(pages)]
        await asyncio.wait_for(ready.wait(), timeout=max(30.0, pages * 0.05))
        latencies: list[float] = []
        missed = 0
        for fix in range(1, positions + 1):
            started = time.perf_counter()
            await asyncio.to_thread(write, 43.0 + fix / 1000)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and any(fix not in a for a in arrivals):
                await asyncio.sleep(0.002)
            for a in arrivals:
                if fix in a:
                    latencies.append((a[fix] - started) * 1000)
                else:
                    missed += 1
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return latencies, missed


def run_live_bench(
    *,
    pages: int = 100,
    positions: int = 20,
    database_url: str | None = None,
    redis_url: str | None = None,
    timeout_s: float = 5.0,
) -> LiveBenchResult:
    with tempfile.TemporaryDirectory(prefix="doorstep-bench-live-") as tmp:
        workdir = Path(tmp)
        with scratch_database(database_url, workdir) as db_url:
            settings = Settings(
                data_dir=workdir / "data",
                database_url=db_url,
                redis_url=redis_url,
                secret_key=secrets.token_urlsafe(48),
                tracking_rate_limit_per_minute=pages * 4 + 100,
            )
            runtime = Runtime.from_settings(settings, SystemClock())
            try:
                upgrade(runtime.engine)
                merchant_id, driver_id, route_id, token = _seed(runtime)
                ids = (merchant_id, driver_id, route_id)
                with _Server(runtime) as server:
                    latencies, missed = asyncio.run(
                        _measure(
                            server.url,
                            f"/t/{token}/events",
                            pages,
                            positions,
                            timeout_s,
                            lambda lat: _write_position(runtime, ids, lat),
                        )
                    )
            finally:
                runtime.close()
    ordered = sorted(latencies) or [float("nan")]
    p99_index = min(len(ordered) - 1, max(0, round(0.99 * len(ordered)) - 1))
    return LiveBenchResult(
        database="postgresql" if database_url else "sqlite",
        bus="redis" if redis_url else "in-process",
        pages=pages,
        positions=positions,
        deliveries=len(latencies),
        missed=missed,
        p50_ms=statistics.median(ordered),
        p99_ms=ordered[p99_index],
        max_ms=ordered[-1],
    )
