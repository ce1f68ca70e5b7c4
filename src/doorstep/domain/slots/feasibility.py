"""Can the day's plan keep a window for one more stop? A cheap insertion check.

The day's current plan (the published one, else the newest draft) is read once per quote: for
every route its visits in order (start, stops, return to the depot) with their planned times,
and for each visit the *slack*, how much later the route may reach it without missing a later
window or the shift's end. For an address, only the edges next to the ``nearby`` closest stops
(and the depot's) are tried, with one travel-time matrix of the configured provider over those
points, so a quote costs one small matrix however long the day is.

Inserting the stop between visits ``a`` and ``b`` keeps a window ``[start, end)`` when the
vehicle, leaving ``a`` at its planned departure (never before now), reaches the address before
the window ends, and the delay it carries on to ``b`` fits ``b``'s slack; the vehicle must also
have room for the parcels. The *detour* is the extra driving, ``t(a,p) + t(p,b) - t(a,b)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from doorstep.domain.dispatch.inputs import DONE_STOP_STATUSES
from doorstep.domain.dispatch.models import Depot, Plan, Route, Shift, Vehicle
from doorstep.domain.orders.models import Order
from doorstep.routing.travel.base import UNREACHABLE, LatLon, Profile, TravelTimeProvider
from doorstep.routing.travel.straight import haversine_m


@dataclass
class Visit:
    point: LatLon | None  # None: the end of a route that does not return to the depot
    arrival: datetime  # when service begins (the vehicle may have waited before)
    departure: datetime
    latest: datetime  # the latest the service may begin
    slack_s: float = 0.0  # how much later this and every later visit may be
    done: bool = False


@dataclass
class RouteCtx:
    route_id: str
    profile: Profile
    visits: list[Visit]
    free_weight_kg: float
    free_parcels: int


@dataclass
class DayPlan:
    """The plan of one depot's day, as the insertion check needs it."""

    plan_id: str
    status: str
    depot: LatLon
    routes: list[RouteCtx] = field(default_factory=list)


@dataclass(frozen=True)
class Insertion:
    route_id: str
    detour_s: int


def load_day_plan(session: Session, merchant_id: str, depot_id: str, day: date) -> DayPlan | None:
    """The depot's published plan of ``day``, else its newest draft; None without either."""
    plan = None
    for status in ("published", "draft"):
        plan = session.scalar(
            select(Plan)
            .where(
                Plan.merchant_id == merchant_id,
                Plan.depot_id == depot_id,
                Plan.date == day,
                Plan.status == status,
            )
            .order_by(Plan.created_at.desc())
            .limit(1)
            .options(selectinload(Plan.routes).selectinload(Route.stops))
        )
        if plan is not None:
            break
    if plan is None:
        return None
    depot = session.get(Depot, depot_id)
    assert depot is not None
    order_ids = {s.order_id for r in plan.routes for s in r.stops}
    orders = {
        o.id: o
        for o in session.scalars(
            select(Order).where(Order.merchant_id == merchant_id, Order.id.in_(order_ids))
        )
    }
    shifts = {
        s.id: s
        for s in session.scalars(
            select(Shift).where(Shift.id.in_({r.shift_id for r in plan.routes}))
        )
    }
    vehicles = {
        v.id: v
        for v in session.scalars(
            select(Vehicle).where(Vehicle.id.in_({r.vehicle_id for r in plan.routes}))
        )
    }
    home = LatLon(depot.lat, depot.lon)
    out = DayPlan(plan.id, plan.status, home)
    for route in plan.routes:
        if route.status == "done":
            continue
        shift, vehicle = shifts[route.shift_id], vehicles[route.vehicle_id]
        out.routes.append(_route_ctx(route, shift, vehicle, orders, home))
    return out


def _route_ctx(
    route: Route, shift: Shift, vehicle: Vehicle, orders: dict[str, Order], home: LatLon
) -> RouteCtx:
    start_at = route.start_at or shift.start_at
    visits = [Visit(home, start_at, start_at, shift.end_at, done=True)]
    for stop in route.stops:
        order = orders[stop.order_id]
        arrival = stop.actual_arrival or stop.planned_arrival or start_at
        departure = stop.actual_departure or stop.planned_departure or arrival
        latest = min(order.window_end or shift.end_at, shift.end_at)
        done = stop.status in DONE_STOP_STATUSES or stop.status in ("arrived", "en_route")
        visits.append(Visit(LatLon(order.lat, order.lon), arrival, departure, latest, done=done))
    end_at = route.end_at or visits[-1].departure
    visits.append(
        Visit(
            home if shift.return_to_depot else None,
            end_at,
            end_at,
            shift.end_at,
        )
    )
    slack = float("inf")
    for visit in reversed(visits):
        slack = min(slack, (visit.latest - visit.arrival).total_seconds())
        visit.slack_s = max(0.0, slack)
    return RouteCtx(
        route_id=route.id,
        profile=Profile(vehicle.profile),
        visits=visits,
        free_weight_kg=vehicle.capacity_weight_kg - route.load_weight_kg,
        free_parcels=vehicle.capacity_parcels - route.load_parcels,
    )


