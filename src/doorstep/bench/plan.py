"""The planning benchmark behind ``doorstep bench plan``: a synthetic operational day planned
through Doorstep's own planning code, at a short time limit and at a long reference one.

The scenario is seeded and deterministic:

* a merchant and one depot at a known site of the extract (Fontvieille in Monaco, the central
  station in the bundled Helsinki extract; otherwise the middle of the extract), snapped onto
  the road network;
* ``shifts`` shifts of nine hours with starts staggered from 07:30 to 10:00 local time, each
  with its own driver and vehicle: vans (600 kg, 80 parcels) alternating with cargo bikes
  (120 kg, 25 parcels), or vans only;
* ``orders`` orders at points drawn along the road network (length-weighted, never on roads
  faster than :data:`MAX_ADDRESS_SPEED_KMH`, and only where every vehicle profile of the fleet
  meets the road within :data:`MAX_SNAP_M`), two-hour windows starting every half hour from
  08:00 to 16:00, 0.5-15 kg (mostly light), 1-3 parcels (mostly one), 2-5 minutes at the door.

It is written to a fresh database (a temporary SQLite file unless told otherwise) and planned
with :func:`~doorstep.domain.dispatch.planning.create_plan` on the OSM road provider. Both runs
use the same seed and the very same matrices: the provider is wrapped in a
:class:`MemoisingProvider`, so the reference run's matrix time is only a lookup. Each stored
plan is then re-checked independently (:func:`check_persisted_plan`): the persisted routes are
read back and verified with :func:`~doorstep.routing.check.check_solution` on each vehicle
profile's own matrices, and every order must be planned exactly once or unassigned with a
reason.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from datetime import time as dtime
from operator import attrgetter
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session, sessionmaker

from doorstep.bench.local_server import scratch_database, scratch_workdir
from doorstep.clock import FrozenClock
from doorstep.db.engine import make_engine, make_sessionmaker, transaction
from doorstep.db.migrate import upgrade
from doorstep.domain.accounts.service import create_merchant
from doorstep.domain.dispatch.inputs import DayInput, load_day, to_seconds
from doorstep.domain.dispatch.models import Plan
from doorstep.domain.dispatch.planning import build_problem, create_plan, locations
from doorstep.domain.dispatch.resources import (
    create_depot,
    create_driver,
    create_shift,
    create_vehicle,
)
from doorstep.domain.dispatch.schemas import DepotAddressIn, DepotIn, DriverIn, ShiftIn, VehicleIn
from doorstep.domain.orders.models import Order, Parcel
from doorstep.ids import new_id
from doorstep.routing.check import check_solution
from doorstep.routing.problem import (
    PlannedRoute,
    PlannedStop,
    Solution,
    UnassignedReason,
)
from doorstep.routing.travel.base import LatLon, Profile, TravelMatrix, TravelTimeProvider
from doorstep.routing.travel.osm import OsmRoadProvider, RoadNetwork
from doorstep.routing.travel.straight import haversine_m
from doorstep.settings import Settings

__all__ = [
    "DAY",
    "FLEETS",
    "MemoisingProvider",
    "PlanBenchResult",
    "RunFigures",
    "RunPair",
    "ScenarioConfig",
    "Site",
    "check_persisted_plan",
    "pick_site",
    "run_plan_bench",
    "sample_points",
]

DAY = date(2026, 11, 25)
"""The planned day (a Wednesday outside any DST change); the planner's clock stands at 18:00
local time the day before, so the whole day is in the future."""

MAX_ADDRESS_SPEED_KMH = 60.0
"""Orders are never placed on roads a van drives faster than this (motorways, fast trunks)."""

MAX_SNAP_M = 25.0
"""An order point must meet the road network of every profile of the fleet within this."""

FIRST_SHIFT = dtime(7, 30)
STAGGER_SLOTS = 6  # shift starts 07:30, 08:00, ..., 10:00
SHIFT_HOURS = 9
FIRST_WINDOW = dtime(8, 0)
WINDOW_SLOTS = 17  # window starts 08:00, 08:30, ..., 16:00
WINDOW_HOURS = 2

PhaseCallback = Callable[[str, float | None], None]
"""Told when a phase starts: its description and, for a time-limited search, its limit (s)."""

Fleet = Literal["mixed", "vans"]


@dataclass(frozen=True)
class VehicleKind:
    """A kind of vehicle of the synthetic fleet."""

    label: str
    profile: Profile
    capacity_kg: float
    capacity_parcels: int


VAN = VehicleKind("Van", Profile.VAN, 600.0, 80)
CARGO_BIKE = VehicleKind("Cargo bike", Profile.CARGO_BIKE, 120.0, 25)
FLEETS: dict[str, tuple[VehicleKind, ...]] = {"mixed": (VAN, CARGO_BIKE), "vans": (VAN,)}


@dataclass(frozen=True)
class Site:
    """Where the merchant is: the depot's intended place, its address and the timezone."""

    name: str
    depot: LatLon
    timezone: str
    address_line1: str
    city: str
    postal_code: str | None
    country: str | None


