"""Fleets for the benchmarks, written straight into the database (the benchmarks measure
ingest, fan-out and ETAs, not order intake or the optimiser): a depot with a published plan,
and drivers with a van, a shift and a route on it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.domain.dispatch.models import Depot, Driver, Plan, Route, Shift, Vehicle
from doorstep.domain.tracking.devices import propose_device_id
from doorstep.ids import new_id

__all__ = ["BenchRoute", "active_routes", "crew", "crew_on_route", "published_plan"]


@dataclass(frozen=True)
class BenchRoute:
    device_id: str
    route_id: str


def published_plan(
    s: Session,
    merchant_id: str,
    *,
    day: date,
    at: datetime,
    depot_at: tuple[float, float],
    travel_provider: str,
    seed: int = 1,
) -> Plan:
    """A depot in Fontvieille at ``depot_at`` and a published plan of ``day`` there."""
    depot = Depot(
        id=new_id("dep", at),
        merchant_id=merchant_id,
        name="Fontvieille",
        address_line1="6 Quai Antoine Ier",
        city="Monaco",
        postal_code="98000",
        country="MC",
        lat=depot_at[0],
        lon=depot_at[1],
        opening_hours={},
        created_at=at,
    )
    plan = Plan(
        id=new_id("pln", at),
        merchant_id=merchant_id,
        depot_id=depot.id,
        date=day,
        status="published",
        seed=seed,
        time_limit_s=1.0,
        travel_provider=travel_provider,
        stats={},
        unassigned=[],
        created_at=at,
        published_at=at,
    )
    s.add(depot)
    s.flush()  # no relationships between these rows: flush in foreign-key order
    s.add(plan)
    s.flush()
    return plan


def crew(
    s: Session,
    merchant_id: str,
    depot_id: str,
    position: int,
    *,
    at: datetime,
    shift: tuple[datetime, datetime],
    capacity: tuple[float, int] = (300.0, 60),
    started: bool = False,
) -> tuple[Shift, str]:
    """Driver and van number ``position + 1`` (the driver with a long random device id; the
    van carrying ``capacity``: kilograms, parcels) on a shift over ``shift`` from the depot,
    running when ``started``, else planned. Returns the shift and the driver's device id."""
    vehicle = Vehicle(
        id=new_id("veh", at),
        merchant_id=merchant_id,
        name=f"Van {position + 1}",
        profile="van",
        capacity_weight_kg=capacity[0],
        capacity_parcels=capacity[1],
        skills=[],
        active=True,
        created_at=at,
    )
    device_id = propose_device_id()
    driver = Driver(
        id=new_id("drv", at),
        merchant_id=merchant_id,
        name=f"Driver {position + 1}",
        device_id=device_id,
        skills=[],
        active=True,
        created_at=at,
    )
    work = Shift(
        id=new_id("shf", at),
        merchant_id=merchant_id,
        driver_id=driver.id,
        vehicle_id=vehicle.id,
        depot_id=depot_id,
        start_at=shift[0],
        end_at=shift[1],
        return_to_depot=True,
        status="active" if started else "planned",
        created_at=at,
    )
    for row in (vehicle, driver, work):  # no ORM relationships: parents before children
        s.add(row)
        s.flush()
    return work, device_id


def crew_on_route(
    s: Session,
    plan: Plan,
    position: int,
    *,
    at: datetime,
    shift: tuple[datetime, datetime],
    started: bool,
) -> tuple[Route, str]:
    """A :func:`crew` with a route on ``plan``: under way when ``started``, else planned to
    leave at the shift's start. Returns the route and the driver's device id."""
    work, device_id = crew(
        s, plan.merchant_id, plan.depot_id, position, at=at, shift=shift, started=started
    )
    route = Route(
        id=new_id("rte", at),
        merchant_id=plan.merchant_id,
        plan_id=plan.id,
        shift_id=work.id,
        driver_id=work.driver_id,
        vehicle_id=work.vehicle_id,
        position=position,
        status="active" if started else "planned",
        start_at=None if started else shift[0],
    )
    s.add(route)
    s.flush()
    return route, device_id


def active_routes(
    s: Session, clock: Clock, merchant_id: str, count: int, depot_at: tuple[float, float]
) -> list[BenchRoute]:
    """A depot at ``depot_at``, a published plan for today and ``count`` drivers, each with a
    long random device id, a van and a shift running now, on an active route."""
    now = clock.now()
    plan = published_plan(
        s, merchant_id, day=now.date(), at=now, depot_at=depot_at, travel_provider="straight"
    )
    out: list[BenchRoute] = []
    for i in range(count):
        route, device_id = crew_on_route(
            s,
            plan,
            i,
            at=now,
            shift=(now - timedelta(hours=4), now + timedelta(hours=4)),
            started=True,
        )
        out.append(BenchRoute(device_id, route.id))
    return out
