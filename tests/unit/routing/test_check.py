"""The independent checker catches plans that would fail on the road."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from doorstep.routing.check import check_solution
from doorstep.routing.problem import Break, Problem, Solution, UnassignedReason
from doorstep.routing.route_timing import plan_route
from tests.unit.routing.builders import MINUTE, job, problem, van


def _sound() -> tuple[Problem, Solution]:
    """v1 drives a (0-5 min window) then b (at 10 min) and back; c is left for later."""
    p = problem(
        [0, 1, 2, 3],
        [
            job("a", 1, window=(0, 5 * MINUTE), demand=4),
            job("b", 2, window=(10 * MINUTE, 20 * MINUTE), service=MINUTE, demand=3),
            job("c", 3, skills=frozenset({"fridge"})),
        ],
        [van("v1", capacity=10, fixed_jobs=("a",))],
    )
    route, broken = plan_route(p, p.vehicles[0], ["a", "b"], late_start=False)
    assert broken == []
    solution = Solution([route], {"c": UnassignedReason.MISSING_SKILL}, True, route.distance)
    return p, solution


def test_a_sound_plan_passes() -> None:
    p, solution = _sound()
    assert check_solution(p, solution) == []


def _broken(change: str) -> list[str]:
    p, solution = _sound()
    s = copy.deepcopy(solution)
    route = s.routes[0]
    if change == "late":
        route.stops[1].start_service_s = 25 * MINUTE
        route.stops[1].departure_s = 26 * MINUTE
    elif change == "twice":
        route.stops.append(dataclasses.replace(route.stops[1]))
    elif change == "missing":
        s.unassigned = {}
    elif change == "heavy":
        p.vehicles[0] = dataclasses.replace(p.vehicles[0], capacity=(5,))
    elif change == "skill":
        route.stops.append(dataclasses.replace(route.stops[1], job_id="c"))
        s.unassigned = {}
    elif change == "fixed":
        route.stops.reverse()
    elif change == "distance":
        s.distance += 1
    elif change == "teleport":
        route.stops[1].arrival_s = route.stops[0].departure_s
    elif change == "shift":
        p.vehicles[0] = dataclasses.replace(p.vehicles[0], shift_start_s=0, shift_end_s=MINUTE)
    elif change == "break":
        brk = Break(earliest_start_s=0, latest_start_s=MINUTE, duration_s=MINUTE)
        p.vehicles[0] = dataclasses.replace(p.vehicles[0], brk=brk)
        route.break_start_s = 30 * MINUTE
    return check_solution(p, s)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ("late", "after its window"),
        ("twice", "served twice"),
        ("missing", "neither served nor reported"),
        ("heavy", "capacity"),
        ("skill", "lacks"),
        ("fixed", "not first in order"),
        ("distance", "the matrix says"),
        ("teleport", "earliest"),
        ("shift", "after its shift"),
        ("break", "outside its window"),
    ],
)
def test_the_checker_catches_a_broken_plan(change: str, says: str) -> None:
    found = _broken(change)
    assert any(says in message for message in found), found
