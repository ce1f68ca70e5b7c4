"""Doorstep's route optimiser: a :class:`Problem` in, a :class:`Solution` out, built on PyVRP.

How the contract maps onto PyVRP (0.14):

* **Locations.** Every job gets a PyVRP location of its own (rows/columns copied from the
  problem's matrices), so costs can differ per job even when two jobs share an address. Each
  distinct start/end matrix location is a depot. Open routes (``end_location is None``) end at
  one extra "anywhere" depot that every location reaches at zero distance and duration, which
  makes the return leg free.
* **Shifts and fixed stops.** A vehicle's time window is its shift. Fixed stops (done or under
  way) are simulated from the shift start and collapsed into the vehicle's start: it becomes
  the last fixed stop's location at that stop's departure time, with the capacity the fixed
  stops used taken off. The fixed stops are put back in front of the route afterwards.
* **Skills and re-planning.** PyVRP has no skills, so vehicles get routing profiles: vehicles
  with the same skill set (and the same previous stops) share a profile whose edges into jobs
  they may not serve cost at least :data:`~doorstep.routing.pyvrp_model.MIN_PROHIBITIVE` extra,
  far more than leaving a job out; edges into a job some *other* vehicle had before cost
  ``reassign_penalty`` extra. A job on a vehicle it may not use is taken off after solving, so
  a skill can never be violated.
* **Optional jobs, two phases.** Jobs that can never be served are classified first (see
  :func:`classify`). The rest are solved as *required* clients first: PyVRP's perturbation
  re-inserts required clients at their best position, which searches better than its
  operators for optional clients (six Solomon instances, 2 s: mean gap 0.16 % against 0.26 %,
  with twice the iterations). That phase stops at its first feasible solution (or after
  :data:`PHASE_ONE_SHARE` of the time); the search then goes on from there. If no complete
  feasible solution turned up, the rest of the time is spent prize-collecting instead: every
  job optional with prize ``unassigned_penalty``, and penalties allowed to grow past that prize,
  so the jobs that do not fit are left out rather than making the whole plan infeasible. Should
  the search still end infeasible (a very short budget), the most harmful jobs are taken off
  each broken route until it holds.
* **Breaks** are exact: a break is a group of optional "break clients", one at the vehicle's
  start and one at each job it could serve before the break's latest start, of which exactly
  one must be visited (a required, mutually exclusive PyVRP client group). A break client sits
  at the job's location, so taking the break after that stop costs no travel. An extra load
  dimension per vehicle with a break (capacity 1 for that vehicle only) keeps other vehicles
  from taking it. The plan has the break at the stop before it (never during a drive); a break
  window that has passed when the fixed stops end, or lies after the shift, is not planned.
* **Objective.** ``"duration"`` (operations): route duration, driving plus waiting plus service,
  weighs :data:`~doorstep.routing.pyvrp_model.DURATION_WEIGHT` per second against 1 per unit of
  distance as a tie-breaker; penalties are then scaled by
  :data:`~doorstep.routing.pyvrp_model.PENALTY_SCALE` (1 unit of penalty ~ 0.1 s).
  ``"distance"`` (benchmarks): distance only, penalties as given.
* **Warm start.** ``initial`` (vehicle id -> job ids) becomes PyVRP's initial solution (jobs
  that are fixed, unknown, unservable or repeated are skipped).

Times in the returned plan come from simulating each route on the matrices, not from PyVRP. A
route starts as late as possible without finishing later (no waiting at the first door when
the driver can leave later). The result is deterministic for a fixed seed and iteration budget
(``max_iterations``); a wall-clock limit makes the number of iterations, and thus the result,
depend on the machine's speed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

import pyvrp
from pyvrp import PenaltyParams
from pyvrp.search import NeighbourhoodParams
from pyvrp.stop import FirstFeasible, MaxIterations, MaxRuntime, MultipleCriteria, StoppingCriterion

from doorstep.routing.problem import (
    Job,
    PlannedRoute,
    Problem,
    Solution,
    UnassignedReason,
    VehicleSpec,
)
from doorstep.routing.pyvrp_model import (
    PyvrpModel,
    VehicleStart,
    build_model,
    is_allowed,
)
from doorstep.routing.schedule import Visit, forward, job_visit, overrun, simulate_route
from doorstep.routing.travel.base import UNREACHABLE

Objective = Literal["duration", "distance"]

PHASE_ONE_SHARE = 0.3
"""Largest share of the time limit spent looking for a plan that serves every servable job."""

NUM_NEIGHBOURS = 20
"""Granular neighbourhood size (PyVRP's default is 50). Smaller neighbourhoods make each
iteration cheaper; within the seconds an operational re-plan or the benchmark allows, more
iterations beat wider ones (Solomon, 2 s: mean gap 0.35 % on the 16 hardest against 0.65 %)."""


# --- before solving ---------------------------------------------------------------------------


def _validate(problem: Problem) -> dict[str, int]:
    """Check the contract; return which vehicle (index) each fixed job belongs to."""
    n = problem.durations.shape[0]
    if problem.durations.shape != (n, n) or problem.distances.shape != (n, n):
        raise ValueError("durations and distances must be square matrices of the same size")
    ids = [j.id for j in problem.jobs]
    if len(set(ids)) != len(ids):
        raise ValueError("job ids must be unique")
    if len({v.id for v in problem.vehicles}) != len(problem.vehicles):
        raise ValueError("vehicle ids must be unique")
    dims = {len(v.capacity) for v in problem.vehicles} | {len(j.demand) for j in problem.jobs}
    if len(dims) > 1:
        raise ValueError("every job demand and vehicle capacity needs the same dimensions")
    locations = [j.location for j in problem.jobs] + [
        loc for v in problem.vehicles for loc in (v.start_location, v.end_location) if loc
    ]
    if any(not 0 <= loc < n for loc in locations):
        raise ValueError("a location index is outside the matrices")
    known = set(ids)
    owner: dict[str, int] = {}
    for k, vehicle in enumerate(problem.vehicles):
        for job_id in vehicle.fixed_jobs:
            if job_id not in known:
                raise ValueError(f"fixed job {job_id!r} of {vehicle.id!r} is not a job")
            if job_id in owner:
                raise ValueError(f"job {job_id!r} is fixed on two vehicles")
            owner[job_id] = k
    return owner


def _start_after_fixed(
    problem: Problem, vehicle: VehicleSpec, jobs: dict[str, Job]
) -> VehicleStart:
    """Where and when the vehicle is free for new jobs, and the capacity it has left."""
    fixed = [jobs[j] for j in vehicle.fixed_jobs]
    if not fixed:
        return VehicleStart(vehicle.start_location, vehicle.shift_start_s, vehicle.capacity)
    open_end = VehicleSpec(
        vehicle.id,
        vehicle.start_location,
        None,
        vehicle.shift_start_s,
        vehicle.shift_end_s,
        vehicle.capacity,
    )
    tl = forward(problem, open_end, [job_visit(j) for j in fixed], vehicle.shift_start_s)
    left = tuple(c - sum(j.demand[d] for j in fixed) for d, c in enumerate(vehicle.capacity))
    return VehicleStart(fixed[-1].location, tl.end_s, left)


def classify(problem: Problem, job: Job, starts: list[VehicleStart]) -> UnassignedReason | None:
    """Why ``job`` can never be served by any vehicle on its own, or None if one might.

    The checks run as a cascade over the vehicles that passed the previous ones: skills,
    capacity (left after fixed stops), reachability, shift overlap, then whether some vehicle
    can get there inside the window and still finish its shift."""
    if not problem.vehicles:
        return UnassignedReason.OUTSIDE_SHIFTS
    dur, dist = problem.durations, problem.distances
    loc = job.location

    def fits(k: int) -> bool:
        return all(d <= c for d, c in zip(job.demand, starts[k].capacity, strict=True))

    def reachable(k: int) -> bool:
        v, s = problem.vehicles[k], starts[k].location
        there = max(dur[s, loc], dist[s, loc]) < UNREACHABLE
        end = v.end_location
        return bool(there and (end is None or max(dur[loc, end], dist[loc, end]) < UNREACHABLE))

    def overlaps(k: int) -> bool:
        v = problem.vehicles[k]
        return job.tw_start_s <= job.tw_end_s and (
            job.tw_start_s <= v.shift_end_s and job.tw_end_s >= starts[k].time
        )

    def in_time(k: int) -> bool:
        v, s = problem.vehicles[k], starts[k]
        begin = max(s.time + int(dur[s.location, loc]), job.tw_start_s)
        back = 0 if v.end_location is None else int(dur[loc, v.end_location])
        return begin <= job.tw_end_s and begin + job.service_s + back <= v.shift_end_s

    def skilled(k: int) -> bool:
        return job.skills <= problem.vehicles[k].skills

    cascade: list[tuple[UnassignedReason, Callable[[int], bool]]] = [
        (UnassignedReason.MISSING_SKILL, skilled),
        (UnassignedReason.OVER_CAPACITY, fits),
        (UnassignedReason.UNREACHABLE, reachable),
        (UnassignedReason.OUTSIDE_SHIFTS, overlaps),
        (UnassignedReason.WINDOW_IMPOSSIBLE, in_time),
    ]
    candidates = list(range(len(problem.vehicles)))
    for reason, check in cascade:
        candidates = [k for k in candidates if check(k)]
        if not candidates:
            return reason
    return None


def _break_candidates(
    problem: Problem, vehicle: VehicleSpec, start: VehicleStart, jobs: list[Job]
) -> list[int] | None:
    """Matrix locations where this vehicle may take its break, or None when no break is due."""
    brk = vehicle.brk
    if brk is None or start.time > brk.latest_start_s:
        return None  # no break, or its window passed during the fixed stops
    if brk.earliest_start_s + brk.duration_s > vehicle.shift_end_s:
        return None  # the break window lies after the shift
    result = [start.location]
    for job in jobs:
        if not job.skills <= vehicle.skills:
            continue
        reach = start.time + int(problem.durations[start.location, job.location])
        if max(reach, job.tw_start_s) + job.service_s <= brk.latest_start_s:
            result.append(job.location)
    return result


# --- solving ----------------------------------------------------------------------------------


def _stop(seconds: float, iterations: int | None, first_feasible: bool) -> StoppingCriterion:
    criteria: list[StoppingCriterion] = [MaxRuntime(max(0.0, seconds))]
    if iterations is not None:
        criteria.append(MaxIterations(max(0, iterations)))
    if first_feasible:
        criteria.append(FirstFeasible())
    return MultipleCriteria(criteria)


def _params(prize: int | None) -> pyvrp.SolveParams:
    """PyVRP's defaults with a smaller neighbourhood (see :data:`NUM_NEIGHBOURS`). When
    prize-collecting (``prize`` given), a job is dropped only once the penalty on lateness or
    overload can exceed its prize, so the penalties are allowed to grow that far."""
    neighbourhood = NeighbourhoodParams(num_neighbours=NUM_NEIGHBOURS)
    if prize is None:
        return pyvrp.SolveParams(neighbourhood=neighbourhood)
    penalty = PenaltyParams(max_penalty=max(PenaltyParams().max_penalty, float(prize)))
    return pyvrp.SolveParams(neighbourhood=neighbourhood, penalty=penalty)


def _uses_forbidden(model: PyvrpModel, best: pyvrp.Solution) -> bool:
    for route in best.routes():
        vehicles = model.type_vehicles[route.vehicle_type()]
        for act in route:
            if act.is_client() and not is_allowed(model, act.idx, vehicles[0]):
                return True
    return False


def _as_solution(model: PyvrpModel, routes: dict[int, list[int]]) -> pyvrp.Solution:
    """A PyVRP solution over ``model`` from vehicle index -> client indices."""
    built = []
    for k, visits in routes.items():
        vehicle_type = model.vehicle_type[k]
        if visits and vehicle_type is not None:
            built.append(pyvrp.Route(model.data, visits, vehicle_type))
    return pyvrp.Solution(model.data, built)


def _warm_start(
    model: PyvrpModel, problem: Problem, initial: dict[str, list[str]] | None
) -> pyvrp.Solution | None:
    """The caller's previous plan (vehicle id -> job ids) as a PyVRP solution, if any."""
    if not initial:
        return None
    client = {job.id: i for i, job in enumerate(model.jobs)}
    vehicle_index = {v.id: k for k, v in enumerate(problem.vehicles)}
    seen: set[int] = set()
    routes: dict[int, list[int]] = {}
    for vehicle_id, job_ids in initial.items():
        k = vehicle_index.get(vehicle_id)
        if k is None or model.vehicle_type[k] is None:
            continue
        visits = []
        for job_id in job_ids:
            idx = client.get(job_id)
            if idx is not None and idx not in seen and is_allowed(model, idx, k):
                seen.add(idx)
                visits.append(idx)
        routes[k] = visits
    return _as_solution(model, routes)


def _assign_vehicles(
    model: PyvrpModel, problem: Problem, best: pyvrp.Solution, initial: dict[str, list[str]]
) -> dict[int, list[int]]:
    """Vehicle index -> client indices. Identical vehicles share a PyVRP vehicle type; each
    route goes to the one among them whose previous stops it overlaps most."""
    previous = [set(initial.get(v.id, ())) | v.preferred_jobs for v in problem.vehicles]
    taken: set[int] = set()
    result: dict[int, list[int]] = {}
    for route in best.routes():
        visits = [act.idx for act in route if act.is_client()]
        ids = {model.jobs[i].id for i in visits if i < len(model.jobs)}
        free = [k for k in model.type_vehicles[route.vehicle_type()] if k not in taken]
        overlap = {k: len(ids & previous[k]) for k in free}
        chosen = max(free, key=overlap.__getitem__)  # the first of equals: deterministic
        taken.add(chosen)
        result[chosen] = visits
    return result


def solve(
    problem: Problem,
    *,
    time_limit_s: float,
    seed: int = 42,
    initial: dict[str, list[str]] | None = None,
    objective: Objective = "duration",
    max_iterations: int | None = None,
) -> Solution:
    """Plan routes for ``problem`` within about ``time_limit_s`` seconds.

    ``initial`` (vehicle id -> ordered job ids, e.g. the plan before a re-plan) is a warm start.
    ``max_iterations`` caps the search too: with it, and a time limit that is not reached, the
    result depends only on ``seed``."""
    started = time.perf_counter()
    owner = _validate(problem)
    jobs_by_id = {j.id: j for j in problem.jobs}
    starts = [_start_after_fixed(problem, v, jobs_by_id) for v in problem.vehicles]
    unassigned: dict[str, UnassignedReason] = {}
    active: list[Job] = []
    for job in problem.jobs:
        if job.id in owner:
            continue
        reason = classify(problem, job, starts)
        if reason is None:
            active.append(job)
        else:
            unassigned[job.id] = reason
    breaks = [
        _break_candidates(problem, v, s, active)
        for v, s in zip(problem.vehicles, starts, strict=True)
    ]
    stats: dict[str, float | int | str] = {"objective_kind": objective, "seed": seed}
    assigned: dict[int, list[int]] = {}
    model: PyvrpModel | None = None
    pyvrp_feasible = True
    if active:
        model, best, pyvrp_feasible = _search(
            problem,
            active,
            starts,
            breaks,
            objective,
            seed,
            initial,
            started + time_limit_s,
            max_iterations,
            stats,
        )
        assigned = _assign_vehicles(model, problem, best, initial or {})
    return _assemble(
        problem, model, starts, assigned, unassigned, active, stats, started, pyvrp_feasible
    )


def _search(
    problem: Problem,
    active: list[Job],
    starts: list[VehicleStart],
    breaks: list[list[int] | None],
    objective: Objective,
    seed: int,
    initial: dict[str, list[str]] | None,
    deadline: float,
    max_iterations: int | None,
    stats: dict[str, float | int | str],
) -> tuple[PyvrpModel, pyvrp.Solution, bool]:
    """The two search phases (see the module docstring); returns the model and best solution."""
    model = build_model(problem, active, starts, breaks, objective, required=True)
    first_budget = PHASE_ONE_SHARE * max(0.0, deadline - time.perf_counter())
    first_iters = None if max_iterations is None else max(1, int(max_iterations * PHASE_ONE_SHARE))
    init = _warm_start(model, problem, initial)
    first = pyvrp.solve(
        model.data,
        _stop(first_budget, first_iters, True),
        seed=seed,
        params=_params(None),
        collect_stats=False,
        display=False,
        initial_solution=init,
    )
    complete = first.best.is_feasible() and not _uses_forbidden(model, first.best)
    if not complete:
        model = build_model(problem, active, starts, breaks, objective, required=False)
    carried = {
        k: [act.idx for act in route if act.is_client()]
        for k, route in zip(_route_vehicles(model, first.best), first.best.routes(), strict=True)
    }
    left_iters = None if max_iterations is None else max_iterations - first.num_iterations
    second = pyvrp.solve(
        model.data,
        _stop(deadline - time.perf_counter(), left_iters, False),
        seed=seed,
        params=_params(None if complete else model.prize),
        collect_stats=False,
        display=False,
        initial_solution=_as_solution(model, carried),
    )
    best = second.best
    stats["mode"] = "all_required" if complete else "prize_collecting"
    stats["iterations"] = first.num_iterations + second.num_iterations
    zero = pyvrp.CostEvaluator([0] * model.data.num_load_dimensions, 0, 0)
    stats["objective"] = int(zero.cost(best))
    return model, best, bool(best.is_feasible())


def _route_vehicles(model: PyvrpModel, best: pyvrp.Solution) -> list[int]:
    """One distinct vehicle index per route of ``best``, in route order."""
    used: dict[int, int] = {}
    result = []
    for route in best.routes():
        t = route.vehicle_type()
        result.append(model.type_vehicles[t][used.get(t, 0)])
        used[t] = used.get(t, 0) + 1
    return result


# --- after solving ----------------------------------------------------------------------------


def _assemble(
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
    for k, vehicle in enumerate(problem.vehicles):
        items = [job_visit(jobs_by_id[j]) for j in vehicle.fixed_jobs]
        for idx in assigned.get(k, []):
            if model is None:
                continue
            if idx < len(model.jobs):
                job = model.jobs[idx]
                if is_allowed(model, idx, k):  # a forbidden (skill) visit is never kept
                    items.append(job_visit(job))
            elif vehicle.brk is not None:
                # The break is taken where the vehicle already is: never worse than the break
                # client's own location, and the plan has no field for a break location.
                where = items[-1].location if items else vehicle.start_location
                brk = vehicle.brk
                items.append(
                    Visit(None, where, brk.earliest_start_s, brk.latest_start_s, brk.duration_s)
                )
        if not any(it.job is not None for it in items):
            continue
        late_start = not vehicle.fixed_jobs
        if not pyvrp_feasible:
            items = _repair(problem, vehicle, items, late_start=late_start)
        route, broken = simulate_route(problem, vehicle, items, late_start=late_start)
        routes.append(route)
        violations.extend(broken)
        served.update(s.job_id for s in route.stops)
    loads = {r.vehicle_id: r.load_start for r in routes}
    for job in active:
        if job.id not in served:
            unassigned[job.id] = _left_out_reason(problem, job, starts, loads)
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


def _repair(
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


def _left_out_reason(
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
