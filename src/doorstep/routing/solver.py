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
not from PyVRP. A
route leaves late enough not to wait at its first door, and no later: every stop after it is
served as early as it can be, keeping slack before its window's end. Jobs with a
``target_end_s`` are planned against it where the day allows (see :func:`solve`). The result
is deterministic for a fixed seed and iteration budget (``max_iterations``); a wall-clock
limit makes the number of iterations, and thus the result, depend on the machine's speed.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyvrp
from pyvrp import IteratedLocalSearchParams, PenaltyManager, PenaltyParams
from pyvrp.exceptions import PenaltyBoundWarning
from pyvrp.search import (
    LocalSearch,
    NeighbourhoodParams,
    PerturbationManager,
    PerturbationParams,
    compute_neighbours,
)
from pyvrp.stop import FirstFeasible, MaxIterations, MaxRuntime, MultipleCriteria, StoppingCriterion

from doorstep.routing.breaks import (
    BREAK_PENALTY,
    best_break,
    break_due,
    break_spots,
    job_neighbours,
    with_own_breaks,
)
from doorstep.routing.ils import iterate
from doorstep.routing.prepare import classify, start_after_fixed, validate
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
from doorstep.routing.route_timing import (
    Visit,
    break_visit,
    job_visit,
    overrun,
    planned_route,
)

Objective = Literal["duration", "distance"]

# PyVRP warns when a penalty sits at its ceiling while candidates stay infeasible, advice meant
# for someone tuning PyVRP by hand. Here that is expected (a route-removal candidate is often
# over capacity, and the prize-collecting phase lets penalties grow on purpose), and an
# infeasible end is handled (two phases, then repair), so the warning would only be noise in
# a dispatcher's logs and in the benchmarks' output.
warnings.filterwarnings("ignore", category=PenaltyBoundWarning)

PHASE_ONE_SHARE = 0.3
"""Largest share of the time limit spent looking for a plan that serves every servable job."""

BREAK_PLAN_SHARE = 0.25
"""Share of the time spent on a first plan without breaks, when breaks are due (see
:mod:`.breaks`)."""

HISTORY_PER_ITERATION_PER_JOB = 4.0
MIN_HISTORY, MAX_HISTORY = 20, 300
EXHAUSTIVE_MIN_ITERATIONS_PER_JOB = 40.0
"""How the search adapts to how long it may run, counted in iterations per job (what it can
afford to spend on each stop). PyVRP's late-acceptance history of 300 iterations suits long
runs: Solomon's 100 customers at 2 s get 60-90 iterations per job. A day of 1,000 stops at
30 s gets about 12, and with a history that long the search is still wandering when time is
up. The history is therefore 4 iterations per job (between 20 and 300), and the exhaustive
search after each new best, which costs a full pass over every job, is skipped below 40
iterations per job. Measured on the Monaco day of ``doorstep bench plan`` (1,000 orders, 40
shifts, then still planned on the slowest profile's times) at 30 s: objective 40.3M with
PyVRP's defaults, 39.3-39.6M over four seeds with these; the 300 s reference is 38.75M either
way. A shorter history (20) or a longer one (100) did no better."""

PROBE_SHARE, PROBE_MAX_S = 0.05, 1.0
"""Without an iteration budget, the first 5 % of the main search (at most 1 s) runs with a
full history to measure the iteration rate, from which the rest is tuned."""

PROBE_ILS = IteratedLocalSearchParams(exhaustive_on_best=False)

PENALTY_UPDATE_EVERY = 50
"""Candidates between penalty updates (PyVRP's default is 500). Penalties on time warp and
excess load let the search pass through slightly infeasible plans, and PyVRP adjusts them so
that about 65 % of its candidates are feasible. PyVRP 0.14 starts them at the middle of their
range (50,000 per unit) and adjusts every 500 candidates by 10 %; at Doorstep's scale (100 per
second of route duration, loads in grams) a 30 s search on 1,000 stops ends with penalties
still above 15,000 and 98 % of its candidates feasible, i.e. it never leaves the feasible
region. Started from the data (:func:`initial_penalties`) and adjusted every 50 candidates,
about half are feasible. On the Monaco day of ``doorstep bench plan`` at 3,000 iterations
(what 30 s affords on a slow machine), four seeds: objective 34.07M -> 33.46M (-1.8 %)."""

