"""The search loop's route-removal move (see :mod:`doorstep.routing.ils`)."""

from __future__ import annotations

import pyvrp
from pyvrp import PenaltyManager, PenaltyParams
from pyvrp.search import (
    OPERATORS,
    LocalSearch,
    NeighbourhoodParams,
    PerturbationManager,
    PerturbationParams,
    compute_neighbours,
)
from pyvrp.stop import MaxIterations

from doorstep.routing import ils
from doorstep.routing.solver import initial_penalties


def _line(num_clients: int, num_vehicles: int) -> pyvrp.ProblemData:
    """Clients at 1 .. num_clients km along a road from the depot, one parcel each."""
    m = pyvrp.Model()
    depot = m.add_depot(m.add_location(0, 0))
    m.add_vehicle_type(num_vehicles, capacity=[100], start_depot=depot, end_depot=depot)
    for x in range(1, num_clients + 1):
        m.add_client(m.add_location(x, 0), delivery=[1])
    for a in m.locations:
        for b in m.locations:
            m.add_edge(a, b, distance=abs(a.x - b.x) * 1000, duration=abs(a.x - b.x) * 60)
    return m.data()


def _solution(data: pyvrp.ProblemData, routes: list[list[int]]) -> pyvrp.Solution:
    return pyvrp.Solution(data, [pyvrp.Route(data, visits, 0) for visits in routes])


def _visits(solution: pyvrp.Solution) -> list[list[int]]:
    return [[a.idx for a in route if a.is_client()] for route in solution.routes()]


def test_one_whole_short_route_is_taken_out() -> None:
    data = _line(21, 8)
    routes = [[0, 1, 2, 3, 4], [5], [6, 7], [8, 9, 10], [11, 12, 13, 14], [15, 16]]
    routes.append([17, 18, 19, 20])
    longest = {0, 1, 2, 3, 4}
    solution = _solution(data, routes)
    dropped_any: set[int] = set()
    for seed in range(40):
        rng = pyvrp.RandomNumberGenerator(seed=seed)
        partial = ils.without_route(data, solution, 21, rng)
        assert partial is not None
        left = _visits(partial)
        assert len(left) == len(routes) - 1
        (dropped,) = [r for r in routes if r not in left]
        assert set(dropped) != longest  # only the 5 routes with the fewest jobs are drawn
        assert sorted(c for r in left for c in r) == sorted(
            c for r in routes for c in r if c not in dropped
        )
        dropped_any.add(dropped[0])
    assert len(dropped_any) == ils.ROUTE_REMOVAL_POOL  # the draw varies


def test_breaks_stay_on_the_route_that_loses_its_jobs() -> None:
    data = _line(6, 2)
    solution = _solution(data, [[0, 1, 5], [2, 3, 4]])  # client 5 stands for a break visit
    rng = pyvrp.RandomNumberGenerator(seed=1)
    seen = set()
    for _ in range(20):
        partial = ils.without_route(data, solution, 5, rng)
        assert partial is not None
        left = _visits(partial)
        assert [5] in left or [0, 1, 5] in left
        seen.add(tuple(map(tuple, left)))
    assert seen == {((5,), (2, 3, 4)), ((0, 1, 5),)}


def test_nothing_is_taken_out_of_a_single_route() -> None:
    data = _line(4, 3)
    rng = pyvrp.RandomNumberGenerator(seed=1)
    assert ils.without_route(data, _solution(data, [[0, 1, 2, 3]]), 4, rng) is None


def _search(data: pyvrp.ProblemData, seed: int) -> tuple[LocalSearch, LocalSearch]:
    rng = pyvrp.RandomNumberGenerator(seed=seed)
    neighbours = compute_neighbours(data, NeighbourhoodParams(num_neighbours=10))
    search = LocalSearch(data, rng, neighbours, PerturbationManager(PerturbationParams()))
    repair = LocalSearch(data, rng, neighbours, PerturbationManager(PerturbationParams(1, 1)))
    for op in OPERATORS:
        if op.supports(data):
            search.add_operator(op(data))
            repair.add_operator(op(data))
    return search, repair


def test_the_search_loop_merges_routes_down_to_the_best_plan() -> None:
    """Every stop lies on one road out of the depot, so one route serves them all at the cost
    of the longest trip; the loop, started from one route per stop, must end there and count
    its iterations."""
    data = _line(12, 12)
    search, repair = _search(data, seed=3)
    penalties = PenaltyManager(PenaltyParams().midpoint_penalties(data), PenaltyParams())
    start = _solution(data, [[c] for c in range(12)])
    result = ils.iterate(
        data,
        penalties,
        search,
        repair,
        start,
        pyvrp.IteratedLocalSearchParams(),
        MaxIterations(200),
        pyvrp.RandomNumberGenerator(seed=3),
        num_jobs=12,
        route_removal=True,
    )
    assert result.best.is_feasible()
    assert result.best.num_routes() == 1
    assert result.best.distance() == 2 * 12 * 1000
    assert result.num_iterations == 200


def test_starting_penalties_weigh_a_typical_edge() -> None:
    """A second of time warp costs what a typical second of driving costs, one unit of load
    what a typical edge costs per unit of an average order; unreachable pairs do not count."""
    m = pyvrp.Model()
    depot = m.add_depot(m.add_location(0, 0))
    m.add_vehicle_type(
        2, capacity=[100], start_depot=depot, end_depot=depot, unit_duration_cost=100
    )
    for x in range(1, 6):
        m.add_client(m.add_location(x, 0), delivery=[4])
    for a in m.locations:
        for b in m.locations:
            unreachable = {a.x, b.x} == {0, 5} and a.x != b.x
            km = 10**6 if unreachable else abs(a.x - b.x)
            m.add_edge(a, b, distance=km * 1000, duration=km * 60)
    data = m.data()
    loads, warp, distance = initial_penalties(data, PenaltyParams())
    # median edge: 2 km, 120 s -> cost 2,000 + 100 * 120 = 14,000
    assert warp == 14_000 / 120
    assert distance == 14_000 / 2_000
    assert loads == [14_000 / 4]
    assert max([*loads, warp, distance]) < PenaltyParams().max_penalty / 10
