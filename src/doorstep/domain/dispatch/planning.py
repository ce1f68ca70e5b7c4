"""Planning a depot's day: orders and shifts in, a draft plan of routes and stops out.

Three layers, so each can be tested and reused (the API, re-planning and ``doorstep bench plan``
call the same code):

* :func:`~.inputs.load_day` reads the database into plain :class:`~.inputs.DayInput` data;
* :func:`compute_plan` is database-free: travel matrices from the provider, the
  :class:`~doorstep.routing.problem.Problem` (:func:`build_problem`), the optimiser, then every
  route re-timed on its own vehicle profile's matrix (:func:`time_route`);
* :func:`save_plan` writes the result as a draft :class:`Plan` with one :class:`Route` per shift.

:func:`create_plan` chains them with the database read and the write in two short
transactions, so a long optimisation never holds a database lock.

Times inside a problem are integer seconds from the *epoch*, local midnight of the planned day
in the merchant's timezone; demands are (grams, parcels).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session, sessionmaker

from doorstep.clock import Clock
from doorstep.db.engine import transaction
from doorstep.domain.dispatch.inputs import (
    DayInput,
    History,
    OrderInput,
    RouteStart,
    ShiftInput,
    load_day,
    to_seconds,
)
from doorstep.domain.dispatch.models import Plan, Route, Stop
from doorstep.domain.dispatch.opening import open_during
from doorstep.domain.dispatch.unassigned import unassigned_detail
from doorstep.domain.dispatch.views import PlanView, load_plan_view
from doorstep.domain.errors import DomainError, FieldError, Unprocessable
from doorstep.ids import new_id
from doorstep.routing.problem import Break, Job, Problem, Solution, UnassignedReason, VehicleSpec
from doorstep.routing.route_timing import TimedRoute, break_position, time_route
from doorstep.routing.solver import solve
from doorstep.routing.travel.base import (
    LatLon,
    Profile,
    TravelMatrix,
    TravelTimeError,
    TravelTimeProvider,
)
from doorstep.routing.travel.factory import provider_from_settings
from doorstep.settings import Settings

__all__ = [
    "DayInput",
    "PlanDraft",
    "build_problem",
    "compute_plan",
    "create_plan",
    "load_day",
    "save_plan",
    "time_route",
    "travel_provider",
]

IntArray = npt.NDArray[np.int64]
LAST_MINUTES = 15


class TravelTimesUnavailable(DomainError):
    """The travel-time provider cannot answer (missing data, server down)."""

    status_code = 503
    title = "Travel times unavailable"
    type_slug = "travel-times-unavailable"


# --- DB -> Problem --------------------------------------------------------------------------


@dataclass
class Locations:
    """Matrix rows: 0 the depot, then one per order, then re-planning start points."""

    points: list[LatLon]
    order_loc: dict[str, int]
    start_loc: dict[str, int]


def locations(day: DayInput) -> Locations:
    """The matrix rows of ``day`` (see :class:`Locations`)."""
    points = [day.depot]
    order_loc: dict[str, int] = {}
    for order in day.orders:
        order_loc[order.order_id] = len(points)
        points.append(order.point)
    start_loc: dict[str, int] = {}
    for shift in day.shifts:
        start = day.starts.get(shift.shift_id)
        if start is not None and start.kind != "depot":
            start_loc[shift.shift_id] = len(points)
            points.append(start.point)
    return Locations(points, order_loc, start_loc)


def horizon_s(day: DayInput) -> int:
    """The latest second a windowless order may be served: the end of the last shift."""
    ends = [to_seconds(day.epoch, s.end_at) for s in day.shifts + day.idle_shifts]
    return max([86_400, *ends])


def order_job(
    order: OrderInput, location: int, epoch: datetime, horizon: int, buffer_s: int = 0
) -> Job:
    """An order as a job; an order without a window may be served at any time of the shift.
    A window longer than twice ``buffer_s`` gets a target end ``buffer_s`` before its end,
    which planning keeps where the day allows (shorter windows keep all their time)."""
    target: int | None = None
    if order.window_start is not None and order.window_end is not None:
        tw = (
            max(0, to_seconds(epoch, order.window_start, up=True)),
            to_seconds(epoch, order.window_end),
        )
        if buffer_s > 0 and tw[1] - tw[0] >= 2 * buffer_s:
            target = tw[1] - buffer_s
    else:
        tw = (0, horizon)
    return Job(
        id=order.order_id,
        location=location,
        service_s=order.service_s,
        tw_start_s=tw[0],
        tw_end_s=tw[1],
        demand=(order.weight_g, order.parcels),
        skills=order.skills,
        target_end_s=target,
    )


def vehicle_spec(
    shift: ShiftInput, day: DayInput, start_location: int, *, travel: str | None = None
) -> VehicleSpec:
    """A shift as a vehicle: free from its start (or the re-planning start) until its end, as
    far as the depot's opening hours allow (it leaves while the depot is open and, returning,
    is back while it is open; no time at all when they leave the shift none); a break whose
    latest start has already passed is left out. A vehicle that has left the depot (re-planning)
    carries only the stops it had (see :attr:`~doorstep.routing.problem.VehicleSpec.on_board`);
    ``travel`` names the matrices it drives on."""
    epoch = day.epoch
    span = day.depot_span(shift)
    start_s = to_seconds(epoch, span.leave_at if span else day.free_at(shift), up=True)
    end_s = to_seconds(epoch, span.back_by) if span else start_s
    brk = None
    taken = shift.shift_id in day.breaks_taken
    if shift.break_earliest_at and shift.break_latest_at and shift.break_duration_s and not taken:
        latest = to_seconds(epoch, shift.break_latest_at)
        if latest >= start_s:
            earliest = max(start_s, to_seconds(epoch, shift.break_earliest_at, up=True))
            brk = Break(earliest, latest, shift.break_duration_s)
    return VehicleSpec(
        id=shift.shift_id,
        start_location=start_location,
        end_location=0 if shift.return_to_depot else None,
        shift_start_s=start_s,
        shift_end_s=end_s,
        capacity=(shift.capacity_g, shift.capacity_parcels),
        skills=shift.skills,
        brk=brk,
        fixed_jobs=day.fixed.get(shift.shift_id, ()),
        preferred_jobs=day.preferred.get(shift.shift_id, frozenset()),
        on_board=(
            frozenset(day.initial.get(shift.shift_id, ()) if day.initial else ())
            if day.is_out(shift.shift_id)
            else None
        ),
        travel=travel,
    )


def leave_windows(shift: ShiftInput, day: DayInput) -> list[tuple[int, int]] | None:
    """The open spans (seconds from the epoch) within which a vehicle still at the depot may
    leave, for a route that leaves later than it could; None: at any time."""
    if day.is_out(shift.shift_id):
        return None
    intervals = open_during(day.opening_hours, day.tz, day.free_at(shift), shift.end_at)
    if intervals is None:
        return None
    epoch = day.epoch
    return [(to_seconds(epoch, a, up=True), to_seconds(epoch, b)) for a, b in intervals]


def build_problem(
    day: DayInput,
    locs: Locations,
    durations: IntArray,
    distances: IntArray,
    *,
    exclude: frozenset[str] = frozenset(),
    travel: dict[str, tuple[IntArray, IntArray]] | None = None,
    buffer_s: int = 0,
    buffer_cost: float = 0.10,
) -> Problem:
    """The optimiser's problem for ``day`` on the given matrices (rows as in ``locs``); with
    ``travel`` (profile name -> matrices), each vehicle drives on its own profile's.
    ``buffer_s``: the slack to keep before each window's end (see :func:`order_job`), at most
    ``buffer_cost`` (a share) more objective and driving time than without it."""
    horizon = horizon_s(day)
    jobs = [
        order_job(o, locs.order_loc[o.order_id], day.epoch, horizon, buffer_s)
        for o in day.orders
        if o.order_id not in exclude
    ]
    own = travel or {}
    vehicles = [
        vehicle_spec(
            s,
            day,
            locs.start_loc.get(s.shift_id, 0),
            travel=s.profile.value if s.profile.value in own else None,
        )
        for s in day.shifts
    ]
    return Problem(
        jobs=jobs,
        vehicles=vehicles,
        durations=durations,
        distances=distances,
        travel=dict(own),
        target_cost_tolerance=buffer_cost,
    )


@dataclass
class Matrices:
    """The travel matrices of a day, one per vehicle profile; each vehicle is planned on its
    own profile's."""

    by_profile: dict[Profile, TravelMatrix]
    seconds: float

    @property
    def default(self) -> TravelMatrix:
        return self.by_profile[min(self.by_profile)]

    @property
    def unreachable(self) -> set[int]:
        """Locations that no profile reaches."""
        return set.intersection(*(set(m.unreachable) for m in self.by_profile.values()))

    @property
    def outside(self) -> set[int]:
        """Locations beyond the map's coverage for every profile."""
        return set.intersection(*(set(m.outside) for m in self.by_profile.values()))

    def travel(self) -> dict[str, tuple[IntArray, IntArray]]:
        return {p.value: (m.durations_s, m.distances_m) for p, m in self.by_profile.items()}