SITES = (
    Site("Monaco", LatLon(43.7285, 7.4150), "Europe/Monaco", "Rue du Gabian", "Monaco", "98000",
         "MC"),
    Site("Helsinki", LatLon(60.1710, 24.9414), "Europe/Helsinki", "Kaivokatu 1", "Helsinki",
         "00100", "FI"),
)  # fmt: skip


def pick_site(bbox: Sequence[float]) -> Site:
    """The known site inside ``bbox`` (min_lat, min_lon, max_lat, max_lon), else the middle of
    the extract in UTC."""
    min_lat, min_lon, max_lat, max_lon = (float(x) for x in bbox)
    for site in SITES:
        if min_lat <= site.depot.lat <= max_lat and min_lon <= site.depot.lon <= max_lon:
            return site
    centre = LatLon((min_lat + max_lat) / 2, (min_lon + max_lon) / 2)
    return Site("extract centre", centre, "UTC", "Depot", "Depot", None, None)


@dataclass(frozen=True)
class ScenarioConfig:
    """The size and shape of the synthetic day."""

    orders: int = 1000
    shifts: int = 40
    fleet: Fleet = "mixed"
    seed: int = 42
    radius_km: float = 0.0  # 0: anywhere on the extract's network

    @property
    def kinds(self) -> tuple[VehicleKind, ...]:
        return FLEETS[self.fleet]


# --- The matrices both runs share ---------------------------------------------------------


class MemoisingProvider:
    """A travel-time provider that answers a repeated matrix request from memory.

    Both runs of the benchmark ask for the same points in the same order, so the reference run
    gets exactly the matrices of the first one, and its matrix time is only the lookup. Each
    answer is a copy, so nothing downstream can alter the stored matrices."""

    def __init__(self, inner: TravelTimeProvider) -> None:
        self.inner = inner
        self.name = inner.name
        self.computed = 0
        self._memo: dict[tuple[Profile, tuple[LatLon, ...]], TravelMatrix] = {}

    def matrix(self, points: Sequence[LatLon], profile: Profile) -> TravelMatrix:
        """The inner provider's matrix, computed once per (profile, points)."""
        key = (Profile(profile), tuple(points))
        found = self._memo.get(key)
        if found is None:
            found = self.inner.matrix(points, profile)
            self._memo[key] = found
            self.computed += 1
        return TravelMatrix(
            durations_s=found.durations_s.copy(),
            distances_m=found.distances_m.copy(),
            snapped=list(found.snapped),
            snap_distance_m=list(found.snap_distance_m),
            unreachable=set(found.unreachable),
        )

    def path(self, points: Sequence[LatLon], profile: Profile) -> list[LatLon]:
        """The inner provider's path (not memoised: it is not part of the comparison)."""
        return self.inner.path(points, profile)


# --- The scenario -------------------------------------------------------------------------


def _on_network(networks: Sequence[RoadNetwork], points: Sequence[LatLon]) -> npt.NDArray[np.bool_]:
    """Whether each point meets every network within :data:`MAX_SNAP_M`."""
    ok = np.ones(len(points), dtype=bool)
    for network in networks:
        snap = network.snap(points)
        ok &= snap.ok & (snap.distance_m <= MAX_SNAP_M)
    return ok


