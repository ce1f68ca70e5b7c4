"""Planning a day, publishing it, re-planning during the day and moving stops by hand.

The day is 30 seeded orders over Monaco with two-hour windows, three vans on shifts, planned
with the straight-line provider and short time limits (no timing is asserted)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.clock import FrozenClock
from doorstep.db.engine import transaction
from doorstep.domain.dispatch.models import Shift, Stop
from doorstep.domain.dispatch.planning import create_plan
from doorstep.domain.orders.models import DeliveryEvent, Order
from doorstep.domain.tracking.models import Position
from doorstep.routing.problem import Break, Job, Problem, VehicleSpec
from doorstep.routing.route_timing import break_position, time_route
from doorstep.routing.solver import solve
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.factories import Day, local, make_order, monaco_day

DAY = date(2026, 11, 25)
LIMIT = 0.5  # seconds per solve


@dataclass
class Scenario:
    merchant: MerchantCtx
    day: Day
    heavy: str
    cold: str
    early: str


@pytest.fixture
def scenario(runtime: Runtime, merchant: MerchantCtx) -> Scenario:
    with transaction(runtime.sessions) as s:
        day = monaco_day(s, merchant.id, DAY)
        window = (local(DAY, 10), local(DAY, 12))
        heavy = make_order(
            s, merchant.id, reference="HEAVY", lat=43.74, lon=7.42, window=window, weight_kg=500
        )
        cold = make_order(
            s,
            merchant.id,
            reference="COLD",
            lat=43.741,
            lon=7.421,
            window=window,
            skills=["refrigerated"],
        )
        early = make_order(
            s,
            merchant.id,
            reference="EARLY",
            lat=43.742,
            lon=7.422,
            window=(local(DAY, 5), local(DAY, 6)),
        )
    return Scenario(merchant, day, heavy.id, cold.id, early.id)


def _plan(client: TestClient, sc: Scenario, **extra: Any) -> dict[str, Any]:
    body = {"depot_id": sc.day.depot_id, "date": DAY.isoformat(), "time_limit_s": LIMIT, **extra}
    resp = client.post("/v1/plans", json=body, headers=sc.merchant.headers)
    assert resp.status_code == 201, resp.text
    plan: dict[str, Any] = resp.json()
    return plan


def _publish(client: TestClient, sc: Scenario, plan_id: str) -> dict[str, Any]:
    resp = client.post(f"/v1/plans/{plan_id}/publish", headers=sc.merchant.headers)
    assert resp.status_code == 200, resp.text
    plan: dict[str, Any] = resp.json()
    return plan


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _stops(plan: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for route in plan["routes"]:
        for stop in route["stops"]:
            yield route, stop


def _late_order(s: Session, merchant_id: str) -> Order:
    """An order added during the day, in Monte Carlo with an afternoon window."""
    return make_order(
        s,
        merchant_id,
        reference="LATE-ADD",
        lat=43.7385,
        lon=7.4245,
        window=(local(DAY, 15), local(DAY, 17)),
    )


def _events(runtime: Runtime, merchant_id: str) -> list[DeliveryEvent]:
    with transaction(runtime.sessions) as s:
        return list(
            s.scalars(
                select(DeliveryEvent)
                .where(DeliveryEvent.merchant_id == merchant_id)
                .order_by(DeliveryEvent.seq)
            )
        )


def test_plan_keeps_windows_and_capacity_and_explains_what_it_leaves_out(
    app_client: TestClient, scenario: Scenario
) -> None:
    """Every planned arrival is inside its window, loads fit, one route per shift, and the
    500 kg order, the refrigerated one and the 05:00 one are reported with their reasons."""
    plan = _plan(app_client, scenario)
    assert plan["status"] == "draft" and plan["stats"]["provider"] == "straight"
    assert [r["shift_id"] for r in plan["routes"]] == scenario.day.shift_ids
    planned = {stop["order_id"] for _, stop in _stops(plan)}
    assert planned == set(scenario.day.orders.values())
    for route, stop in _stops(plan):
        window = stop["window"]
        assert _at(window["start"]) <= _at(stop["planned_arrival"]) <= _at(window["end"]), stop
        assert _at(route["start_at"]) <= _at(stop["planned_arrival"]) <= _at(route["end_at"])
    for route in plan["routes"]:
        totals = route["totals"]
        assert totals["load_weight_kg"] <= 300 and totals["load_parcels"] <= 60
        assert totals["stops"] == len(route["stops"]) and route["violations"] == []
        if route["stops"]:
            assert route["stops"][-1]["load_parcels"] == 0
            assert [s["sequence"] for s in route["stops"]] == list(
                range(1, len(route["stops"]) + 1)
            )
    reasons = {u["order_id"]: u["reason"] for u in plan["unassigned"]}
    assert reasons == {
        scenario.heavy: "over_capacity",
        scenario.cold: "needs_missing_skill",
        scenario.early: "outside_every_shift",
    }
    assert all(u["detail"] for u in plan["unassigned"])
    for key in ("matrix_s", "solve_s", "objective", "distance_m", "driving_s"):
        assert key in plan["stats"]

    h = scenario.merchant.headers
    assert app_client.get(f"/v1/plans/{plan['id']}", headers=h).json() == plan
    listed = app_client.get(
        "/v1/plans", params={"date": DAY.isoformat(), "depot_id": scenario.day.depot_id}, headers=h
    )
    assert [p["id"] for p in listed.json()["data"]] == [plan["id"]]
    first = listed.json()["data"][0]
    assert first["stop_count"] == 30 and first["unassigned_count"] == 3


def test_same_seed_same_routes(runtime: Runtime, scenario: Scenario) -> None:
    """With a fixed seed and an iteration budget (not a clock), planning is repeatable."""

    def sequences() -> list[list[str]]:
        view = create_plan(
            runtime.sessions,
            runtime.clock,
            runtime.settings,
            merchant_id=scenario.merchant.id,
            depot_id=scenario.day.depot_id,
            day=DAY,
            time_limit_s=120,
            seed=3,
            max_iterations=300,
        )
        return [[s.order_id for s in r.stops] for r in view.plan.routes]

    assert sequences() == sequences()


def test_same_seed_and_iteration_budget_same_plan_over_http(
    app_client: TestClient, scenario: Scenario
) -> None:
    def routes() -> list[list[str]]:
        plan = _plan(app_client, scenario, time_limit_s=120, seed=5, max_iterations=200)
        assert plan["stats"]["iterations"] <= 200
        return [[s["order_id"] for s in r["stops"]] for r in plan["routes"]]

    assert routes() == routes()
    body = {"depot_id": scenario.day.depot_id, "date": DAY.isoformat(), "max_iterations": 0}
    resp = app_client.post("/v1/plans", json=body, headers=scenario.merchant.headers)
    assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "max_iterations"


def test_publish_schedules_orders_and_tells_drivers(
    app_client: TestClient, scenario: Scenario, runtime: Runtime
) -> None:
    """Publishing makes the orders scheduled with events, each route published, and the
    driver sees their stops in order; a published plan cannot be published again."""
    plan = _publish(app_client, scenario, _plan(app_client, scenario)["id"])
    assert plan["status"] == "published" and plan["published_at"]
    with transaction(runtime.sessions) as s:
        statuses = {o.id: o.status for o in s.scalars(select(Order))}
    for order_id in scenario.day.orders.values():
        assert statuses[order_id] == "scheduled"
    assert statuses[scenario.heavy] == "pending"
    events = _events(runtime, scenario.merchant.id)
    kinds = Counter(e.type for e in events)
    assert kinds["delivery.scheduled"] == 30 and kinds["route.published"] == 3
    scheduled = next(e for e in events if e.type == "delivery.scheduled")
    assert (
        scheduled.data["planned_arrival"]
        and scheduled.data["route_id"]
        and scheduled.data["driver_id"]
    )

    route = next(r for r in plan["routes"] if r["stops"])
    h = scenario.merchant.headers
    mine = app_client.get(
        f"/v1/drivers/{route['driver']['id']}/route", params={"date": DAY.isoformat()}, headers=h
    ).json()
    assert [r["id"] for r in mine["routes"]] == [route["id"]]
    assert [s["order_id"] for s in mine["routes"][0]["stops"]] == [
        s["order_id"] for s in route["stops"]
    ]
    assert app_client.get(f"/v1/drivers/{route['driver']['id']}/route", headers=h).json()["routes"]
    again = app_client.post(f"/v1/plans/{plan['id']}/publish", headers=h)
    assert again.status_code == 409
    assert app_client.delete(f"/v1/shifts/{route['shift_id']}", headers=h).status_code == 409


def test_replan_keeps_done_stops_first_and_moves_few(
    app_client: TestClient, scenario: Scenario, runtime: Runtime, clock: FrozenClock
) -> None:
    """Mid-day: made stops stay first, the stop under way stays next, the cancelled order
    leaves, the new order joins, few stops change driver; publishing tells the drivers."""
    plan = _publish(app_client, scenario, _plan(app_client, scenario)["id"])
    busiest = max(plan["routes"], key=lambda r: len(r["stops"]))
    assert len(busiest["stops"]) >= 4
    now = _at(busiest["stops"][2]["planned_departure"]) + timedelta(minutes=1)
    clock.set(now)
    done_by_route: dict[str, list[str]] = {}
    with transaction(runtime.sessions) as s:
        for route, stop in _stops(plan):
            row = s.get(Stop, stop["id"])
            order = s.get(Order, stop["order_id"])
            assert row is not None and order is not None
            if _at(stop["planned_departure"]) <= now:
                row.status, order.status = "done", "delivered"
                row.actual_departure = _at(stop["planned_departure"])
                done_by_route.setdefault(route["shift_id"], []).append(order.id)
        under_way = busiest["stops"][len(done_by_route[busiest["shift_id"]])]
        row = s.get(Stop, under_way["id"])
        assert row is not None
        row.status = "en_route"
        last_done = busiest["stops"][len(done_by_route[busiest["shift_id"]]) - 1]
        s.add(
            Position(
                merchant_id=scenario.merchant.id,
                driver_id=busiest["driver"]["id"],
                source="osmand",
                recorded_at=now - timedelta(minutes=2),
                received_at=now,
                lat=last_done["lat"] + 0.001,
                lon=last_done["lon"],
            )
        )
        cancelled = next(
            st for _, st in _stops(plan) if _at(st["planned_arrival"]) > now + timedelta(hours=1)
        )
        c = s.get(Order, cancelled["order_id"])
        assert c is not None
        c.status = "cancelled"
        added = _late_order(s, scenario.merchant.id)

    resp = app_client.post(
        f"/v1/plans/{plan['id']}/replan",
        # An iteration budget, not a time limit: the same search on a loaded machine.
        json={"time_limit_s": 60, "max_iterations": 300},
        headers=scenario.merchant.headers,
    )
    assert resp.status_code == 201, resp.text
    new = resp.json()
    assert new["parent_plan_id"] == plan["id"] and new["status"] == "draft"
    by_shift = {r["shift_id"]: r for r in new["routes"]}
    for shift_id, done in done_by_route.items():
        stops = by_shift[shift_id]["stops"]
        assert [s["order_id"] for s in stops[: len(done)]] == done
        assert all(s["status"] == "done" for s in stops[: len(done)])
    busy = by_shift[busiest["shift_id"]]["stops"]
    assert busy[len(done_by_route[busiest["shift_id"]])]["order_id"] == under_way["order_id"]
    on_routes = {s["order_id"] for _, s in _stops(new)}
    assert cancelled["order_id"] not in on_routes and added.id in on_routes, new["unassigned"]
    changes = new["changes"]
    assert [a["reference"] for a in changes["added"]] == ["LATE-ADD"]
    assert cancelled["reference"] in [r["reference"] for r in changes["removed"]]
    assert changes["moved_count"] <= 5
    for _, stop in _stops(new):
        if stop["status"] == "planned" and stop["order_id"] != under_way["order_id"]:
            assert _at(stop["planned_arrival"]) >= now

    published = _publish(app_client, scenario, new["id"])
    assert published["changes"]["added"][0]["order_id"] == added.id
    old = app_client.get(f"/v1/plans/{plan['id']}", headers=scenario.merchant.headers).json()
    assert old["status"] == "superseded"
    kinds = Counter(e.type for e in _events(runtime, scenario.merchant.id))
    assert kinds["route.stop_added"] == 1 and kinds["route.stop_removed"] >= 1
    assert kinds["route.stop_moved"] == 2 * changes["moved_count"]


def test_dropping_a_shift_redistributes_its_stops(
    app_client: TestClient, scenario: Scenario, runtime: Runtime
) -> None:
    """The dropped shift keeps no stop to make; its orders go to the others (or are reported)."""
    plan = _publish(app_client, scenario, _plan(app_client, scenario)["id"])
    victim = max(plan["routes"], key=lambda r: len(r["stops"]))
    orphans = {s["order_id"] for s in victim["stops"]}
    resp = app_client.post(
        f"/v1/plans/{plan['id']}/replan",
        json={"dropped_shift_ids": [victim["shift_id"]], "time_limit_s": LIMIT},
        headers=scenario.merchant.headers,
    )
    assert resp.status_code == 201, resp.text
    new = resp.json()
    routes = {r["shift_id"]: r for r in new["routes"]}
    assert set(routes) == set(scenario.day.shift_ids) and routes[victim["shift_id"]]["stops"] == []
    placed = {s["order_id"] for r in new["routes"] for s in r["stops"]}
    left = {u["order_id"] for u in new["unassigned"]}
    assert orphans <= placed | left and orphans & placed
    assert new["changes"]["moved_count"] == len(orphans & placed)
    _publish(app_client, scenario, new["id"])
    with transaction(runtime.sessions) as s:
        shift = s.get(Shift, victim["shift_id"])
        assert shift is not None and shift.status == "dropped"
        orders = {o.id: o.status for o in s.scalars(select(Order))}
    assert all(orders[o] == "pending" for o in orphans & left)


def test_manual_move_shows_the_window_it_breaks(
    app_client: TestClient, scenario: Scenario, runtime: Runtime
) -> None:
    """Moving an early order to the end of the latest route is allowed, recomputed, and shown
    as a late arrival; on a published plan both drivers get a route.stop_moved event."""
    plan = _publish(app_client, scenario, _plan(app_client, scenario)["id"])
    latest = max(
        (r for r in plan["routes"] if r["stops"]),
        key=lambda r: _at(r["stops"][-1]["planned_arrival"]),
    )
    last_arrival = _at(latest["stops"][-1]["planned_arrival"])
    early = min(
        (st for r, st in _stops(plan) if r["id"] != latest["id"]),
        key=lambda st: _at(st["window"]["end"]),
    )
    assert _at(early["window"]["end"]) < last_arrival
    h = scenario.merchant.headers
    body = {
        "order_id": early["order_id"],
        "to_route_id": latest["id"],
        "position": len(latest["stops"]),
    }
    resp = app_client.post(f"/v1/plans/{plan['id']}/moves", json=body, headers=h)
    assert resp.status_code == 200, resp.text
    moved = resp.json()
    dest = next(r for r in moved["routes"] if r["id"] == latest["id"])
    assert dest["stops"][-1]["order_id"] == early["order_id"] and dest["version"] == 2
    late = [v for v in dest["violations"] if v["type"] == "late_arrival"]
    assert [v["order_id"] for v in late] == [early["order_id"]]
    assert late[0]["minutes"] > 0 and "late arrival" in late[0]["detail"]
    assert moved["stats"]["feasible"] is False
    source_id = next(r["id"] for r, st in _stops(plan) if st["order_id"] == early["order_id"])
    source = next(r for r in moved["routes"] if r["id"] == source_id)
    assert early["order_id"] not in {s["order_id"] for s in source["stops"]}
    kinds = Counter(e.type for e in _events(runtime, scenario.merchant.id))
    assert kinds["route.stop_moved"] == 2

    bad = app_client.post(f"/v1/plans/{plan['id']}/moves", json={**body, "position": 99}, headers=h)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "position"
    unknown = app_client.post(
        f"/v1/plans/{plan['id']}/moves", json={**body, "order_id": "ord_nope"}, headers=h
    )
    assert unknown.status_code == 404


def test_an_unassigned_order_can_be_placed_by_hand(
    app_client: TestClient, scenario: Scenario
) -> None:
    """The refrigerated order goes on a route anyway: it leaves the unassigned list and the
    route shows the missing skill."""
    plan = _plan(app_client, scenario)
    route = plan["routes"][0]
    body = {"order_id": scenario.cold, "to_route_id": route["id"], "position": 0}
    resp = app_client.post(
        f"/v1/plans/{plan['id']}/moves", json=body, headers=scenario.merchant.headers
    )
    assert resp.status_code == 200, resp.text
    moved = resp.json()
    assert scenario.cold not in {u["order_id"] for u in moved["unassigned"]}
    first = moved["routes"][0]
    assert first["stops"][0]["order_id"] == scenario.cold
    assert any(
        v["type"] == "missing_skill" and v["skills"] == ["refrigerated"]
        for v in first["violations"]
    )


def test_plan_refusals(app_client: TestClient, scenario: Scenario) -> None:
    """No shifts that day, a past day, re-planning a draft: each answered with a problem."""
    h = scenario.merchant.headers
    body = {"depot_id": scenario.day.depot_id, "time_limit_s": LIMIT}
    no_shifts = app_client.post("/v1/plans", json={**body, "date": "2026-11-26"}, headers=h)
    assert no_shifts.status_code == 422
    past = app_client.post("/v1/plans", json={**body, "date": "2026-11-24"}, headers=h)
    assert past.status_code == 422 and past.json()["errors"][0]["field"] == "date"
    too_long = app_client.post(
        "/v1/plans", json={**body, "date": DAY.isoformat(), "time_limit_s": 301}, headers=h
    )
    assert too_long.status_code == 422
    draft = _plan(app_client, scenario)
    assert app_client.post(f"/v1/plans/{draft['id']}/replan", json={}, headers=h).status_code == 409


def test_orders_without_a_window_are_planned_on_their_due_day(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Same-day orders are due the day they are created, next-day ones the day after; either
    may be served at any time of a shift."""
    today = local(DAY, 8)
    with transaction(runtime.sessions) as s:
        day = monaco_day(s, merchant.id, DAY, orders=0)
        same = make_order(
            s,
            merchant.id,
            reference="SAME",
            lat=43.735,
            lon=7.42,
            service_level="same_day",
            created_at=today,
        )
        nextd = make_order(
            s,
            merchant.id,
            reference="NEXT",
            lat=43.745,
            lon=7.43,
            service_level="next_day",
            created_at=today - timedelta(days=1),
        )
        later = make_order(
            s,
            merchant.id,
            reference="LATER",
            lat=43.74,
            lon=7.425,
            service_level="next_day",
            created_at=today,
        )
    sc = Scenario(merchant, day, "", "", "")
    plan = _plan(app_client, sc)
    planned = {stop["order_id"]: stop for _, stop in _stops(plan)}
    assert set(planned) == {same.id, nextd.id} and plan["unassigned"] == []
    assert later.id not in planned and all(s["window"] is None for s in planned.values())


