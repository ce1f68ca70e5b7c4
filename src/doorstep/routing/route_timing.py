"""Route timing: when a vehicle arrives, starts serving and leaves each stop of a route driven
in a given order on given matrices, what it carries, and which constraints the route breaks.

One forward pass (:func:`drive`) serves everyone, so stored times always match the
optimiser's: the optimiser reports every plan it returns through :func:`planned_route`
(PyVRP's own schedule is never copied), :func:`plan_route` times a route someone ordered by
hand, and the planner and manual moves persist routes through :func:`time_route`, which adds
the break placement, depot opening hours and violations a dispatcher reads.

Conventions: the vehicle waits for a window to open; a break is taken where the vehicle already
is (at the previous stop, or at the start), never during a drive; a route without stops already
made leaves as late as it can without finishing later.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from doorstep.routing.problem import (
    Break,
    IntMatrix,
    Job,
    PlannedRoute,
    PlannedStop,
    Problem,
    VehicleSpec,
)
from doorstep.routing.travel.base import UNREACHABLE

DIMENSIONS = ("weight_kg", "parcels")
# Demands are integers: grams and parcels. These turn them back into the API's units.
SCALE = (1000.0, 1.0)
AUTO_BREAK = -1
"""``break_after`` value asking :func:`time_route` to place the break itself."""


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
    """The times of a route driven from a given start time."""

    arrivals: list[int]
    starts: list[int]
    departures: list[int]
    leg_distances: list[int]
    leg_durations: list[int]
    end_s: int
    end_distance: int
    end_duration: int
    reachable: list[bool] = field(default_factory=list)


def break_visit(brk: Break) -> Visit:
    return Visit(None, -1, brk.earliest_start_s, brk.latest_start_s, brk.duration_s)


def job_visit(job: Job) -> Visit:
    return Visit(job, job.location, job.tw_start_s, job.tw_end_s, job.service_s)


def drive(
    durations: IntMatrix,
    distances: IntMatrix,
    vehicle: VehicleSpec,
    items: Sequence[Visit],
    t0: int,
    *,
    skip_unreachable: bool = False,
) -> Timeline:
    """Drive ``items`` from ``t0``: wait for windows, serve, then go to the end (if any).

    An unreachable leg counts at its matrix value (huge, so the optimiser sees it as broken)
    or, with ``skip_unreachable``, as zero, for a timeline a dispatcher can still read; either
    way ``reachable`` flags it."""
    tl = Timeline([], [], [], [], [], t0, 0, 0, [])
    t, loc = t0, vehicle.start_location

    def leg(a: int, b: int) -> tuple[int, int, bool]:
        seconds, metres = int(durations[a, b]), int(distances[a, b])
        ok = seconds < UNREACHABLE and metres < UNREACHABLE
        if not ok and skip_unreachable:
            return 0, 0, False
        return seconds, metres, ok

    for item in items:
        at = loc if item.job is None else item.location  # a break is taken where one is
        seconds, metres, ok = leg(loc, at)
        tl.leg_distances.append(metres)
        tl.leg_durations.append(seconds)
        tl.reachable.append(ok)
        arrival = t + seconds
        start = max(arrival, item.tw_start)
        t = start + item.service
        tl.arrivals.append(arrival)
        tl.starts.append(start)
        tl.departures.append(t)
        loc = at
    tl.end_s = t
    if vehicle.end_location is not None:
        tl.end_duration, tl.end_distance, _ = leg(loc, vehicle.end_location)
        tl.end_s = t + tl.end_duration
    return tl


def forward(problem: Problem, vehicle: VehicleSpec, items: list[Visit], t0: int) -> Timeline:
    """:func:`drive` on the matrices ``vehicle`` drives on in ``problem``."""
    durations, distances = problem.matrices(vehicle)
    return drive(durations, distances, vehicle, items, t0)


def latest_start_delay(items: Sequence[Visit], tl: Timeline) -> int:
    """How long the departure can be delayed without serving any stop later: the wait at the
    first stop. Waits further on stay waits, so every stop keeps the slack before its window's
    end that the plan gave it; delaying further would turn them into lateness risk (ADR 0014).
    """
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


def planned_route(
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
        if not tl.reachable[i]:
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
    late as it can without serving any stop later."""
    jobs = {j.id: j for j in problem.jobs}
    visits = [job_visit(jobs[j]) for j in job_ids]
    brk = vehicle.brk
    if brk is not None and break_after is not None:
        visits.insert(break_after, break_visit(brk))
    return planned_route(problem, vehicle, visits, late_start=late_start)


