"""Drivers' breaks in the PyVRP model (see "Breaks" in :mod:`.solver`): where each vehicle may
take its break, how break clients start out on their own vehicle, and a safety net for plans
the search left without one.

A vehicle's break is a group of PyVRP clients, one per *spot*: its start, and a few stops it
serves, each sharing that stop's location so the break costs no travel after it. Few spots
search much faster than many (a 200-stop, 10-van day: 4 % above the break-free plan plus the
breaks with 10 spots, 15 % with 25), so the spots are the stops the vehicle leaves nearest to
its break window in a first plan made without breaks."""

from __future__ import annotations

import pyvrp

from doorstep.routing.problem import Job, Problem, VehicleSpec
from doorstep.routing.pyvrp_model import PyvrpModel, VehicleStart
from doorstep.routing.route_timing import Visit, break_visit, forward, job_visit, overrun

BREAK_SPOTS = 10
"""Places a vehicle may take its break: its start and up to this many minus one stops."""

BREAK_PENALTY = 1e9
"""Penalty per break on the wrong vehicle. Moving a break onto another route saves its
duration, so PyVRP's default penalties (tens of thousands) would let breaks wander."""


def break_due(vehicle: VehicleSpec, start: VehicleStart) -> bool:
    """Whether the plan must hold this vehicle's break: it has one, its window has not passed
    during the fixed stops, and it lies inside the shift."""
    brk = vehicle.brk
    return (
        brk is not None
        and start.time <= brk.latest_start_s
        and brk.earliest_start_s + brk.duration_s <= vehicle.shift_end_s
    )


def _gap(leave: int, earliest: int, latest: int) -> int:
    """How far a departure time lies outside the window ``[earliest, latest]``."""
    return max(0, earliest - leave, leave - latest)


def break_spots(
    problem: Problem,
    vehicle: VehicleSpec,
    start: VehicleStart,
    jobs: list[Job],
    planned: list[Job],
) -> list[int] | None:
    """Matrix locations where ``vehicle`` may take its break, or None when none is due.

    Its start first; then the stops of ``planned`` (its route in a plan without breaks) that it
    leaves nearest to the break window; then, while spots remain, any stop it could leave
    before the break's latest start whose window lies nearest to the break window."""
    brk = vehicle.brk
    if brk is None or not break_due(vehicle, start):
        return None
    e, latest = brk.earliest_start_s, brk.latest_start_s
    spots = [start.location]
    by_id = {j.id: j for j in problem.jobs}
    fixed = [job_visit(by_id[j]) for j in vehicle.fixed_jobs]
    timeline = forward(
        problem, vehicle, fixed + [job_visit(j) for j in planned], vehicle.shift_start_s
    )
    leaving = timeline.departures[len(fixed) :]
    on_route = sorted(
        (_gap(t, e, latest), job.location)
        for job, t in zip(planned, leaving, strict=True)
        if t <= latest
    )
    anywhere = []
    for job in jobs:
        reach = start.time + int(problem.matrices(vehicle)[0][start.location, job.location])
        if job.skills <= vehicle.skills and max(reach, job.tw_start_s) + job.service_s <= latest:
            anywhere.append((_gap(job.tw_end_s + job.service_s, e, latest), job.location))
    for _, loc in on_route + sorted(anywhere):
        if loc not in spots:
            spots.append(loc)
        if len(spots) == BREAK_SPOTS:
            break
    return spots


def start_breaks(model: PyvrpModel) -> dict[int, int]:
    """Vehicle index -> the client for taking its break at its start (its first spot)."""
    first: dict[int, int] = {}
    for i, brk in enumerate(model.breaks):
        first.setdefault(brk.vehicle, len(model.jobs) + i)
    return first


def with_own_breaks(
    model: PyvrpModel, problem: Problem, routes: dict[int, list[int]]
) -> dict[int, list[int]]:
    """``routes`` (vehicle index -> clients) with every break client taken out and each
    vehicle's break put back on its own route where it fits best. PyVRP's random start would
    scatter break clients over other vehicles, which its local search struggles to undo."""
    jobs = len(model.jobs)
    result = {k: [i for i in visits if i < jobs] for k, visits in routes.items()}
    spots: dict[int, dict[int, int]] = {}  # vehicle -> matrix location -> break client
    for i, brk in enumerate(model.breaks):
        spots.setdefault(brk.vehicle, {}).setdefault(brk.location, jobs + i)
    first = start_breaks(model)
    for k, at in spots.items():
        result[k] = _place_break(model, problem, k, result.get(k, []), at, first[k])
    return result


def _place_break(
    model: PyvrpModel,
    problem: Problem,
    k: int,
    route: list[int],
    spots: dict[int, int],
    at_start: int,
) -> list[int]:
    """``route`` with vehicle ``k``'s break client inserted where the route stays soundest,
    then ends earliest: at the start, or after a stop that is one of its spots."""
    vehicle = problem.vehicles[k]
    assert vehicle.brk is not None
    by_id = {j.id: j for j in problem.jobs}
    fixed = [job_visit(by_id[j]) for j in vehicle.fixed_jobs]
    visits = fixed + [job_visit(model.jobs[i]) for i in route]
    options = [(0, at_start)] + [
        (p + 1, spots[model.jobs[i].location])
        for p, i in enumerate(route)
        if model.jobs[i].location in spots
    ]
    scores = []
    for p, _ in options:
        at = len(fixed) + p
        trial = [*visits[:at], break_visit(vehicle.brk), *visits[at:]]
        end = forward(problem, vehicle, trial, vehicle.shift_start_s).end_s
        scores.append((overrun(problem, vehicle, trial, late_start=not fixed), end))
    p, client = options[scores.index(min(scores))]
    return [*route[:p], client, *route[p:]]


def best_break(
    problem: Problem, vehicle: VehicleSpec, items: list[Visit], *, late_start: bool
) -> list[Visit]:
    """``items`` with the vehicle's break where it hurts least: the safety net for a search
    that ended without a feasible plan."""
    assert vehicle.brk is not None
    brk = break_visit(vehicle.brk)
    first = len(vehicle.fixed_jobs)
    options = [[*items[:i], brk, *items[i:]] for i in range(first, len(items) + 1)]
    scores = [overrun(problem, vehicle, option, late_start=late_start) for option in options]
    return options[scores.index(min(scores))]


def job_neighbours(
    model: PyvrpModel, neighbours: dict[pyvrp.Activity, list[pyvrp.Activity]], size: int
) -> dict[pyvrp.Activity, list[pyvrp.Activity]]:
    """Granular neighbourhoods without break clients, which share their stop's location and
    would crowd out real neighbours. Jobs also neighbour every vehicle's start break, so a
    route holding only its break can still receive jobs (PyVRP's moves into empty routes do
    not apply to it)."""
    jobs = len(model.jobs)
    starts = [pyvrp.Activity(pyvrp.ActivityType.CLIENT, c) for c in start_breaks(model).values()]
    return {
        u: [v for v in near if not (v.is_client() and v.idx >= jobs)][:size]
        + (starts if u.idx < jobs else [])
        for u, near in neighbours.items()
    }