@dataclass
class Candidates:
    """The edges worth trying for one address, and the travel times they need."""

    edges: list[tuple[RouteCtx, int]]  # (route, index of a): insert between a and a + 1
    # seconds by profile: (from a to p, from p to b, from a to b) per edge
    times: dict[tuple[str, int], tuple[int, int, int]]


def candidates(plan: DayPlan, at: LatLon, provider: TravelTimeProvider, nearby: int) -> Candidates:
    """The edges next to the ``nearby`` stops closest to ``at`` (straight line), and the road
    times around them from one matrix per vehicle profile."""
    where = [
        (r, i, v.point)
        for r, route in enumerate(plan.routes)
        for i, v in enumerate(route.visits)
        if v.point is not None
    ]
    near: list[tuple[int, int]] = []
    if where:
        lats = np.array([p.lat for _, _, p in where])
        lons = np.array([p.lon for _, _, p in where])
        dist = haversine_m(at.lat, at.lon, lats, lons)
        k = min(nearby, len(where))
        closest = np.argpartition(dist, k - 1)[:k] if k < len(where) else range(len(where))
        near = [(where[int(j)][0], where[int(j)][1]) for j in closest]
    edges: set[tuple[int, int]] = set()
    for r, i in near:
        visits = plan.routes[r].visits
        for a in (i - 1, i):
            if 0 <= a < len(visits) - 1 and not visits[a + 1].done:
                edges.add((r, a))
    # A route whose every stop is far still passes through the depot: try leaving from it.
    for r, route in enumerate(plan.routes):
        first = next(
            (i for i in range(len(route.visits) - 1) if not route.visits[i + 1].done), None
        )
        if first is not None and first == 0:
            edges.add((r, 0))
    by_profile: dict[Profile, list[tuple[int, int]]] = {}
    for r, a in sorted(edges):
        by_profile.setdefault(plan.routes[r].profile, []).append((r, a))
    times: dict[tuple[str, int], tuple[int, int, int]] = {}
    for profile, group in by_profile.items():
        points: list[LatLon] = [at]
        index: dict[LatLon, int] = {at: 0}

        def idx(
            p: LatLon, _points: list[LatLon] = points, _index: dict[LatLon, int] = index
        ) -> int:
            if p not in _index:
                _index[p] = len(_points)
                _points.append(p)
            return _index[p]

        wanted = []
        for r, a in group:
            visits = plan.routes[r].visits
            pa, pb = visits[a].point, visits[a + 1].point
            assert pa is not None
            wanted.append((r, a, idx(pa), idx(pb) if pb is not None else None))
        matrix = provider.matrix(points, profile).durations_s
        for r, a, ia, ib in wanted:
            to_p = int(matrix[ia][0])
            from_p = int(matrix[0][ib]) if ib is not None else 0
            direct = int(matrix[ia][ib]) if ib is not None else 0
            times[(plan.routes[r].route_id, a)] = (to_p, from_p, direct)
    return Candidates([(plan.routes[r], a) for r, a in sorted(edges)], times)


def best_insertion(
    cands: Candidates,
    start: datetime,
    end: datetime,
    *,
    now: datetime,
    service_s: int,
    weight_kg: float,
    parcels: int,
) -> Insertion | None:
    """The cheapest insertion that keeps the window ``[start, end)``, or None if none does."""
    best: Insertion | None = None
    service = timedelta(seconds=service_s)
    for route, a in cands.edges:
        if route.free_weight_kg < weight_kg or route.free_parcels < parcels:
            continue
        to_p, from_p, direct = cands.times[(route.route_id, a)]
        if to_p >= UNREACHABLE or from_p >= UNREACHABLE:
            continue
        va, vb = route.visits[a], route.visits[a + 1]
        leave = max(va.departure, now)
        begin = max(leave + timedelta(seconds=to_p), start)
        if begin >= end:
            continue
        back = begin + service + timedelta(seconds=from_p)
        push = (back - vb.arrival).total_seconds()
        if vb.point is None:  # the route ends at its last stop: only the shift's end binds
            push = (begin + service - vb.latest).total_seconds()
            if push > 0:
                continue
        elif push > vb.slack_s:
            continue
        detour = max(0, to_p + from_p - direct)
        if best is None or detour < best.detour_s:
            best = Insertion(route.route_id, detour)
    return best