def travel_matrices(
    provider: TravelTimeProvider, points: Sequence[LatLon], profiles: Sequence[Profile]
) -> Matrices:
    """One matrix per vehicle profile of ``profiles``."""
    started = time.perf_counter()
    try:
        by_profile = {p: provider.matrix(points, p) for p in sorted(set(profiles))}
    except TravelTimeError as exc:
        raise TravelTimesUnavailable(f"{provider.name}: {exc}") from exc
    return Matrices(by_profile, time.perf_counter() - started)


def travel_provider(settings: Settings) -> TravelTimeProvider:
    """The configured provider; the factory keeps one per configuration per process, so road
    graphs load once and the provider's own answer cache is shared."""
    return provider_from_settings(settings)


def promise_stats(sims: Sequence[TimedRoute], jobs: dict[str, Job]) -> dict[str, Any]:
    """How well the plan keeps its windows: the share of windowed stops served in the last
    :data:`LAST_MINUTES` minutes of their window, and the mean slack (minutes from the start
    of service to the window's end) of windowed stops."""
    slacks = [
        (jobs[s.job_id].tw_end_s - s.start_s) / 60
        for sim in sims
        for s in sim.stops
        if s.job_id in jobs and jobs[s.job_id].tw_end_s - jobs[s.job_id].tw_start_s < 86_400
    ]
    late = sum(1 for m in slacks if m < LAST_MINUTES)
    return {
        "stops_in_last_15_min": late,
        "last_15_min_pct": round(100 * late / len(slacks), 2) if slacks else 0.0,
        "mean_slack_min": round(sum(slacks) / len(slacks), 1) if slacks else None,
    }


