"""``doorstep bench live``: how long a driver's GPS fix takes to reach the tracking pages.

Set-up: a scratch database (SQLite, or a fresh one on a PostgreSQL server) with one merchant
and ``orders`` out-for-delivery orders, five to a route (so every recipient may see the driver:
the default limit is five stops), each route's driver with an OsmAnd device id; one real
``doorstep serve`` process on it (its worker running, as in production: the ETA engine writes
``delivery.eta_updated`` events while the vans move).

Clients: ``pages`` tracking streams ``/t/{token}/events``, spread evenly over the orders, held
by ``clients`` **separate processes** (plain asyncio sockets, a few microseconds per message),
so the server's CPU is its own and the clients' is not counted against it.

Measured: every ``interval_ms`` the bench posts one fix per route to ``/ingest/osmand`` (the
OsmAnd query form, exactly as a phone sends it), after one unmeasured fix per route (a driver's
first fix in a process looks the device up in the database, once a day); each fix moves the van
111 m north, so each page can tell which fix a ``position`` message is from its latitude
(rounded to 3 decimals, as pages get it; :mod:`~doorstep.bench.live_clients`). The latency of
a (fix, page) pair is from just before the POST is sent to the moment the page's process reads
the message; both ends read the same system-wide monotonic clock (``CLOCK_MONOTONIC``). A pair
not received within ``timeout_s`` is missed; so is a fix a slow page never got because a newer
one replaced it (the pages' mailboxes keep the newest).
"""

from __future__ import annotations

import asyncio
import gc
import math
import multiprocessing
import secrets
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from typing import Any

import httpx

from doorstep.bench.fleet import active_routes
from doorstep.bench.http_load import ensure_loopback, percentile
from doorstep.bench.live_clients import START_LAT, STEP_DEG, client_main
from doorstep.bench.local_server import ServerProcess, scratch_database, scratch_workdir
from doorstep.clock import Clock, SystemClock
from doorstep.db.engine import make_engine, make_sessionmaker, transaction
from doorstep.db.migrate import upgrade
from doorstep.domain.accounts.service import create_merchant
from doorstep.domain.dispatch.models import Stop
from doorstep.domain.errors import Actor
from doorstep.domain.orders.events import change_status
from doorstep.domain.orders.schemas import OrderCreate
from doorstep.domain.orders.service import create_order
from doorstep.domain.orders.status import Status
from doorstep.domain.tracking.links import tracking_token_for
from doorstep.domain.tracking.payloads import KNOT_MPS
from doorstep.ids import new_id

__all__ = ["MAX_PAGES", "MAX_POSITIONS", "LiveBenchResult", "run_live_bench"]

MAX_PAGES = 5000
MAX_POSITIONS = 1000
STOPS_PER_ROUTE = 5  # the default tracking_driver_visible_stops: every page may see its van
START = (START_LAT, 7.400)  # south-west of Monaco
FIX_EVERY_S = 5  # recorded times of successive fixes (22 m/s: a plausible van, no teleport)


@dataclass(frozen=True)
class LiveBenchResult:
    database: str
    bus: str
    pages: int
    orders: int
    routes: int
    positions: int
    interval_ms: int
    client_processes: int
    deliveries: int
    missed: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    # The POST /ingest/osmand round trips, and how long after the first page of its route
    # each page got a fix (the fan-out's own share of the latency).
    post_p50_ms: float
    post_p99_ms: float
    spread_p99_ms: float
    server_cpu_ms_per_fix: float

    def as_dict(self) -> dict[str, Any]:
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in asdict(self).items()
        }


@dataclass(frozen=True)
class _Scene:
    devices: list[str]  # one per route
    pages: list[tuple[str, int]]  # (tracking path, route index), one per page


def _order_payload(now: datetime, index: int, route: int) -> OrderCreate:
    return OrderCreate.model_validate(
        {
            "reference": f"BENCH-{index + 1}",
            "recipient": {"name": "Ada Lovelace", "phone": "+37799999999"},
            "address": {
                "line1": "1 Avenue de la Costa",
                "city": "Monaco",
                "country": "MC",
                "lat": 43.7405 + 0.001 * (index % STOPS_PER_ROUTE),
                "lon": 7.4263 + 0.001 * route,
            },
            "window": {
                "start": (now + timedelta(hours=1)).isoformat(),
                "end": (now + timedelta(hours=3)).isoformat(),
            },
            "service_level": "same_day",
            "parcels": [{"weight_kg": 1.0}],
        }
    )


