"""Re-simulating one route: planned times, loads, distances and what the route breaks.

Pure functions of a :class:`~doorstep.routing.problem.VehicleSpec`, the jobs in the order they
are visited and the matrices. The planner persists the optimiser's routes through this function
(each vehicle with its own profile's matrix), and manual moves use it to recompute the routes
they touch; infeasibility is reported as ``violations``, never hidden.

The timeline follows the optimiser's own conventions, so a route persisted on the matrix it was
solved on keeps the optimiser's times: the vehicle waits for a window to open, a break is taken
at a stop (never during a drive), and a route without stops already made leaves as late as it
can without finishing later.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from doorstep.routing.problem import IntMatrix, Job, VehicleSpec
from doorstep.routing.travel.base import UNREACHABLE

DIMENSIONS = ("weight_kg", "parcels")
# Demands are integers: grams and parcels. These turn them back into the API's units.
SCALE = (1000.0, 1.0)
AUTO_BREAK = -1
"""``break_after`` value asking :func:`simulate_route` to place the break itself."""


@dataclass(frozen=True)
class SimStop:
    """One stop of a simulated route (seconds from the plan's epoch)."""

    job_id: str
    arrival_s: int  # when the vehicle gets there
    start_s: int  # when service starts: arrival, or the window's start after waiting
    departure_s: int
    load_after: tuple[int, ...]
    distance_from_prev: int


@dataclass
class SimRoute:
    """A simulated route: its stops, figures and the constraints it breaks."""

    stops: list[SimStop]
    start_s: int  # when the vehicle leaves its start
    end_s: int
    distance: int
    driving_s: int
    load_start: tuple[int, ...]
    break_start_s: int | None = None
    break_after: int | None = None  # how many stops were made before the break
    violations: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class _Item:
    job: Job | None  # None: the break
    location: int
    tw_start: int
    tw_end: int
    service: int


@dataclass
class _Timeline:
    arrivals: list[int]
    starts: list[int]
    departures: list[int]
    leg_s: list[int]
    leg_m: list[int]
    reachable: list[bool]
    end_s: int
    end_leg_s: int
    end_leg_m: int


def _leg(durations: IntMatrix, distances: IntMatrix, a: int, b: int) -> tuple[int, int, bool]:
    """Seconds and metres from ``a`` to ``b``; an unreachable leg counts as zero and is flagged."""
    seconds, metres = int(durations[a, b]), int(distances[a, b])
    if seconds >= UNREACHABLE or metres >= UNREACHABLE:
        return 0, 0, False
    return seconds, metres, True


def _forward(
    vehicle: VehicleSpec,
    items: Sequence[_Item],
    durations: IntMatrix,
    distances: IntMatrix,
    t0: int,
) -> _Timeline:
    tl = _Timeline([], [], [], [], [], [], t0, 0, 0)
    t, loc = t0, vehicle.start_location
    for item in items:
        seconds, metres, ok = _leg(durations, distances, loc, item.location)
        arrival = t + seconds
        start = max(arrival, item.tw_start)
        t = start + item.service
        tl.arrivals.append(arrival)
        tl.starts.append(start)
        tl.departures.append(t)
        tl.leg_s.append(seconds)
        tl.leg_m.append(metres)
        tl.reachable.append(ok)
        loc = item.location
    tl.end_s = t
    if vehicle.end_location is not None and items:
        tl.end_leg_s, tl.end_leg_m, _ = _leg(durations, distances, loc, vehicle.end_location)
        tl.end_s = t + tl.end_leg_s
    return tl


def _departure_slack(items: Sequence[_Item], tl: _Timeline) -> int:
    """How much later the vehicle can leave without serving any stop later: the wait at the
    first stop. Waits further on stay waits, so every stop keeps the slack before its
    window's end that the plan gave it (see ADR 0014)."""
    if not items:
        return 0
    return max(0, tl.starts[0] - tl.arrivals[0])


def _auto_break(
    vehicle: VehicleSpec, jobs: Sequence[Job], durations: IntMatrix, distances: IntMatrix
) -> int | None:
    """Where to take the break when nobody said: at the first stop boundary past its earliest
    start, or earlier when going on would pass its latest start. None if the work ends first."""
    brk = vehicle.brk
    if brk is None or not jobs:
        return None
    t, loc = vehicle.shift_start_s, vehicle.start_location
    for index, job in enumerate(jobs):
        seconds, _, _ = _leg(durations, distances, loc, job.location)
        finish = max(t + seconds, job.tw_start_s) + job.service_s
        if t >= brk.earliest_start_s or finish > brk.latest_start_s:
            return index
        t, loc = finish, job.location
    return len(jobs) if t >= brk.earliest_start_s else None


def _minutes(seconds: int) -> int:
    return max(1, math.ceil(seconds / 60))


def simulate_route(
    vehicle: VehicleSpec,
    jobs: Sequence[Job],
    durations: IntMatrix,
    distances: IntMatrix,
    *,
    break_after: int | None = AUTO_BREAK,
    late_start: bool = True,
    leave_within: Sequence[tuple[int, int]] | None = None,
    labels: Mapping[str, str] | None = None,
) -> SimRoute:
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
    items = [_Item(j, j.location, j.tw_start_s, j.tw_end_s, j.service_s) for j in jobs]
    if brk is not None and break_after is not None:
        at = min(max(break_after, 0), len(jobs))
        where = jobs[at - 1].location if at else vehicle.start_location
        items.insert(
            at, _Item(None, where, brk.earliest_start_s, brk.latest_start_s, brk.duration_s)
        )
        break_after = at
    tl = _forward(vehicle, items, durations, distances, vehicle.shift_start_s)
    if late_start and jobs:
        leave = vehicle.shift_start_s + _departure_slack(items, tl)
        if leave_within is not None:
            open_at = [min(leave, end) for start, end in leave_within if start <= leave]
            leave = max([vehicle.shift_start_s, *open_at])
        if leave > vehicle.shift_start_s:
            tl = _forward(vehicle, items, durations, distances, leave)

    dims = len(vehicle.capacity)
    load = [sum(j.demand[d] for j in jobs) for d in range(dims)]
    load_start = tuple(load)
    violations = _capacity_violations(vehicle, load_start)
    stops: list[SimStop] = []
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
            SimStop(
                job.id, tl.arrivals[i], tl.starts[i], tl.departures[i], tuple(load), tl.leg_m[i]
            )
        )
    if tl.end_s > vehicle.shift_end_s:
        over = _minutes(tl.end_s - vehicle.shift_end_s)
        violations.append(
            {
                "type": "shift_end_exceeded",
                "minutes": over,
                "detail": f"the route ends {over} min after the shift",
            }
        )
    start_s = tl.arrivals[0] - tl.leg_s[0] if items else vehicle.shift_start_s
    return SimRoute(
        stops=stops,
        start_s=start_s,
        end_s=tl.end_s if jobs else start_s,
        distance=sum(tl.leg_m) + tl.end_leg_m,
        driving_s=sum(tl.leg_s) + tl.end_leg_s,
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