def sample_points(
    networks: Sequence[RoadNetwork],
    count: int,
    rng: np.random.Generator,
    *,
    centre: LatLon | None = None,
    radius_m: float = 0.0,
) -> list[LatLon]:
    """``count`` points along the roads of ``networks[0]``, length-weighted, off fast roads,
    each meeting every network of ``networks`` within :data:`MAX_SNAP_M` (so every vehicle
    profile reaches it); within ``radius_m`` of ``centre`` when both are given."""
    g = networks[0].graph
    segments = np.arange(g.seg_chain.size)
    a, b = g.seg_nodes(segments)
    length = g.seg_f_len * g.len_unit_m
    speed_kmh = 3.6 * length / np.maximum(g.seg_f_dur * g.dur_unit_s, 1e-9)
    eligible = (length > 0) & (speed_kmh < MAX_ADDRESS_SPEED_KMH)
    if centre is not None and radius_m > 0:
        mid_lat = (g.node_lat[a] + g.node_lat[b]) / 2
        mid_lon = (g.node_lon[a] + g.node_lon[b]) / 2
        eligible &= haversine_m(mid_lat, mid_lon, centre.lat, centre.lon) <= radius_m
    weights = np.where(eligible, length, 0.0)
    if weights.sum() <= 0:
        raise ValueError("no road of the extract is eligible for delivery addresses")
    p = weights / weights.sum()
    found: list[LatLon] = []
    for _ in range(50):
        if len(found) >= count:
            break
        batch = max(64, 2 * (count - len(found)))
        j = rng.choice(segments.size, size=batch, p=p)
        t = rng.uniform(0.05, 0.95, batch)
        lat = g.node_lat[a[j]] + t * (g.node_lat[b[j]] - g.node_lat[a[j]])
        lon = g.node_lon[a[j]] + t * (g.node_lon[b[j]] - g.node_lon[a[j]])
        candidates = [
            LatLon(round(float(x), 6), round(float(y), 6)) for x, y in zip(lat, lon, strict=True)
        ]
        ok = _on_network(networks, candidates)
        found.extend(c for c, good in zip(candidates, ok, strict=True) if good)
    if len(found) < count:
        raise ValueError(f"only {len(found)} of {count} points could be placed on every network")
    return found[:count]


def snap_depot(networks: Sequence[RoadNetwork], site: Site) -> LatLon:
    """The site's depot moved onto the road of ``networks[0]`` it is nearest to."""
    snap = networks[0].snap([site.depot])
    if not snap.ok[0]:
        raise ValueError(f"the depot of {site.name} is not near the extract's roads")
    depot = LatLon(round(float(snap.lat[0]), 6), round(float(snap.lon[0]), 6))
    if not _on_network(networks, [depot])[0]:
        raise ValueError(f"the depot of {site.name} is not on every profile's network")
    return depot


def _local(day: date, at: dtime, tz: ZoneInfo, minutes: int = 0) -> datetime:
    return datetime.combine(day, at, tzinfo=tz) + timedelta(minutes=minutes)


@dataclass(frozen=True)
class ScenarioFigures:
    """What the synthetic day holds."""

    site: str
    timezone: str
    depot: LatLon
    merchant_id: str
    depot_id: str
    orders: int
    parcels: int
    weight_kg: float
    shifts: int
    vehicles: dict[str, int]
    capacity_parcels: int
    capacity_kg: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "timezone": self.timezone,
            "depot": {"lat": self.depot.lat, "lon": self.depot.lon},
            "orders": self.orders,
            "parcels": self.parcels,
            "weight_kg": round(self.weight_kg, 1),
            "shifts": self.shifts,
            "vehicles": self.vehicles,
            "capacity_parcels": self.capacity_parcels,
            "capacity_kg": round(self.capacity_kg, 1),
        }