NUM_NEIGHBOURS = 30
"""Granular neighbourhood size (PyVRP's default is 50). Smaller neighbourhoods make each
iteration cheaper, and within the seconds a re-plan or the benchmark allows, more iterations
beat wider ones: on 16 hard Solomon instances at 2 s CPU, 6 seeds, the mean gap is 0.44 % with
30 against 0.63 % with 50 (20: 0.49 %, 15: 0.66 %, 10: 1.07 %)."""


# --- solving ----------------------------------------------------------------------------------


def _stop(seconds: float, iterations: int | None, first_feasible: bool) -> StoppingCriterion:
    criteria: list[StoppingCriterion] = [MaxRuntime(max(0.0, seconds))]
    if iterations is not None:
        criteria.append(MaxIterations(max(0, iterations)))
    if first_feasible:
        criteria.append(FirstFeasible())
    return MultipleCriteria(criteria)


def _ils_params(expected_iterations: float, num_jobs: int) -> IteratedLocalSearchParams:
    """The iterated local search's parameters for a run of about ``expected_iterations``
    over ``num_jobs`` jobs (see :data:`HISTORY_PER_ITERATION_PER_JOB`)."""
    per_job = expected_iterations / max(1, num_jobs)
    history = min(MAX_HISTORY, max(MIN_HISTORY, round(HISTORY_PER_ITERATION_PER_JOB * per_job)))
    return IteratedLocalSearchParams(
        history_length=history,
        exhaustive_on_best=per_job >= EXHAUSTIVE_MIN_ITERATIONS_PER_JOB,
    )


def _params(
    model: PyvrpModel,
    *,
    prize_collecting: bool,
    ils: IteratedLocalSearchParams | None = None,
) -> pyvrp.SolveParams:
    """PyVRP's defaults with a smaller neighbourhood (see :data:`NUM_NEIGHBOURS`), penalties
    adjusted more often (see :data:`PENALTY_UPDATE_EVERY`) and, when given, tuned ``ils``
    parameters. When prize-collecting, a job is dropped only once the
    penalty on lateness or overload can exceed its prize, so the penalties are allowed to
    grow that far."""
    ceiling = PenaltyParams().max_penalty
    if prize_collecting:
        ceiling = max(ceiling, float(model.prize))
    return pyvrp.SolveParams(
        ils=ils or IteratedLocalSearchParams(),
        neighbourhood=NeighbourhoodParams(num_neighbours=NUM_NEIGHBOURS),
        penalty=PenaltyParams(max_penalty=ceiling, solutions_between_updates=PENALTY_UPDATE_EVERY),
    )


def _run(
    problem: Problem,
    model: PyvrpModel,
    stop: StoppingCriterion,
    seed: int,
    params: pyvrp.SolveParams,
    initial: pyvrp.Solution | None,
) -> pyvrp.Result:
    """``pyvrp.solve``, step for step, with a route-removal move in the search loop (see
    :mod:`.ils`); with breaks, three things differ (see :mod:`.breaks`):
    neighbourhoods leave out break clients, which would crowd them since they share their
    stop's location; a break on the wrong vehicle is penalised heavily from the start; and the
    random initial solution has every break on its own vehicle."""
    data = model.data
    rng = pyvrp.RandomNumberGenerator(seed=seed)
    extra = len({b.vehicle for b in model.breaks})
    wide = NeighbourhoodParams(
        weight_wait_time=params.neighbourhood.weight_wait_time,
        num_neighbours=NUM_NEIGHBOURS + extra,
        symmetric_proximity=params.neighbourhood.symmetric_proximity,
    )
    neighbours = _neighbours(model, wide, extra)
    ls = LocalSearch(data, rng, neighbours, PerturbationManager(params.perturbation))
    repair = LocalSearch(data, rng, neighbours, PerturbationManager(PerturbationParams(1, 1)))
    for op in params.operators:
        if op.supports(data):
            ls.add_operator(op(data))
            repair.add_operator(op(data))
    if model.penalties is None:  # the same for every phase: computed once
        model.penalties = initial_penalties(data, params.penalty)
    loads, warp, distance = model.penalties
    loads = list(loads)
    penalty = params.penalty
    if extra:  # a break on the wrong vehicle (see "Breaks") must never pay off
        loads = [*loads[: len(loads) - extra], *[BREAK_PENALTY] * extra]
        penalty = dataclasses.replace(penalty, max_penalty=max(penalty.max_penalty, BREAK_PENALTY))
    pm = PenaltyManager((loads, warp, distance), penalty)
    if initial is None:
        random = pyvrp.Solution.make_random(data, rng)
        if model.breaks:
            visits = {
                k: [act.idx for act in route if act.is_client()]
                for k, route in zip(_route_vehicles(model, random), random.routes(), strict=True)
            }
            random = _as_solution(model, with_own_breaks(model, problem, visits))
        initial = ls(random, pm.max_cost_evaluator(), exhaustive=True)
    required = all(client.required for client in data.clients()[: len(model.jobs)])
    return iterate(
        data,
        pm,
        ls,
        repair,
        initial,
        params.ils,
        stop,
        rng,
        num_jobs=len(model.jobs),
        route_removal=required,
    )


