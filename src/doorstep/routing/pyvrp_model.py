"""Translate a Doorstep :class:`Problem` into PyVRP's ``ProblemData`` (see :mod:`.solver` for the
modelling choices). Kept apart from the search so the mapping can be read on its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import pyvrp
from pyvrp.constants import MAX_VALUE

from doorstep.routing.problem import IntMatrix, Job, Problem, VehicleSpec

DURATION_WEIGHT = 100
"""Cost of one second of route duration under the ``"duration"`` objective (distance costs 1)."""

PENALTY_SCALE = 10
"""Penalties (``unassigned_penalty``, ``reassign_penalty``) are multiplied by this under the
``"duration"`` objective, so that one unit of penalty stays worth about one metre of driving,
i.e. a tenth of a second at city speed."""

MIN_PROHIBITIVE = 10**11
"""Least extra distance on an edge into a job the vehicle must not serve (skills)."""

PROFILE_BUDGET_BYTES = 512 * 2**20
"""Most memory the routing profiles' matrices may take. Each profile is a full distance and
duration matrix over every location (16 bytes a cell: 16 MB at 1,000 stops). Re-planning
gives each vehicle with previous stops a profile of its own, so that taking another's stop
costs ``reassign_penalty``; past this budget, such vehicles share profiles (see
:func:`_share_profiles`), and a stop moving between two vehicles of one group is not
penalised. Measured on the 1,000-stop Monaco day with 40 vehicles at the depot, re-planned
for 5 s: one profile each took 993 MB and moved 6 stops; 256 MB (16 groups) moved 38."""


@dataclass(frozen=True)
class VehicleStart:
    """Where and when a vehicle is free for new jobs (after its fixed stops), with the capacity
    it has left."""

    location: int
    time: int
    capacity: tuple[int, ...]


@dataclass(frozen=True)
class BreakClient:
    """A PyVRP client standing for "vehicle ``vehicle`` takes its break at ``location``"."""

    vehicle: int
    location: int


@dataclass
class PyvrpModel:
    """The PyVRP data and how to read its indices back.

    Clients ``0 .. len(jobs)-1`` are the jobs in order, the rest are :attr:`breaks`. Vehicles
    that can take no new work have no vehicle type (``vehicle_type[k] is None``)."""

    data: pyvrp.ProblemData
    jobs: list[Job]
    breaks: list[BreakClient]
    type_vehicles: list[list[int]]
    vehicle_type: list[int | None]
    forbidden: list[frozenset[int]]
    prize: int
    neighbours: Any = None  # the search's granular neighbourhood, once computed
    penalties: Any = None  # the search's starting penalties, once computed
    anywhere: int | None = None  # the location of open routes' "anywhere" end, if any


def is_allowed(model: PyvrpModel, client: int, vehicle: int) -> bool:
    """Whether ``vehicle`` (index) may serve client ``client`` (breaks are always allowed)."""
    return client >= len(model.jobs) or vehicle not in model.forbidden[client]


def _clip(matrix: IntMatrix) -> IntMatrix:
    return np.minimum(matrix.astype(np.int64), MAX_VALUE)


def _share_profiles(
    vehicles: list[VehicleSpec], jobs: list[Job], preferred_by: dict[str, set[int]], groups: int
) -> dict[int, int]:
    """Vehicle index -> profile group, for vehicles with previous stops, in at most ``groups``
    groups. Vehicles are ordered by the mean window start of their previous stops and dealt
    out in turn, so the vehicles sharing a group work at different times of day, where moving
    stops between them gains least."""
    times: dict[int, list[int]] = {}
    for job in jobs:
        for k in preferred_by.get(job.id, ()):
            times.setdefault(k, []).append(job.tw_start_s)
    for k, v in enumerate(vehicles):
        if v.preferred_jobs:
            times.setdefault(k, [v.shift_start_s])
    order = sorted(times, key=lambda k: (sum(times[k]) / len(times[k]), k))
    return {k: n % groups for n, k in enumerate(order)}


def build_model(
    problem: Problem,
    jobs: list[Job],
    starts: list[VehicleStart],
    breaks: list[list[int] | None],
    objective: Literal["duration", "distance"],
    *,
    required: bool,
) -> PyvrpModel:
    """PyVRP data for serving ``jobs`` with the vehicles starting as in ``starts``.

    ``breaks[k]`` lists the matrix locations where vehicle ``k`` may take its break (None: no
    break). With ``required`` every job must be served; otherwise each is optional with prize
    ``unassigned_penalty``."""
    vehicles = problem.vehicles
    scale = PENALTY_SCALE if objective == "duration" else 1
    duration_cost = DURATION_WEIGHT if objective == "duration" else 0
    prize = problem.unassigned_penalty * scale
    reassign = problem.reassign_penalty * scale
    prohibitive = min(MAX_VALUE // 4, max(MIN_PROHIBITIVE, 1000 * prize))
    usable = [k for k, v in enumerate(vehicles) if starts[k].time <= v.shift_end_s]
    with_break = [k for k in usable if breaks[k] is not None]
    base_dims = len(vehicles[0].capacity) if vehicles else len(jobs[0].demand)
    dims = base_dims + len(with_break)

    m = pyvrp.Model()
    matrix_of: list[int] = []  # PyVRP location -> matrix location (-1: the "anywhere" end)
    depot_at: dict[int, pyvrp.Depot] = {}
    location_at: dict[int, pyvrp.Location] = {}

    def depot(loc: int) -> pyvrp.Depot:
        if loc not in depot_at:
            location = m.add_location(0.0, 0.0, name=f"depot@{loc}")
            matrix_of.append(loc)
            location_at.setdefault(loc, location)
            depot_at[loc] = m.add_depot(location, name=f"depot@{loc}")
        return depot_at[loc]

    for k in usable:
        depot(starts[k].location)
        end_location = vehicles[k].end_location
        if end_location is not None:
            depot(end_location)
    anywhere: pyvrp.Depot | None = None
    if any(vehicles[k].end_location is None for k in usable):
        anywhere = m.add_depot(m.add_location(0.0, 0.0, name="anywhere"), name="anywhere")
        matrix_of.append(-1)
    num_depots = len(matrix_of)

    forbidden: list[frozenset[int]] = []
    for job in jobs:
        location = m.add_location(0.0, 0.0, name=job.id)
        matrix_of.append(job.location)
        location_at.setdefault(job.location, location)
        m.add_client(
            location,
            delivery=list(job.demand) + [0] * len(with_break),
            service_duration=job.service_s,
            tw_early=job.tw_start_s,
            tw_late=job.tw_end_s,
            prize=prize,
            required=required,
            name=job.id,
        )
        forbidden.append(
            frozenset(
                k
                for k in usable
                if not job.skills <= vehicles[k].skills
                or not problem.reaches(vehicles[k], starts[k].location, job.location)
            )
        )

    break_clients: list[BreakClient] = []
    for b, k in enumerate(with_break):
        brk = vehicles[k].brk
        assert brk is not None
        group = m.add_client_group(required=True, name=f"break:{vehicles[k].id}")
        delivery = [0] * dims
        delivery[base_dims + b] = 1
        for loc in dict.fromkeys(breaks[k] or []):
            m.add_client(
                location_at[loc],
                delivery=delivery,
                service_duration=brk.duration_s,
                tw_early=brk.earliest_start_s,
                tw_late=brk.latest_start_s,
                required=False,
                group=group,
                name=f"break:{vehicles[k].id}@{loc}",
            )
            break_clients.append(BreakClient(k, loc))

    # Routing profiles: one per (travel matrices, jobs the vehicle may not serve, jobs it would
    # take from another vehicle that had them before).
    preferred_by: dict[str, set[int]] = {}
    for k, v in enumerate(vehicles):
        for job_id in v.preferred_jobs:
            preferred_by.setdefault(job_id, set()).add(k)
    profile_keys: dict[tuple[str | None, frozenset[int], frozenset[int]], pyvrp.Profile] = {}
    vehicle_profile: dict[int, pyvrp.Profile] = {}
    no_sets = {k: frozenset(i for i, f in enumerate(forbidden) if k in f) for k in usable}
    locations = len(m.locations)
    most = max(1, PROFILE_BUDGET_BYTES // (16 * locations * locations))
    kinds = {(vehicles[k].travel, no_sets[k]) for k in usable}
    shared = max(1, most // max(1, len(kinds)))
    group_of = _share_profiles(vehicles, jobs, preferred_by, shared)
    for k in usable:
        no = no_sets[k]
        mine = group_of.get(k, -1)
        taken = frozenset(
            i
            for i, j in enumerate(jobs)
            if j.id in preferred_by and all(group_of[o] != mine for o in preferred_by[j.id])
        )
        profile_key = (vehicles[k].travel, no, taken)
        if profile_key not in profile_keys:
            profile_keys[profile_key] = m.add_profile(name=f"profile{len(profile_keys)}")
        vehicle_profile[k] = profile_keys[profile_key]

    # Vehicle types: identical vehicles (same start, end, times, capacity, profile) share one.
    groups: dict[tuple[int, int | None, int, int, tuple[int, ...], int], list[int]] = {}
    for k in usable:
        v, s = vehicles[k], starts[k]
        capacity = [max(0, c) for c in s.capacity] + [int(k == w) for w in with_break]
        key = (
            s.location,
            v.end_location,
            s.time,
            v.shift_end_s,
            tuple(capacity),
            id(vehicle_profile[k]),
        )
        groups.setdefault(key, []).append(k)
    vehicle_type: list[int | None] = [None] * len(vehicles)
    type_vehicles: list[list[int]] = []
    for key, members in groups.items():
        v, s = vehicles[members[0]], starts[members[0]]
        end = anywhere if v.end_location is None else depot_at[v.end_location]
        m.add_vehicle_type(
            num_available=len(members),
            capacity=list(key[4]),
            start_depot=depot_at[s.location],
            end_depot=end,
            tw_early=s.time,
            tw_late=v.shift_end_s,
            unit_distance_cost=1,
            unit_duration_cost=duration_cost,
            profile=vehicle_profile[members[0]],
            name=",".join(vehicles[k].id for k in members),
        )
        for k in members:
            vehicle_type[k] = len(type_vehicles)
        type_vehicles.append(members)

    idx = np.array([max(0, loc) for loc in matrix_of], dtype=np.int64)
    base: dict[str | None, tuple[IntMatrix, IntMatrix]] = {}
    for travel in dict.fromkeys(key[0] for key in profile_keys):
        durations, distances = problem.travel_matrices(travel)
        distance = _clip(distances[np.ix_(idx, idx)])
        duration = _clip(durations[np.ix_(idx, idx)])
        if anywhere is not None:  # every location reaches the "anywhere" end for free
            pos = matrix_of.index(-1)
            for matrix in (distance, duration):
                matrix[:, pos] = 0
                matrix[pos, :] = 0
        np.fill_diagonal(duration, 0)
        base[travel] = (duration, distance)
    profile_durations, profile_distances = [], []
    for travel, no, taken in profile_keys:
        duration, distance = base[travel]
        profile_distance = distance.copy()
        profile_distance[:, [num_depots + i for i in sorted(taken)]] += reassign
        profile_distance[:, [num_depots + i for i in sorted(no)]] += prohibitive
        np.fill_diagonal(profile_distance, 0)
        profile_distances.append(profile_distance)
        profile_durations.append(duration)
    data = pyvrp.ProblemData(
        m.locations,
        m.clients,
        m.depots,
        m.vehicle_types,
        cast(Any, profile_distances),
        cast(Any, profile_durations),
        m.groups,
    )
    return PyvrpModel(
        data,
        jobs,
        break_clients,
        type_vehicles,
        vehicle_type,
        forbidden,
        prize,
        anywhere=matrix_of.index(-1) if anywhere is not None else None,
    )