def write_scenario(
    sessions: sessionmaker[Session],
    site: Site,
    depot: LatLon,
    points: Sequence[LatLon],
    config: ScenarioConfig,
) -> ScenarioFigures:
    """Write the merchant, depot, fleet, shifts and one order per point (see the module
    docstring). Rows are created a millisecond apart, so ids sort in creation order and the
    planner reads orders and shifts in the same order on every run."""
    tz = ZoneInfo(site.timezone)
    clock = FrozenClock(_local(DAY - timedelta(days=1), dtime(12, 0), tz))
    tick = timedelta(milliseconds=1)
    rng = np.random.default_rng([config.seed, 2])
    kinds = config.kinds
    vehicles: Counter[str] = Counter()
    with transaction(sessions) as session:
        merchant = create_merchant(
            session, clock, name="Bench Deliveries", timezone=site.timezone, country=site.country
        )
        depot_row = create_depot(
            session,
            clock,
            merchant.id,
            DepotIn(
                name=f"{site.name} depot",
                address=DepotAddressIn(
                    line1=site.address_line1,
                    city=site.city,
                    postal_code=site.postal_code,
                    country=site.country or "ZZ",
                    lat=depot.lat,
                    lon=depot.lon,
                ),
            ),
        )
        for i in range(config.shifts):
            clock.advance(tick)
            kind = kinds[i % len(kinds)]
            vehicles[kind.label] += 1
            vehicle = create_vehicle(
                session,
                clock,
                merchant.id,
                VehicleIn(
                    name=f"{kind.label} {vehicles[kind.label]:02d}",
                    profile=kind.profile.value,
                    capacity_weight_kg=kind.capacity_kg,
                    capacity_parcels=kind.capacity_parcels,
                ),
            )
            driver = create_driver(
                session, clock, merchant.id, DriverIn(name=f"Driver {i + 1:02d}")
            )
            start = _local(DAY, FIRST_SHIFT, tz, 30 * (i * STAGGER_SLOTS // config.shifts))
            create_shift(
                session,
                clock,
                merchant.id,
                ShiftIn(
                    driver_id=driver.id,
                    vehicle_id=vehicle.id,
                    depot_id=depot_row.id,
                    start_at=start,
                    end_at=start + timedelta(hours=SHIFT_HOURS),
                ),
            )
        total_parcels, total_kg = 0, 0.0
        rows: list[Order | Parcel] = []
        for n, point in enumerate(points, start=1):
            clock.advance(tick)
            now = clock.now()
            weight = round(float(rng.triangular(0.5, 2.0, 15.0)), 1)
            parcels = int(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1]))
            service_s = int(rng.integers(120, 301))
            start = _local(DAY, FIRST_WINDOW, tz, 30 * int(rng.integers(0, WINDOW_SLOTS)))
            total_parcels += parcels
            total_kg += weight
            order_id = new_id("ord", now)
            reference = f"PLAN-{config.seed}-{n:05d}"
            rows.append(
                Order(
                    id=order_id,
                    merchant_id=merchant.id,
                    reference=reference,
                    status="pending",
                    service_level="scheduled",
                    recipient_name=f"Customer {n}",
                    address_line1=f"Bench stop {n}",
                    city=site.city,
                    postal_code=site.postal_code,
                    country=site.country or "ZZ",
                    lat=point.lat,
                    lon=point.lon,
                    window_start=start,
                    window_end=start + timedelta(hours=WINDOW_HOURS),
                    window_sequence=0,
                    service_time_s=service_s,
                    required_skills=[],
                    parcel_count=parcels,
                    weight_kg=weight,
                    tracking_token_hash=hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
                    tracking_nonce=secrets.token_hex(8),
                    attempts=0,
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
            )
            rows.extend(
                Parcel(
                    id=new_id("par", now),
                    order_id=order_id,
                    merchant_id=merchant.id,
                    position=position,
                    weight_kg=round(weight / parcels, 3),
                    fragile=False,
                )
                for position in range(1, parcels + 1)
            )
        session.add_all(rows)
        session.flush()
        figures = ScenarioFigures(
            site=site.name,
            timezone=site.timezone,
            depot=depot,
            merchant_id=merchant.id,
            depot_id=depot_row.id,
            orders=len(points),
            parcels=total_parcels,
            weight_kg=total_kg,
            shifts=config.shifts,
            vehicles=dict(vehicles),
            capacity_parcels=sum(
                kinds[i % len(kinds)].capacity_parcels for i in range(config.shifts)
            ),
            capacity_kg=sum(kinds[i % len(kinds)].capacity_kg for i in range(config.shifts)),
        )
    return figures


# --- Checking a stored plan -------------------------------------------------------------------


def _persisted_routes(plan: Plan, day: DayInput) -> list[PlannedRoute]:
    """The plan's non-empty routes read back from their rows, in the optimiser's terms (the
    stored arrival is the start of service, which the check accepts as an arrival)."""
    epoch = day.epoch
    out = []
    for route in plan.routes:
        if not route.stops or route.start_at is None or route.end_at is None:
            continue
        stops = []
        for stop in route.stops:
            if stop.planned_arrival is None or stop.planned_departure is None:
                raise ValueError(f"stop {stop.id} has no planned times")
            at = to_seconds(epoch, stop.planned_arrival)
            stops.append(
                PlannedStop(
                    job_id=stop.order_id,
                    arrival_s=at,
                    start_service_s=at,
                    departure_s=to_seconds(epoch, stop.planned_departure),
                    load_after=(round(stop.load_weight_kg * 1000), stop.load_parcels),
                    distance_from_prev=round(stop.distance_from_prev_m),
                )
            )
        start_s, end_s = to_seconds(epoch, route.start_at), to_seconds(epoch, route.end_at)
        out.append(
            PlannedRoute(
                vehicle_id=route.shift_id,
                stops=stops,
                start_s=start_s,
                end_s=end_s,
                distance=round(route.distance_m),
                duration=end_s - start_s,
                driving_s=round(route.driving_s),
                load_start=(round(route.load_weight_kg * 1000), route.load_parcels),
            )
        )
    return out


def check_persisted_plan(plan: Plan, day: DayInput, provider: TravelTimeProvider) -> list[str]:
    """Every problem found in the stored ``plan`` of ``day``, as sentences (empty: sound).

    The routes of each vehicle profile are checked with
    :func:`~doorstep.routing.check.check_solution` on that profile's own matrices (windows,
    capacities, shift ends, times that can be driven, distances); across profiles, every order
    must be on exactly one route or unassigned with a reason and a detail."""
    found = [f"route {r.id}: {v}" for r in plan.routes for v in r.violations or []]
    locs = locations(day)
    routes = _persisted_routes(plan, day)
    served = Counter(s.job_id for r in routes for s in r.stops)
    unassigned = {u["order_id"]: u for u in plan.unassigned or []}
    for order in day.orders:
        times = served[order.order_id] + (order.order_id in unassigned)
        if times != 1:
            found.append(f"order {order.reference} is planned or unassigned {times} times")
    for entry in unassigned.values():
        if not entry.get("reason") or not entry.get("detail"):
            found.append(f"order {entry.get('reference')} is unassigned without a reason")
    profile_of = {s.shift_id: s.profile for s in day.shifts}
    for profile in sorted(set(profile_of.values())):
        matrix = provider.matrix(locs.points, profile)
        mine = replace(day, shifts=[s for s in day.shifts if s.profile == profile])
        problem = build_problem(mine, locs, matrix.durations_s, matrix.distances_m)
        own = [r for r in routes if profile_of.get(r.vehicle_id) == profile]
        on_own = {s.job_id for r in own for s in r.stops}
        elsewhere = {j.id: UnassignedReason.NO_VEHICLE_TIME for j in problem.jobs}
        for job_id in on_own:
            elsewhere.pop(job_id, None)
        solution = Solution(
            routes=own,
            unassigned=elsewhere,
            feasible=True,
            distance=sum(r.distance for r in own),
        )
        found.extend(f"{profile.value}: {v}" for v in check_solution(problem, solution))
    return found


# --- The runs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunFigures:
    """One planning run: times in seconds, driving in seconds, distance in metres."""

    time_limit_s: float
    plan_s: float  # create_plan, wall clock: read, matrices, search, geometry, write
    matrix_s: float
    solve_s: float
    objective: int | None
    iterations: int | None
    search: str | None
    routes_used: int
    shifts: int
    orders: int
    planned: int
    unassigned: int
    unassigned_by_reason: dict[str, int]
    driving_s: int
    distance_m: int
    planner_feasible: bool
    violations: list[str] = field(default_factory=list)
    # Promise keeping: windowed stops served in their window's last 15 minutes, in percent;
    # mean minutes from service to the window's end; orders given their full window back.
    last_15_min_pct: float | None = None
    mean_slack_min: float | None = None
    window_buffer_s: int = 0
    buffer_relaxed: int = 0
    buffer_repair: str | None = None  # what the buffer's repair did (see routing.promises)

    @property
    def feasible(self) -> bool:
        """The planner says so and the independent check found nothing."""
        return self.planner_feasible and not self.violations

    @property
    def other_s(self) -> float:
        """Plan time spent outside the matrices and the search (database, problem, geometry)."""
        return max(0.0, self.plan_s - self.matrix_s - self.solve_s)

    def as_dict(self) -> dict[str, Any]:
        return {
            "time_limit_s": self.time_limit_s,
            "plan_s": round(self.plan_s, 3),
            "matrix_s": round(self.matrix_s, 3),
            "solve_s": round(self.solve_s, 3),
            "other_s": round(self.other_s, 3),
            "objective": self.objective,
            "iterations": self.iterations,
            "search": self.search,
            "routes_used": self.routes_used,
            "shifts": self.shifts,
            "orders": self.orders,
            "planned": self.planned,
            "unassigned": self.unassigned,
            "unassigned_by_reason": self.unassigned_by_reason,
            "driving_s": self.driving_s,
            "distance_m": self.distance_m,
            "feasible": self.feasible,
            "planner_feasible": self.planner_feasible,
            "violations": self.violations[:50],
            "violation_count": len(self.violations),
            "last_15_min_pct": self.last_15_min_pct,
            "mean_slack_min": self.mean_slack_min,
            "window_buffer_s": self.window_buffer_s,
            "buffer_relaxed": self.buffer_relaxed,
            "buffer_repair": self.buffer_repair,
        }


def gap_pct(value: float | None, reference: float | None) -> float | None:
    """How much worse ``value`` is than ``reference``, in percent (negative: better)."""
    if value is None or reference is None or reference == 0:
        return None
    return (value - reference) / reference * 100.0


Figure = Callable[[RunFigures], float | None]
OBJECTIVE: Figure = attrgetter("objective")
DRIVING: Figure = attrgetter("driving_s")
DISTANCE: Figure = attrgetter("distance_m")


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known and len(known) == len(values) else None


@dataclass(frozen=True)
class RunPair:
    """The short run and the reference run of one optimiser seed."""

    seed: int
    short: RunFigures
    reference: RunFigures | None

    @property
    def objective_gap_pct(self) -> float | None:
        return mean_gap_pct([self], OBJECTIVE)

    @property
    def driving_gap_pct(self) -> float | None:
        return mean_gap_pct([self], DRIVING)

    @property
    def distance_gap_pct(self) -> float | None:
        return mean_gap_pct([self], DISTANCE)

    def as_dict(self) -> dict[str, Any]:
        gap = self.objective_gap_pct
        return {
            "seed": self.seed,
            "short": self.short.as_dict(),
            "reference": self.reference.as_dict() if self.reference else None,
            "objective_gap_pct": None if gap is None else round(gap, 3),
        }


def mean_gap_pct(pairs: Sequence[RunPair], figure: Figure) -> float | None:
    """How much worse the short runs' mean ``figure`` is than the references' mean (None when
    a reference or a figure is missing)."""
    refs = [p.reference for p in pairs]
    if not pairs or any(r is None for r in refs):
        return None
    short = _mean([figure(p.short) for p in pairs])
    return gap_pct(short, _mean([figure(r) for r in refs if r is not None]))


@dataclass(frozen=True)
class PlanBenchResult:
    """The whole benchmark: the extract, the scenario, the runs and the gaps.

    ``short`` and ``reference`` are the runs of the first optimiser seed; ``repeats`` holds
    every seed's pair (the first included). With more than one seed, the gaps compare the
    means of the short runs with the means of the reference runs, so one lucky or unlucky
    seed does not decide the verdict."""

    source: str
    extract: str
    config: ScenarioConfig
    network_s: float
    scenario_s: float
    scenario: ScenarioFigures
    short: RunFigures
    reference: RunFigures | None
    repeats: list[RunPair] = field(default_factory=list)
    target_pct: float = 2.0

    @property
    def pairs(self) -> list[RunPair]:
        return self.repeats or [RunPair(self.config.seed, self.short, self.reference)]

    @property
    def objective_gap_pct(self) -> float | None:
        """The short runs' objective against the references' (the optimiser's own measure);
        means over the seeds."""
        return mean_gap_pct(self.pairs, OBJECTIVE)

    @property
    def driving_gap_pct(self) -> float | None:
        return mean_gap_pct(self.pairs, DRIVING)

    @property
    def distance_gap_pct(self) -> float | None:
        return mean_gap_pct(self.pairs, DISTANCE)

    @property
    def target_met(self) -> bool | None:
        """Whether every short run plans as many orders as its reference, and the short runs
        are within ``target_pct`` of the references' objective on average (None without a
        reference)."""
        gap = self.objective_gap_pct
        if gap is None:
            return None
        planned = all(p.reference and p.short.planned >= p.reference.planned for p in self.pairs)
        return gap <= self.target_pct and planned

    @property
    def feasible(self) -> bool:
        """Every run passed the independent check."""
        return all(
            p.short.feasible and (p.reference is None or p.reference.feasible) for p in self.pairs
        )

    def as_dict(self) -> dict[str, Any]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 3)

        return {
            "source": self.source,
            "extract": self.extract,
            "seed": self.config.seed,
            "config": {
                "orders": self.config.orders,
                "shifts": self.config.shifts,
                "fleet": self.config.fleet,
                "radius_km": self.config.radius_km,
            },
            "network_s": round(self.network_s, 3),
            "scenario_s": round(self.scenario_s, 3),
            "scenario": self.scenario.as_dict(),
            "short": self.short.as_dict(),
            "reference": self.reference.as_dict() if self.reference else None,
            "repeats": [p.as_dict() for p in self.pairs],
            "gap": {
                "objective_pct": rounded(self.objective_gap_pct),
                "driving_pct": rounded(self.driving_gap_pct),
                "distance_pct": rounded(self.distance_gap_pct),
                "planned_difference": (
                    self.short.planned - self.reference.planned if self.reference else None
                ),
                "target_pct": self.target_pct,
                "target_met": self.target_met,
            },
        }


