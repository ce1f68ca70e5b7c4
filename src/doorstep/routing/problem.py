"""The optimiser's input and output, in plain data. Times are integer seconds from the problem's
``epoch`` (a UTC instant), distances integer metres (or whatever unit the matrix uses, e.g.
tenths of a unit for the Solomon benchmarks). Location indices point into the matrices."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from doorstep.routing.travel.base import UNREACHABLE

IntMatrix = npt.NDArray[np.int64]


class UnassignedReason(StrEnum):
    OUTSIDE_SHIFTS = "outside_every_shift"
    OVER_CAPACITY = "over_capacity"
    WINDOW_IMPOSSIBLE = "window_impossible"
    MISSING_SKILL = "needs_missing_skill"
    UNREACHABLE = "unreachable"
    NO_VEHICLE_TIME = "no_vehicle_time_left"
    NOT_LOADED = "no_vehicle_at_depot"
    OUTSIDE_COVERAGE = "outside_coverage"  # beyond the loaded road map's extract
    NEEDS_LOCATION = "needs_location"  # the address has no coordinates yet


@dataclass(frozen=True)
class Job:
    """One stop to make. ``demand`` has one entry per capacity dimension (e.g. grams, parcels).

    ``target_end_s`` (None: ``tw_end_s``) is the latest start the plan aims for, before the
    window's end: after the search, the optimiser moves stops before their target (and out of
    their window's last 15 minutes) where the cost limit allows (see :mod:`~.promises`); the
    full window stays the hard limit."""

    id: str
    location: int
    service_s: int
    tw_start_s: int
    tw_end_s: int
    demand: tuple[int, ...]
    skills: frozenset[str] = frozenset()
    target_end_s: int | None = None

    @property
    def has_target(self) -> bool:
        return (
            self.target_end_s is not None and self.tw_start_s <= self.target_end_s < self.tw_end_s
        )


@dataclass(frozen=True)
class Break:
    earliest_start_s: int
    latest_start_s: int
    duration_s: int


@dataclass(frozen=True)
class VehicleSpec:
    """One shift's vehicle. ``end_location`` None means the route ends at its last stop.

    ``fixed_jobs`` are stops already done or under way: kept at the start of this route in this
    order. ``preferred_jobs`` are the stops this vehicle had before a re-plan; moving one to
    another vehicle costs ``reassign_penalty`` (so re-planning moves as few as it can).

    ``on_board`` is None while the vehicle is at its depot and can load any job. A vehicle
    that has left carries only the parcels of ``on_board`` (and of its fixed jobs): it can
    serve no other job, and no other vehicle can serve those."""

    id: str
    start_location: int
    end_location: int | None
    shift_start_s: int
    shift_end_s: int
    capacity: tuple[int, ...]
    skills: frozenset[str] = frozenset()
    brk: Break | None = None
    fixed_jobs: tuple[str, ...] = ()
    preferred_jobs: frozenset[str] = frozenset()
    on_board: frozenset[str] | None = None
    travel: str | None = None  # which of ``Problem.travel`` it drives on (None: the default)

    @property
    def carries(self) -> frozenset[str]:
        """The jobs whose parcels are on this vehicle (empty while it is at its depot)."""
        if self.on_board is None:
            return frozenset()
        return self.on_board | frozenset(self.fixed_jobs)


@dataclass
class Problem:
    jobs: list[Job]
    vehicles: list[VehicleSpec]
    durations: IntMatrix  # seconds, [from, to]
    distances: IntMatrix  # metres (or benchmark units), [from, to]
    # Cost of leaving a required job unplanned, relative to one unit of distance.
    unassigned_penalty: int = 10_000_000
    reassign_penalty: int = 2_000
    # Other travel profiles (e.g. "cargo_bike"): name -> (durations, distances), same shape.
    travel: dict[str, tuple[IntMatrix, IntMatrix]] = field(default_factory=dict)
    # How much dearer (routes' cost and driving time) than the plan searched with full windows
    # the repair that keeps jobs' targets may make it (0.10: 10 %; see routing/promises.py).
    target_cost_tolerance: float = 0.10

    def matrices(self, vehicle: VehicleSpec) -> tuple[IntMatrix, IntMatrix]:
        """(durations, distances) that ``vehicle`` drives on."""
        return self.travel_matrices(vehicle.travel)

    def travel_matrices(self, name: str | None) -> tuple[IntMatrix, IntMatrix]:
        """(durations, distances) of travel profile ``name`` (None: the default ones)."""
        if name is None:
            return self.durations, self.distances
        return self.travel[name]

    def reaches(self, vehicle: VehicleSpec, start: int, location: int) -> bool:
        """Whether ``vehicle`` can drive from ``start`` to ``location`` and on to its end on
        its own matrices (a mixed fleet's profiles may reach different places)."""
        durations, distances = self.matrices(vehicle)
        legs = [(start, location)]
        if vehicle.end_location is not None:
            legs.append((location, vehicle.end_location))
        return all(max(durations[a, b], distances[a, b]) < UNREACHABLE for a, b in legs)


@dataclass
class PlannedStop:
    job_id: str
    arrival_s: int
    start_service_s: int  # arrival, or the window's start when the vehicle waits
    departure_s: int
    load_after: tuple[int, ...]  # load on board after this stop (deliveries: decreasing)
    distance_from_prev: int


@dataclass
class PlannedRoute:
    vehicle_id: str
    stops: list[PlannedStop]
    start_s: int
    end_s: int
    distance: int
    duration: int  # end - start, including waiting and service
    driving_s: int
    load_start: tuple[int, ...]
    break_start_s: int | None = None


@dataclass
class Solution:
    routes: list[PlannedRoute]
    unassigned: dict[str, UnassignedReason]
    feasible: bool
    distance: int
    stats: dict[str, float | int | str] = field(default_factory=dict)
