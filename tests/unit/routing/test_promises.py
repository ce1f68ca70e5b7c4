"""The repair after the search (routing/promises.py) on plans given by hand, so each test says
which move keeps which promise."""

from __future__ import annotations

import dataclasses

from doorstep.routing.prepare import start_after_fixed
from doorstep.routing.problem import Job, Problem
from doorstep.routing.promises import keep_promises
from doorstep.routing.pyvrp_model import build_model
from doorstep.routing.route_timing import plan_route
from tests.unit.routing.builders import MINUTE, job, road, van

H = 3600


def _repair(problem: Problem, plan: dict[int, list[str]]) -> dict[int, list[str]]:
    """Repair ``plan`` (vehicle index -> job ids in order); returns the repaired plan."""
    jobs = {j.id: j for j in problem.jobs}
    starts = [start_after_fixed(problem, v, jobs) for v in problem.vehicles]
    model = build_model(
        problem, problem.jobs, starts, [None] * len(problem.vehicles), "duration", required=True
    )
    index = {j.id: i for i, j in enumerate(model.jobs)}
    assigned = {k: [index[j] for j in ids] for k, ids in plan.items()}
    result, _, _ = keep_promises(problem, model, starts, assigned, deadline=float("inf"))
    return {k: [model.jobs[i].id for i in ids] for k, ids in result.items()}


def _timed(problem: Problem, plan: dict[int, list[str]]) -> tuple[dict[str, int], int]:
    """Start of service per job and the day's driving, as the plan will be stored."""
    starts, driving = {}, 0
    for k, ids in plan.items():
        route, broken = plan_route(problem, problem.vehicles[k], ids)
        assert broken == []
        starts.update({s.job_id: s.start_service_s for s in route.stops})
        driving += route.driving_s
    return starts, driving


def _target(j: Job, minutes_before_end: int = 10) -> Job:
    return dataclasses.replace(j, target_end_s=j.tw_end_s - minutes_before_end * MINUTE)


def test_a_stop_at_the_end_of_its_window_moves_to_a_van_that_passes_its_door_early() -> None:
    """Van 0 reaches x at 60 min, after a 50-min stop at p (which must come first), 5 min
    before x's window closes; van 1 drives past x's door (y is next door) at 10 min. The
    repair moves a stop to van 1 (x, or p so that van 0 goes to x first): x is served well
    before its target, outside its window's last 15 minutes, and the day drives no more."""
    durations, distances = road([0, 5, 10, 10.5])
    jobs = [
        _target(job("p", 1, window=(0, 10 * MINUTE), service=50 * MINUTE)),
        _target(job("x", 2, window=(0, 65 * MINUTE))),
        _target(job("y", 3, window=(0, 8 * H))),
    ]
    vans = [van("v0", shift=(0, 8 * H)), van("v1", shift=(0, 8 * H))]
    problem = Problem(jobs, vans, durations, distances, target_cost_tolerance=0.0)
    before = {0: ["p", "x"], 1: ["y"]}
    plan = _repair(problem, before)
    assert sorted(j for ids in plan.values() for j in ids) == ["p", "x", "y"]
    starts, driving = _timed(problem, plan)
    assert starts["x"] <= 40 * MINUTE
    assert driving <= _timed(problem, before)[1]


def test_the_repair_leaves_the_plan_alone_when_keeping_the_promise_costs_too_much() -> None:
    """The same late stop, but the other van works the other way: taking x costs it 20 more
    minutes of driving (10 more for the day), far more than the 2 % the merchant allows, so
    x stays where it was."""
    durations, distances = road([0, 5, 10, -10])
    jobs = [
        _target(job("p", 1, window=(0, 10 * MINUTE), service=50 * MINUTE)),
        _target(job("x", 2, window=(0, 65 * MINUTE))),
        _target(job("y", 3, window=(0, 8 * H))),
    ]
    vans = [van("v0", shift=(0, 8 * H)), van("v1", shift=(0, 8 * H))]
    problem = Problem(jobs, vans, durations, distances, target_cost_tolerance=0.02)
    assert _repair(problem, {0: ["p", "x"], 1: ["y"]}) == {0: ["p", "x"], 1: ["y"]}


def test_a_full_van_that_passes_the_door_takes_nothing() -> None:
    """The first day again, but van 1 is full with y: no stop can move to it, and van 0 has no
    other order that serves x earlier, so the plan stays as it was."""
    durations, distances = road([0, 5, 10, 10.5])
    jobs = [
        _target(job("p", 1, window=(0, 10 * MINUTE), service=50 * MINUTE)),
        _target(job("x", 2, window=(0, 65 * MINUTE))),
        _target(job("y", 3, window=(0, 8 * H), demand=5)),
    ]
    vans = [van("v0", shift=(0, 8 * H)), van("v1", shift=(0, 8 * H), capacity=5)]
    problem = Problem(jobs, vans, durations, distances, target_cost_tolerance=0.0)
    assert _repair(problem, {0: ["p", "x"], 1: ["y"]}) == {0: ["p", "x"], 1: ["y"]}
