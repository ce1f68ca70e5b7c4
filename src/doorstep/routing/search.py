"""The PyVRP search behind :func:`~doorstep.routing.solver.solve`: its parameters, its phases
(:class:`Search`) and the conversions between Doorstep's vehicles and PyVRP's routes. See the
solver's module docstring for how the problem maps onto PyVRP."""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Sequence
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

from doorstep.routing.breaks import BREAK_PENALTY, job_neighbours, with_own_breaks
from doorstep.routing.ils import iterate
from doorstep.routing.problem import Job, Problem
from doorstep.routing.pyvrp_model import PyvrpModel, VehicleStart, build_model, is_allowed

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


def stop_criterion(
    seconds: float, iterations: int | None, first_feasible: bool
) -> StoppingCriterion:
    criteria: list[StoppingCriterion] = [MaxRuntime(max(0.0, seconds))]
    if iterations is not None:
        criteria.append(MaxIterations(max(0, iterations)))
    if first_feasible:
        criteria.append(FirstFeasible())
    return MultipleCriteria(criteria)


def ils_params(expected_iterations: float, num_jobs: int) -> IteratedLocalSearchParams:
    """The iterated local search's parameters for a run of about ``expected_iterations``
    over ``num_jobs`` jobs (see :data:`HISTORY_PER_ITERATION_PER_JOB`)."""
    per_job = expected_iterations / max(1, num_jobs)
    history = min(MAX_HISTORY, max(MIN_HISTORY, round(HISTORY_PER_ITERATION_PER_JOB * per_job)))
    return IteratedLocalSearchParams(
        history_length=history,
        exhaustive_on_best=per_job >= EXHAUSTIVE_MIN_ITERATIONS_PER_JOB,
    )


def solve_params(
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


def run_pyvrp(
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
    neighbours = granular_neighbours(model, wide, extra)
    ls = LocalSearch(data, rng, neighbours, PerturbationManager(params.perturbation))
    repair = LocalSearch(data, rng, neighbours, PerturbationManager(PerturbationParams(1, 1)))
    for op in params.operators:
        if op.supports(data):
            ls.add_operator(op(data))
            repair.add_operator(op(data))
    if model.penalties is None:  # the same for every phase: computed once
        model.penalties = initial_penalties(
            data, params.penalty, skip=() if model.anywhere is None else (model.anywhere,)
        )
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
                for k, route in zip(route_vehicles(model, random), random.routes(), strict=True)
            }
            random = as_solution(model, with_own_breaks(model, problem, visits))
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
    data: pyvrp.ProblemData, params: PenaltyParams, *, skip: Sequence[int] = ()
) -> tuple[list[float], float, float]:
    """Starting penalties per unit of excess load, time warp and excess distance, each
    weighing what a typical edge costs: the median over all edges of the cheapest vehicle
    type's cost, divided by the median duration, the median distance, or the mean demand over
    every load dimension. This is PyVRP's own rule up to 0.13 (``PenaltyManager.init_from``),
    with medians instead of means, which unreachable pairs and the surcharges of routing
    profiles would throw. One load penalty for all dimensions, as there: on the Monaco day
    (grams and parcels) a penalty per dimension (52,575 per parcel rather than 27) gave 33.83M
    against 33.46M at 3,000 iterations, four seeds. See :data:`PENALTY_UPDATE_EVERY` for why
    not PyVRP 0.14's midpoint.

    ``skip`` lists locations left out of the medians: the "anywhere" end of open routes (see
    :attr:`~.pyvrp_model.PyvrpModel.anywhere`), whose row and column are all zeros. Counted,
    they pulled the medians to zero on small days (a two-stop day with an open route: more
    than half the edges), so a second of lateness weighed 1 against 100 for a second of
    driving, and a search started from a plan late at a stop (a warm start) kept the lateness
    rather than reorder."""
    seen: dict[tuple[int, int, int], npt.NDArray[np.float64]] = {}
    for vt in data.vehicle_types():
        key = (int(vt.unit_distance_cost), int(vt.unit_duration_cost), int(vt.profile))
        if key not in seen:
            dist = np.asarray(data.distance_matrix(key[2]), dtype=np.float64)
            dur = np.asarray(data.duration_matrix(key[2]), dtype=np.float64)
            seen[key] = key[0] * dist + key[1] * dur

    keep = np.setdiff1d(np.arange(data.num_locations), np.asarray(skip, dtype=np.int64))

    def median_of_cheapest(matrices: list[Any]) -> float:
        as_float = [np.asarray(m, dtype=np.float64)[np.ix_(keep, keep)] for m in matrices]
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