def initial_penalties(
    data: pyvrp.ProblemData, params: PenaltyParams
) -> tuple[list[float], float, float]:
    """Starting penalties per unit of excess load, time warp and excess distance, each
    weighing what a typical edge costs: the median over all edges of the cheapest vehicle
    type's cost, divided by the median duration, the median distance, or the mean demand over
    every load dimension. This is PyVRP's own rule up to 0.13 (``PenaltyManager.init_from``),
    with medians instead of means, which unreachable pairs and the surcharges of routing
    profiles would throw. One load penalty for all dimensions, as there: on the Monaco day
    (grams and parcels) a penalty per dimension (52,575 per parcel rather than 27) gave 33.83M
    against 33.46M at 3,000 iterations, four seeds. See :data:`PENALTY_UPDATE_EVERY` for why
    not PyVRP 0.14's midpoint."""
    seen: dict[tuple[int, int, int], npt.NDArray[np.float64]] = {}
    for vt in data.vehicle_types():
        key = (int(vt.unit_distance_cost), int(vt.unit_duration_cost), int(vt.profile))
        if key not in seen:
            dist = np.asarray(data.distance_matrix(key[2]), dtype=np.float64)
            dur = np.asarray(data.duration_matrix(key[2]), dtype=np.float64)
            seen[key] = key[0] * dist + key[1] * dur

    def median_of_cheapest(matrices: list[Any]) -> float:
        as_float = [np.asarray(m, dtype=np.float64) for m in matrices]
        return max(1.0, float(np.median(np.minimum.reduce(as_float))))

    cost = median_of_cheapest(list(seen.values()))
    duration = median_of_cheapest(data.duration_matrices())
    distance = median_of_cheapest(data.distance_matrices())
    demand = [np.maximum(c.delivery, c.pickup) for c in data.clients()]
    mean_demand = max(1.0, float(np.mean(demand))) if demand else 1.0

    def clip(value: float) -> float:
        return float(min(params.max_penalty, max(params.min_penalty, value)))

    loads = [clip(cost / mean_demand)] * data.num_load_dimensions
    return loads, clip(cost / duration), clip(cost / distance)


def _neighbours(model: PyvrpModel, params: NeighbourhoodParams, extra: int) -> Any:
    """The granular neighbourhood of ``model``, computed once: every phase of a search runs on
    the same data, and the computation is quadratic in the stops."""
    if model.neighbours is None:
        neighbours = compute_neighbours(model.data, params)
        if extra:
            neighbours = job_neighbours(model, neighbours, NUM_NEIGHBOURS)
        model.neighbours = neighbours
    return model.neighbours


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
    model: PyvrpModel, problem: Problem, initial: dict[str, list[str]]
) -> pyvrp.Solution:
    """The caller's previous plan (vehicle id -> job ids) as a PyVRP solution."""
    client = {job.id: i for i, job in enumerate(model.jobs)}
    vehicle_index = {v.id: k for k, v in enumerate(problem.vehicles)}
    seen: set[int] = set()
    routes: dict[int, list[int]] = {}
    for vehicle_id, job_ids in initial.items():
        k = vehicle_index.get(vehicle_id)
        if k is None or model.vehicle_type[k] is None:
            continue
        for job_id in job_ids:
            idx = client.get(job_id)
            if idx is not None and idx not in seen and is_allowed(model, idx, k):
                seen.add(idx)
                routes.setdefault(k, []).append(idx)
    return _as_solution(model, with_own_breaks(model, problem, routes))


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