# --- Timing a route for the dispatcher: break placement, opening hours, violations -----------


@dataclass(frozen=True)
class TimedStop:
    """One stop of a timed route (seconds from the plan's epoch)."""

    job_id: str
    arrival_s: int  # when the vehicle gets there
    start_s: int  # when service starts: arrival, or the window's start after waiting
    departure_s: int
    load_after: tuple[int, ...]
    distance_from_prev: int


@dataclass
class TimedRoute:
    """A timed route: its stops, figures and the constraints it breaks."""

    stops: list[TimedStop]
    start_s: int  # when the vehicle leaves its start
    end_s: int
    distance: int
    driving_s: int
    load_start: tuple[int, ...]
    break_start_s: int | None = None
    break_after: int | None = None  # how many stops were made before the break
    violations: list[dict[str, Any]] = field(default_factory=list)


def _auto_break(
    vehicle: VehicleSpec, jobs: Sequence[Job], durations: IntMatrix, distances: IntMatrix
) -> int | None:
    """Where to take the break when nobody said: at the first stop boundary past its earliest
    start, or earlier when going on would pass its latest start. None if the work ends first."""
    brk = vehicle.brk
    if brk is None or not jobs:
        return None
    tl = drive(
        durations,
        distances,
        vehicle,
        [job_visit(j) for j in jobs],
        vehicle.shift_start_s,
        skip_unreachable=True,
    )
    t = vehicle.shift_start_s
    for index, finish in enumerate(tl.departures):
        if t >= brk.earliest_start_s or finish > brk.latest_start_s:
            return index
        t = finish
    return len(jobs) if t >= brk.earliest_start_s else None


def _minutes(seconds: int) -> int:
    return max(1, math.ceil(seconds / 60))


