"""The iterated local search loop, with a route-removal move.

This is PyVRP's :class:`pyvrp.IteratedLocalSearch` loop, step for step (late-acceptance hill
climbing, restarts, an exhaustive search on a new best), with one addition that PyVRP offers
no hook for: every :data:`ROUTE_REMOVAL_EVERY`-th iteration, instead of PyVRP's perturbation
(which takes out a dozen or so stops around one spot), a whole short route is taken out, and
the local search puts its stops back where they cost least (PyVRP re-inserts missing required
clients at their best place among their neighbours' routes before it searches).

Why: PyVRP's moves shift one to three stops at a time, so a route only disappears once its
last stop has found a better home, and until then every move off it looks like a loss (the
trip out to that area and back stays). On a day of 1,000 stops the short plans kept two to
four routes more than the long ones, and those routes' trips to and from the depot were about
half of the difference. Measured on the Monaco day of ``doorstep bench plan`` (1,000 orders, 40
shifts, mixed fleet), mean objective over four seeds at 3,000 iterations (what 30 s affords on
a slow machine): 33.94M without the move, 33.46M with it every 10th iteration among the 5
shortest routes, 33.72M every 5th. (Before the search's penalties were started from the data,
at 30 s: 34.03M without, 33.75M with it, 33.86M among the 2 shortest routes.)

A route-removal candidate is not registered with the penalty manager: it is over capacity or
late far more often than a usual candidate, and counting it would push the penalties up for the
rest of the search (mean objective over eight seeds at 3,000 iterations: 33.45M counted,
33.36M not).

The move is made only while every job is required: in the prize-collecting search PyVRP does
not put optional clients back by itself. Break visits stay on their vehicle's route, which is
emptied of jobs only.
"""

from __future__ import annotations

import time

import pyvrp
from pyvrp import CostEvaluator, IteratedLocalSearchParams, PenaltyManager
from pyvrp.search import LocalSearch
from pyvrp.Statistics import Statistics
from pyvrp.stop import StoppingCriterion

ROUTE_REMOVAL_EVERY = 10
"""Every this many iterations, a route is taken out instead of PyVRP's perturbation."""

ROUTE_REMOVAL_POOL = 5
"""The route taken out is drawn from this many of the routes with the fewest jobs."""


def without_route(
    data: pyvrp.ProblemData,
    solution: pyvrp.Solution,
    num_jobs: int,
    rng: pyvrp.RandomNumberGenerator,
) -> pyvrp.Solution | None:
    """``solution`` with the jobs of one of its :data:`ROUTE_REMOVAL_POOL` shortest routes taken
    out (clients ``0 .. num_jobs - 1`` are jobs; the rest, breaks, stay where they are). None
    when fewer than two routes have jobs."""
    routes = solution.routes()
    visits = [[act.idx for act in route if act.is_client()] for route in routes]
    jobs = [sum(1 for c in v if c < num_jobs) for v in visits]
    with_jobs = sorted((n, i) for i, n in enumerate(jobs) if n > 0)
    if len(with_jobs) < 2:
        return None
    pool = with_jobs[:ROUTE_REMOVAL_POOL]
    dropped = pool[rng.randint(len(pool))][1]
    kept = []
    for i, route in enumerate(routes):
        stays = visits[i] if i != dropped else [c for c in visits[i] if c >= num_jobs]
        if stays:
            kept.append(pyvrp.Route(data, stays, route.vehicle_type()))
    return pyvrp.Solution(data, kept)


def iterate(
    data: pyvrp.ProblemData,
    penalties: PenaltyManager,
    search: LocalSearch,
    repair: LocalSearch,
    initial: pyvrp.Solution,
    params: IteratedLocalSearchParams,
    stop: StoppingCriterion,
    rng: pyvrp.RandomNumberGenerator,
    *,
    num_jobs: int,
    route_removal: bool,
) -> pyvrp.Result:
    """Search from ``initial`` until ``stop``. ``search`` is the usual local search (with
    PyVRP's perturbation); ``repair`` is the one run after a route removal (its perturbation
    should be minimal: one stop)."""
    history: list[pyvrp.Solution | None] = [None] * params.history_length
    slot = 0  # the history entry the next iteration compares with, then overwrites
    started = time.perf_counter()
    iters = iters_no_improvement = 0
    best = curr = initial
    cost_eval: CostEvaluator = penalties.cost_evaluator()
    while not stop(cost_eval.cost(best)):
        iters += 1
        if iters_no_improvement == params.num_iters_no_improvement:
            history, slot = [None] * params.history_length, 0
            curr = best
            iters_no_improvement = 0
        cost_eval = penalties.cost_evaluator()
        partial = None
        if route_removal and iters % ROUTE_REMOVAL_EVERY == 0:
            partial = without_route(data, curr, num_jobs, rng)
        if partial is not None:
            cand = repair(partial, cost_eval, exhaustive=False)
        else:
            cand = search(curr, cost_eval, exhaustive=False)
        if partial is None:  # see the module docstring: removals would skew the penalties
            penalties.register(cand)
        iters_no_improvement += 1
        if cost_eval.cost(cand) < cost_eval.cost(best):
            best = cand
            iters_no_improvement = 0
            if params.exhaustive_on_best:
                cand = search(cand, cost_eval, exhaustive=True)
                if cand.is_feasible():
                    best = cand
        cand_cost = cost_eval.penalised_cost(cand)
        curr_cost = cost_eval.penalised_cost(curr)
        late = history[slot]
        late_cost = cost_eval.penalised_cost(initial if late is None else late)
        if cand_cost < late_cost or cand_cost < curr_cost:  # late acceptance, both
            curr, curr_cost = cand, cand_cost  # enhancements of Burke and Bykov (2017)
        if curr_cost < late_cost or late is None:
            history[slot] = curr
        slot = (slot + 1) % len(history)
    return pyvrp.Result(best, Statistics(collect_stats=False), iters, time.perf_counter() - started)