def _plan_once(
    sessions: sessionmaker[Session],
    settings: Settings,
    provider: MemoisingProvider,
    scenario: ScenarioFigures,
    *,
    time_limit_s: float,
    seed: int,
    max_iterations: int | None = None,
) -> RunFigures:
    """Plan the day once through ``create_plan`` and check the stored plan."""
    clock = FrozenClock(_local(DAY - timedelta(days=1), dtime(18, 0), ZoneInfo(scenario.timezone)))
    started = time.perf_counter()
    view = create_plan(
        sessions,
        clock,
        settings,
        merchant_id=scenario.merchant_id,
        depot_id=scenario.depot_id,
        day=DAY,
        time_limit_s=time_limit_s,
        seed=seed,
        provider=provider,
        max_iterations=max_iterations,
    )
    plan_s = time.perf_counter() - started
    plan = view.plan
    with transaction(sessions) as session:
        day = load_day(session, clock, settings, scenario.merchant_id, scenario.depot_id, DAY)
    violations = check_persisted_plan(plan, day, provider)
    stats = plan.stats
    reasons = Counter(str(u.get("reason")) for u in plan.unassigned or [])

    def optional_int(key: str) -> int | None:
        value = stats.get(key)
        return None if value is None else int(value)

    return RunFigures(
        time_limit_s=time_limit_s,
        plan_s=plan_s,
        matrix_s=float(stats.get("matrix_s") or 0.0),
        solve_s=float(stats.get("solve_s") or 0.0),
        objective=optional_int("objective"),
        iterations=optional_int("iterations"),
        search=stats.get("search"),
        routes_used=sum(1 for r in plan.routes if r.stops),
        shifts=len(plan.routes),
        orders=int(stats.get("orders") or 0),
        planned=int(stats.get("planned") or 0),
        unassigned=len(plan.unassigned or []),
        unassigned_by_reason=dict(sorted(reasons.items())),
        driving_s=int(stats.get("driving_s") or 0),
        distance_m=int(stats.get("distance_m") or 0),
        planner_feasible=bool(stats.get("feasible")),
        violations=violations,
        last_15_min_pct=stats.get("last_15_min_pct"),
        mean_slack_min=stats.get("mean_slack_min"),
        window_buffer_s=int(stats.get("window_buffer_s") or 0),
        buffer_relaxed=int(stats.get("buffer_relaxed") or 0),
        buffer_repair=stats.get("buffer_repair"),
    )