# --- Solution -> rows -----------------------------------------------------------------------


@dataclass
class DraftRoute:
    """One shift's computed route, before it is written."""

    shift: ShiftInput
    start: RouteStart
    sim: TimedRoute | None  # None: a shift without a vehicle in this plan (dropped, over)
    geometry: list[list[float]] = field(default_factory=list)


@dataclass
class PlanDraft:
    """A computed plan, before it is written: routes, unassigned orders, figures."""

    routes: list[DraftRoute]
    unassigned: list[dict[str, str]]
    stats: dict[str, Any]


def _default_start(day: DayInput, shift: ShiftInput) -> RouteStart:
    return day.starts.get(shift.shift_id) or RouteStart(day.depot, shift.start_at, "depot")


def compute_plan(
    day: DayInput,
    provider: TravelTimeProvider,
    *,
    time_limit_s: float,
    seed: int,
    max_iterations: int | None = None,
    buffer_s: int = 0,
    buffer_cost: float = 0.10,
) -> PlanDraft:
    """Matrices, optimisation and route timing for ``day``; touches no database.
    ``buffer_s``: the slack to keep before each window's end wherever the day allows, at
    most ``buffer_cost`` (a share) dearer in objective and driving time."""
    locs = locations(day)
    mats = travel_matrices(provider, locs.points, [s.profile for s in day.shifts] or [Profile.VAN])
    fixed = {j for jobs in day.fixed.values() for j in jobs}
    unreachable = frozenset(
        o.order_id
        for o in day.orders
        if locs.order_loc[o.order_id] in mats.unreachable and o.order_id not in fixed
    )
    problem = build_problem(
        day,
        locs,
        mats.default.durations_s,
        mats.default.distances_m,
        exclude=unreachable,
        travel=mats.travel(),
        buffer_s=buffer_s,
        buffer_cost=buffer_cost,
    )
    started = time.perf_counter()
    solution = Solution(routes=[], unassigned={}, feasible=True, distance=0)
    if problem.jobs and problem.vehicles:
        solution = solve(
            problem,
            time_limit_s=time_limit_s,
            seed=seed,
            initial=day.initial,
            max_iterations=max_iterations,
        )
    elif problem.jobs:
        solution.unassigned = {j.id: UnassignedReason.OUTSIDE_SHIFTS for j in problem.jobs}
    solve_s = time.perf_counter() - started
    beyond = {o.order_id for o in day.orders if locs.order_loc[o.order_id] in mats.outside}
    solution.unassigned.update(
        {
            o: UnassignedReason.OUTSIDE_COVERAGE if o in beyond else UnassignedReason.UNREACHABLE
            for o in unreachable
        }
    )

    jobs = {j.id: j for j in problem.jobs}
    labels = {o.order_id: o.reference for o in day.orders}
    planned = {r.vehicle_id: r for r in solution.routes}
    routes: list[DraftRoute] = []
    for shift, vehicle in zip(day.shifts, problem.vehicles, strict=True):
        route = planned.get(shift.shift_id)
        stops = route.stops if route else []
        matrix = mats.by_profile[shift.profile]
        sim = time_route(
            vehicle,
            [jobs[s.job_id] for s in stops],
            matrix.durations_s,
            matrix.distances_m,
            break_after=break_position(
                [s.departure_s for s in stops], route.break_start_s if route else None
            ),
            late_start=not vehicle.fixed_jobs,
            leave_within=leave_windows(shift, day),
            labels=labels,
        )
        start = _default_start(day, shift)
        geometry: list[list[float]] = []
        if provider.name != "straight" and stops:
            path = [start.point] + [locs.points[jobs[s.job_id].location] for s in stops]
            path += [day.depot] if shift.return_to_depot else []
            geometry = [[p.lon, p.lat] for p in provider.path(path, shift.profile)]
        routes.append(DraftRoute(shift, start, sim, geometry))
    routes += [DraftRoute(s, _default_start(day, s), None) for s in day.idle_shifts]
    routes.sort(key=lambda r: (r.shift.start_at, r.shift.shift_id))

    by_id = {o.order_id: o for o in day.orders}
    unassigned = [
        {
            "order_id": oid,
            "reference": by_id[oid].reference,
            "reason": reason.value,
            "detail": unassigned_detail(reason, by_id[oid], day),
        }
        for oid, reason in solution.unassigned.items()
    ]
    unassigned = sorted(unassigned + day.unlocated, key=lambda u: u["reference"])
    sims = [r.sim for r in routes if r.sim is not None]
    stats: dict[str, Any] = {
        "provider": provider.name,
        "profiles": [p.value for p in sorted(mats.by_profile)],
        "matrix_s": round(mats.seconds, 3),
        "solve_s": round(solve_s, 3),
        "objective": solution.stats.get("objective"),
        "iterations": solution.stats.get("iterations"),
        "search": solution.stats.get("mode"),
        "feasible": solution.feasible and not any(s.violations for s in sims),
        "orders": len(day.orders),
        "planned": sum(len(s.stops) for s in sims),
        "unassigned": len(unassigned),
        "shifts": len(day.shifts),
        "distance_m": sum(s.distance for s in sims),
        "driving_s": sum(s.driving_s for s in sims),
        "window_buffer_s": buffer_s,
        "buffer_relaxed": solution.stats.get("buffer_relaxed", 0),
        "buffer_moves": solution.stats.get("buffer_moves"),
        "buffer_repair": solution.stats.get("buffer_repair"),
        **promise_stats(sims, jobs),
    }
    if day.skipped_shifts:
        stats["skipped_shifts"] = day.skipped_shifts
    return PlanDraft(routes, unassigned, stats)


