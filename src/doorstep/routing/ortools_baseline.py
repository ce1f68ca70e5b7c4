"""OR-Tools' routing solver on the same :class:`Problem`, as a baseline for the benchmarks.

The textbook set-up: distance as arc cost, a time dimension (travel plus the service time of
the stop left) with job windows and vehicle shifts, one capacity dimension per demand
dimension, skills as allowed vehicles per job, fixed stops as forced successors from the
route start, breaks as OR-Tools break intervals, every job optional at ``unassigned_penalty``;
``PATH_CHEAPEST_ARC`` for the first solution and guided local search until the time limit.
``preferred_jobs`` are ignored (a baseline, not a re-planner). OR-Tools' routing search is
single-threaded.
"""

from __future__ import annotations

import importlib
import time
from itertools import pairwise
from typing import Any

import numpy as np

from doorstep.routing.problem import (
    IntMatrix,
    Job,
    PlannedRoute,
    PlannedStop,
    Problem,
    Solution,
    UnassignedReason,
    VehicleSpec,
)

# OR-Tools ships stubs without annotations; mypy --strict would flag every call, so the
# wrapper is used as the dynamic module it is.
_cp: Any = importlib.import_module("ortools.constraint_solver.pywrapcp")
_enums: Any = importlib.import_module("ortools.constraint_solver.routing_enums_pb2")