def _seed(url: str, clock: Clock, secret: str, orders: int, pages: int) -> _Scene:
    """Migrate; one merchant, ``ceil(orders / 5)`` active routes of five out-for-delivery
    stops each, one driver with a device id per route; the pages' paths, round-robin."""
    engine = make_engine(url)
    now = clock.now()
    system = Actor.system()
    try:
        upgrade(engine)
        with transaction(make_sessionmaker(engine)) as s:
            merchant = create_merchant(s, clock, name="Bench Florist", timezone="UTC")
            routes = active_routes(
                s, clock, merchant.id, math.ceil(orders / STOPS_PER_ROUTE), START
            )
            paths: list[tuple[str, int]] = []
            for i in range(orders):
                r = i // STOPS_PER_ROUTE
                payload = _order_payload(now, i, r)
                order = create_order(
                    s, clock, merchant.id, payload, actor=system, secret_key=secret
                )
                for status in (Status.SCHEDULED, Status.PICKED_UP, Status.OUT_FOR_DELIVERY):
                    change_status(s, clock, order, status, actor=system)
                s.add(
                    Stop(
                        id=new_id("stp", now),
                        merchant_id=merchant.id,
                        route_id=routes[r].route_id,
                        order_id=order.id,
                        sequence=i % STOPS_PER_ROUTE + 1,
                        status="planned",
                        planned_arrival=now + timedelta(hours=2),
                    )
                )
                paths.append((f"/t/{tracking_token_for(secret, order)}/events", r))
        return _Scene([r.device_id for r in routes], [paths[i % orders] for i in range(pages)])
    finally:
        engine.dispose()


# --- the driver (this process) -------------------------------------------------------------


async def _drive(
    base_url: str, devices: list[str], positions: int, interval_s: float, t0: datetime
) -> tuple[list[list[int]], list[float]]:
    """Post fix ``k`` (0..positions) of every route every ``interval_s``, the routes spread
    over the interval, each waiting for its previous answer; the monotonic time
    (ns) just before each POST, by route and fix, and each measured POST's round trip (ms)."""
    sent = [[0] * (positions + 1) for _ in devices]
    round_trips: list[float] = []
    limits = httpx.Limits(max_connections=len(devices) + 2)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, trust_env=False) as client:

        async def post(r: int, k: int) -> None:
            params = {
                "id": devices[r],
                "timestamp": str(int((t0 + timedelta(seconds=FIX_EVERY_S * k)).timestamp())),
                "lat": f"{START[0] + k * STEP_DEG:.6f}",
                "lon": f"{START[1] + r * 0.01:.6f}",
                "speed": f"{STEP_DEG * 111_000 / FIX_EVERY_S / KNOT_MPS:.1f}",
                "bearing": "0",
                "accuracy": "5",
            }
            sent[r][k] = time.monotonic_ns()
            answer = await client.get("/ingest/osmand", params=params)
            round_trips.append((time.monotonic_ns() - sent[r][k]) / 1e6)
            if answer.status_code != 200:
                raise RuntimeError(f"/ingest/osmand answered {answer.status_code}: {answer.text}")

        # Fix 0 is not measured: a driver's first fix in a process costs a database lookup of
        # the device (then cached), once a day, not once a fix.
        await asyncio.gather(*(post(r, 0) for r in range(len(devices))))
        round_trips.clear()
        await asyncio.sleep(interval_s)
        start = time.monotonic()

        async def drive(r: int) -> None:
            # Phones are not in step: route r sends r/routes of an interval after route 0.
            for k in range(1, positions + 1):
                due = start + (k - 1 + r / len(devices)) * interval_s
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                await post(r, k)

        await asyncio.gather(*(drive(r) for r in range(len(devices))))
    return sent, round_trips


def _spread(pages: list[tuple[str, int]], processes: int) -> list[list[int]]:
    """Page indices per client process, round-robin."""
    return [list(range(p, len(pages), processes)) for p in range(processes)]


