"""A fleet on the road, for benchmarks that send positions: drivers with device ids on active
routes of today's published plan (what ``/ingest/osmand`` needs to take their fixes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.domain.dispatch.models import Depot, Driver, Plan, Route, Shift, Vehicle
from doorstep.domain.tracking.devices import propose_device_id
from doorstep.ids import new_id

__all__ = ["BenchRoute", "active_routes"]


@dataclass(frozen=True)
class BenchRoute:
    device_id: str
    route_id: str


def active_routes(
    s: Session, clock: Clock, merchant_id: str, count: int, depot_at: tuple[float, float]
) -> list[BenchRoute]:
    """A depot at ``depot_at``, a published plan for today and ``count`` drivers, each with a
    long random device id, a van and a shift running now, on an active route."""
    now = clock.now()
    depot = Depot(
        id=new_id("dep", now),
        merchant_id=merchant_id,
        name="Fontvieille",
        address_line1="6 Quai Antoine Ier",
        city="Monaco",
        country="MC",
        lat=depot_at[0],
        lon=depot_at[1],
        opening_hours={},
        created_at=now,
    )
    plan = Plan(
        id=new_id("pln", now),
        merchant_id=merchant_id,
        depot_id=depot.id,
        date=now.date(),
        status="published",
        seed=1,
        time_limit_s=1,
        travel_provider="straight",
        stats={},
        unassigned=[],
        created_at=now,
        published_at=now,
    )
    s.add(depot)
    s.flush()
    s.add(plan)
    out: list[BenchRoute] = []
    rows: list[tuple[Vehicle, Driver, Shift, Route]] = []
    for i in range(count):
        vehicle = Vehicle(
            id=new_id("veh", now),
            merchant_id=merchant_id,
            name=f"Van {i + 1}",
            capacity_weight_kg=500,
            capacity_parcels=80,
            created_at=now,
        )
        device_id = propose_device_id()
        driver = Driver(
            id=new_id("drv", now),
            merchant_id=merchant_id,
            name=f"Driver {i + 1}",
            device_id=device_id,
            created_at=now,
        )
        shift = Shift(
            id=new_id("shf", now),
            merchant_id=merchant_id,
            driver_id=driver.id,
            vehicle_id=vehicle.id,
            depot_id=depot.id,
            start_at=now - timedelta(hours=4),
            end_at=now + timedelta(hours=4),
            status="active",
            created_at=now,
        )
        route = Route(
            id=new_id("rte", now),
            merchant_id=merchant_id,
            plan_id=plan.id,
            shift_id=shift.id,
            driver_id=driver.id,
            vehicle_id=vehicle.id,
            position=i,
            status="active",
        )
        rows.append((vehicle, driver, shift, route))
        out.append(BenchRoute(device_id, route.id))
    # No ORM relationships between these: insert parents before children.
    for level in range(4):
        s.add_all(row[level] for row in rows)
        s.flush()
    return out
