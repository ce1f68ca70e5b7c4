"""After the search: every route timed on the matrices (route_timing.py, never PyVRP's own
schedule), a safety net for a search that ended infeasible, and why each job left out was."""

from __future__ import annotations

import time

from doorstep.routing.breaks import best_break
from doorstep.routing.problem import (
    Job,
    PlannedRoute,
    Problem,
    Solution,
    UnassignedReason,
    VehicleSpec,
)
from doorstep.routing.pyvrp_model import PyvrpModel, VehicleStart, is_allowed
from doorstep.routing.route_timing import Visit, break_visit, job_visit, overrun, planned_route


def assemble(
    problem: Problem,
    model: PyvrpModel | None,
    starts: list[VehicleStart],
    assigned: dict[int, list[int]],
    unassigned: dict[str, UnassignedReason],
    active: list[Job],
    stats: dict[str, float | int | str],
    started: float,
    pyvrp_feasible: bool,
) -> Solution:
    """Simulate every route on the matrices and collect the plan, reasons and figures."""
    jobs_by_id = {j.id: j for j in problem.jobs}
    routes: list[PlannedRoute] = []
    violations: list[str] = []
    served: set[str] = set()
    with_break = {b.vehicle for b in model.breaks} if model is not None else set()
    for k, vehicle in enumerate(problem.vehicles):
        items = visits(problem, model, k, assigned.get(k, []), jobs_by_id)
        if not any(it.job is not None for it in items):
            continue
        late_start = not vehicle.fixed_jobs
        if not pyvrp_feasible:
            if k in with_break and vehicle.brk is not None and all(it.job for it in items):
                items = best_break(problem, vehicle, items, late_start=late_start)
            items = drop_until_feasible(problem, vehicle, items, late_start=late_start)
        route, broken = planned_route(problem, vehicle, items, late_start=late_start)
        routes.append(route)
        violations.extend(broken)
        served.update(s.job_id for s in route.stops)
    loads = {r.vehicle_id: r.load_start for r in routes}
    for job in active:
        if job.id not in served:
            unassigned[job.id] = left_out_reason(problem, job, starts, loads)
    stats["runtime_s"] = round(time.perf_counter() - started, 3)
    stats["num_routes"] = len(routes)
    stats["num_unassigned"] = len(unassigned)
    stats["violations"] = len(violations)
    return Solution(
        routes=routes,
        unassigned=unassigned,
        feasible=not violations,
        distance=sum(r.distance for r in routes),
        stats=stats,
    )


def visits(
    problem: Problem,
    model: PyvrpModel | None,
    k: int,
    clients: list[int],
    jobs_by_id: dict[str, Job],
) -> list[Visit]:
    """What vehicle ``k`` does: its fixed stops, then ``clients`` of ``model`` (a job it may
    not serve is left out; a break client becomes its one break, at the stop before it)."""
    vehicle = problem.vehicles[k]
    items = [job_visit(jobs_by_id[j]) for j in vehicle.fixed_jobs]
    if model is None:
        return items
    for idx in clients:
        if idx < len(model.jobs):
            if is_allowed(model, idx, k):  # a forbidden (skill) visit is never kept
                items.append(job_visit(model.jobs[idx]))
        elif vehicle.brk is not None and all(it.job for it in items):
            items.append(break_visit(vehicle.brk))
    return items


def drop_until_feasible(
    problem: Problem, vehicle: VehicleSpec, items: list[Visit], *, late_start: bool
) -> list[Visit]:
    """Take jobs off a route that breaks its constraints, the most harmful first, until it
    holds. A safety net for when the search ends without a feasible plan; fixed stops stay."""
    items = list(items)
    fixed = len(vehicle.fixed_jobs)
    while overrun(problem, vehicle, items, late_start=late_start) > 0:
        options = [i for i in range(fixed, len(items)) if items[i].job is not None]
        if not options:
            break
        scores = [
            overrun(problem, vehicle, items[:i] + items[i + 1 :], late_start=late_start)
            for i in options
        ]
        items.pop(options[scores.index(min(scores))])
    return items


def left_out_reason(
    problem: Problem, job: Job, starts: list[VehicleStart], loads: dict[str, tuple[int, ...]]
) -> UnassignedReason:
    """Why the search left a servable job out: every vehicle able to take it is full, or (the
    usual case) no vehicle has time left for it."""
    full = True
    for vehicle, start in zip(problem.vehicles, starts, strict=True):
        if not job.skills <= vehicle.skills:
            continue
        load = loads.get(
            vehicle.id, tuple(c - s for c, s in zip(vehicle.capacity, start.capacity, strict=True))
        )
        if all(ld + d <= c for ld, d, c in zip(load, job.demand, vehicle.capacity, strict=True)):
            full = False
    return UnassignedReason.OVER_CAPACITY if full else UnassignedReason.NO_VEHICLE_TIME