# --- Route timing on its own (no database) ---------------------------------------------------


def _line_problem() -> Problem:
    """A depot and four points 600 s apart on a line; windows that need waiting."""
    n = 5
    idx = np.arange(n)
    durations = (np.abs(idx[:, None] - idx[None, :]) * 600).astype(np.int64)
    distances = durations * 5
    jobs = [
        Job(f"j{i}", i, 120, tw_start_s=3600 * i, tw_end_s=3600 * i + 1800, demand=(1000, 1))
        for i in range(1, n)
    ]
    vehicle = VehicleSpec("v", 0, 0, 0, 8 * 3600, (10_000, 10), brk=Break(7200, 9000, 900))
    return Problem(jobs=jobs, vehicles=[vehicle], durations=durations, distances=distances)


def test_route_timing_reproduces_the_optimisers_times() -> None:
    """Persisted times are the optimiser's own when timed on the same matrix."""
    problem = _line_problem()
    solution = solve(problem, time_limit_s=60, seed=1, max_iterations=200)
    (route,) = solution.routes
    jobs = {j.id: j for j in problem.jobs}
    sim = time_route(
        problem.vehicles[0],
        [jobs[s.job_id] for s in route.stops],
        problem.durations,
        problem.distances,
        break_after=break_position([s.departure_s for s in route.stops], route.break_start_s),
    )
    assert [(s.job_id, s.start_s, s.departure_s) for s in sim.stops] == [
        (s.job_id, s.start_service_s, s.departure_s) for s in route.stops
    ]
    assert (sim.start_s, sim.end_s, sim.distance) == (route.start_s, route.end_s, route.distance)
    assert sim.break_start_s == route.break_start_s and sim.violations == []


