"""Many customers reserving the last places of one window at the same moment, over real HTTP
on a live server: exactly the window's capacity is held, on SQLite and on PostgreSQL; and many
recipients rebooking into one published day at once leave every route whole."""

from __future__ import annotations

import threading
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from doorstep.domain.dispatch.models import Route, Stop
from doorstep.domain.slots.models import Reservation, SlotCounter
from doorstep.runtime import Runtime
from doorstep.web.app import create_app
from tests.api.test_slots_plan import MONACO
from tests.api.test_slots_plan import planned as planned
from tests.conftest import MerchantCtx
from tests.live import live_server
from tests.slots_setup import EVERY_DAY, IN_MONACO, monaco_setup

CAPACITY = 5
CUSTOMERS = 16


def test_simultaneous_reservations_never_oversell_a_window(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """16 reservations fired together at a 5-place window: 5 are 201, 11 are 409, 5 holds
    exist and the window's counter says 5."""
    setup = monaco_setup(
        app_client,
        merchant,
        windows=[{"days": EVERY_DAY, "start": "10:00", "end": "12:00", "capacity": CAPACITY}],
    )
    body = {
        "calendar_id": setup["calendar"]["id"],
        "start": "2026-11-26T10:00:00+01:00",
        "address": IN_MONACO,
    }
    statuses: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(CUSTOMERS)
    with live_server(create_app(runtime, migrate=False)) as url:

        def customer() -> None:
            with httpx.Client(base_url=url, headers=merchant.headers, timeout=60) as client:
                barrier.wait(30)
                r = client.post("/v1/slots/reservations", json=body)
            with lock:
                statuses.append(r.status_code)

        threads = [threading.Thread(target=customer) for _ in range(CUSTOMERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
    assert sorted(statuses) == [201] * CAPACITY + [409] * (CUSTOMERS - CAPACITY)
    with runtime.sessions() as s:
        held = s.scalar(
            select(func.count()).select_from(Reservation).where(Reservation.status == "held")
        )
        taken = s.scalar(select(SlotCounter.taken))
    assert held == CAPACITY
    assert taken == CAPACITY


RESCHEDULERS = 6


def test_simultaneous_rebookings_into_one_published_day_keep_every_route_whole(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx, planned: dict[str, Any]
) -> None:
    """Six recipients move their afternoon deliveries to this morning's 10-12 at the same
    moment: each gets a 200, each order has exactly one stop on the published plan, and every
    route's stops are numbered 1..n in the order of their planned times (no two changes
    re-sequenced a route from what they read before the other committed)."""
    movers = afternoon_orders(runtime, planned["plan_id"], RESCHEDULERS)
    body = {"calendar_id": planned["calendar"]["id"], "start": "2026-11-25T10:00:00+01:00"}
    statuses: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(movers))
    with live_server(create_app(runtime, migrate=False)) as url:

        def recipient(order_id: str) -> None:
            with httpx.Client(base_url=url, headers=merchant.headers, timeout=60) as client:
                barrier.wait(30)
                r = client.post(f"/v1/orders/{order_id}/reschedule", json=body)
            with lock:
                statuses.append(r.status_code)

        threads = [threading.Thread(target=recipient, args=(o,)) for o in movers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
    assert statuses == [200] * len(movers)
    with runtime.sessions() as s:
        routes = s.scalars(select(Route).where(Route.plan_id == planned["plan_id"])).all()
        for route in routes:
            assert [stop.sequence for stop in route.stops] == list(
                range(1, len(route.stops) + 1)
            ), route.id
            times = [stop.planned_arrival for stop in route.stops]
            assert times == sorted(times), route.id  # type: ignore[type-var]
        on_plan = [
            order_id
            for order_id in s.scalars(
                select(Stop.order_id)
                .join(Route, Route.id == Stop.route_id)
                .where(Route.plan_id == planned["plan_id"], Stop.order_id.in_(movers))
            )
        ]
    assert sorted(on_plan) == sorted(movers)


def afternoon_orders(runtime: Runtime, plan_id: str, count: int) -> list[str]:
    """``count`` orders of the plan planned to arrive from 14:00 (Monaco), earliest first."""
    with runtime.sessions() as s:
        rows = s.execute(
            select(Stop.order_id, Stop.planned_arrival)
            .join(Route, Route.id == Stop.route_id)
            .where(Route.plan_id == plan_id)
            .order_by(Stop.planned_arrival)
        ).all()
    later = [o for o, at in rows if at is not None and at.astimezone(MONACO).hour >= 14]
    assert len(later) >= count
    return later[:count]
