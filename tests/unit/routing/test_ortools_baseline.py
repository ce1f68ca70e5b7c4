"""The OR-Tools baseline answers the same problems, in a form the same checker accepts."""

from __future__ import annotations

from doorstep.routing.check import check_solution
from doorstep.routing.ortools_baseline import solve_ortools
from doorstep.routing.problem import Break
from tests.unit.routing.builders import MINUTE, job, problem, stops_of, van


def test_ortools_respects_windows_capacity_skills_and_fixed_stops() -> None:
    p = problem(
        [0, 1, 2, 3, 4],
        [
            job("a", 1, demand=6),
            job("b", 2, demand=6, window=(30 * MINUTE, 40 * MINUTE)),
            job("c", 3, skills=frozenset({"fridge"})),
            job("d", 4, demand=1),
        ],
        [
            van("v1", capacity=10, fixed_jobs=("d",)),
            van("v2", capacity=10, skills=frozenset({"fridge"}), end=None),
        ],
    )
    solution = solve_ortools(p, time_limit_s=0.2)
    assert check_solution(p, solution) == []
    assert not solution.unassigned
    assert stops_of(solution, "v1")[0] == "d"
    assert "c" in stops_of(solution, "v2")


def test_ortools_plans_a_break_inside_its_window() -> None:
    brk = Break(earliest_start_s=10 * MINUTE, latest_start_s=15 * MINUTE, duration_s=5 * MINUTE)
    p = problem(
        [0, 1, 2, 3], [job(f"s{i}", i, service=5 * MINUTE) for i in (1, 2, 3)], [van("v1", brk=brk)]
    )
    solution = solve_ortools(p, time_limit_s=0.2)
    assert check_solution(p, solution) == []
    assert not solution.unassigned
    assert solution.routes[0].break_start_s is not None
