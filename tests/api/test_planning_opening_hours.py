"""Planning honours the depot's opening hours: vehicles leave while it is open, returning routes
are back while it is open, shifts the hours leave no time get no work and the plan says why.

Small Monaco days planned with the straight-line provider and short time limits; the depot is
open 08:00-12:00 and 14:00-18:00 on weekdays unless a test says otherwise."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from fastapi.testclient import TestClient

from doorstep.clock import FrozenClock
from doorstep.db.engine import transaction
from doorstep.domain.dispatch.models import Depot, Stop
from doorstep.domain.dispatch.planning import create_plan
from doorstep.domain.orders.models import Order
from doorstep.domain.tracking.models import Position
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.factories import (
    MONACO,
    local,
    make_depot,
    make_driver,
    make_order,
    make_shift,
    make_vehicle,
)

TODAY = date(2026, 11, 25)  # the frozen clock's day (a Wednesday), 08:00 in Monaco
THU = date(2026, 11, 26)
LIMIT = 0.5
LUNCH_CLOSURE = [["08:00", "12:00"], ["14:00", "18:00"]]
WEEKDAYS = {day: LUNCH_CLOSURE for day in ("mon", "tue", "wed", "thu", "fri")}
POINTS = [(43.7385, 7.4245), (43.7405, 7.4263), (43.7350, 7.4200), (43.7420, 7.4280)]


@dataclass
class Site:
    depot_id: str
    shifts: dict[str, str]  # driver name -> shift id
    orders: dict[str, str]  # reference -> order id


ShiftSpec = tuple[str, datetime, datetime, bool]  # driver, start, end, returns to the depot


def _site(
    runtime: Runtime,
    merchant: MerchantCtx,
    *,
    shifts: Sequence[ShiftSpec],
    orders: Sequence[tuple[str, tuple[datetime, datetime]]],
    hours: dict[str, list[list[str]]] | None = None,
) -> Site:
    with transaction(runtime.sessions) as s:
        depot = make_depot(s, merchant.id, opening_hours=WEEKDAYS if hours is None else hours)
        site = Site(depot.id, {}, {})
        for name, start, end, returns in shifts:
            shift = make_shift(
                s,
                merchant.id,
                driver=make_driver(s, merchant.id, name=name),
                vehicle=make_vehicle(s, merchant.id, name=f"Van of {name}"),
                depot=depot,
                start_at=start,
                end_at=end,
                return_to_depot=returns,
            )
            site.shifts[name] = shift.id
        for i, (ref, window) in enumerate(orders):
            lat, lon = POINTS[i % len(POINTS)]
            order = make_order(s, merchant.id, reference=ref, lat=lat, lon=lon, window=window)
            site.orders[ref] = order.id
    return site


def _plan(client: TestClient, merchant: MerchantCtx, site: Site, day: date = THU) -> dict[str, Any]:
    body = {"depot_id": site.depot_id, "date": day.isoformat(), "time_limit_s": LIMIT}
    resp = client.post("/v1/plans", json=body, headers=merchant.headers)
    assert resp.status_code == 201, resp.text
    plan: dict[str, Any] = resp.json()
    return plan


def _clock(value: str) -> time:
    """The local clock time of an ISO instant from the API."""
    return datetime.fromisoformat(value).astimezone(MONACO).time()


def _routes(plan: dict[str, Any], site: Site) -> dict[str, dict[str, Any]]:
    """The plan's routes by driver name."""
    names = {shift_id: name for name, shift_id in site.shifts.items()}
    return {names[r["shift_id"]]: r for r in plan["routes"]}


