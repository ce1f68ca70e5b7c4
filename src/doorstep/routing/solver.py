"""Doorstep's route optimiser: a :class:`Problem` in, a :class:`Solution` out, built on PyVRP.

How the contract maps onto PyVRP (0.14):

* **Locations.** Every job gets a PyVRP location of its own (rows/columns copied from the
  problem's matrices), so costs can differ per job even when two jobs share an address. Each
  distinct start/end matrix location is a depot. Open routes (``end_location is None``) end at
  one extra "anywhere" depot that every location reaches at zero distance and duration, which
  makes the return leg free.
* **Shifts and fixed stops.** A vehicle's time window is its shift. Fixed stops (done or under
  way) are timed from the shift start and collapsed into the vehicle's start: it becomes
  the last fixed stop's location at that stop's departure time, with the capacity the fixed
  stops used taken off. The fixed stops are put back in front of the route afterwards.
* **Vehicles out on the road.** A vehicle that has left its depot carries only its own
  parcels (``on_board``), so each such vehicle is planned on its own and the vehicles still at
  the depot share the rest (see :func:`solve`). This also keeps a mid-day re-plan small: no
  routing profile is needed to keep a job on the vehicle that carries it.
* **Skills and re-planning.** PyVRP has no skills, so vehicles get routing profiles: vehicles
  with the same skill set (and the same previous stops) share a profile whose edges into jobs
  they may not serve cost at least :data:`~doorstep.routing.pyvrp_model.MIN_PROHIBITIVE` extra,
  far more than leaving a job out; edges into a job some *other* vehicle had before cost
  ``reassign_penalty`` extra. A job on a vehicle it may not use is taken off after solving, so
  a skill can never be violated.
* **Optional jobs, two phases.** Jobs that can never be served are classified first (see
  :func:`~doorstep.routing.prepare.classify`). The rest are solved as *required* clients
  first: PyVRP's perturbation re-inserts required clients at their best position, which
  searches better than its operators for optional clients (six Solomon instances, 2 s: mean
  gap 0.16 % against 0.26 %, with twice the iterations). That phase stops at its first
  feasible solution (or after :data:`PHASE_ONE_SHARE` of the time); the search then goes on
  from there. If no complete feasible solution turned up, the rest of the time is spent
  prize-collecting instead: every job optional with prize ``unassigned_penalty``, and
  penalties allowed to grow past that prize, so the jobs that do not fit are left out rather
  than making the whole plan infeasible. Should the search still end infeasible (a very short
  budget), the most harmful jobs are taken off each broken route until it holds.
* **Breaks** are exact: a break is a group of optional "break clients" of which exactly one
  must be visited (a required, mutually exclusive PyVRP client group): one at the vehicle's
  start, the others each sharing the location of a stop the vehicle might serve, so taking
  the break right after that stop costs no travel. An extra load dimension per vehicle with a
  break (capacity 1 for that vehicle only, penalised heavily) keeps breaks on their own
  vehicle. The stops offered are few (see :mod:`.breaks`): those the vehicle leaves nearest to
  its break window in a first, break-free plan (:data:`BREAK_PLAN_SHARE` of the time), which
  also seeds the search. The plan has the break at the stop before it, never during a drive; a
  break window that has passed when the fixed stops end, or lies after the shift, is not
  planned. Breaks make the search slower: measured on random days of 100 to 300 stops at 5 s,
  plans came out 2 to 8 % longer than the break-free plan plus the breaks' own time.
* **Objective.** ``"duration"`` (operations): route duration, driving plus waiting plus service,
  weighs :data:`~doorstep.routing.pyvrp_model.DURATION_WEIGHT` per second against 1 per unit of
  distance as a tie-breaker; penalties are then scaled by
  :data:`~doorstep.routing.pyvrp_model.PENALTY_SCALE` (1 unit of penalty ~ 0.1 s).
  ``"distance"`` (benchmarks): distance only, penalties as given.
* **Warm start.** ``initial`` (vehicle id -> job ids) becomes PyVRP's initial solution (jobs
  that are fixed, unknown, unservable or repeated are skipped).

Times in the returned plan come from timing each route on the matrices (route_timing.py),
not from PyVRP. A route leaves late enough not to wait at its first door, and no later: every
stop after it is served as early as it can be, keeping slack before its window's end. When
jobs have a ``target_end_s``, a repair after the search (:mod:`.promises`) moves stops before
their target and out of their window's last 15 minutes, within the problem's cost limit. The
result is deterministic for a fixed seed and iteration budget (``max_iterations``); a
wall-clock limit makes the number of iterations, and thus the result, depend on the machine's
speed.

The code: this module is the entry point (vehicles out on the road planned apart, the parts
merged); :mod:`.search` runs PyVRP; :mod:`.promises` is the repair; :mod:`.assemble` times
the routes and says why a job was left out.
"""