TARGET_ROUNDS_SHARE = 0.2
"""Share of the time (and iterations) left, after the search with full windows, to the
rounds that tighten the windows of the jobs served after their target (see
:meth:`_Search.keep_targets`)."""
TARGET_ROUNDS = 2
"""Rounds of tightening after the search with full windows."""
TIGHT_WARP_PENALTY = 10
"""Factor on the starting penalty per second of lateness in those rounds. At the ceiling
(100,000) the first local search made drastic moves: on the Monaco day at 2,500 iterations,
+5.6 % objective against +3.6 % with 10."""


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
    ``target_end_s`` wherever the day allows (see :meth:`_Search.keep_targets`).

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
        "buffer_round",
        "buffer_rounds",
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
        search = _Search(problem, active, starts, objective, seed, stats)
        targets = any(j.has_target for j in active)
        deadline = started + time_limit_s * (1 - TARGET_ROUNDS_SHARE if targets else 1)
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
            routes = _assign_vehicles(plain, problem, best, initial or {})
            planned = {k: [active[i] for i in v if i < len(active)] for k, v in routes.items()}
            breaks = [
                break_spots(problem, v, starts[k], active, planned.get(k, []))
                for k, v in enumerate(problem.vehicles)
            ]
            warm = {problem.vehicles[k].id: [j.id for j in jobs] for k, jobs in planned.items()}
            budget = None if budget is None else max(0, budget - int(stats["iterations"]))
        main = budget
        if targets and budget is not None:
            main = max(1, round(budget * (1 - TARGET_ROUNDS_SHARE)))
        model, best = search.run(breaks, warm, deadline, main)
        if targets:
            left = None if budget is None else max(1, budget - (main or 0))
            model, best = search.keep_targets(
                model, best, started + time_limit_s, left, initial or {}
            )
        pyvrp_feasible = bool(best.is_feasible())
        assigned = _assign_vehicles(model, problem, best, initial or {})
    return _assemble(
        problem, model, starts, assigned, unassigned, active, stats, started, pyvrp_feasible
    )


