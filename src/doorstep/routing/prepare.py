"""Before the search: check a :class:`Problem` against the contract, collapse each vehicle's
fixed stops into its start, and tell which jobs can never be served, and why."""

from __future__ import annotations

from collections.abc import Callable

from doorstep.routing.problem import Job, Problem, UnassignedReason, VehicleSpec
from doorstep.routing.pyvrp_model import VehicleStart
from doorstep.routing.route_timing import forward, job_visit


def validate(problem: Problem) -> dict[str, int]:
    """Check the contract; return which vehicle (index) each fixed job belongs to."""
    n = problem.durations.shape[0]
    for durations, distances in [(problem.durations, problem.distances), *problem.travel.values()]:
        if durations.shape != (n, n) or distances.shape != (n, n):
            raise ValueError("durations and distances must be square matrices of the same size")
    for vehicle in problem.vehicles:
        if vehicle.travel is not None and vehicle.travel not in problem.travel:
            raise ValueError(f"vehicle {vehicle.id!r} drives on unknown travel {vehicle.travel!r}")
    ids = [j.id for j in problem.jobs]
    if len(set(ids)) != len(ids):
        raise ValueError("job ids must be unique")
    if len({v.id for v in problem.vehicles}) != len(problem.vehicles):
        raise ValueError("vehicle ids must be unique")
    dims = {len(v.capacity) for v in problem.vehicles} | {len(j.demand) for j in problem.jobs}
    if len(dims) > 1:
        raise ValueError("every job demand and vehicle capacity needs the same dimensions")
    locations = [j.location for j in problem.jobs] + [
        loc
        for v in problem.vehicles
        for loc in (v.start_location, v.end_location)
        if loc is not None
    ]
    if any(not 0 <= loc < n for loc in locations):
        raise ValueError("a location index is outside the matrices")
    known = set(ids)
    owner: dict[str, int] = {}
    for k, vehicle in enumerate(problem.vehicles):
        for job_id in vehicle.fixed_jobs:
            if job_id not in known:
                raise ValueError(f"fixed job {job_id!r} of {vehicle.id!r} is not a job")
            if job_id in owner:
                raise ValueError(f"job {job_id!r} is fixed on two vehicles")
            owner[job_id] = k
    carrier: dict[str, str] = {}
    for vehicle in problem.vehicles:
        for job_id in vehicle.carries:
            if job_id in carrier:
                raise ValueError(
                    f"job {job_id!r} is on board {carrier[job_id]!r} and {vehicle.id!r}"
                )
            carrier[job_id] = vehicle.id
    return owner


def start_after_fixed(problem: Problem, vehicle: VehicleSpec, jobs: dict[str, Job]) -> VehicleStart:
    """Where and when the vehicle is free for new jobs, and the capacity it has left."""
    fixed = [jobs[j] for j in vehicle.fixed_jobs]
    if not fixed:
        return VehicleStart(vehicle.start_location, vehicle.shift_start_s, vehicle.capacity)
    open_end = VehicleSpec(
        vehicle.id,
        vehicle.start_location,
        None,
        vehicle.shift_start_s,
        vehicle.shift_end_s,
        vehicle.capacity,
    )
    tl = forward(problem, open_end, [job_visit(j) for j in fixed], vehicle.shift_start_s)
    left = tuple(c - sum(j.demand[d] for j in fixed) for d, c in enumerate(vehicle.capacity))
    return VehicleStart(fixed[-1].location, tl.end_s, left)


def classify(problem: Problem, job: Job, starts: list[VehicleStart]) -> UnassignedReason | None:
    """Why ``job`` can never be served by any vehicle on its own, or None if one might.

    The checks run as a cascade over the vehicles that passed the previous ones: skills,
    capacity (left after fixed stops), reachability, shift overlap, then whether some vehicle
    can get there inside the window and still finish its shift."""
    if not problem.vehicles:
        return UnassignedReason.OUTSIDE_SHIFTS
    loc = job.location

    def fits(k: int) -> bool:
        return all(d <= c for d, c in zip(job.demand, starts[k].capacity, strict=True))

    def reachable(k: int) -> bool:
        return problem.reaches(problem.vehicles[k], starts[k].location, loc)

    def overlaps(k: int) -> bool:
        v = problem.vehicles[k]
        return job.tw_start_s <= job.tw_end_s and (
            job.tw_start_s <= v.shift_end_s and job.tw_end_s >= starts[k].time
        )

    def in_time(k: int) -> bool:
        v, s = problem.vehicles[k], starts[k]
        dur = problem.matrices(v)[0]
        begin = max(s.time + int(dur[s.location, loc]), job.tw_start_s)
        back = 0 if v.end_location is None else int(dur[loc, v.end_location])
        return begin <= job.tw_end_s and begin + job.service_s + back <= v.shift_end_s

    def skilled(k: int) -> bool:
        return job.skills <= problem.vehicles[k].skills

    cascade: list[tuple[UnassignedReason, Callable[[int], bool]]] = [
        (UnassignedReason.MISSING_SKILL, skilled),
        (UnassignedReason.OVER_CAPACITY, fits),
        (UnassignedReason.UNREACHABLE, reachable),
        (UnassignedReason.OUTSIDE_SHIFTS, overlaps),
        (UnassignedReason.WINDOW_IMPOSSIBLE, in_time),
    ]
    candidates = list(range(len(problem.vehicles)))
    for reason, check in cascade:
        candidates = [k for k in candidates if check(k)]
        if not candidates:
            return reason
    return None