def route_row(
    draft: DraftRoute, day: DayInput, *, merchant_id: str, position: int, now: datetime
) -> tuple[Route, dict[str, Any]]:
    """One route and its stops as new rows (not yet added to a session), with its metadata:
    where it starts and where the break is, for later re-timing."""
    epoch = day.epoch
    history = day.history.get(draft.shift.shift_id, History(None, (), 0.0))
    route = Route(
        id=new_id("rte", now),
        merchant_id=merchant_id,
        shift_id=draft.shift.shift_id,
        driver_id=draft.shift.driver_id,
        vehicle_id=draft.shift.vehicle_id,
        position=position,
        status="planned",
        violations=list(draft.sim.violations) if draft.sim else [],
        geometry=draft.geometry,
        version=1,
    )
    stops: list[Stop] = []
    for done in history.stops:
        stops.append(
            Stop(
                id=new_id("stp", now),
                merchant_id=merchant_id,
                order_id=done.order_id,
                status=done.status,
                planned_arrival=done.planned_arrival,
                planned_departure=done.planned_departure,
                service_time_s=done.service_time_s,
                load_weight_kg=done.load_weight_kg,
                load_parcels=done.load_parcels,
                distance_from_prev_m=done.distance_from_prev_m,
                eta=done.eta,
                actual_arrival=done.actual_arrival,
                actual_departure=done.actual_departure,
            )
        )
    sim = draft.sim
    start_at = history.route_start
    end_at = history.stops[-1].actual_departure if history.stops else None
    meta: dict[str, Any] = {
        "start": {
            "lat": draft.start.point.lat,
            "lon": draft.start.point.lon,
            "at": draft.start.at.isoformat(),
            "kind": draft.start.kind,
        },
        "done": len(history.stops),
        "break_after": None,
        "break_start": day.breaks_taken.get(draft.shift.shift_id),
    }
    if draft.shift.shift_id in day.breaks_taken:
        meta["break_taken"] = True
    if sim is not None:
        for s in sim.stops:
            stops.append(
                Stop(
                    id=new_id("stp", now),
                    merchant_id=merchant_id,
                    order_id=s.job_id,
                    status=day.stop_status.get(s.job_id, "planned"),
                    planned_arrival=epoch + timedelta(seconds=s.start_s),
                    planned_departure=epoch + timedelta(seconds=s.departure_s),
                    service_time_s=s.departure_s - s.start_s,
                    load_weight_kg=s.load_after[0] / 1000,
                    load_parcels=s.load_after[1],
                    distance_from_prev_m=float(s.distance_from_prev),
                )
            )
        start_at = start_at or epoch + timedelta(seconds=sim.start_s)
        end_at = epoch + timedelta(seconds=sim.end_s) if sim.stops else (end_at or start_at)
        route.load_weight_kg = sim.load_start[0] / 1000
        route.load_parcels = sim.load_start[1]
        route.distance_m = sum(d.distance_from_prev_m for d in history.stops) + sim.distance
        route.driving_s = history.driving_s + sim.driving_s
        meta["break_after"] = sim.break_after
        if sim.break_start_s is not None:
            meta["break_start"] = (epoch + timedelta(seconds=sim.break_start_s)).isoformat()
    else:
        route.distance_m = sum(d.distance_from_prev_m for d in history.stops)
        route.driving_s = history.driving_s
    route.start_at = start_at or draft.shift.start_at
    route.end_at = end_at or route.start_at
    for sequence, stop in enumerate(stops, start=1):
        stop.sequence = sequence
    route.stops = stops
    return route, meta