from __future__ import annotations

import dataclasses
import time

import pyvrp

from doorstep.routing.assemble import assemble
from doorstep.routing.breaks import break_due, break_spots
from doorstep.routing.prepare import classify, start_after_fixed, validate
from doorstep.routing.problem import Job, Problem, Solution, UnassignedReason
from doorstep.routing.promises import keep_promises
from doorstep.routing.pyvrp_model import PyvrpModel
from doorstep.routing.search import (
    BREAK_PLAN_SHARE,
    Objective,
    Search,
    assign_vehicles,
    initial_penalties,
)

__all__ = ["Objective", "initial_penalties", "solve"]

REPAIR_SHARE = 0.1
"""Share of the time limit kept for :func:`~doorstep.routing.promises.keep_promises` when jobs
have targets (with an iteration cap the search gets every iteration and stops long before)."""


def _after_target(solution: Solution, targets: dict[str, int]) -> int:
    """How many jobs ``solution`` serves after their target."""
    return sum(
        1
        for r in solution.routes
        for s in r.stops
        if s.job_id in targets and s.start_service_s > targets[s.job_id]
    )


def solve(
    problem: Problem,
    *,
    time_limit_s: float,
    seed: int = 42,
    initial: dict[str, list[str]] | None = None,
    objective: Objective = "duration",
    max_iterations: int | None = None,
) -> Solution:
    """Plan routes for ``problem`` within about ``time_limit_s`` seconds, keeping each job's
    ``target_end_s`` wherever the day allows (see :mod:`.promises`).

    ``initial`` (vehicle id -> ordered job ids, e.g. the plan before a re-plan) is a warm start.
    ``max_iterations`` caps the search too: with it, and a time limit that is not reached, the
    result depends only on ``seed``.

    Vehicles that have left their depot (``on_board`` set) can only serve what they carry, and
    nobody else can, so each is planned on its own; the vehicles still at the depot share the
    other jobs. Time and iterations are shared out by the number of jobs.

    With targets, ``stats["buffer_relaxed"]`` counts the jobs served after their target."""
    solution = _solve_parts(
        problem,
        time_limit_s=time_limit_s,
        seed=seed,
        initial=initial,
        objective=objective,
        max_iterations=max_iterations,
    )
    targets = {j.id: j.target_end_s for j in problem.jobs if j.has_target}
    if targets:
        ends = {j: e for j, e in targets.items() if e is not None}
        solution.stats["buffer_relaxed"] = _after_target(solution, ends)
    return solution


def _solve_parts(
    problem: Problem,
    *,
    time_limit_s: float,
    seed: int,
    initial: dict[str, list[str]] | None,
    objective: Objective,
    max_iterations: int | None,
) -> Solution:
    """:func:`solve` without the buffer's figures."""
    started = time.perf_counter()
    gone = [v for v in problem.vehicles if v.on_board is not None]
    if not gone:  # validated in _solve_together
        return _solve_together(
            problem,
            time_limit_s=time_limit_s,
            seed=seed,
            initial=initial,
            objective=objective,
            max_iterations=max_iterations,
        )
    validate(problem)  # before splitting: e.g. a parcel on board two vehicles
    carried = frozenset().union(*(v.carries for v in gone))
    parts = [
        dataclasses.replace(
            problem, jobs=[j for j in problem.jobs if j.id in v.carries], vehicles=[v]
        )
        for v in gone
    ]
    at_depot = [v for v in problem.vehicles if v.on_board is None]
    rest = [j for j in problem.jobs if j.id not in carried]
    parts.append(dataclasses.replace(problem, jobs=rest, vehicles=at_depot))
    deadline = started + time_limit_s
    left_jobs = sum(len(p.jobs) for p in parts)
    left_iterations = max_iterations
    solutions: list[Solution] = []
    for part in parts:
        if not part.jobs:
            continue
        share = len(part.jobs) / left_jobs
        left_jobs -= len(part.jobs)
        budget = None
        if left_iterations is not None:
            budget = round(left_iterations * share)
            left_iterations -= budget
        solutions.append(
            _solve_together(
                part,
                time_limit_s=max(0.0, deadline - time.perf_counter()) * share,
                seed=seed,
                initial=initial,
                objective=objective,
                max_iterations=budget,
            )
        )
    return _merge(problem, solutions, started)


