"""An independent feasibility check of a :class:`Solution` against its :class:`Problem`.

It shares no code with the solvers on purpose: it reads the plan as a dispatcher would hand it
to drivers and verifies it from the matrices alone. Every reported time must be achievable
(no arriving before one could have driven there), every window, shift end, capacity and skill
respected, no parcel delivered by a vehicle that does not carry it, every job served at most
once or reported unassigned, fixed stops first and in order, breaks inside their window and
not overlapping a stop, and every reported distance equal to what the matrix says."""

from __future__ import annotations

from itertools import pairwise

from doorstep.routing.problem import PlannedRoute, Problem, Solution, VehicleSpec
from doorstep.routing.travel.base import UNREACHABLE


def route_distance(problem: Problem, vehicle: VehicleSpec, job_locations: list[int]) -> int:
    """Distance of driving from the vehicle's start through ``job_locations`` to its end."""
    path = [vehicle.start_location, *job_locations]
    if vehicle.end_location is not None:
        path.append(vehicle.end_location)
    distances = problem.matrices(vehicle)[1]
    return sum(int(distances[a, b]) for a, b in pairwise(path))


def check_solution(problem: Problem, solution: Solution) -> list[str]:
    """Every violation found, as readable sentences; an empty list means the plan is sound."""
    jobs = {j.id: j for j in problem.jobs}
    vehicles = {v.id: v for v in problem.vehicles}
    problems: list[str] = []
    served: dict[str, str] = {}
    seen_vehicles: set[str] = set()
    total = 0
    for route in solution.routes:
        vehicle = vehicles.get(route.vehicle_id)
        if vehicle is None:
            problems.append(f"route for unknown vehicle {route.vehicle_id!r}")
            continue
        if route.vehicle_id in seen_vehicles:
            problems.append(f"{route.vehicle_id}: more than one route")
        seen_vehicles.add(route.vehicle_id)
        for stop in route.stops:
            if stop.job_id not in jobs:
                problems.append(f"{route.vehicle_id}: unknown job {stop.job_id!r}")
            elif stop.job_id in served:
                problems.append(
                    f"job {stop.job_id} served twice ({served[stop.job_id]}, {route.vehicle_id})"
                )
            else:
                served[stop.job_id] = route.vehicle_id
        if all(s.job_id in jobs for s in route.stops):
            problems.extend(_check_route(problem, vehicle, route))
            total += route_distance(
                problem, vehicle, [jobs[s.job_id].location for s in route.stops]
            )
    for job_id in solution.unassigned:
        if job_id not in jobs:
            problems.append(f"unknown job {job_id!r} reported unassigned")
        elif job_id in served:
            problems.append(f"job {job_id} is both served and reported unassigned")
    for job in problem.jobs:
        if job.id not in served and job.id not in solution.unassigned:
            problems.append(f"job {job.id} is neither served nor reported unassigned")
    for vehicle in problem.vehicles:
        if vehicle.fixed_jobs and vehicle.id not in seen_vehicles:
            problems.append(f"{vehicle.id}: has fixed jobs but no route")
    if solution.distance != total:
        problems.append(f"solution distance {solution.distance} but the matrix says {total}")
    return problems