def time_route(
    vehicle: VehicleSpec,
    jobs: Sequence[Job],
    durations: IntMatrix,
    distances: IntMatrix,
    *,
    break_after: int | None = AUTO_BREAK,
    late_start: bool = True,
    leave_within: Sequence[tuple[int, int]] | None = None,
    labels: Mapping[str, str] | None = None,
) -> TimedRoute:
    """Drive ``jobs`` in order from the vehicle's start, no earlier than its shift start.

    ``break_after`` is how many stops come before the break: None for no break, or
    :data:`AUTO_BREAK` to place it as :func:`_auto_break` does. ``late_start`` delays the
    departure by the wait at the first stop, as the optimiser does for routes that have no stops
    already made, but only to a moment inside one of the ``leave_within`` spans (the depot's
    open hours) when given. Deliveries only: the vehicle leaves with every job's demand on board.
    ``labels`` (job id -> order reference) name stops in the violation messages.
    """
    labels = labels or {}
    brk = vehicle.brk
    if brk is None or not jobs:
        break_after = None
    elif break_after == AUTO_BREAK:
        break_after = _auto_break(vehicle, jobs, durations, distances)
    items = [job_visit(j) for j in jobs]
    if brk is not None and break_after is not None:
        at = min(max(break_after, 0), len(jobs))
        items.insert(at, break_visit(brk))
        break_after = at

    def timeline(t0: int) -> Timeline:
        return drive(durations, distances, vehicle, items, t0, skip_unreachable=True)

    tl = timeline(vehicle.shift_start_s)
    if late_start and jobs:
        leave = vehicle.shift_start_s + latest_start_delay(items, tl)
        if leave_within is not None:
            open_at = [min(leave, end) for start, end in leave_within if start <= leave]
            leave = max([vehicle.shift_start_s, *open_at])
        if leave > vehicle.shift_start_s:
            tl = timeline(leave)

    dims = len(vehicle.capacity)
    load = [sum(j.demand[d] for j in jobs) for d in range(dims)]
    load_start = tuple(load)
    violations = _capacity_violations(vehicle, load_start)
    stops: list[TimedStop] = []
    break_start: int | None = None
    for i, item in enumerate(items):
        job = item.job
        if job is None:
            break_start = tl.starts[i]
            if break_start > item.tw_end:
                late = _minutes(break_start - item.tw_end)
                violations.append(
                    {
                        "type": "break_late",
                        "minutes": late,
                        "detail": f"the break starts {late} min after its latest start",
                    }
                )
            continue
        name = f"stop {len(stops) + 1} ({labels.get(job.id, job.id)})"
        base = {"order_id": job.id, "reference": labels.get(job.id, job.id), "stop": len(stops) + 1}
        if not tl.reachable[i]:
            violations.append(
                {"type": "unreachable", **base, "detail": f"{name} cannot be reached"}
            )
        if tl.starts[i] > job.tw_end_s:
            late = _minutes(tl.starts[i] - job.tw_end_s)
            violations.append(
                {
                    "type": "late_arrival",
                    **base,
                    "minutes": late,
                    "detail": f"late arrival at {name} by {late} min",
                }
            )
        missing = sorted(job.skills - vehicle.skills)
        if missing:
            violations.append(
                {
                    "type": "missing_skill",
                    **base,
                    "skills": missing,
                    "detail": f"{name} needs {', '.join(missing)}",
                }
            )
        for d in range(dims):
            load[d] -= job.demand[d]
        stops.append(
            TimedStop(
                job.id,
                tl.arrivals[i],
                tl.starts[i],
                tl.departures[i],
                tuple(load),
                tl.leg_distances[i],
            )
        )
    if not jobs:
        start_s = vehicle.shift_start_s
        return TimedRoute([], start_s, start_s, 0, 0, load_start, violations=violations)
    if tl.end_s > vehicle.shift_end_s:
        over = _minutes(tl.end_s - vehicle.shift_end_s)
        violations.append(
            {
                "type": "shift_end_exceeded",
                "minutes": over,
                "detail": f"the route ends {over} min after the shift",
            }
        )
    start_s = tl.arrivals[0] - tl.leg_durations[0]
    return TimedRoute(
        stops=stops,
        start_s=start_s,
        end_s=tl.end_s,
        distance=sum(tl.leg_distances) + tl.end_distance,
        driving_s=sum(tl.leg_durations) + tl.end_duration,
        load_start=load_start,
        break_start_s=break_start,
        break_after=break_after if break_start is not None else None,
        violations=violations,
    )


def _capacity_violations(vehicle: VehicleSpec, load: tuple[int, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for d, name in enumerate(DIMENSIONS[: len(load)]):
        if load[d] > vehicle.capacity[d]:
            have, cap = load[d] / SCALE[d], vehicle.capacity[d] / SCALE[d]
            unit = "kg" if name == "weight_kg" else "parcels"
            out.append(
                {
                    "type": "over_capacity",
                    "dimension": name,
                    "load": have,
                    "capacity": cap,
                    "detail": f"over capacity: {have:g} {unit} on board, room for {cap:g}",
                }
            )
    return out


def break_position(departures: Sequence[int], break_start_s: int | None) -> int | None:
    """How many stops an optimiser's route made before its break (None: no break)."""
    if break_start_s is None:
        return None
    return sum(1 for d in departures if d <= break_start_s)
