"""Quotes checked against the day's published plan, and self-service changes that take a
stop off it. The clock stands at Wednesday 25 November 2026, 08:00 in Monaco; the day is
``monaco_day``'s 30 orders on three vans, planned with straight-line travel times."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from doorstep.db.engine import transaction
from doorstep.domain.dispatch.models import Plan, Route, Stop
from doorstep.domain.orders.models import DeliveryEvent, Order
from doorstep.domain.slots.feasibility import DayPlan, load_day_plan
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.factories import monaco_day, publish_new_plan
from tests.slots_setup import EVERY_DAY, create_calendar, create_zone

DAY = date(2026, 11, 25)
MONACO = ZoneInfo("Europe/Monaco")


@pytest.fixture
def planned(app_client: TestClient, runtime: Runtime, merchant: MerchantCtx) -> dict[str, Any]:
    """Today's published plan, a zone over Monaco and a calendar with a 10-12 window and an
    evening 19-20 window no shift covers (same-day orders until 14:00)."""
    with transaction(runtime.sessions) as s:
        day = monaco_day(s, merchant.id, DAY)
    view = publish_new_plan(runtime, merchant.id, day.depot_id, DAY, time_limit_s=0.5)
    zone_id = create_zone(app_client, merchant, day.depot_id)
    windows = [
        {"days": EVERY_DAY, "start": "10:00", "end": "12:00", "capacity": 20},
        {"days": ["sat"], "start": "09:00", "end": "12:00", "capacity": 20},
        {"days": EVERY_DAY, "start": "19:00", "end": "20:00", "capacity": 20},
    ]
    cal = create_calendar(
        app_client, merchant, day.depot_id, zone_id, windows=windows, same_day_cutoff="14:00"
    )
    return {"day": day, "plan_id": view.plan.id, "calendar": cal}


def stop_planned_between(runtime: Runtime, plan_id: str, lo: int, hi: int) -> Order:
    """The order of the plan's first stop planned to start between ``lo`` and ``hi`` o'clock."""
    with runtime.sessions() as s:
        for stop, order in s.execute(
            select(Stop, Order)
            .join(Order, Order.id == Stop.order_id)
            .join(Route, Route.id == Stop.route_id)
            .where(Route.plan_id == plan_id)
            .order_by(Stop.planned_arrival)
        ):
            assert stop.planned_arrival is not None
            if lo <= stop.planned_arrival.astimezone(MONACO).hour < hi:
                s.expunge(order)
                return order
    raise AssertionError("no stop planned then")


def test_a_quote_is_green_where_a_van_passes_and_unreachable_where_none_can(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx, planned: dict[str, Any]
) -> None:
    """Next door to a stop planned at 10-11, today's 10-12 window is offered and green; the
    19-20 window is refused because no route of the published plan can be there then."""
    neighbour = stop_planned_between(runtime, planned["plan_id"], 10, 11)
    r = app_client.post(
        "/v1/slots/quote",
        headers=merchant.headers,
        json={
            "address": {"lat": neighbour.lat + 0.0001, "lon": neighbour.lon},
            "from": "2026-11-25",
            "to": "2026-11-25",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    morning = next(w for w in body["windows"] if w["start"] == "2026-11-25T10:00:00+01:00")
    assert morning["plan_checked"] is True
    assert morning["green"] is True
    assert morning["detour_s"] < 120
    evening = next(u for u in body["unavailable"] if u["start"] == "2026-11-25T19:00:00+01:00")
    assert evening["reason"] == "unreachable"
    assert "no route" in evening["detail"]


def test_rescheduling_a_planned_order_to_saturday_takes_it_off_the_route(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx, planned: dict[str, Any]
) -> None:
    """A scheduled order moved to Saturday 09-12 leaves today's published route (the plan
    lists it as unassigned, the driver gets route.stop_moved), goes back to pending with
    window_sequence 1 and logs order.rescheduled by the merchant."""
    order = stop_planned_between(runtime, planned["plan_id"], 9, 16)
    assert order.status == "scheduled"
    r = app_client.post(
        f"/v1/orders/{order.id}/reschedule",
        headers=merchant.headers,
        json={"calendar_id": planned["calendar"]["id"], "start": "2026-11-28T09:00:00+01:00"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["window"]["start"] == "2026-11-28T09:00:00+01:00"
    assert r.json()["window_sequence"] == 1
    assert r.json()["status"] == "pending"
    with runtime.sessions() as s:
        plan = s.get(Plan, planned["plan_id"])
        assert plan is not None
        assert {"order_id": order.id, "reason": "rescheduled"}.items() <= next(
            u for u in plan.unassigned if u["order_id"] == order.id
        ).items()
        assert s.scalar(select(Stop).where(Stop.order_id == order.id)) is None
        types = [
            e.type
            for e in s.scalars(
                select(DeliveryEvent)
                .where(DeliveryEvent.order_id == order.id)
                .order_by(DeliveryEvent.seq)
            )
        ]
        event = s.scalars(
            select(DeliveryEvent).where(
                DeliveryEvent.order_id == order.id, DeliveryEvent.type == "order.rescheduled"
            )
        ).one()
    assert types[-3:] == ["route.stop_moved", "order.pending", "order.rescheduled"]
    assert event.data["by"] == "merchant"
    assert event.data["window_start"].startswith("2026-11-28T08:00:00")
    # The plan still reads (API and console), listing the order by its reference.
    shown = app_client.get(f"/v1/plans/{planned['plan_id']}", headers=merchant.headers)
    assert shown.status_code == 200, shown.text
    waiting = next(u for u in shown.json()["unassigned"] if u["order_id"] == order.id)
    assert waiting["reference"] == order.reference


def test_quotes_see_a_plan_change_made_after_the_plan_was_read(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx, planned: dict[str, Any]
) -> None:
    """The day's plan is read once and reused while unchanged; once a stop leaves a route
    the next read has one stop fewer, at the new planned times."""
    day = planned["day"]
    with runtime.read_sessions() as s:
        first = load_day_plan(s, merchant.id, day.depot_id, DAY)
        again = load_day_plan(s, merchant.id, day.depot_id, DAY)
    assert first is not None and again is first
    order = stop_planned_between(runtime, planned["plan_id"], 9, 16)
    r = app_client.post(
        f"/v1/orders/{order.id}/hold", headers=merchant.headers, json={"until": "2026-11-27"}
    )
    assert r.status_code == 200, r.text
    with runtime.read_sessions() as s:
        after = load_day_plan(s, merchant.id, day.depot_id, DAY)
    assert after is not None and after is not first

    def stops(plan: DayPlan) -> int:
        return sum(len(route.visits) - 2 for route in plan.routes)

    assert stops(after) == stops(first) - 1


def published_stops(runtime: Runtime, plan_id: str, order_id: str) -> list[Stop]:
    """The order's stops on the plan's routes."""
    with runtime.sessions() as s:
        stops = list(
            s.scalars(
                select(Stop)
                .join(Route, Route.id == Stop.route_id)
                .where(Route.plan_id == plan_id, Stop.order_id == order_id)
            )
        )
        for stop in stops:
            s.expunge(stop)
        return stops


def test_a_reschedule_within_the_published_day_moves_the_stop_to_its_new_window(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx, planned: dict[str, Any]
) -> None:
    """A scheduled order planned in the afternoon, moved to today's 10-12: it leaves its
    route and joins the plan again in 10-12 (stays scheduled, not unassigned); its driver
    hears route.stop_moved, the driver who gets it route.stop_added."""
    order = stop_planned_between(runtime, planned["plan_id"], 14, 17)
    r = app_client.post(
        f"/v1/orders/{order.id}/reschedule",
        headers=merchant.headers,
        json={"calendar_id": planned["calendar"]["id"], "start": "2026-11-25T10:00:00+01:00"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "scheduled"
    [stop] = published_stops(runtime, planned["plan_id"], order.id)
    assert stop.status == "planned" and stop.planned_arrival is not None
    local = stop.planned_arrival.astimezone(MONACO)
    assert 10 <= local.hour < 12, local
    with runtime.sessions() as s:
        plan = s.get(Plan, planned["plan_id"])
        assert plan is not None
        assert order.id not in [u["order_id"] for u in plan.unassigned]
        types = [
            e.type
            for e in s.scalars(
                select(DeliveryEvent)
                .where(DeliveryEvent.order_id == order.id)
                .order_by(DeliveryEvent.seq)
            )
        ]
    assert types[-5:] == [
        "route.stop_moved",
        "order.pending",
        "order.rescheduled",
        "route.stop_added",
        "delivery.scheduled",
    ]


def test_a_pickup_point_redirect_rejoins_the_published_plan_at_the_point(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx, planned: dict[str, Any]
) -> None:
    """Redirected to a pickup point, a scheduled order's stop leaves its route and joins the
    published plan again at the point's address, in the order's own window."""
    order = stop_planned_between(runtime, planned["plan_id"], 9, 16)
    assert order.window_start is not None and order.window_end is not None
    point = app_client.post(
        "/v1/pickup-points",
        headers=merchant.headers,
        json={
            "name": "Tabac du Port",
            "kind": "shop",
            "address": {
                "line1": "4 Quai Albert Ier",
                "city": "Monaco",
                "country": "MC",
                "lat": 43.7350,
                "lon": 7.4215,
            },
        },
    )
    assert point.status_code == 201, point.text
    r = app_client.post(
        f"/v1/orders/{order.id}/redirect",
        headers=merchant.headers,
        json={"kind": "pickup_point", "pickup_point_id": point.json()["id"]},
    )
    assert r.status_code == 200, r.text
    [stop] = published_stops(runtime, planned["plan_id"], order.id)
    assert stop.status == "planned" and stop.planned_arrival is not None
    assert order.window_start <= stop.planned_arrival < order.window_end
    got = app_client.get(f"/v1/orders/{order.id}", headers=merchant.headers).json()
    assert got["address"]["line1"] == "4 Quai Albert Ier"
    assert got["status"] == "scheduled"
    plan = app_client.get(f"/v1/plans/{planned['plan_id']}", headers=merchant.headers).json()
    assert order.id not in [u["order_id"] for u in plan["unassigned"]]