def solve_ortools(problem: Problem, *, time_limit_s: float) -> Solution:
    """Solve ``problem`` by distance with OR-Tools' guided local search for ``time_limit_s``."""
    if any(v.travel is not None for v in problem.vehicles):
        raise ValueError("the OR-Tools baseline drives every vehicle on the default matrices")
    started = time.perf_counter()
    vehicles, jobs = problem.vehicles, problem.jobs
    depot_locs: list[int] = []
    for v in vehicles:
        for loc in (v.start_location, v.end_location):
            if loc is not None and loc not in depot_locs:
                depot_locs.append(loc)
    anywhere = len(depot_locs) if any(v.end_location is None for v in vehicles) else None
    num_depots = len(depot_locs) + (anywhere is not None)
    node_loc = np.array(depot_locs + [0] * (anywhere is not None) + [j.location for j in jobs])
    service = np.array([0] * num_depots + [j.service_s for j in jobs], dtype=np.int64)
    distance = _sub(problem.distances, node_loc, anywhere)
    travel = _sub(problem.durations, node_loc, anywhere) + service[:, None]
    starts = [depot_locs.index(v.start_location) for v in vehicles]
    ends = [
        anywhere if v.end_location is None else depot_locs.index(v.end_location) for v in vehicles
    ]
    manager = _cp.RoutingIndexManager(len(node_loc), len(vehicles), starts, ends)
    routing = _cp.RoutingModel(manager)
    solver = routing.solver()
    dist_cb = routing.RegisterTransitMatrix(distance.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(dist_cb)
    horizon = int(max([v.shift_end_s for v in vehicles] + [j.tw_end_s for j in jobs] + [0]))
    routing.AddDimension(
        routing.RegisterTransitMatrix(travel.tolist()), horizon, horizon, False, "time"
    )
    time_dim = routing.GetDimensionOrDie("time")
    for d in range(len(vehicles[0].capacity) if vehicles else 0):
        demand = [0] * num_depots + [j.demand[d] for j in jobs]
        routing.AddDimensionWithVehicleCapacity(
            routing.RegisterUnaryTransitVector(demand),
            0,
            [v.capacity[d] for v in vehicles],
            True,
            f"load{d}",
        )
    job_index = {j.id: manager.NodeToIndex(num_depots + i) for i, j in enumerate(jobs)}
    for job in jobs:
        index = job_index[job.id]
        time_dim.CumulVar(index).SetRange(job.tw_start_s, max(job.tw_start_s, job.tw_end_s))
        allowed = [k for k, v in enumerate(vehicles) if job.skills <= v.skills]
        if len(allowed) < len(vehicles):  # -1 stands for "not visited"
            routing.VehicleVar(index).SetValues([-1, *allowed])
        if not any(job.id in v.fixed_jobs for v in vehicles):
            routing.AddDisjunction([index], problem.unassigned_penalty)
    visit_transit = [int(service[manager.IndexToNode(i)]) for i in range(routing.Size())]
    breaks: dict[int, Any] = {}
    for k, v in enumerate(vehicles):
        time_dim.CumulVar(routing.Start(k)).SetRange(v.shift_start_s, v.shift_end_s)
        time_dim.CumulVar(routing.End(k)).SetRange(v.shift_start_s, v.shift_end_s)
        previous = routing.Start(k)
        for job_id in v.fixed_jobs:
            solver.Add(routing.NextVar(previous) == job_index[job_id])
            previous = job_index[job_id]
        if v.brk is not None:
            b = v.brk
            interval = solver.FixedDurationIntervalVar(
                b.earliest_start_s, b.latest_start_s, b.duration_s, False, f"break {v.id}"
            )
            time_dim.SetBreakIntervalsOfVehicle([interval], k, visit_transit)
            routing.AddIntervalToAssignment(interval)
            breaks[k] = interval
    params = _cp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = _enums.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = _enums.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    left = max(0.05, time_limit_s - (time.perf_counter() - started))
    params.time_limit.FromMilliseconds(int(1000 * left))
    assignment = routing.SolveWithParameters(params)
    if assignment is None:
        return Solution(
            routes=[],
            unassigned=dict.fromkeys((j.id for j in jobs), UnassignedReason.NO_VEHICLE_TIME),
            feasible=False,
            distance=0,
            stats={"runtime_s": round(time.perf_counter() - started, 3), "status": "no solution"},
        )
    routes: list[PlannedRoute] = []
    served: set[str] = set()
    for k, v in enumerate(vehicles):
        index = assignment.Value(routing.NextVar(routing.Start(k)))
        if routing.IsEnd(index):
            continue
        start_s = int(assignment.Min(time_dim.CumulVar(routing.Start(k))))
        t, prev = start_s, manager.IndexToNode(routing.Start(k))
        stops: list[PlannedStop] = []
        order = []
        while not routing.IsEnd(index):
            order.append(manager.IndexToNode(index) - num_depots)
            index = assignment.Value(routing.NextVar(index))
        load_start = tuple(sum(jobs[i].demand[d] for i in order) for d in range(len(v.capacity)))
        remaining = list(load_start)
        total = 0
        for i in order:
            job, node = jobs[i], num_depots + i
            begin = int(assignment.Min(time_dim.CumulVar(job_index[job.id])))
            leg = int(distance[prev, node])
            arrival = min(begin, t + int(travel[prev, node]) - int(service[prev]))
            remaining = [r - dd for r, dd in zip(remaining, job.demand, strict=True)]
            stops.append(
                PlannedStop(job.id, arrival, begin, begin + job.service_s, tuple(remaining), leg)
            )
            total += leg
            t, prev = begin + job.service_s, node
            served.add(job.id)
        end_node = manager.IndexToNode(routing.End(k))
        total += int(distance[prev, end_node])
        end_s = int(assignment.Min(time_dim.CumulVar(routing.End(k))))
        driving = sum(int(problem.durations[a, b]) for a, b in _legs(v, [jobs[i] for i in order]))
        routes.append(
            PlannedRoute(
                v.id,
                stops,
                start_s,
                end_s,
                total,
                end_s - start_s,
                driving,
                load_start,
                break_start_s=int(assignment.StartValue(breaks[k])) if k in breaks else None,
            )
        )
    unassigned = {j.id: UnassignedReason.NO_VEHICLE_TIME for j in jobs if j.id not in served}
    return Solution(
        routes=routes,
        unassigned=unassigned,
        feasible=True,
        distance=sum(r.distance for r in routes),
        stats={
            "objective": int(assignment.ObjectiveValue()),
            "runtime_s": round(time.perf_counter() - started, 3),
            "num_routes": len(routes),
        },
    )


def _sub(matrix: IntMatrix, nodes: Any, anywhere: int | None) -> IntMatrix:
    """The matrix between ``nodes``; every node reaches the ``anywhere`` end for free."""
    result: IntMatrix = matrix[np.ix_(nodes, nodes)].astype(np.int64)
    if anywhere is not None:
        result[:, anywhere] = 0
        result[anywhere, :] = 0
    np.fill_diagonal(result, 0)
    return result


def _legs(vehicle: VehicleSpec, jobs: list[Job]) -> list[tuple[int, int]]:
    path = [vehicle.start_location, *(j.location for j in jobs)]
    if vehicle.end_location is not None:
        path.append(vehicle.end_location)
    return list(pairwise(path))
