"""The live bus and its session hook: what a transaction writes is published after it commits,
on the order's, route's and merchant's channels, and nothing is published on a rollback."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from doorstep.db.engine import transaction
from doorstep.domain.errors import Actor
from doorstep.domain.orders.events import change_status
from doorstep.domain.orders.models import Order
from doorstep.domain.orders.status import Status
from doorstep.live import InProcessBus, publish_stored_positions
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.tracking_scene import build_scene, write_position


async def _drain(sub: Any, until: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while len(got) < until:
        message = await sub.get(timeout=timeout)
        if message is None:
            break
        got.append(message)
    return got


def test_in_process_bus_delivers_to_subscribers_of_the_channel_only() -> None:
    """A message reaches the subscribers of its channel, not those of other channels."""
    bus = InProcessBus()

    async def run() -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        a = bus.subscribe(["order:1"])
        b = bus.subscribe(["order:2"])
        await asyncio.to_thread(bus.publish, "order:1", {"kind": "event", "n": 1})
        got = await _drain(a, 1)
        other = await b.get(timeout=0.2)
        a.close()
        b.close()
        return got, other

    got, other = asyncio.run(run())
    assert got == [{"channel": "order:1", "kind": "event", "n": 1}]
    assert other is None
    assert bus.subscriber_count() == 0


def test_committed_events_and_positions_are_published_and_rolled_back_ones_are_not(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """A status change reaches order:, route: (looked up from the published plan) and
    merchant: channels after commit; a position reaches route: and merchant:; a rolled-back
    change reaches nobody."""
    scene = build_scene(app_client, runtime, merchant)
    order_id = scene.orders[0]["id"]
    bus = runtime.live

    def commit_change() -> None:
        with transaction(runtime.sessions) as s:
            order = s.get(Order, order_id)
            assert order is not None
            change_status(s, runtime.clock, order, Status.SCHEDULED, actor=Actor.system())

    def rolled_back_change() -> None:
        with pytest.raises(RuntimeError), transaction(runtime.sessions) as s:
            order = s.get(Order, order_id)
            assert order is not None
            change_status(s, runtime.clock, order, Status.CANCELLED, actor=Actor.system())
            s.flush()
            raise RuntimeError("changed my mind")

    async def run() -> dict[str, list[dict[str, Any]]]:
        subs = {
            "order": bus.subscribe([f"order:{order_id}"]),
            "route": bus.subscribe([f"route:{scene.route_id}"]),
            "merchant": bus.subscribe([f"merchant:{merchant.id}"]),
        }
        await asyncio.to_thread(rolled_back_change)
        await asyncio.to_thread(commit_change)
        await asyncio.to_thread(write_position, runtime, scene, 43.74, 7.42)
        got = {
            "order": await _drain(subs["order"], 1),
            "route": await _drain(subs["route"], 2),
            "merchant": await _drain(subs["merchant"], 2),
        }
        for name, sub in subs.items():
            extra = await sub.get(timeout=0.3)
            assert extra is None, (name, extra)
            sub.close()
        return got

    got = asyncio.run(run())
    (event,) = got["order"]
    assert event["kind"] == "event" and event["type"] == "delivery.scheduled"
    assert event["status"] == "scheduled" and event["order_id"] == order_id
    assert event["route_id"] == scene.route_id
    assert [m["kind"] for m in got["route"]] == ["event", "position"]
    assert [m["kind"] for m in got["merchant"]] == ["event", "position"]
    position = got["route"][1]
    assert position["lat"] == 43.74 and position["driver_id"] == scene.driver_id
    assert "order.cancelled" not in {m.get("type") for m in got["merchant"]}
    metrics = app_client.get("/metrics").text
    assert "doorstep_live_published_total" in metrics


def test_redis_bus_carries_a_message_between_two_buses() -> None:
    """What one RedisBus publishes reaches a subscriber of another RedisBus (as in another
    process) through Redis pub/sub."""
    from doorstep.live import RedisBus
    from tests.integration.test_live_fanout import REDIS_URL, _redis_or_skip

    _redis_or_skip()
    sender, receiver = RedisBus(REDIS_URL), RedisBus(REDIS_URL)
    try:
        assert receiver.wait_subscribed(10)

        async def run() -> dict[str, Any] | None:
            sub = receiver.subscribe(["order:redis-test"])
            await asyncio.to_thread(sender.publish, "order:redis-test", {"kind": "event", "n": 7})
            got = await sub.get(timeout=10)
            sub.close()
            return got

        assert asyncio.run(run()) == {"channel": "order:redis-test", "kind": "event", "n": 7}
    finally:
        sender.close()
        receiver.close()


def test_an_event_rolled_back_to_a_savepoint_is_not_published(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Inside a committed transaction, an event undone by rolling back to a savepoint is not
    published; the one kept is."""
    scene = build_scene(app_client, runtime, merchant)
    order_id = scene.orders[0]["id"]

    def work() -> None:
        with transaction(runtime.sessions) as s:
            order = s.get(Order, order_id)
            assert order is not None
            change_status(s, runtime.clock, order, Status.SCHEDULED, actor=Actor.system())
            s.flush()
            savepoint = s.begin_nested()
            change_status(s, runtime.clock, order, Status.ON_HOLD, actor=Actor.system())
            s.flush()
            savepoint.rollback()
            s.refresh(order)

    async def run() -> list[dict[str, Any]]:
        sub = runtime.live.subscribe([f"order:{order_id}"])
        await asyncio.to_thread(work)
        got = await _drain(sub, 2, timeout=1.0)
        sub.close()
        return got

    got = asyncio.run(run())
    assert [m["type"] for m in got] == ["delivery.scheduled"]