def run_live_bench(
    *,
    pages: int = 100,
    positions: int = 20,
    orders: int = 1,
    database_url: str | None = None,
    redis_url: str | None = None,
    interval_ms: int = 500,
    clients: int = 2,
    timeout_s: float = 5.0,
) -> LiveBenchResult:
    """Run the benchmark (see the module's text) on a scratch database and return figures."""
    orders = max(1, min(orders, pages))
    clients = max(1, min(clients, pages))
    clock = SystemClock()
    secret = secrets.token_urlsafe(48)
    t0 = clock.now() - timedelta(seconds=FIX_EVERY_S * (positions + 1) + 60)
    with scratch_workdir() as workdir, scratch_database(database_url, workdir) as url:
        scene = _seed(url, clock, secret, orders, pages)
        env = {
            "DOORSTEP_SECRET_KEY": secret,
            "DOORSTEP_TRACKING_RATE_LIMIT_PER_MINUTE": str(pages * 4 + 100),
        }
        if redis_url:
            env["DOORSTEP_REDIS_URL"] = redis_url
        with ServerProcess(url, workdir, env=env) as server:
            ensure_loopback(server.base_url)
            host, port = "127.0.0.1", server.port
            spread = _spread(scene.pages, clients)
            context = multiprocessing.get_context("spawn")
            links: list[Connection] = []
            procs = []
            try:
                for indices in spread:
                    parent, child = context.Pipe()
                    paths = [scene.pages[i][0] for i in indices]
                    proc = context.Process(
                        target=client_main,
                        args=(child, host, port, paths, positions),
                        daemon=True,
                    )
                    proc.start()
                    links.append(parent)
                    procs.append(proc)
                for link in links:
                    if not link.poll(180):
                        raise RuntimeError("a client process did not report in 180 s")
                    kind, detail = link.recv()
                    if kind != "ready":
                        raise RuntimeError(f"client process: {detail}")
                cpu_before = server.cpu_seconds()
                # The bench is the stopwatch: no collector pause of its own between reading the
                # clock and sending a fix.
                gc.disable()
                try:
                    sent, round_trips = asyncio.run(
                        _drive(server.base_url, scene.devices, positions, interval_ms / 1000, t0)
                    )
                finally:
                    gc.enable()
                deadline = max(sent[r][positions] for r in range(len(scene.devices)))
                for link in links:
                    link.send(("collect", deadline + int(timeout_s * 1e9)))
                arrivals: list[list[int]] = [[] for _ in scene.pages]
                for link, indices in zip(links, spread, strict=True):
                    if not link.poll(timeout_s + 60):
                        raise RuntimeError("a client process did not answer in 60 s")
                    _, rows = link.recv()
                    for i, row in zip(indices, rows, strict=True):
                        arrivals[i] = row
                cpu = server.cpu_seconds() - cpu_before
            finally:
                for proc in procs:
                    proc.join(10)
                    if proc.is_alive():
                        proc.kill()
    latencies: list[float] = []
    spreads: list[float] = []  # after the first page of its route had the fix
    missed = 0
    first: dict[tuple[int, int], int] = {}
    for (_, route), row in zip(scene.pages, arrivals, strict=True):
        for k in range(1, positions + 1):
            if row[k] and (row[k] < first.get((route, k), row[k] + 1)):
                first[(route, k)] = row[k]
    for (_, route), row in zip(scene.pages, arrivals, strict=True):
        for k in range(1, positions + 1):
            got, start = row[k], sent[route][k]
            latency = (got - start) / 1e6
            if got and latency <= timeout_s * 1000:
                latencies.append(latency)
                spreads.append((got - first[(route, k)]) / 1e6)
            else:
                missed += 1
    ordered = sorted(latencies)
    posts = sorted(round_trips)
    fixes = positions * len(scene.devices)
    return LiveBenchResult(
        database="postgresql" if database_url else "sqlite",
        bus="redis" if redis_url else "in-process",
        pages=pages,
        orders=orders,
        routes=len(scene.devices),
        positions=positions,
        interval_ms=interval_ms,
        client_processes=clients,
        deliveries=len(latencies),
        missed=missed,
        p50_ms=percentile(ordered, 50),
        p95_ms=percentile(ordered, 95),
        p99_ms=percentile(ordered, 99),
        max_ms=ordered[-1] if ordered else math.nan,
        post_p50_ms=percentile(posts, 50),
        post_p99_ms=percentile(posts, 99),
        spread_p99_ms=percentile(sorted(spreads), 99),
        server_cpu_ms_per_fix=cpu * 1000 / fixes if fixes else math.nan,
    )
