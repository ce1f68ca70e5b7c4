"""What a dispatcher notices about the optimiser's plans, on tiny roads (see ``builders``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from doorstep.routing.check import check_solution
from doorstep.routing.problem import Break, Problem, Solution, UnassignedReason
from doorstep.routing.solver import solve
from doorstep.routing.travel.base import UNREACHABLE
from tests.unit.routing.builders import DAY_END, KM, MINUTE, job, problem, stops_of, van

QUICK = {"time_limit_s": 30.0, "max_iterations": 300}
"""Searches bounded by iterations, so no test depends on the machine's speed."""


def solved(p: Problem, **kwargs: object) -> Solution:
    """Solve and insist the independent checker finds nothing wrong."""
    solution = solve(p, **{**QUICK, **kwargs})  # type: ignore[arg-type]
    assert check_solution(p, solution) == []
    return solution


def test_time_windows_decide_the_order_of_stops() -> None:
    """The far stop is visited first because its window closes first."""
    p = problem(
        [0, 1, 2, 3],
        [
            job("near", 1, window=(40 * MINUTE, 50 * MINUTE)),
            job("mid", 2, window=(20 * MINUTE, 30 * MINUTE)),
            job("far", 3, window=(3 * MINUTE, 5 * MINUTE)),
        ],
        [van("v1")],
    )
    solution = solved(p)
    assert stops_of(solution, "v1") == ["far", "mid", "near"]
    jobs = {j.id: j for j in p.jobs}
    for stop in solution.routes[0].stops:
        assert jobs[stop.job_id].tw_start_s <= stop.start_service_s <= jobs[stop.job_id].tw_end_s
    assert solution.feasible


def test_capacity_is_never_exceeded() -> None:
    """Four 5-unit parcels and two 10-unit vans: each van carries two."""
    p = problem(
        [0, 1, 1.1, 1.2, 1.3],
        [job(f"p{i}", i, demand=5) for i in range(1, 5)],
        [van("v1", capacity=10), van("v2", capacity=10)],
    )
    solution = solved(p)
    assert not solution.unassigned
    assert sorted(r.load_start for r in solution.routes) == [(10,), (10,)]


def test_an_order_needing_a_skill_nobody_has_is_reported() -> None:
    p = problem(
        [0, 1, 2],
        [job("frozen", 1, skills=frozenset({"freezer"})), job("plain", 2)],
        [van("v1", skills=frozenset({"fridge"}))],
    )
    solution = solved(p)
    assert solution.unassigned == {"frozen": UnassignedReason.MISSING_SKILL}
    assert stops_of(solution, "v1") == ["plain"]


def test_an_order_needing_a_skill_goes_to_the_vehicle_that_has_it() -> None:
    """The fridge van is farther away, but only it may carry the chilled order."""
    p = problem(
        [0, 10, 1],
        [job("chilled", 2, skills=frozenset({"fridge"}))],
        [
            van("close", start=0, end=None),
            van("fridge", start=1, end=None, skills=frozenset({"fridge"})),
        ],
    )
    solution = solved(p)
    assert stops_of(solution, "fridge") == ["chilled"]


def test_a_window_nobody_can_reach_in_time_is_reported() -> None:
    """Five minutes' drive away, but the window closes after two."""
    p = problem([0, 5], [job("late", 1, window=(0, 2 * MINUTE))], [van("v1")])
    assert solved(p).unassigned == {"late": UnassignedReason.WINDOW_IMPOSSIBLE}


def test_a_job_heavier_than_every_vehicle_is_reported() -> None:
    p = problem([0, 1, 2], [job("piano", 1, demand=500), job("book", 2)], [van("v1")])
    solution = solved(p)
    assert solution.unassigned == {"piano": UnassignedReason.OVER_CAPACITY}
    assert stops_of(solution, "v1") == ["book"]


def test_a_window_outside_every_shift_is_reported() -> None:
    p = problem(
        [0, 1],
        [job("evening", 1, window=(20 * 3600, 21 * 3600))],
        [van("v1", shift=(8 * 3600, 16 * 3600))],
    )
    assert solved(p).unassigned == {"evening": UnassignedReason.OUTSIDE_SHIFTS}


