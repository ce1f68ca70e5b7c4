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

Two things a plan's times hide are counted as well:

* **The driver's break.** The plan takes it after some stop ``k`` (``route_meta.break_after``),
  so the planned arrival at ``k + 1`` already includes it. A stop inserted right after ``k``
  must still leave room for the break: it is taken after the new stop if it can still start
  by its latest start, else before leaving ``k``. A stop inserted earlier pushes the break
  too, so no visit before it may move later than the break's latest start allows.
* **The depot's opening hours.** A route that returns to the depot must be back while it is
  open (the last open moment at or before the shift's end), not merely by the shift's end.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from doorstep.domain.accounts.models import Merchant
from doorstep.domain.dispatch.inputs import DONE_STOP_STATUSES
from doorstep.domain.dispatch.models import Depot, Plan, Route, Shift, Stop, Vehicle
from doorstep.domain.dispatch.opening import depot_span, open_during
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
    # The driver's break, when the plan takes it after this visit and it is still to come.
    break_s: int = 0
    break_earliest: datetime | None = None
    break_latest: datetime | None = None


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


CACHE_SIZE = 64
_CACHE: OrderedDict[str, tuple[tuple[Any, ...], DayPlan]] = OrderedDict()
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Insertion:
    route_id: str
    detour_s: int
    after: int  # the visit it follows: 0 the route's start, k its k-th stop


def load_day_plan(session: Session, merchant_id: str, depot_id: str, day: date) -> DayPlan | None:
    """The depot's published plan of ``day``, else its newest draft; None without either.

    Read with column queries (no ORM objects), and kept per process while the plan's stamp
    (stops, stops made or under way, route versions; every recomputed route bumps its version)
    is unchanged, so quotes against a long day do not re-read it each time. A ``DayPlan`` is
    never changed once built; the time of day is applied when a window is checked."""
    found = session.execute(
        select(Plan.id, Plan.status)
        .where(
            Plan.merchant_id == merchant_id,
            Plan.depot_id == depot_id,
            Plan.date == day,
            Plan.status.in_(("published", "draft")),
        )
        .order_by((Plan.status == "published").desc(), Plan.created_at.desc())
        .limit(1)
    ).first()
    if found is None:
        return None
    plan_id, status = found
    stamp = (
        status,
        *session.execute(
            select(
                func.count(Stop.id),
                func.sum(case((Stop.status == "planned", 0), else_=1)),
                func.sum(Route.version),
                func.count(func.distinct(Route.id)),
            )
            .select_from(Route)
            .outerjoin(Stop, Stop.route_id == Route.id)
            .where(Route.merchant_id == merchant_id, Route.plan_id == plan_id)
        ).one(),
    )
    with _LOCK:
        cached = _CACHE.get(plan_id)
        if cached is not None and cached[0] == stamp:
            _CACHE.move_to_end(plan_id)
            return cached[1]
    out = _read_day_plan(session, merchant_id, depot_id, plan_id, status)
    with _LOCK:
        _CACHE[plan_id] = (stamp, out)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return out


def _read_day_plan(
    session: Session, merchant_id: str, depot_id: str, plan_id: str, status: str
) -> DayPlan:
    depot = session.execute(
        select(Depot.lat, Depot.lon, Depot.opening_hours).where(Depot.id == depot_id)
    ).one()
    home = LatLon(depot.lat, depot.lon)
    tz = ZoneInfo(
        session.scalar(select(Merchant.timezone).where(Merchant.id == merchant_id)) or "UTC"
    )
    stats = session.scalar(select(Plan.stats).where(Plan.id == plan_id)) or {}
    route_meta: dict[str, Any] = stats.get("route_meta", {})
    routes = session.execute(
        select(
            Route.id,
            Route.status,
            Route.start_at,
            Route.end_at,
            Route.load_weight_kg,
            Route.load_parcels,
            Shift.start_at.label("shift_start"),
            Shift.end_at.label("shift_end"),
            Shift.return_to_depot,
            Shift.break_earliest_at,
            Shift.break_latest_at,
            Shift.break_duration_s,
            Vehicle.profile,
            Vehicle.capacity_weight_kg,
            Vehicle.capacity_parcels,
        )
        .join(Shift, Shift.id == Route.shift_id)
        .join(Vehicle, Vehicle.id == Route.vehicle_id)
        .where(Route.merchant_id == merchant_id, Route.plan_id == plan_id)
        .order_by(Route.position)
    ).all()
    stops: dict[str, list[Any]] = {}
    for row in session.execute(
        select(
            Stop.route_id,
            Stop.status,
            Stop.planned_arrival,
            Stop.planned_departure,
            Stop.actual_arrival,
            Stop.actual_departure,
            Order.lat,
            Order.lon,
            Order.window_end,
        )
        .join(Route, Route.id == Stop.route_id)
        .join(Order, Order.id == Stop.order_id)
        .where(Route.merchant_id == merchant_id, Route.plan_id == plan_id)
        .order_by(Stop.route_id, Stop.sequence)
    ):
        stops.setdefault(row.route_id, []).append(row)
    out = DayPlan(plan_id, status, home)
    for route in routes:
        if route.status != "done":
            back_by = route.shift_end
            if route.return_to_depot:
                span = depot_span(
                    open_during(depot.opening_hours, tz, route.shift_start, route.shift_end),
                    route.shift_start,
                    route.shift_end,
                    returns=True,
                    out=route.status == "active",
                )
                back_by = span.back_by if span is not None else route.shift_start
            ctx = _route_ctx(route, stops.get(route.id, []), home, back_by)
            _add_break(ctx, route, route_meta.get(route.id, {}))
            _set_slack(ctx.visits)
            out.routes.append(ctx)
    return out


def _add_break(ctx: RouteCtx, route: Any, meta: dict[str, Any]) -> None:
    """Mark the visit after which the plan takes the driver's break, while it is to come."""
    k = meta.get("break_after")
    if not route.break_duration_s or not isinstance(k, int) or not meta.get("break_start"):
        return
    visits = ctx.visits
    if not 0 <= k < len(visits) - 1 or visits[k + 1].done:
        return  # out of range, or already taken: the next visit is made or under way
    planned = datetime.fromisoformat(meta["break_start"])
    visit = visits[k]
    visit.break_s = int(route.break_duration_s)
    visit.break_earliest = route.break_earliest_at or planned
    visit.break_latest = max(route.break_latest_at or planned, planned)


def _set_slack(visits: list[Visit]) -> None:
    """Each visit's slack: the least room before a latest time over it and every later visit,
    a break's latest start included (pushing a visit before the break pushes the break)."""
    slack = float("inf")
    for i in range(len(visits) - 1, -1, -1):
        visit = visits[i]
        slack = min(slack, (visit.latest - visit.arrival).total_seconds())
        if visit.break_s and visit.break_latest is not None:
            # Leaving this visit later starts the break later, by its latest start at most.
            slack = min(slack, (visit.break_latest - visit.departure).total_seconds())
        visit.slack_s = max(0.0, slack)


def _route_ctx(route: Any, stops: list[Any], home: LatLon, back_by: datetime) -> RouteCtx:
    shift_end: datetime = route.shift_end
    start_at: datetime = route.start_at or route.shift_start
    visits = [Visit(home, start_at, start_at, shift_end, done=True)]
    for stop in stops:
        arrival = stop.actual_arrival or stop.planned_arrival or start_at
        departure = stop.actual_departure or stop.planned_departure or arrival
        latest = min(stop.window_end or shift_end, shift_end)
        done = stop.status in DONE_STOP_STATUSES or stop.status in ("arrived", "en_route")
        visits.append(Visit(LatLon(stop.lat, stop.lon), arrival, departure, latest, done=done))
    end_at = route.end_at or visits[-1].departure
    end = Visit(home, end_at, end_at, min(back_by, shift_end))
    if not route.return_to_depot:
        end = Visit(None, end_at, end_at, shift_end)
    visits.append(end)
    return RouteCtx(
        route_id=route.id,
        profile=Profile(route.profile),
        visits=visits,
        free_weight_kg=route.capacity_weight_kg - route.load_weight_kg,
        free_parcels=route.capacity_parcels - route.load_parcels,
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
        timed = _serve_between(va, start, end, now, to_p, service)
        if timed is None:
            continue
        ready = timed
        back = ready + timedelta(seconds=from_p)
        push = (back - vb.arrival).total_seconds()
        if vb.point is None:  # the route ends at its last stop: only the shift's end binds
            push = (ready - vb.latest).total_seconds()
            if push > 0:
                continue
        elif push > vb.slack_s:
            continue
        detour = max(0, to_p + from_p - direct)
        if best is None or detour < best.detour_s:
            best = Insertion(route.route_id, detour, a)
    return best


def _serve_between(
    va: Visit, start: datetime, end: datetime, now: datetime, to_p: int, service: timedelta
) -> datetime | None:
    """Leaving ``va`` for the new stop: when the vehicle is ready to go on from it (after the
    driver's break when the plan takes it after ``va``); None when the window ``[start, end)``
    cannot be kept."""
    leave = max(va.departure, now)
    begin = max(leave + timedelta(seconds=to_p), start)
    if not va.break_s or va.break_earliest is None or va.break_latest is None:
        return begin + service if begin < end else None
    pause = timedelta(seconds=va.break_s)
    # The break after the new stop, if it can still start by its latest start ...
    if begin < end:
        break_at = max(begin + service, va.break_earliest)
        if break_at <= va.break_latest:
            return break_at + pause
    # ... else before leaving ``va``, where the plan has it.
    leave = max(leave, va.break_earliest) + pause
    begin = max(leave + timedelta(seconds=to_p), start)
    return begin + service if begin < end else None