def _merge(problem: Problem, parts: list[Solution], started: float) -> Solution:
    """One solution from the plans of disjoint parts of ``problem`` (see :func:`solve`). A job
    the vehicles at the depot could never take is judged again against every vehicle: if one
    that has left could have served it, it was left out for want of a vehicle at the depot
    (:attr:`UnassignedReason.NOT_LOADED`); if none could, the reason says why."""
    routes = [r for part in parts for r in part.routes]
    unassigned = {job: why for part in parts for job, why in part.unassigned.items()}
    jobs = {j.id: j for j in problem.jobs}
    everyone = [dataclasses.replace(v, on_board=None, fixed_jobs=()) for v in problem.vehicles]
    anyone = dataclasses.replace(problem, vehicles=everyone)
    carried = frozenset().union(*(v.carries for v in problem.vehicles))
    free = [start_after_fixed(problem, v, jobs) for v in problem.vehicles]
    for job_id, why in unassigned.items():
        if job_id in carried or why is UnassignedReason.NO_VEHICLE_TIME:
            continue
        unassigned[job_id] = classify(anyone, jobs[job_id], free) or UnassignedReason.NOT_LOADED
    stats: dict[str, float | int | str] = {"parts": len(parts)}
    for key in ("objective", "iterations"):
        stats[key] = sum(int(p.stats.get(key, 0)) for p in parts)
    for key in (
        "objective_kind",
        "seed",
        "mode",
        "history_length",
        "exhaustive_on_best",
        "buffer_moves",
        "buffer_repair",
    ):
        if parts and key in parts[-1].stats:
            stats[key] = parts[-1].stats[key]
    if any(p.stats.get("mode") == "prize_collecting" for p in parts):
        stats["mode"] = "prize_collecting"
    stats["runtime_s"] = round(time.perf_counter() - started, 3)
    stats["num_routes"] = len(routes)
    stats["num_unassigned"] = len(unassigned)
    stats["violations"] = sum(int(p.stats.get("violations", 0)) for p in parts)
    return Solution(
        routes=routes,
        unassigned=unassigned,
        feasible=all(p.feasible for p in parts),
        distance=sum(r.distance for r in routes),
        stats=stats,
    )


def _solve_together(
    problem: Problem,
    *,
    time_limit_s: float,
    seed: int,
    initial: dict[str, list[str]] | None,
    objective: Objective,
    max_iterations: int | None,
) -> Solution:
    """:func:`solve` for vehicles that may all serve every job (skills aside)."""
    started = time.perf_counter()
    owner = validate(problem)
    jobs_by_id = {j.id: j for j in problem.jobs}
    starts = [start_after_fixed(problem, v, jobs_by_id) for v in problem.vehicles]
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
    stats: dict[str, float | int | str] = {"objective_kind": objective, "seed": seed}
    stats["iterations"] = 0
    assigned: dict[int, list[int]] = {}
    model: PyvrpModel | None = None
    pyvrp_feasible = True
    if active:
        search = Search(problem, active, starts, objective, seed, stats)
        targets = any(j.has_target for j in active)
        deadline = started + time_limit_s * (1 - REPAIR_SHARE if targets else 1)
        breaks: list[list[int] | None] = [None] * len(problem.vehicles)
        warm, budget = initial, max_iterations
        if any(break_due(v, s) for v, s in zip(problem.vehicles, starts, strict=True)):
            # A first plan without breaks tells where each vehicle is around its break.
            share = BREAK_PLAN_SHARE
            plain, best = search.run(
                breaks,
                initial,
                started + share * time_limit_s,
                None if budget is None else max(1, int(budget * share)),
            )
            routes = assign_vehicles(plain, problem, best, initial or {})
            planned = {k: [active[i] for i in v if i < len(active)] for k, v in routes.items()}
            breaks = [
                break_spots(problem, v, starts[k], active, planned.get(k, []))
                for k, v in enumerate(problem.vehicles)
            ]
            warm = {problem.vehicles[k].id: [j.id for j in jobs] for k, jobs in planned.items()}
            budget = None if budget is None else max(0, budget - int(stats["iterations"]))
        model, best = search.run(breaks, warm, deadline, budget)
        pyvrp_feasible = bool(best.is_feasible())
        assigned = assign_vehicles(model, problem, best, initial or {})
        if targets and pyvrp_feasible:
            assigned, repaired, figures = keep_promises(
                problem, model, starts, assigned, started + time_limit_s
            )
            if repaired is not None:
                zero = pyvrp.CostEvaluator([0] * model.data.num_load_dimensions, 0, 0)
                stats["objective"] = int(zero.cost(repaired))
            stats["buffer_moves"] = figures.moves
            stats["buffer_repair"] = figures.summary()
    return assemble(
        problem, model, starts, assigned, unassigned, active, stats, started, pyvrp_feasible
    )