def test_an_unreachable_address_is_reported() -> None:
    p = problem([0, 1, 2], [job("island", 1), job("mainland", 2)], [van("v1")])
    for matrix in (p.durations, p.distances):
        matrix[1, :] = UNREACHABLE
        matrix[:, 1] = UNREACHABLE
        np.fill_diagonal(matrix, 0)
    solution = solved(p)
    assert solution.unassigned == {"island": UnassignedReason.UNREACHABLE}


def test_too_much_work_leaves_orders_out_instead_of_failing() -> None:
    """A 30-minute shift cannot do ten 10-minute stops: the plan stays feasible."""
    p = problem(
        [0] + [1 + i / 10 for i in range(10)],
        [job(f"s{i}", i + 1, service=10 * MINUTE) for i in range(10)],
        [van("v1", shift=(0, 30 * MINUTE))],
    )
    solution = solved(p)
    assert solution.feasible
    assert len(stops_of(solution, "v1")) == 2
    assert set(solution.unassigned.values()) == {UnassignedReason.NO_VEHICLE_TIME}


def test_fixed_stops_stay_first_and_in_their_order() -> None:
    """The driver already did "c" then "a"; only "b" is planned after them."""
    p = problem(
        [0, 1, 2, 3],
        [job("a", 1), job("b", 2), job("c", 3)],
        [van("v1", fixed_jobs=("c", "a")), van("v2")],
    )
    solution = solved(p)
    assert stops_of(solution, "v1")[:2] == ["c", "a"]
    assert "b" not in solution.unassigned


def test_fixed_stops_are_kept_even_when_nothing_else_is_planned() -> None:
    p = problem([0, 1], [job("done", 1)], [van("v1", fixed_jobs=("done",))])
    assert stops_of(solved(p), "v1") == ["done"]


def _two_areas(
    v1_had: frozenset[str] = frozenset(), v2_had: frozenset[str] = frozenset()
) -> Problem:
    """v1 works the west, v2 the east; "x" is in the middle, 1 km closer to v2's last stop."""
    return problem(
        [0, -10, 10, -9, 9, 0.5],
        [job("w", 3), job("e", 4), job("x", 5)],
        [
            van("v1", start=1, end=None, preferred_jobs=v1_had),
            van("v2", start=2, end=None, preferred_jobs=v2_had),
        ],
    )


def _moved(solution: Solution, owner: dict[str, str]) -> int:
    return sum(owner.get(s.job_id) != r.vehicle_id for r in solution.routes for s in r.stops)


def test_replanning_with_nothing_changed_keeps_every_assignment() -> None:
    """Re-planning the same day (another seed, even) keeps every stop on its vehicle, where a
    fresh plan would reshuffle them."""
    first = solved(_medium(), max_iterations=1000)
    before = {r.vehicle_id: [s.job_id for s in r.stops] for r in first.routes}
    owner = {j: vehicle for vehicle, jobs in before.items() for j in jobs}
    replan = _medium()
    replan.vehicles = [
        dataclasses.replace(v, preferred_jobs=frozenset(before.get(v.id, [])))
        for v in replan.vehicles
    ]
    again = solved(replan, initial=before, seed=9)
    assert _moved(again, owner) == 0
    assert again.unassigned == first.unassigned
    assert _moved(solved(_medium(), seed=9), owner) > 0


def test_replanning_does_not_move_a_stop_for_a_small_gain() -> None:
    """v1 had "x"; v2 could do it 1 km shorter, which is not worth moving a stop for."""
    kept = solved(_two_areas(v1_had=frozenset({"w", "x"}), v2_had=frozenset({"e"})))
    assert stops_of(kept, "v1") == ["w", "x"]
    assert stops_of(solved(_two_areas()), "v2") == ["e", "x"]


def test_an_open_route_ends_at_its_last_stop() -> None:
    closed = solved(problem([0, 5], [job("a", 1, service=MINUTE)], [van("v1")]))
    open_ = solved(problem([0, 5], [job("a", 1, service=MINUTE)], [van("v1", end=None)]))
    assert closed.distance == 10 * KM
    assert open_.distance == 5 * KM
    route = open_.routes[0]
    assert route.end_s == route.stops[-1].departure_s