def test_route_timing_names_every_broken_constraint() -> None:
    """Reversed order, too small a van, a missing skill and a short shift all show up."""
    problem = _line_problem()
    jobs = [replace(j, skills=frozenset({"cold"})) if j.id == "j1" else j for j in problem.jobs]
    small = replace(problem.vehicles[0], capacity=(2500, 10), shift_end_s=4 * 3600, brk=None)
    sim = time_route(
        small, list(reversed(jobs)), problem.durations, problem.distances, labels={"j1": "SO-1"}
    )
    kinds = Counter(v["type"] for v in sim.violations)
    assert kinds == {
        "over_capacity": 1,
        "late_arrival": 3,
        "missing_skill": 1,
        "shift_end_exceeded": 1,
    }
    late = [v for v in sim.violations if v["type"] == "late_arrival"]
    assert late[-1]["detail"].startswith("late arrival at stop 4 (SO-1) by")
    assert [s.load_after for s in sim.stops][-1] == (0, 0)


def test_an_order_added_once_every_van_is_out_waits_for_a_van_at_the_depot(
    app_client: TestClient, scenario: Scenario, runtime: Runtime, clock: FrozenClock
) -> None:
    """Every van has left with its parcels: the new order cannot ride along with one passing
    by, no stop changes van, and the plan says why; once a driver reports from the depot's
    yard, that van loads it."""
    plan = _publish(app_client, scenario, _plan(app_client, scenario)["id"])
    routes = [r for r in plan["routes"] if r["stops"]]
    assert len(routes) == 3
    now = max(_at(r["stops"][0]["planned_departure"]) for r in routes) + timedelta(minutes=1)
    clock.set(now)
    last = {r["stops"][-1]["id"] for r in routes}  # a van running late still has it to make
    with transaction(runtime.sessions) as s:
        for _, stop in _stops(plan):
            if _at(stop["planned_departure"]) <= now and stop["id"] not in last:
                row, order = s.get(Stop, stop["id"]), s.get(Order, stop["order_id"])
                assert row is not None and order is not None
                row.status, order.status = "done", "delivered"
                row.actual_departure = _at(stop["planned_departure"])
        added = _late_order(s, scenario.merchant.id)

    def replan() -> dict[str, Any]:
        resp = app_client.post(
            f"/v1/plans/{plan['id']}/replan",
            json={"time_limit_s": LIMIT},
            headers=scenario.merchant.headers,
        )
        assert resp.status_code == 201, resp.text
        new: dict[str, Any] = resp.json()
        return new

    new = replan()
    left = {u["reference"]: u for u in new["unassigned"]}
    assert left["LATE-ADD"]["reason"] == "no_vehicle_at_depot"
    assert "left the depot" in left["LATE-ADD"]["detail"]
    assert new["changes"]["moved_count"] == 0
    before = {s["order_id"]: r["shift_id"] for r, s in _stops(plan)}
    assert all(before[s["order_id"]] == r["shift_id"] for r, s in _stops(new))

    yard = routes[0]
    depot = next(
        d for d in app_client.get("/v1/depots", headers=scenario.merchant.headers).json()["items"]
    )
    with transaction(runtime.sessions) as s:
        s.add(
            Position(
                merchant_id=scenario.merchant.id,
                driver_id=yard["driver"]["id"],
                source="osmand",
                recorded_at=now - timedelta(minutes=1),
                received_at=now,
                lat=depot["address"]["lat"] + 0.0003,
                lon=depot["address"]["lon"],
            )
        )
    again = replan()
    assert "LATE-ADD" not in {u["reference"] for u in again["unassigned"]}
    by_shift = {r["shift_id"]: {s["order_id"] for s in r["stops"]} for r in again["routes"]}
    assert added.id in by_shift[yard["shift_id"]]