def granular_neighbours(model: PyvrpModel, params: NeighbourhoodParams, extra: int) -> Any:
    """The granular neighbourhood of ``model``, computed once: every phase of a search runs on
    the same data, and the computation is quadratic in the stops."""
    if model.neighbours is None:
        neighbours = compute_neighbours(model.data, params)
        if extra:
            neighbours = job_neighbours(model, neighbours, NUM_NEIGHBOURS)
        model.neighbours = neighbours
    return model.neighbours


def uses_forbidden(model: PyvrpModel, best: pyvrp.Solution) -> bool:
    for route in best.routes():
        vehicles = model.type_vehicles[route.vehicle_type()]
        for act in route:
            if act.is_client() and not is_allowed(model, act.idx, vehicles[0]):
                return True
    return False


def as_solution(model: PyvrpModel, routes: dict[int, list[int]]) -> pyvrp.Solution:
    """A PyVRP solution over ``model`` from vehicle index -> client indices."""
    built = []
    for k, visits in routes.items():
        vehicle_type = model.vehicle_type[k]
        if visits and vehicle_type is not None:
            built.append(pyvrp.Route(model.data, visits, vehicle_type))
    return pyvrp.Solution(model.data, built)


def warm_start(
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
    return as_solution(model, with_own_breaks(model, problem, routes))


def assign_vehicles(
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


@dataclass
class Search:
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
        init = warm_start(model, problem, initial) if initial else None
        params = solve_params(model, prize_collecting=False)
        first = run_pyvrp(
            problem, model, stop_criterion(first_budget, first_iters, True), seed, params, init
        )
        complete = first.best.is_feasible() and not uses_forbidden(model, first.best)
        if not complete:
            model = self.model(breaks, required=False)
        carried = {
            k: [act.idx for act in route if act.is_client()]
            for k, route in zip(route_vehicles(model, first.best), first.best.routes(), strict=True)
        }
        left = None if max_iterations is None else max_iterations - first.num_iterations
        start, probed = as_solution(model, carried), 0
        if left is not None:
            expected = float(left)
        else:  # measure the iteration rate on a short first stretch (see PROBE_SHARE)
            probe_s = min(PROBE_MAX_S, PROBE_SHARE * max(0.0, deadline - time.perf_counter()))
            probe = run_pyvrp(
                problem,
                model,
                stop_criterion(probe_s, None, False),
                seed,
                solve_params(model, prize_collecting=not complete, ils=PROBE_ILS),
                start,
            )
            start, probed = probe.best, probe.num_iterations
            rate = probed / max(probe.runtime, 1e-3)
            expected = probed + rate * max(0.0, deadline - time.perf_counter())
        ils = ils_params(expected, len(model.jobs))
        second = run_pyvrp(
            problem,
            model,
            stop_criterion(deadline - time.perf_counter(), left, False),
            seed,
            solve_params(model, prize_collecting=not complete, ils=ils),
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


def route_vehicles(model: PyvrpModel, best: pyvrp.Solution) -> list[int]:
    """One distinct vehicle index per route of ``best``, in route order."""
    used: dict[int, int] = {}
    result = []
    for route in best.routes():
        t = route.vehicle_type()
        result.append(model.type_vehicles[t][used.get(t, 0)])
        used[t] = used.get(t, 0) + 1
    return result