@dataclass
class _Search:
    """The search phases over one day's servable jobs (see the module docstring)."""

    problem: Problem
    active: list[Job]
    starts: list[VehicleStart]
    objective: Objective
    seed: int
    stats: dict[str, float | int | str]

    def model(self, breaks: list[list[int] | None], *, required: bool) -> PyvrpModel:
        return build_model(
            self.problem, self.active, self.starts, breaks, self.objective, required=required
        )

    def run(
        self,
        breaks: list[list[int] | None],
        initial: dict[str, list[str]] | None,
        deadline: float,
        max_iterations: int | None,
    ) -> tuple[PyvrpModel, pyvrp.Solution]:
        """Search until ``deadline`` (or ``max_iterations``): every job required until a
        complete feasible plan turns up, prize-collecting after if none does. Returns the
        model searched last and its best solution."""
        problem, seed = self.problem, self.seed
        model = self.model(breaks, required=True)
        first_budget = PHASE_ONE_SHARE * max(0.0, deadline - time.perf_counter())
        first_iters = None
        if max_iterations is not None:
            first_iters = max(1, int(max_iterations * PHASE_ONE_SHARE))
        init = _warm_start(model, problem, initial) if initial else None
        params = _params(model, prize_collecting=False)
        first = _run(problem, model, _stop(first_budget, first_iters, True), seed, params, init)
        complete = first.best.is_feasible() and not _uses_forbidden(model, first.best)
        if not complete:
            model = self.model(breaks, required=False)
        carried = {
            k: [act.idx for act in route if act.is_client()]
            for k, route in zip(
                _route_vehicles(model, first.best), first.best.routes(), strict=True
            )
        }
        left = None if max_iterations is None else max_iterations - first.num_iterations
        start, probed = _as_solution(model, carried), 0
        if left is not None:
            expected = float(left)
        else:  # measure the iteration rate on a short first stretch (see PROBE_SHARE)
            probe_s = min(PROBE_MAX_S, PROBE_SHARE * max(0.0, deadline - time.perf_counter()))
            probe = _run(
                problem,
                model,
                _stop(probe_s, None, False),
                seed,
                _params(model, prize_collecting=not complete, ils=PROBE_ILS),
                start,
            )
            start, probed = probe.best, probe.num_iterations
            rate = probed / max(probe.runtime, 1e-3)
            expected = probed + rate * max(0.0, deadline - time.perf_counter())
        ils = _ils_params(expected, len(model.jobs))
        second = _run(
            problem,
            model,
            _stop(deadline - time.perf_counter(), left, False),
            seed,
            _params(model, prize_collecting=not complete, ils=ils),
            start,
        )
        best = second.best
        self.stats["mode"] = "all_required" if complete else "prize_collecting"
        self.stats["history_length"] = ils.history_length
        self.stats["exhaustive_on_best"] = int(ils.exhaustive_on_best)
        iterations = int(self.stats.get("iterations", 0))
        total = first.num_iterations + probed + second.num_iterations
        self.stats["iterations"] = iterations + total
        zero = pyvrp.CostEvaluator([0] * model.data.num_load_dimensions, 0, 0)
        self.stats["objective"] = int(zero.cost(best))
        return model, best

    def keep_targets(
        self,
        model: PyvrpModel,
        best: pyvrp.Solution,
        deadline: float,
        max_iterations: int | None,
        initial: dict[str, list[str]],
    ) -> tuple[PyvrpModel, pyvrp.Solution]:
        """A per-stop trade for jobs with a ``target_end_s`` (PyVRP 0.14 has no soft time
        windows): ``best`` was searched with the full windows; for up to
        :data:`TARGET_ROUNDS` rounds, only the jobs the last plan serves after their target,
        or less than a buffer before it (they would be the next to slip), get the target as
        their window's end (a job no vehicle could reach by then keeps its full window; a
        tightened job stays tightened), and the search goes on from that plan until
        ``deadline``, on the same model otherwise (neighbourhood, penalties). Of the
        feasible plans serving as many jobs as ``best`` at most
        ``problem.target_cost_tolerance`` dearer (objective and driving time), the one with the
        fewest jobs after their target wins, then the cheapest. Returns its model (the
        windows it was searched with) and solution."""
        problem = self.problem
        jobs_by_id = {j.id: j for j in problem.jobs}
        zero = pyvrp.CostEvaluator([0] * model.data.num_load_dimensions, 0, 0)
        required = all(c.required for c in model.data.clients()[: len(model.jobs)])
        ils = IteratedLocalSearchParams(
            history_length=int(self.stats.get("history_length", MIN_HISTORY)),
            exhaustive_on_best=bool(self.stats.get("exhaustive_on_best", 0)),
        )

        def late_and_driving(m: PyvrpModel, sol: pyvrp.Solution) -> tuple[set[int], int]:
            """Jobs served after their target, and the driving time; ``near`` gets the jobs
            served less than a buffer before their target (or after it)."""
            late: set[int] = set()
            near.clear()
            driving = 0
            for k, clients in _assign_vehicles(m, problem, sol, initial).items():
                vehicle = problem.vehicles[k]
                items = _visits(problem, m, k, clients, jobs_by_id)
                route, _ = planned_route(problem, vehicle, items, late_start=not vehicle.fixed_jobs)
                driving += route.driving_s
                served = zip(
                    (c for c in clients if c < len(m.jobs) and is_allowed(m, c, k)),
                    route.stops[len(vehicle.fixed_jobs) :],
                    strict=True,
                )
                for i, stop in served:
                    job = m.jobs[i]
                    if not job.has_target:
                        continue
                    target = job.target_end_s or 0
                    if stop.start_service_s > target:
                        late.add(i)
                    if stop.start_service_s > 2 * target - job.tw_end_s:
                        near.add(i)
            return late, driving

        def served(sol: pyvrp.Solution) -> int:
            jobs = len(model.jobs)
            return sum(1 for r in sol.routes() for act in r if act.is_client() and act.idx < jobs)

        near: set[int] = set()
        late, driving = late_and_driving(model, best)
        cost = zero.cost(best)
        plans = [(len(late), float(cost), 0, model, best)]
        rounds = [f"{cost} {driving} s {len(late)} late"]
        limit = 1 + problem.target_cost_tolerance
        # The plan a round starts from is late at the stops just tightened: lateness starts
        # dearer (TIGHT_WARP_PENALTY) and overload at its ceiling, so the local search moves
        # those stops instead of paying for lateness or trading it for overload (one load
        # penalty for grams and parcels makes a parcel over capacity cheap; see
        # initial_penalties). PyVRP lowers them as usual once most candidates are feasible.
        loads, warp, distance = model.penalties
        ceiling = _params(model, prize_collecting=not required).penalty.max_penalty
        repair_penalties = (
            [ceiling] * len(loads),
            min(ceiling, warp * TIGHT_WARP_PENALTY),
            distance,
        )
        tightened: set[int] = set()
        current, current_model = best, model
        for n in range(TARGET_ROUNDS):
            new = {
                i
                for i in (late | near) - tightened
                if classify(
                    problem,
                    dataclasses.replace(model.jobs[i], tw_end_s=model.jobs[i].target_end_s or 0),
                    self.starts,
                )
                is None
            }
            if not new:
                break
            tightened |= new
            clients = list(model.data.clients())
            for i in tightened:
                c = clients[i]
                clients[i] = pyvrp.Client(
                    c.location,
                    delivery=c.delivery,
                    pickup=c.pickup,
                    service_duration=c.service_duration,
                    tw_early=c.tw_early,
                    tw_late=model.jobs[i].target_end_s or c.tw_late,
                    release_time=c.release_time,
                    prize=c.prize,
                    required=c.required,
                    group=c.group,
                    name=c.name,
                )
            tight = dataclasses.replace(
                model, data=model.data.replace(clients=clients), penalties=repair_penalties
            )
            carried = {
                k: [act.idx for act in route if act.is_client()]
                for k, route in zip(
                    _route_vehicles(current_model, current), current.routes(), strict=True
                )
            }
            share = 1.0 / (TARGET_ROUNDS - n)
            iterations = None if max_iterations is None else max(1, round(max_iterations * share))
            result = _run(
                problem,
                tight,
                _stop((deadline - time.perf_counter()) * share, iterations, False),
                self.seed,
                _params(tight, prize_collecting=not required, ils=ils),
                _as_solution(tight, carried),
            )
            if max_iterations is not None:
                max_iterations = max(0, max_iterations - result.num_iterations)
            self.stats["iterations"] = int(self.stats["iterations"]) + result.num_iterations
            current, current_model = result.best, tight
            late, driving_n = late_and_driving(tight, current)
            cost_n = zero.cost(current)
            rounds.append(f"{cost_n} {driving_n} s {len(late)} late {len(tightened)} tight")
            if (
                current.is_feasible()
                and served(current) >= served(best)
                and cost_n <= cost * limit
                and driving_n <= driving * limit
            ):
                plans.append((len(late), float(cost_n), n + 1, tight, current))
        chosen = min(plans, key=lambda p: (p[0], p[1]))
        self.stats["objective"] = int(chosen[1])
        self.stats["buffer_round"] = chosen[2]
        self.stats["buffer_rounds"] = " | ".join(rounds)
        return chosen[3], chosen[4]


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
    with_break = {b.vehicle for b in model.breaks} if model is not None else set()
    for k, vehicle in enumerate(problem.vehicles):
        items = _visits(problem, model, k, assigned.get(k, []), jobs_by_id)
        if not any(it.job is not None for it in items):
            continue
        late_start = not vehicle.fixed_jobs
        if not pyvrp_feasible:
            if k in with_break and vehicle.brk is not None and all(it.job for it in items):
                items = best_break(problem, vehicle, items, late_start=late_start)
            items = _repair(problem, vehicle, items, late_start=late_start)
        route, broken = planned_route(problem, vehicle, items, late_start=late_start)
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


def _visits(
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