def save_plan(
    session: Session,
    clock: Clock,
    day: DayInput,
    draft: PlanDraft,
    *,
    seed: int,
    time_limit_s: float,
    parent_plan_id: str | None = None,
) -> Plan:
    """Write ``draft`` as a draft plan with one route per shift (even an empty one)."""
    now = clock.now()
    plan = Plan(
        id=new_id("pln", now),
        merchant_id=day.merchant_id,
        depot_id=day.depot_id,
        date=day.day,
        status="draft",
        parent_plan_id=parent_plan_id,
        seed=seed,
        time_limit_s=time_limit_s,
        travel_provider=str(draft.stats.get("provider", "")),
        unassigned=draft.unassigned,
        created_at=now,
    )
    meta: dict[str, Any] = {}
    routes = []
    for position, dr in enumerate(draft.routes):
        route, route_meta = route_row(
            dr, day, merchant_id=day.merchant_id, position=position, now=now
        )
        meta[route.id] = route_meta
        routes.append(route)
    plan.routes = routes
    plan.stats = {**draft.stats, "route_meta": meta}
    session.add(plan)
    session.flush()
    return plan


def create_plan(
    sessions: sessionmaker[Session],
    clock: Clock,
    settings: Settings,
    *,
    merchant_id: str,
    depot_id: str,
    day: date,
    time_limit_s: float | None = None,
    seed: int | None = None,
    provider: TravelTimeProvider | None = None,
    max_iterations: int | None = None,
    on_saved: Callable[[Session, PlanView], None] | None = None,
) -> PlanView:
    """Plan ``day`` at the depot and store it as a draft. The optimisation runs between two
    short transactions (read, then write), never inside one. ``on_saved`` is called with the
    new plan inside the writing transaction, for what must commit with it (an idempotent
    request's stored answer)."""
    limit = time_limit_s if time_limit_s is not None else settings.plan_time_limit_s
    seed = settings.plan_seed if seed is None else seed
    if max_iterations is None:
        max_iterations = settings.plan_max_iterations
    with transaction(sessions) as session:
        day_input = load_day(session, clock, settings, merchant_id, depot_id, day)
    closed = [s for s in day_input.skipped_shifts if s["reason"] == "depot_closed"]
    if not day_input.shifts and closed:
        raise Unprocessable(
            f"the depot's opening hours leave no shift any time on {day.isoformat()}",
            errors=[FieldError("date", s["detail"], "depot_closed") for s in closed],
        )
    if not day_input.shifts:
        raise Unprocessable(
            f"no shifts start on {day.isoformat()} at this depot",
            errors=[FieldError("date", "no planned or active shift starts that day", "no_shifts")],
        )
    provider = provider or travel_provider(settings)
    draft = compute_plan(
        day_input,
        provider,
        time_limit_s=limit,
        seed=seed,
        max_iterations=max_iterations,
        buffer_s=settings.plan_window_buffer_s,
        buffer_cost=settings.plan_window_buffer_max_extra_cost,
    )
    with transaction(sessions) as session:
        plan = save_plan(session, clock, day_input, draft, seed=seed, time_limit_s=limit)
        view = load_plan_view(session, merchant_id, plan.id)
        if on_saved is not None:
            on_saved(session, view)
        return view