def test_the_van_leaves_late_rather_than_waiting_at_the_door() -> None:
    p = problem([0, 1], [job("a", 1, window=(3600, 4000))], [van("v1")])
    route = solved(p).routes[0]
    assert route.start_s == 3600 - MINUTE
    assert route.stops[0].arrival_s == route.stops[0].start_service_s == 3600


def test_a_break_is_taken_inside_its_window() -> None:
    brk = Break(earliest_start_s=60 * MINUTE, latest_start_s=70 * MINUTE, duration_s=30 * MINUTE)
    p = problem(
        [0, 1, 2, 3, 4],
        [job(f"s{i}", i, service=20 * MINUTE) for i in range(1, 5)],
        [van("v1", brk=brk)],
    )
    route = solved(p).routes[0]
    assert route.break_start_s is not None
    assert brk.earliest_start_s <= route.break_start_s <= brk.latest_start_s
    assert len(route.stops) == 4


def _medium() -> Problem:
    rng = np.random.default_rng(3)
    xs = [0.0, *rng.uniform(-20, 20, 30).round(1)]
    jobs = []
    for i in range(1, 31):
        open_at = int(rng.integers(0, 6)) * 3600
        jobs.append(
            job(
                f"j{i}",
                i,
                window=(open_at, open_at + 7200),
                service=5 * MINUTE,
                demand=int(rng.integers(1, 10)),
            )
        )
    return problem(xs, jobs, [van(f"v{k}", capacity=60) for k in range(4)])


def test_the_same_seed_gives_the_same_plan() -> None:
    first, second = solved(_medium(), seed=5), solved(_medium(), seed=5)
    assert first.routes == second.routes
    assert first.unassigned == second.unassigned


@pytest.mark.parametrize("objective", ["duration", "distance"])
def test_a_previous_plan_can_seed_the_search(objective: str) -> None:
    p = _medium()
    first = solved(p, objective=objective)
    initial = {r.vehicle_id: [s.job_id for s in r.stops] for r in first.routes}
    again = solved(p, objective=objective, initial=initial, seed=9)
    assert again.feasible
    assert len(again.unassigned) <= len(first.unassigned)
    assert again.stats["objective"] <= first.stats["objective"]


def test_stats_report_the_search() -> None:
    solution = solved(_medium())
    for key in ("objective", "runtime_s", "iterations", "num_routes", "mode"):
        assert key in solution.stats
    assert solution.stats["num_routes"] == len(solution.routes)


def test_a_fleet_without_shifts_left_plans_nothing() -> None:
    p = problem([0, 1], [job("a", 1)], [van("v1", shift=(DAY_END, DAY_END - 1))])
    solution = solved(p)
    assert solution.routes == []
    assert "a" in solution.unassigned


def test_a_search_cut_short_still_returns_a_plan_drivers_can_follow() -> None:
    """One iteration cannot find which stops to leave out; the plan is repaired instead."""
    p = problem(
        [0] + [1 + i / 10 for i in range(10)],
        [job(f"s{i}", i + 1, service=10 * MINUTE) for i in range(10)],
        [van("v1", shift=(0, 30 * MINUTE))],
    )
    solution = solve(p, time_limit_s=30.0, max_iterations=1)
    assert check_solution(p, solution) == []
    assert solution.feasible
    assert 1 <= len(stops_of(solution, "v1")) <= 2


def test_a_busy_day_with_every_feature_gives_a_sound_plan() -> None:
    """Breaks, skills, fixed stops, an open route and a second start point, all at once."""
    rng = np.random.default_rng(11)
    xs = [0.0, 5.0, *rng.uniform(-15, 15, 40).round(1)]
    jobs = []
    for i in range(2, 42):
        open_at = int(rng.integers(0, 5)) * 3600
        skills = frozenset({"fridge"}) if i % 7 == 0 else frozenset()
        jobs.append(
            job(
                f"j{i}",
                i,
                window=(open_at, open_at + 3 * 3600),
                service=4 * MINUTE,
                demand=int(rng.integers(1, 6)),
                skills=skills,
            )
        )
    lunch = Break(earliest_start_s=3 * 3600, latest_start_s=4 * 3600, duration_s=30 * MINUTE)
    vans = [
        van("a", brk=lunch, skills=frozenset({"fridge"}), capacity=40),
        van("b", brk=lunch, fixed_jobs=("j3", "j4"), capacity=40),
        van("c", start=1, end=None, brk=lunch, capacity=40),
        van("d", shift=(2 * 3600, 8 * 3600), capacity=40),
    ]
    p = problem(xs, jobs, vans)
    solution = solved(p, max_iterations=500)
    assert solution.feasible
    assert stops_of(solution, "b")[:2] == ["j3", "j4"]
    for route in solution.routes:
        if route.vehicle_id != "d":
            assert route.break_start_s is not None
    chilled = {j.id for j in jobs if j.skills}
    for route in solution.routes:
        if route.vehicle_id != "a":
            assert not chilled & {s.job_id for s in route.stops}


