"""The Solomon reader, the benchmark runner and a short solve against the best-known values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from doorstep.cli import app
from doorstep.routing.benchmark import run_benchmark
from doorstep.routing.check import check_solution
from doorstep.routing.problem import Solution
from doorstep.routing.route_timing import plan_route
from doorstep.routing.solomon import SCALE, read_bks, read_problem, read_routes
from doorstep.routing.solver import solve
from tests.conftest import shared_data


def _instance(name: str) -> Path:
    return shared_data("vrptw", "solomon", f"{name}.txt")


def test_the_reader_follows_the_dimacs_convention() -> None:
    """C101: 100 customers, 25 vans of 200; distances in tenths, truncated."""
    p = read_problem(_instance("C101"))
    assert len(p.jobs) == 100 and len(p.vehicles) == 25
    assert p.vehicles[0].capacity == (200,)
    assert (p.vehicles[0].shift_start_s, p.vehicles[0].shift_end_s) == (0, 12360)
    first = p.jobs[0]
    assert (first.id, first.tw_start_s, first.tw_end_s, first.service_s) == ("1", 9120, 9670, 900)
    # Depot (40, 50) to customer 1 (45, 68): sqrt(349) = 18.68... -> 186 tenths.
    assert p.distances[0, 1] == 186
    assert (p.durations == p.distances).all()


def test_the_bks_table_gives_the_dimacs_rows() -> None:
    bks = read_bks(shared_data("vrptw", "solomon", "bks.csv"))
    assert len(bks) == 56
    assert (bks["C101"].distance, bks["C101"].vehicles) == (827.3, 10)
    assert bks["R101"].distance == 1637.7


@pytest.mark.parametrize("name", ["C101", "R101", "RC208"])
def test_the_best_known_routes_reproduce_the_best_known_distance(name: str) -> None:
    """Timing the published BKS routes on our matrices gives a sound plan of exactly the BKS
    distance: the reader, the timing and the checker agree with the literature."""
    p = read_problem(_instance(name))
    routes = read_routes(shared_data("vrptw", "solomon", "bks_solutions", f"{name}.sol"))
    planned = []
    for vehicle, job_ids in zip(p.vehicles, routes, strict=False):
        route, broken = plan_route(p, vehicle, job_ids, late_start=False)
        assert broken == []
        planned.append(route)
    solution = Solution(planned, {}, True, sum(r.distance for r in planned))
    assert check_solution(p, solution) == []
    expected = read_bks(shared_data("vrptw", "solomon", "bks.csv"))[name]
    assert solution.distance == round(expected.distance * SCALE)
    assert len(planned) == expected.vehicles


def test_a_one_second_solve_of_c101_is_feasible_and_near_the_best_known() -> None:
    p = read_problem(_instance("C101"))
    solution = solve(p, time_limit_s=1.0, objective="distance")
    assert check_solution(p, solution) == []
    assert solution.feasible and not solution.unassigned
    assert solution.distance / SCALE <= 827.3 * 1.02


def test_the_benchmark_runs_both_solvers_and_checks_them() -> None:
    result = run_benchmark(
        shared_data("vrptw", "solomon"),
        shared_data("vrptw", "solomon", "bks.csv"),
        time_limit_s=0.3,
        only="c10[1]",
    )
    assert [r.name for r in result.instances] == ["C101"]
    row = result.instances[0]
    assert row.feasible and row.ortools_feasible
    assert row.gap >= 0 and row.ortools_gap is not None
    assert result.infeasible == 0 and result.mean_gap_pct == row.gap


def test_the_bench_command_prints_one_json_object() -> None:
    folder = shared_data("vrptw", "solomon")
    args = [
        "bench",
        "routing",
        "--instances",
        str(folder),
        "--bks",
        str(folder / "bks.csv"),
        "--time-limit",
        "0.2",
        "--only",
        "C101",
        "--json",
        "--skip-ortools",
    ]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert {"mean_gap_pct", "ortools_mean_gap_pct", "infeasible", "instances"} <= data.keys()
    assert data["instances"][0]["name"] == "C101"
    assert {"distance", "gap"} <= data["instances"][0].keys()
