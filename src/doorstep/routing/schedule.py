"""The timing of one route on the matrices: when the vehicle arrives, starts serving and
leaves each stop, what it carries, and which constraints the route breaks.

The optimiser uses it to report every plan it returns (PyVRP's own schedule is never copied),
and anyone can use :func:`plan_route` to time a route someone ordered by hand. Breaks are taken
where the vehicle already is: at the previous stop, or at the start."""

from __future__ import annotations

from dataclasses import dataclass

from doorstep.routing.problem import Break, Job, PlannedRoute, PlannedStop, Problem, VehicleSpec
from doorstep.routing.travel.base import UNREACHABLE


@dataclass(frozen=True)
class Visit:
    """One thing a route does: serve a job, or (``job`` None) the driver's break, which is
    taken wherever the vehicle is (``location`` is then ignored)."""

    job: Job | None
    location: int
    tw_start: int
    tw_end: int
    service: int


@dataclass
class Timeline:
    """A forward simulation of a route from a given start time."""

    arrivals: list[int]
    starts: list[int]
    departures: list[int]
    leg_distances: list[int]
    leg_durations: list[int]
    end_s: int
    end_distance: int
    end_duration: int


def break_visit(brk: Break) -> Visit:
    return Visit(None, -1, brk.earliest_start_s, brk.latest_start_s, brk.duration_s)


def job_visit(job: Job) -> Visit:
    return Visit(job, job.location, job.tw_start_s, job.tw_end_s, job.service_s)


def forward(problem: Problem, vehicle: VehicleSpec, items: list[Visit], t0: int) -> Timeline:
    """Drive the route from ``t0``: wait for windows, serve, then go to the end (if any)."""
    tl = Timeline([], [], [], [], [], t0, 0, 0)
    t, loc = t0, vehicle.start_location
    durations, distances = problem.matrices(vehicle)
    for item in items:
        at = loc if item.job is None else item.location  # a break is taken where one is
        dur = int(durations[loc, at])
        tl.leg_distances.append(int(distances[loc, at]))
        tl.leg_durations.append(dur)
        arrival = t + dur
        start = max(arrival, item.tw_start)
        t = start + item.service
        tl.arrivals.append(arrival)
        tl.starts.append(start)
        tl.departures.append(t)
        loc = at
    tl.end_s = t
    if vehicle.end_location is not None:
        tl.end_duration = int(durations[loc, vehicle.end_location])
        tl.end_distance = int(distances[loc, vehicle.end_location])
        tl.end_s = t + tl.end_duration
    return tl


def latest_start_delay(items: list[Visit], tl: Timeline) -> int:
    """How long the departure can be delayed without serving any stop later: the wait at the
    first stop. (Delaying further would only turn waits at later stops into lateness risk:
    earlier service keeps the slack before each window's end.)"""
    if not items:
        return 0
    return max(0, tl.starts[0] - tl.arrivals[0])


def overrun(problem: Problem, vehicle: VehicleSpec, items: list[Visit], *, late_start: bool) -> int:
    """How badly the route breaks its constraints: seconds late at windows and at the shift
    end, plus units over capacity. Zero for a feasible route."""
    tl = forward(problem, vehicle, items, vehicle.shift_start_s)
    if late_start and items:
        tl = forward(problem, vehicle, items, vehicle.shift_start_s + latest_start_delay(items, tl))
    late = sum(max(0, st - it.tw_end) for it, st in zip(items, tl.starts, strict=True))
    dims = range(len(vehicle.capacity))
    load = [sum(it.job.demand[d] for it in items if it.job is not None) for d in dims]
    over = sum(max(0, load[d] - vehicle.capacity[d]) for d in dims)
    return late + max(0, tl.end_s - vehicle.shift_end_s) + over


def simulate_route(
    problem: Problem, vehicle: VehicleSpec, items: list[Visit], *, late_start: bool
) -> tuple[PlannedRoute, list[str]]:
    """The planned route for ``items`` and the constraints it breaks (empty when feasible)."""
    tl = forward(problem, vehicle, items, vehicle.shift_start_s)
    if late_start and items:
        delay = latest_start_delay(items, tl)
        if delay:
            tl = forward(problem, vehicle, items, vehicle.shift_start_s + delay)
    start_s = tl.arrivals[0] - tl.leg_durations[0] if items else vehicle.shift_start_s
    dims = len(vehicle.capacity)
    load = [sum(it.job.demand[d] for it in items if it.job is not None) for d in range(dims)]
    load_start = tuple(load)
    violations: list[str] = []
    if any(load[d] > vehicle.capacity[d] for d in range(dims)):
        violations.append(f"{vehicle.id}: load {load_start} over capacity {vehicle.capacity}")
    stops: list[PlannedStop] = []
    break_start: int | None = None
    for i, item in enumerate(items):
        if tl.starts[i] > item.tw_end:
            what = item.job.id if item.job else "break"
            violations.append(f"{vehicle.id}: {what} starts after its window")
        if max(tl.leg_distances[i], tl.leg_durations[i]) >= UNREACHABLE:
            violations.append(f"{vehicle.id}: unreachable leg to location {item.location}")
        if item.job is None:
            break_start = tl.starts[i]
            continue
        for d in range(dims):
            load[d] -= item.job.demand[d]
        stops.append(
            PlannedStop(
                job_id=item.job.id,
                arrival_s=tl.arrivals[i],
                start_service_s=tl.starts[i],
                departure_s=tl.departures[i],
                load_after=tuple(load),
                distance_from_prev=tl.leg_distances[i],
            )
        )
    if tl.end_s > vehicle.shift_end_s:
        violations.append(f"{vehicle.id}: ends at {tl.end_s}, after its shift")
    if tl.end_distance >= UNREACHABLE or tl.end_duration >= UNREACHABLE:
        violations.append(f"{vehicle.id}: cannot reach its end location")
    # Legs to a break at the previous stop's location are zero, so distances stay exact.
    distance = sum(tl.leg_distances) + tl.end_distance
    route = PlannedRoute(
        vehicle_id=vehicle.id,
        stops=stops,
        start_s=start_s,
        end_s=tl.end_s,
        distance=distance,
        duration=tl.end_s - start_s,
        driving_s=sum(tl.leg_durations) + tl.end_duration,
        load_start=load_start,
        break_start_s=break_start,
    )
    return route, violations


def plan_route(
    problem: Problem,
    vehicle: VehicleSpec,
    job_ids: list[str],
    *,
    break_after: int | None = None,
    late_start: bool = True,
) -> tuple[PlannedRoute, list[str]]:
    """Time ``vehicle`` serving ``job_ids`` in this order, with its break (if it has one) after
    the first ``break_after`` stops (0: before the first stop; None: no break).

    Returns the route and the constraints it breaks. With ``late_start`` the vehicle leaves as
    late as it can without finishing later."""
    jobs = {j.id: j for j in problem.jobs}
    visits = [job_visit(jobs[j]) for j in job_ids]
    brk = vehicle.brk
    if brk is not None and break_after is not None:
        visits.insert(break_after, break_visit(brk))
    return simulate_route(problem, vehicle, visits, late_start=late_start)