def _check_route(problem: Problem, vehicle: VehicleSpec, route: PlannedRoute) -> list[str]:
    """Violations within one route (its jobs are known to exist)."""
    jobs = {j.id: j for j in problem.jobs}
    name = vehicle.id
    found: list[str] = []
    carried_elsewhere = frozenset[str]().union(
        *(v.carries for v in problem.vehicles if v.id != vehicle.id)
    )
    ids = [s.job_id for s in route.stops]
    if tuple(ids[: len(vehicle.fixed_jobs)]) != vehicle.fixed_jobs:
        found.append(f"{name}: fixed jobs {list(vehicle.fixed_jobs)} are not first in order")
    if route.start_s < vehicle.shift_start_s:
        found.append(f"{name}: starts at {route.start_s}, before its shift")
    dims = len(vehicle.capacity)
    demand = [sum(jobs[i].demand[d] for i in ids) for d in range(dims)]
    if any(demand[d] > vehicle.capacity[d] for d in range(dims)):
        found.append(f"{name}: carries {tuple(demand)}, capacity {vehicle.capacity}")
    if tuple(demand) != tuple(route.load_start):
        found.append(f"{name}: load_start {route.load_start} but its jobs weigh {tuple(demand)}")

    brk = vehicle.brk
    brk_len = brk.duration_s if brk is not None else 0
    brk_at = route.break_start_s
    if brk_at is not None:
        if brk is None:
            found.append(f"{name}: plans a break it does not have")
        elif not brk.earliest_start_s <= brk_at <= brk.latest_start_s:
            found.append(f"{name}: break at {brk_at} outside its window")
    elif (
        brk is not None
        and route.stops
        and not vehicle.fixed_jobs
        and route.start_s <= brk.latest_start_s < route.end_s
    ):
        found.append(f"{name}: works through its break window without a break")

    t, loc, driving, load = route.start_s, vehicle.start_location, 0, list(demand)
    durations, distances = problem.matrices(vehicle)
    break_done = brk_at is None or brk is None
    for stop in route.stops:
        job = jobs[stop.job_id]
        leg, dist = int(durations[loc, job.location]), int(distances[loc, job.location])
        if max(leg, dist) >= UNREACHABLE:
            found.append(f"{name}: {job.id} cannot be reached from location {loc}")
        earliest = t + leg
        if not break_done and brk_at is not None and brk_at < stop.start_service_s:
            if brk_at < t:
                found.append(f"{name}: break at {brk_at} overlaps the stop before {job.id}")
            earliest = max(earliest + brk_len, brk_at + brk_len)
            break_done = True
        if stop.arrival_s < t + leg:
            found.append(f"{name}: arrives at {job.id} at {stop.arrival_s}, earliest {t + leg}")
        if stop.distance_from_prev != dist:
            found.append(f"{name}: distance to {job.id} is {dist}, not {stop.distance_from_prev}")
        if stop.start_service_s < max(stop.arrival_s, job.tw_start_s, earliest):
            found.append(f"{name}: {job.id} served at {stop.start_service_s}, too early")
        if stop.start_service_s > job.tw_end_s:
            found.append(f"{name}: {job.id} served at {stop.start_service_s}, after its window")
        if stop.departure_s < stop.start_service_s + job.service_s:
            found.append(f"{name}: {job.id} left before its service time was done")
        if not job.skills <= vehicle.skills:
            missing = sorted(job.skills - vehicle.skills)
            found.append(f"{name}: {job.id} needs skills {missing} the vehicle lacks")
        if vehicle.on_board is not None and job.id not in vehicle.carries:
            found.append(f"{name}: {job.id} is not on board; the vehicle has left the depot")
        if job.id in carried_elsewhere:
            found.append(f"{name}: {job.id} is on board another vehicle")
        for d in range(dims):
            load[d] -= job.demand[d]
        if tuple(load) != tuple(stop.load_after):
            found.append(f"{name}: load after {job.id} is {tuple(load)}, not {stop.load_after}")
        t, loc, driving = stop.departure_s, job.location, driving + leg
    if not break_done and brk_at is not None:
        if brk_at < t:
            found.append(f"{name}: break at {brk_at} overlaps the last stop")
        t = max(t, brk_at + brk_len)
    end = t
    if vehicle.end_location is not None:
        leg = int(durations[loc, vehicle.end_location])
        if leg >= UNREACHABLE:
            found.append(f"{name}: cannot reach its end location")
        end, driving = t + leg, driving + leg
    if route.end_s < end:
        found.append(f"{name}: ends at {route.end_s}, earliest possible {end}")
    if route.end_s > vehicle.shift_end_s:
        found.append(f"{name}: ends at {route.end_s}, after its shift ends")
    if route.duration != route.end_s - route.start_s:
        found.append(f"{name}: duration {route.duration} is not end - start")
    if route.driving_s != driving:
        found.append(f"{name}: driving {route.driving_s}, the matrix says {driving}")
    expected = route_distance(problem, vehicle, [jobs[i].location for i in ids])
    if route.distance != expected:
        found.append(f"{name}: distance {route.distance}, the matrix says {expected}")
    return found
