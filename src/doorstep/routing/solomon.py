"""Solomon VRPTW instances as Doorstep :class:`Problem` objects, for the routing benchmark.

The DIMACS convention is used throughout, the one PyVRP, CVRPLIB and the 2021 DIMACS VRPTW
challenge report best-known solutions (BKS) in: the Euclidean distance is truncated to one
decimal, travel time equals distance, and the objective is distance only. To stay in integers,
every distance and time is kept in tenths: ``d_ij = floor(10 * euclid(i, j))``, windows and
service times multiplied by 10. Divide a solution's distance by :data:`SCALE` to compare it with
the BKS table.

Customer ``n`` of the file becomes the job with id ``str(n)`` at location ``n``; the depot
(customer 0) is location 0. The fleet is the header's ``VEHICLE NUMBER`` identical vehicles,
``v1`` … ``vK``, all starting and ending at the depot within its window.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from doorstep.routing.problem import IntMatrix, Job, Problem, VehicleSpec

SCALE = 10
"""Distances and times in a Solomon :class:`Problem` are in tenths of the file's units."""

DIMACS_CONVENTION = "dimacs_trunc1_distance"


@dataclass(frozen=True)
class SolomonCustomer:
    """One row of the customer table (row 0 is the depot), in the file's units."""

    number: int
    x: float
    y: float
    demand: int
    ready: int
    due: int
    service: int


@dataclass(frozen=True)
class SolomonInstance:
    """A parsed instance file."""

    name: str
    num_vehicles: int
    capacity: int
    customers: list[SolomonCustomer]


@dataclass(frozen=True)
class BestKnown:
    """One best-known solution: number of routes and distance in the file's units."""

    instance: str
    vehicles: int
    distance: float


def parse_instance(path: Path) -> SolomonInstance:
    """Read a Solomon-format text file (name line, ``VEHICLE`` and ``CUSTOMER`` sections)."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise ValueError(f"{path}: empty file")
    name = lines[0]
    try:
        vehicle_at = next(i for i, line in enumerate(lines) if line.upper() == "VEHICLE")
        customer_at = next(i for i, line in enumerate(lines) if line.upper() == "CUSTOMER")
    except StopIteration as exc:
        raise ValueError(f"{path}: missing VEHICLE or CUSTOMER section") from exc
    num_vehicles, capacity = (int(v) for v in lines[vehicle_at + 2].split()[:2])
    customers: list[SolomonCustomer] = []
    for line in lines[customer_at + 1 :]:
        fields = line.split()
        if not fields[0].isdigit():  # the column header
            continue
        if len(fields) < 7:
            raise ValueError(f"{path}: short customer row {line!r}")
        no, x, y, demand, ready, due, service = fields[:7]
        customers.append(
            SolomonCustomer(
                number=int(no),
                x=float(x),
                y=float(y),
                demand=int(float(demand)),
                ready=int(float(ready)),
                due=int(float(due)),
                service=int(float(service)),
            )
        )
    if [c.number for c in customers] != list(range(len(customers))):
        raise ValueError(f"{path}: customers must be numbered 0..n in order")
    return SolomonInstance(name, num_vehicles, capacity, customers)


def dimacs_matrix(customers: list[SolomonCustomer]) -> IntMatrix:
    """Euclidean distances in tenths, truncated: ``floor(10 * euclid)``."""
    coords = np.array([[c.x, c.y] for c in customers], dtype=np.float64)
    diff = coords[:, None, :] - coords[None, :, :]
    euclid = np.sqrt((diff**2).sum(axis=2))
    matrix: IntMatrix = np.floor(SCALE * euclid).astype(np.int64)
    return matrix


def to_problem(instance: SolomonInstance) -> Problem:
    """The instance as a :class:`Problem` in tenths (see the module docstring)."""
    depot = instance.customers[0]
    matrix = dimacs_matrix(instance.customers)
    jobs = [
        Job(
            id=str(c.number),
            location=c.number,
            service_s=SCALE * c.service,
            tw_start_s=SCALE * c.ready,
            tw_end_s=SCALE * c.due,
            demand=(c.demand,),
        )
        for c in instance.customers[1:]
    ]
    vehicles = [
        VehicleSpec(
            id=f"v{k + 1}",
            start_location=0,
            end_location=0,
            shift_start_s=SCALE * depot.ready,
            shift_end_s=SCALE * depot.due,
            capacity=(instance.capacity,),
        )
        for k in range(instance.num_vehicles)
    ]
    return Problem(jobs=jobs, vehicles=vehicles, durations=matrix, distances=matrix.copy())


def read_problem(path: Path) -> Problem:
    """Parse ``path`` and build its DIMACS-convention :class:`Problem`."""
    return to_problem(parse_instance(path))


def read_bks(path: Path, convention: str = DIMACS_CONVENTION) -> dict[str, BestKnown]:
    """Best-known solutions by instance name, for one convention of ``bks.csv``.

    Rows without a ``convention`` column are taken as they are (a plain
    ``instance,vehicles,distance`` table)."""
    result: dict[str, BestKnown] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("convention", convention) != convention:
                continue
            name = row["instance"].strip()
            result[name] = BestKnown(name, int(row["vehicles"]), float(row["distance"]))
    return result


def read_routes(path: Path) -> list[list[str]]:
    """The routes of a VRPLIB ``.sol`` file (``Route #k: 5 3 7 ...``) as lists of job ids."""
    routes: list[list[str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip().lower().startswith("route"):
            _, _, visits = line.partition(":")
            routes.append(visits.split())
    return routes


def gap_pct(distance: float, best_known: float) -> float:
    """Gap to the best-known value in percent (both in the same units)."""
    if best_known <= 0 or math.isnan(distance):
        return math.nan
    return 100.0 * (distance - best_known) / best_known
