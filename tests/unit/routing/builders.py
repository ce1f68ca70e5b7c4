"""Tiny routing problems on a straight road, built in code so each test reads on its own.

Location ``i`` sits at kilometre ``xs[i]``; driving one kilometre takes one minute. Location 0
is the depot."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from doorstep.routing.problem import Break, IntMatrix, Job, Problem, Solution, VehicleSpec

MINUTE = 60
KM = 1000
DAY_END = 24 * 3600


def road(xs: Sequence[float]) -> tuple[IntMatrix, IntMatrix]:
    """(durations in s, distances in m) between points on a line at ``xs`` kilometres."""
    x = np.asarray(xs, dtype=np.float64)
    km = np.abs(x[:, None] - x[None, :])
    return (km * MINUTE).round().astype(np.int64), (km * KM).round().astype(np.int64)


def job(
    job_id: str,
    location: int,
    *,
    window: tuple[int, int] = (0, DAY_END),
    service: int = 0,
    demand: int = 1,
    skills: frozenset[str] = frozenset(),
) -> Job:
    return Job(job_id, location, service, window[0], window[1], (demand,), skills)


def van(
    vehicle_id: str,
    *,
    start: int = 0,
    end: int | None = 0,
    shift: tuple[int, int] = (0, DAY_END),
    capacity: int = 100,
    skills: frozenset[str] = frozenset(),
    brk: Break | None = None,
    fixed_jobs: tuple[str, ...] = (),
    preferred_jobs: frozenset[str] = frozenset(),
    on_board: frozenset[str] | None = None,
) -> VehicleSpec:
    return VehicleSpec(
        vehicle_id,
        start,
        end,
        shift[0],
        shift[1],
        (capacity,),
        skills,
        brk,
        fixed_jobs,
        preferred_jobs,
        on_board,
    )


def problem(xs: Sequence[float], jobs: list[Job], vehicles: list[VehicleSpec]) -> Problem:
    durations, distances = road(xs)
    return Problem(jobs=jobs, vehicles=vehicles, durations=durations, distances=distances)


def stops_of(solution: Solution, vehicle_id: str) -> list[str]:
    """Job ids of a vehicle's route in order (empty when it has no route)."""
    for route in solution.routes:
        if route.vehicle_id == vehicle_id:
            return [s.job_id for s in route.stops]
    return []