def _quiet(_name: str, _limit: float | None) -> None:
    """The default phase callback: says nothing."""


def run_plan_bench(
    source: str = "helsinki",
    *,
    config: ScenarioConfig | None = None,
    time_limit_s: float = 30.0,
    reference_limit_s: float = 300.0,
    database_url: str | None = None,
    cache_dir: Path | None = None,
    on_phase: PhaseCallback = _quiet,
    repeats: int = 1,
    window_buffer_s: int | None = None,
    max_iterations: int | None = None,
) -> PlanBenchResult:
    """Build the scenario on ``source`` (an OSM extract path, or ``"helsinki"``), plan it at
    ``time_limit_s`` and, unless ``reference_limit_s`` is 0, again at ``reference_limit_s``;
    ``repeats`` times, with optimiser seeds ``config.seed``, ``config.seed + 1``, ... on the
    same day.

    ``database_url``: ``None`` for a temporary SQLite file, a ``sqlite:///`` path of a new
    file, or a PostgreSQL server on which a scratch database is created and dropped.
    ``cache_dir``: where built road graphs are kept between runs (``None``: rebuilt each
    time). Raises ``TravelTimeError`` when the extract cannot be read and ``ValueError`` when
    the scenario cannot be placed on it or the database URL is unusable."""
    config = config or ScenarioConfig()
    on_phase("loading the road network", None)
    started = time.perf_counter()
    osm = OsmRoadProvider(source, cache_dir=cache_dir)
    profiles = list(dict.fromkeys(k.profile for k in config.kinds))
    networks = [osm.network(p) for p in profiles]
    network_s = time.perf_counter() - started
    extract = str(osm.path_on_disk)

    on_phase(f"placing {config.orders:,} orders on the road network", None)
    started = time.perf_counter()
    site = pick_site(networks[0].graph.bbox.tolist())
    depot = snap_depot(networks, site)
    points = sample_points(
        networks,
        config.orders,
        np.random.default_rng([config.seed, 1]),
        centre=depot,
        radius_m=config.radius_km * 1000.0,
    )
    provider = MemoisingProvider(osm)
    with scratch_workdir() as workdir, scratch_database(database_url, workdir) as url:
        engine = make_engine(url)
        try:
            on_phase("writing the scenario to a fresh database", None)
            upgrade(engine)
            sessions = make_sessionmaker(engine)
            scenario = write_scenario(sessions, site, depot, points, config)
            scenario_s = time.perf_counter() - started
            settings = Settings(
                database_url=url,
                travel_provider="osm",
                osm_source=source,
                plan_seed=config.seed,
            )
            if window_buffer_s is not None:
                settings = settings.model_copy(update={"plan_window_buffer_s": window_buffer_s})
            pairs: list[RunPair] = []
            for seed in range(config.seed, config.seed + max(1, repeats)):
                which = f", optimiser seed {seed}" if repeats > 1 else ""
                on_phase(f"planning with a {time_limit_s:g} s limit{which}", time_limit_s)
                short = _plan_once(
                    sessions,
                    settings,
                    provider,
                    scenario,
                    time_limit_s=time_limit_s,
                    seed=seed,
                    max_iterations=max_iterations,
                )
                reference = None
                if reference_limit_s > 0:
                    on_phase(
                        f"reference run with a {reference_limit_s:g} s limit{which}",
                        reference_limit_s,
                    )
                    reference = _plan_once(
                        sessions,
                        settings,
                        provider,
                        scenario,
                        time_limit_s=reference_limit_s,
                        seed=seed,
                    )
                pairs.append(RunPair(seed, short, reference))
        finally:
            engine.dispose()
    return PlanBenchResult(
        source=source,
        extract=extract,
        config=config,
        network_s=network_s,
        scenario_s=scenario_s,
        scenario=scenario,
        short=pairs[0].short,
        reference=pairs[0].reference,
        repeats=pairs,
    )
