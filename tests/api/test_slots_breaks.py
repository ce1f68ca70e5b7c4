"""The checkout quote's plan check counts the driver's break and the depot's closing time: a
window that one van could keep by distance alone is refused once either is counted. The clock
stands at Wednesday 25 November 2026, 08:00 in Monaco; one van, straight-line travel times."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi.testclient import TestClient

from doorstep.db.engine import transaction
from doorstep.domain.dispatch.models import Plan
from doorstep.domain.slots.feasibility import load_day_plan
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.factories import (
    local,
    make_depot,
    make_driver,
    make_order,
    make_shift,
    make_vehicle,
    publish_new_plan,
)
from tests.slots_setup import EVERY_DAY, create_calendar, create_zone

DAY = date(2026, 11, 25)
A = (43.7350, 7.4200)  # near the depot in Fontvieille
B = (43.7345, 7.4210)
CLOSE_BY = {"lat": 43.7360, "lon": 7.4215}  # a few minutes from A and B


def _one_van_day(
    client: TestClient,
    runtime: Runtime,
    merchant: MerchantCtx,
    *,
    orders: list[tuple[str, tuple[float, float], tuple[int, int, int, int]]],
    depot_hours: tuple[str, str] = ("07:00", "20:00"),
    fixed_break_at: int | None = None,
    quote_window: tuple[str, str],
) -> str:
    """A published plan of one van (shift 09:00-17:00, back to the depot) serving ``orders``
    (reference, place, window hours), with a one-hour break fixed at ``fixed_break_at``; a zone
    and a calendar offering ``quote_window`` today. The plan's id."""
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    with transaction(runtime.sessions) as s:
        depot = make_depot(s, merchant.id, opening_hours={d: [list(depot_hours)] for d in days})
        extra: dict[str, Any] = {}
        if fixed_break_at is not None:
            extra = {
                "break_earliest_at": local(DAY, fixed_break_at),
                "break_latest_at": local(DAY, fixed_break_at),
                "break_duration_s": 3600,
            }
        make_shift(
            s,
            merchant.id,
            driver=make_driver(s, merchant.id),
            vehicle=make_vehicle(s, merchant.id),
            depot=depot,
            start_at=local(DAY, 9),
            end_at=local(DAY, 17),
            **extra,
        )
        for ref, (lat, lon), (h1, m1, h2, m2) in orders:
            make_order(
                s, merchant.id, reference=ref, lat=lat, lon=lon,
                window=(local(DAY, h1, m1), local(DAY, h2, m2)),
            )  # fmt: skip
        depot_id = depot.id
    view = publish_new_plan(runtime, merchant.id, depot_id, DAY, time_limit_s=0.3)
    assert not view.plan.unassigned, view.plan.unassigned
    zone_id = create_zone(client, merchant, depot_id)
    start, end = quote_window
    create_calendar(
        client,
        merchant,
        depot_id,
        zone_id,
        windows=[{"days": EVERY_DAY, "start": start, "end": end, "capacity": 10}],
        same_day_cutoff="14:00",
    )
    return view.plan.id


def _quote(client: TestClient, merchant: MerchantCtx) -> dict[str, Any]:
    r = client.post(
        "/v1/slots/quote",
        headers=merchant.headers,
        json={"address": CLOSE_BY, "from": DAY.isoformat(), "to": DAY.isoformat()},
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_a_window_during_a_fixed_break_is_refused(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """The van serves A at 11-12 and B at 13:00-13:30 with its hour of break fixed at 12:00.
    By distance the gap between A and B could take a 12-13 stop next door (the planned arrival
    at B already includes the break); counting the break, the driver is resting 12-13 and
    would reach the address only after 13:00, so the window is unreachable."""
    plan_id = _one_van_day(
        app_client,
        runtime,
        merchant,
        orders=[("A", A, (11, 0, 12, 0)), ("B", B, (13, 0, 13, 30))],
        fixed_break_at=12,
        quote_window=("12:00", "13:00"),
    )
    with runtime.sessions() as s:
        plan = s.get(Plan, plan_id)
        assert plan is not None
        [meta] = plan.stats["route_meta"].values()
        assert meta["break_after"] == 1  # the plan takes the break between A and B
        day_plan = load_day_plan(s, merchant.id, plan.depot_id, DAY)
    assert day_plan is not None
    [route] = day_plan.routes
    assert route.visits[1].break_s == 3600 and not route.visits[2].break_s

    body = _quote(app_client, merchant)
    assert body["windows"] == [], body["windows"]
    [refused] = body["unavailable"]
    assert refused["reason"] == "unreachable"
    assert "no route" in refused["detail"]


def test_a_window_the_van_could_keep_after_its_break_is_offered(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Same day, a 13:00-14:00 window: after the break the van passes by, so it is offered
    (the break does not make everything around it unreachable)."""
    _one_van_day(
        app_client,
        runtime,
        merchant,
        orders=[("A", A, (11, 0, 12, 0)), ("B", B, (13, 0, 13, 30))],
        fixed_break_at=12,
        quote_window=("13:00", "14:00"),
    )
    body = _quote(app_client, merchant)
    [window] = body["windows"]
    assert window["plan_checked"] is True and window["start"].startswith("2026-11-25T13:00")


def test_a_window_after_the_depot_closes_is_refused(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """The depot closes at 14:00 and the van must return there; its shift runs to 17:00. A
    14:00-15:00 stop next door fits the shift by distance, but the van could not be back
    before the depot closes, so the window is unreachable; with the depot open until 20:00
    the same window is offered."""
    _one_van_day(
        app_client,
        runtime,
        merchant,
        orders=[("A", A, (11, 0, 12, 0))],
        depot_hours=("07:00", "14:00"),
        quote_window=("14:00", "15:00"),
    )
    body = _quote(app_client, merchant)
    assert body["windows"] == []
    [refused] = body["unavailable"]
    assert refused["reason"] == "unreachable"


def test_the_same_late_window_is_offered_while_the_depot_is_open(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """The control for the closing-time test: with the depot open until 20:00 the 14:00-15:00
    window next door is offered."""
    _one_van_day(
        app_client,
        runtime,
        merchant,
        orders=[("A", A, (11, 0, 12, 0))],
        depot_hours=("07:00", "20:00"),
        quote_window=("14:00", "15:00"),
    )
    body = _quote(app_client, merchant)
    [window] = body["windows"]
    assert window["plan_checked"] is True