def test_a_stop_moved_by_hand_onto_a_van_that_has_left_is_flagged(
    app_client: TestClient, scenario: Scenario, runtime: Runtime
) -> None:
    """The van is out with its own parcels: a stop moved onto it shows as not on board (the
    dispatcher must hand it over), and moving it back clears that."""
    plan = _publish(app_client, scenario, _plan(app_client, scenario)["id"])
    out, home = [r for r in plan["routes"] if len(r["stops"]) >= 2][:2]
    with transaction(runtime.sessions) as s:
        first = s.get(Stop, out["stops"][0]["id"])
        assert first is not None
        first.status = "done"
    h = scenario.merchant.headers
    moving = home["stops"][-1]["order_id"]

    def move(route: dict[str, Any], position: int) -> dict[str, Any]:
        body = {"order_id": moving, "to_route_id": route["id"], "position": position}
        resp = app_client.post(f"/v1/plans/{plan['id']}/moves", json=body, headers=h)
        assert resp.status_code == 200, resp.text
        moved: dict[str, Any] = resp.json()
        return next(r for r in moved["routes"] if r["id"] == route["id"])

    onto = move(out, len(out["stops"]))
    flagged = [v for v in onto["violations"] if v["type"] == "not_on_board"]
    assert [v["order_id"] for v in flagged] == [moving]
    assert "not on board" in flagged[0]["detail"]
    back = move(home, len(home["stops"]) - 1)
    assert not [v for v in back["violations"] if v["type"] == "not_on_board"]
    after = app_client.get(f"/v1/plans/{plan['id']}", headers=h).json()
    again = next(r for r in after["routes"] if r["id"] == out["id"])
    assert not [v for v in again["violations"] if v["type"] == "not_on_board"]