def _unassigned(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {u["reference"]: u for u in plan["unassigned"]}


def _open(at: time) -> bool:
    return time(8) <= at <= time(12) or time(14) <= at <= time(18)


def test_no_departure_before_the_depot_opens(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """A 07:00 shift at a depot opening at 08:00 leaves at 08:00 at the earliest; an order
    due by 07:45 is outside every shift, and the reason shows the usable 08:00-17:00."""
    window = (local(THU, 7), local(THU, 11))
    site = _site(
        runtime,
        merchant,
        shifts=[("Ada", local(THU, 7), local(THU, 17), True)],
        orders=[
            ("A1", window),
            ("A2", window),
            ("A3", window),
            ("EARLY", (local(THU, 7), local(THU, 7, 45))),
        ],
    )
    plan = _plan(app_client, merchant, site)
    route = _routes(plan, site)["Ada"]
    assert _clock(route["start_at"]) >= time(8)
    assert {s["reference"] for s in route["stops"]} == {"A1", "A2", "A3"}
    assert all(_clock(s["planned_arrival"]) >= time(8) for s in route["stops"])
    early = _unassigned(plan)["EARLY"]
    assert early["reason"] == "outside_every_shift" and "(08:00-17:00)" in early["detail"]
    assert "skipped_shifts" not in plan["stats"]


def test_the_lunch_closure_limits_returns_and_afternoon_departures(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """With 08-12 and 14-18: a 07:00-13:00 shift is back by 12:00; a 12:30-19:00 shift leaves
    at 14:00 and is back by 18:00, unless it does not return (then it works until 19:00);
    every route leaves while the depot is open."""
    site = _site(
        runtime,
        merchant,
        shifts=[
            ("Ada", local(THU, 7), local(THU, 13), True),
            ("Bea", local(THU, 12, 30), local(THU, 19), True),
            ("Cy", local(THU, 12, 30), local(THU, 19), False),
        ],
        orders=[
            ("M1", (local(THU, 9), local(THU, 11))),
            ("M2", (local(THU, 9), local(THU, 11))),
            ("NOON", (local(THU, 12, 15), local(THU, 12, 45))),
            ("P1", (local(THU, 14), local(THU, 17))),
            ("P2", (local(THU, 14), local(THU, 17))),
            ("LATE", (local(THU, 18, 15), local(THU, 18, 45))),
        ],
    )
    plan = _plan(app_client, merchant, site)
    routes = _routes(plan, site)
    assert {s["reference"] for s in routes["Ada"]["stops"]} == {"M1", "M2"}
    assert _clock(routes["Ada"]["end_at"]) <= time(12)
    assert _clock(routes["Bea"]["start_at"]) >= time(14)
    assert _clock(routes["Bea"]["end_at"]) <= time(18)
    assert _clock(routes["Cy"]["start_at"]) >= time(14)
    assert "LATE" in {s["reference"] for s in routes["Cy"]["stops"]}
    for route in plan["routes"]:
        assert _open(_clock(route["start_at"])), route
        assert route["violations"] == []
    on_routes = {s["reference"] for r in plan["routes"] for s in r["stops"]}
    assert {"P1", "P2"} <= on_routes
    assert _unassigned(plan)["NOON"]["reason"] == "outside_every_shift"


def test_a_shift_outside_the_opening_hours_gets_no_work_and_the_plan_says_why(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """A 06:00-07:30 shift is skipped with a sentence saying when the depot opens; its early
    order is outside every shift; on a day the depot is closed, planning is refused with why."""
    site = _site(
        runtime,
        merchant,
        shifts=[
            ("Ada", local(THU, 8), local(THU, 16), True),
            ("Early Bird", local(THU, 6), local(THU, 7, 30), True),
            ("Sam", local(date(2026, 11, 28), 9), local(date(2026, 11, 28), 17), True),
        ],
        orders=[("DAWN", (local(THU, 6), local(THU, 7))), ("O1", (local(THU, 9), local(THU, 11)))],
    )
    plan = _plan(app_client, merchant, site)
    early = site.shifts["Early Bird"]
    assert all(r["shift_id"] != early or not r["stops"] for r in plan["routes"])
    assert plan["stats"]["skipped_shifts"] == [
        {
            "shift_id": early,
            "reason": "depot_closed",
            "detail": "Shift of Early Bird 06:00-07:30: the depot is closed then (opens 08:00)",
        }
    ]
    assert [s["reference"] for s in _routes(plan, site)["Ada"]["stops"]] == ["O1"]
    assert _unassigned(plan)["DAWN"]["reason"] == "outside_every_shift"

    saturday = app_client.post(
        "/v1/plans",
        json={"depot_id": site.depot_id, "date": "2026-11-28", "time_limit_s": LIMIT},
        headers=merchant.headers,
    )
    assert saturday.status_code == 422
    problem = saturday.json()
    assert "opening hours" in problem["detail"]
    assert problem["errors"] == [
        {
            "field": "date",
            "message": "Shift of Sam 09:00-17:00: the depot is closed all day on Saturday",
            "code": "depot_closed",
        }
    ]


def test_a_depot_without_opening_hours_plans_as_before(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """No opening hours: a 07:00 shift serves a 07:00-07:45 order; hours that never bind give
    exactly the same routes and times as none."""
    site = _site(
        runtime,
        merchant,
        shifts=[("Ada", local(THU, 7), local(THU, 17), True)],
        orders=[
            ("EARLY", (local(THU, 7), local(THU, 7, 45))),
            ("A1", (local(THU, 7), local(THU, 11))),
            ("A2", (local(THU, 13), local(THU, 15))),
        ],
        hours={},
    )
    plan = _plan(app_client, merchant, site)
    route = _routes(plan, site)["Ada"]
    assert _clock(route["start_at"]) < time(7, 45)
    assert {s["reference"] for s in route["stops"]} == {"EARLY", "A1", "A2"}
    assert plan["unassigned"] == [] and "skipped_shifts" not in plan["stats"]

    def timeline() -> tuple[datetime | None, list[tuple[str, Any, Any]]]:
        view = create_plan(
            runtime.sessions,
            runtime.clock,
            runtime.settings,
            merchant_id=merchant.id,
            depot_id=site.depot_id,
            day=THU,
            time_limit_s=60,
            seed=3,
            max_iterations=200,
        )
        (only,) = view.plan.routes
        return only.start_at, [
            (s.order_id, s.planned_arrival, s.planned_departure) for s in only.stops
        ]

    without = timeline()
    with transaction(runtime.sessions) as s:
        depot = s.get(Depot, site.depot_id)
        assert depot is not None
        depot.opening_hours = {"thu": [["00:00", "24:00"]]}
    assert timeline() == without


def test_replanning_holds_only_vehicles_still_at_the_depot(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx, clock: FrozenClock
) -> None:
    """Re-planned at 12:30 during the lunch closure: the driver already out goes on at once
    (her 13:00 stops stay hers), the one still at the depot leaves at 14:00, and both must be
    back by 18:00, so the 18:15 order stays out."""
    site = _site(
        runtime,
        merchant,
        shifts=[
            ("Ada", local(TODAY, 8), local(TODAY, 19), True),
            ("Bea", local(TODAY, 12), local(TODAY, 19), True),
        ],
        orders=[
            ("M1", (local(TODAY, 8), local(TODAY, 10))),
            ("M2", (local(TODAY, 8), local(TODAY, 10))),
            ("P1", (local(TODAY, 13), local(TODAY, 13, 45))),
            ("P2", (local(TODAY, 13), local(TODAY, 13, 45))),
            ("LATE", (local(TODAY, 18, 15), local(TODAY, 18, 45))),
        ],
    )
    h = merchant.headers
    plan = _plan(app_client, merchant, site, TODAY)
    assert _clock(_routes(plan, site)["Bea"]["start_at"]) >= time(14)
    resp = app_client.post(f"/v1/plans/{plan['id']}/publish", headers=h)
    assert resp.status_code == 200, resp.text
    ada = _routes(resp.json(), site)["Ada"]
    assert [s["reference"] for s in ada["stops"]][:2] in (["M1", "M2"], ["M2", "M1"])
    assert {s["reference"] for s in ada["stops"]} == {"M1", "M2", "P1", "P2"}

    now = local(TODAY, 12, 30)
    clock.set(now)
    with transaction(runtime.sessions) as s:
        for stop in ada["stops"][:2]:
            row, order = s.get(Stop, stop["id"]), s.get(Order, stop["order_id"])
            assert row is not None and order is not None
            row.status, order.status = "done", "delivered"
            row.actual_departure = datetime.fromisoformat(stop["planned_departure"])
        s.add(
            Position(
                merchant_id=merchant.id,
                driver_id=ada["driver"]["id"],
                source="osmand",
                recorded_at=now - timedelta(minutes=2),
                received_at=now,
                lat=ada["stops"][1]["lat"],
                lon=ada["stops"][1]["lon"],
            )
        )
    resp = app_client.post(
        f"/v1/plans/{plan['id']}/replan", json={"time_limit_s": LIMIT}, headers=h
    )
    assert resp.status_code == 201, resp.text
    new = resp.json()
    routes = _routes(new, site)
    still = [s for s in routes["Ada"]["stops"] if s["status"] == "planned"]
    assert {s["reference"] for s in still} == {"P1", "P2"}
    assert all(time(13) <= _clock(s["planned_arrival"]) < time(14) for s in still)
    assert _clock(routes["Ada"]["end_at"]) <= time(18)
    assert _clock(routes["Bea"]["start_at"]) >= time(14)
    assert _unassigned(new)["LATE"]["reason"] == "outside_every_shift"