def test_nothing_is_published_when_a_savepoint_is_released_only_at_the_commit(
    app_client: TestClient,
    runtime: Runtime,
    merchant: MerchantCtx,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Releasing a savepoint is not a commit (SQLAlchemy calls after_commit for it too): no
    message leaves before the outer transaction commits, so a page woken by one reads it."""
    scene = build_scene(app_client, runtime, merchant)
    order_id = scene.orders[0]["id"]
    sent: list[str] = []
    publish = runtime.live.publish

    def spy(channel: str, message: dict[str, Any]) -> None:
        if channel == f"order:{order_id}":
            sent.append(message["type"])
        publish(channel, message)

    monkeypatch.setattr(runtime.live, "publish", spy)
    with transaction(runtime.sessions) as s:
        order = s.get(Order, order_id)
        assert order is not None
        change_status(s, runtime.clock, order, Status.SCHEDULED, actor=Actor.system())
        with s.begin_nested():
            change_status(s, runtime.clock, order, Status.ON_HOLD, actor=Actor.system())
        assert sent == []  # released, not committed: nothing out yet
    assert sent == ["delivery.scheduled", "delivery.on_hold"]


@dataclass
class _Fix:
    recorded_at: datetime
    lat: float
    lon: float
    speed_mps: float | None = None
    heading_deg: float | None = None


@dataclass
class _Pending:
    merchant_id: str
    driver_id: str
    route_id: str | None
    fix: _Fix


@dataclass
class _Stored:
    id: int
    position: _Pending


def test_positions_written_in_bulk_are_published_by_the_writer_listener() -> None:
    """The listener for the ingest's batched writer (rows written by bulk INSERT) publishes
    each position on its route's and merchant's channels."""
    bus = InProcessBus()
    listener = publish_stored_positions(bus)
    at = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    rows = [_Stored(7, _Pending("mer_1", "drv_1", "rte_1", _Fix(at, 43.7, 7.4, 5.0, 90.0)))]

    async def run() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        route = bus.subscribe(["route:rte_1"])
        merchant = bus.subscribe(["merchant:mer_1"])
        await asyncio.to_thread(listener, rows)
        got = (await _drain(route, 1), await _drain(merchant, 1))
        route.close()
        merchant.close()
        return got

    route_got, merchant_got = asyncio.run(run())
    assert route_got[0]["kind"] == "position" and route_got[0]["id"] == 7
    assert (route_got[0]["lat"], route_got[0]["heading"]) == (43.7, 90.0)
    assert route_got[0]["recorded_at"] == "2026-11-25T08:00:00+00:00"
    assert merchant_got[0]["driver_id"] == "drv_1"


def test_a_redis_bus_without_redis_backs_off_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With Redis unreachable the subscription is retried after 1, 2, 4 ... s (up to 30), and
    the log carries one warning with the cause, not a traceback every second."""
    import logging
    import socket
    import time

    from doorstep.live import RedisBus

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    caplog.set_level(logging.INFO, logger="doorstep.live.bus")
    bus = RedisBus(f"redis://127.0.0.1:{port}/0")
    try:
        assert not bus.wait_subscribed(0.1)
        time.sleep(3.5)  # tries at about 0, 1 and 3 s
    finally:
        bus.close()
    lost = [r for r in caplog.records if "subscription lost" in r.getMessage()]
    again = [r for r in caplog.records if "still unreachable" in r.getMessage()]
    assert len(lost) == 1 and lost[0].exc_info is not None
    assert 1 <= len(again) <= 2  # a retry every second would have made it 3