def _out_on_the_road() -> Problem:
    """v1 left the depot (km 0) with "a" and "b" and is now at km 5; v2 is still at the depot.
    "n" is a new order right next to v1."""
    return problem(
        [0, 5, 5.5, 6, 5.2],
        [job("a", 2), job("b", 3), job("n", 4)],
        [
            van("v1", start=1, on_board=frozenset({"a", "b"})),
            van("v2"),
        ],
    )


def test_a_vehicle_out_on_the_road_only_delivers_what_it_carries() -> None:
    """The new order goes out with the van still at the depot, though v1 passes its door."""
    plan = solved(_out_on_the_road())
    assert sorted(stops_of(plan, "v1")) == ["a", "b"]
    assert stops_of(plan, "v2") == ["n"]
    assert plan.unassigned == {}


def test_a_parcel_on_board_stays_on_its_vehicle_even_when_another_is_closer() -> None:
    """ "a" (km 1) is on v1, 20 km away; v2 at the depot next door must not take it."""
    p = problem(
        [0, 1, 20],
        [job("a", 1)],
        [van("v1", start=2, on_board=frozenset({"a"})), van("v2")],
    )
    plan = solved(p)
    assert stops_of(plan, "v1") == ["a"]
    assert stops_of(plan, "v2") == []


def test_a_new_order_when_every_vehicle_has_left_says_so() -> None:
    p = _out_on_the_road()
    p.vehicles = p.vehicles[:1]
    plan = solved(p)
    assert sorted(stops_of(plan, "v1")) == ["a", "b"]
    assert plan.unassigned == {"n": UnassignedReason.NOT_LOADED}


def test_a_new_order_nobody_could_reach_in_time_keeps_its_own_reason() -> None:
    """Even with its parcel, the vehicle out could not have made the window."""
    p = _out_on_the_road()
    p.vehicles = p.vehicles[:1]
    p.jobs[2] = job("n", 4, window=(0, 5))
    assert solved(p).unassigned == {"n": UnassignedReason.WINDOW_IMPOSSIBLE}


def test_a_parcel_cannot_be_on_board_two_vehicles() -> None:
    p = _out_on_the_road()
    p.vehicles[1] = van("v2", on_board=frozenset({"a"}))
    with pytest.raises(ValueError, match="on board"):
        solve(p, **QUICK)  # type: ignore[arg-type]


def test_each_vehicle_is_planned_on_its_own_travel_times() -> None:
    """The cargo bike takes twice as long as the van on this road. "a" (10 km out, due within
    10 minutes) only the van can make; "b", 1 km the other way, goes to the bike (listed
    first), and every time is checked on the vehicle's own matrix."""
    p = problem(
        [0, 10, -1],
        [job("a", 1, window=(0, 10 * MINUTE)), job("b", 2, window=(0, 3 * MINUTE))],
        [
            dataclasses.replace(van("bike"), travel="cargo_bike"),
            van("van"),
        ],
    )
    p.travel = {"cargo_bike": (p.durations * 2, p.distances)}
    plan = solved(p)
    assert stops_of(plan, "van") == ["a"]
    assert stops_of(plan, "bike") == ["b"]
    bike = next(r for r in plan.routes if r.vehicle_id == "bike")
    assert bike.stops[0].arrival_s - bike.start_s == 2 * MINUTE


def test_a_vehicle_on_an_unknown_travel_profile_is_refused() -> None:
    p = problem([0, 1], [job("a", 1)], [dataclasses.replace(van("v1"), travel="boat")])
    with pytest.raises(ValueError, match="unknown travel"):
        solve(p, **QUICK)  # type: ignore[arg-type]
