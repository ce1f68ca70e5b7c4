"""Live tracking costs per event, not per page, on a real server: five pages open on one
link share one bus subscription, and an ETA change re-reads the delivery once for all of them,
each page still getting its own language; a GPS fix posted to /ingest/osmand is on the bus as
soon as it is taken, before the write buffer stores it, and a late fix never moves the marker
back; two dispatch maps of one merchant share one read per change."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Role
from doorstep.domain.tracking.models import Position
from doorstep.live import InProcessBus
from doorstep.runtime import Runtime
from doorstep.web.app import create_app
from doorstep.web.pages import dispatch_live, tracking
from tests.api.ingest_support import published_route
from tests.api.test_dispatch_live import _sign_in
from tests.conftest import NOW, MerchantCtx
from tests.console_session import make_user
from tests.live import live_server
from tests.sse_client import messages, next_of
from tests.tracking_scene import build_scene, set_status, write_eta


def test_five_pages_of_one_link_share_one_subscription_and_one_read_per_event(
    app_client: TestClient,
    runtime: Runtime,
    merchant: MerchantCtx,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With five pages (two in French) open on one link, an ETA change is read from the
    database once, and every page gets the new window in its own language."""
    scene = build_scene(app_client, runtime, merchant)
    set_status(app_client, scene, 1, "scheduled", "picked_up", "out_for_delivery")
    reads: list[str] = []
    real = tracking.load_tracking_view

    def counted(session: Any, order: Any) -> Any:
        reads.append(order.id)
        return real(session, order)

    monkeypatch.setattr(tracking, "load_tracking_view", counted)
    app = create_app(runtime, migrate=False)
    languages = ["en", "en", "en", "fr", "fr"]
    with live_server(app) as url, contextlib.ExitStack() as stack:
        streams = []
        for lang in languages:
            client = stack.enter_context(httpx.Client(base_url=url, timeout=10.0))
            resp = stack.enter_context(
                client.stream("GET", f"{scene.path(1)}/events", headers={"Accept-Language": lang})
            )
            assert resp.status_code == 200
            stream = messages(resp)
            next_of(stream, "snapshot")
            streams.append(stream)
        bus = runtime.live
        assert isinstance(bus, InProcessBus)
        assert bus.subscriber_count() == 1
        before = len(reads)
        earliest = NOW + timedelta(minutes=40)
        writer = threading.Thread(
            target=write_eta,
            args=(runtime, scene, 1, earliest, earliest + timedelta(minutes=15), 0),
        )
        writer.start()
        texts = [next_of(stream, "snapshot").json()["eta_text"] for stream in streams]
        writer.join()
    assert texts == ["Between 08:40 and 08:55"] * 3 + ["Entre 08:40 et 08:55"] * 2
    assert len(reads) - before == 1


def test_a_fix_is_on_the_bus_once_taken_before_it_is_stored_and_a_late_fix_never(
    runtime: Runtime, merchant: MerchantCtx
) -> None:
    """No lifespan here, so nothing flushes the write buffer: the fix is published with no
    row yet; a fix older than it (a phone resending its backlog) is stored but not published."""
    fleet = published_route(runtime, merchant.id)
    client = TestClient(create_app(runtime, migrate=False))

    def post(minutes: float, lat: float) -> None:
        at = int((NOW + timedelta(minutes=minutes)).timestamp())
        params = {"id": fleet.device_id, "timestamp": str(at), "lat": str(lat), "lon": "7.4197"}
        assert client.get("/ingest/osmand", params=params).json()["accepted"] == 1

    def stored() -> int:
        with transaction(runtime.read_sessions) as s:
            count = s.scalar(select(func.count()).where(Position.driver_id == fleet.driver_id))
            return int(count or 0)

    async def run() -> tuple[dict[str, Any] | None, int, dict[str, Any] | None]:
        sub = runtime.live.subscribe([f"route:{fleet.route_id}"])
        await asyncio.to_thread(post, -1, 43.7312)
        fresh = await sub.get(timeout=5)
        rows = await asyncio.to_thread(stored)
        await asyncio.to_thread(post, -3, 43.7301)
        late = await sub.get(timeout=0.5)
        sub.close()
        return fresh, rows, late

    fresh, rows_then, late = asyncio.run(run())
    assert fresh is not None and fresh["lat"] == 43.7312 and fresh["id"] is None
    assert fresh["driver_id"] == fleet.driver_id
    assert rows_then == 0
    assert late is None
    client.app.state.position_ingest.writer.flush()  # type: ignore[attr-defined]
    assert stored() == 2


def test_two_dispatchers_of_one_merchant_share_one_read_per_change(
    app_client: TestClient,
    runtime: Runtime,
    merchant: MerchantCtx,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two signed-in dispatch maps of one merchant: one bus subscription between them, and a
    stop's change is read once and reaches both."""
    scene = build_scene(app_client, runtime, merchant)
    make_user(runtime, merchant.id, "disp@example.com", Role.DISPATCHER)
    reads: list[list[str]] = []
    real = dispatch_live.watch_stops

    def counted(session: Any, merchant_id: str, order_ids: Any, now: Any) -> Any:
        ids = list(order_ids)
        reads.append(ids)
        return real(session, merchant_id, ids, now)

    monkeypatch.setattr(dispatch_live, "watch_stops", counted)
    app = create_app(runtime, migrate=False)
    with live_server(app) as url, contextlib.ExitStack() as stack:
        streams = []
        for _ in range(2):
            client = stack.enter_context(httpx.Client(base_url=url, timeout=10.0))
            _sign_in(client, "disp@example.com")
            resp = stack.enter_context(client.stream("GET", "/console/dispatch/events"))
            stream = messages(resp)
            next_of(stream, "ready")
            streams.append(stream)
        bus = runtime.live
        assert isinstance(bus, InProcessBus)
        assert bus.subscriber_count() == 1
        set_status(app_client, scene, 0, "scheduled")
        got = [next_of(stream, "stop").json()["order_id"] for stream in streams]
    assert got == [scene.orders[0]["id"]] * 2
    assert reads == [[scene.orders[0]["id"]]]
