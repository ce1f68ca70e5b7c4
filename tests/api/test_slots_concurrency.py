"""Many customers reserving the last places of one window at the same moment, over real HTTP
on a live server: exactly the window's capacity is held, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from doorstep.domain.slots.models import Reservation, SlotCounter
from doorstep.runtime import Runtime
from doorstep.web.app import create_app
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
