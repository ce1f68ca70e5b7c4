"""Factories that write rows straight through the ORM, for tests that need a realistic day
without going through every API first.

``monaco_day`` builds a small, seeded delivery day in Monaco: a depot in Fontvieille (open
07:00-20:00 every day, as every depot made here unless told otherwise), three vans with their
drivers and shifts, and orders spread over the principality with two-hour windows.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from doorstep.db.engine import transaction
from doorstep.domain.dispatch.models import Depot, Driver, Shift, Vehicle
from doorstep.domain.dispatch.planning import create_plan
from doorstep.domain.dispatch.publishing import publish_plan
from doorstep.domain.dispatch.schemas import DAYS
from doorstep.domain.dispatch.views import PlanView
from doorstep.domain.errors import Actor
from doorstep.domain.orders.models import Order
from doorstep.ids import new_id
from doorstep.runtime import Runtime

MONACO = ZoneInfo("Europe/Monaco")
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # when the fixtures' rows were "created"
FONTVIEILLE = (43.7285, 7.4150)
STREETS = [
    "Avenue de la Costa",
    "Boulevard des Moulins",
    "Rue Grimaldi",
    "Boulevard Albert Ier",
    "Avenue Princesse Grace",
    "Rue Caroline",
    "Boulevard du Jardin Exotique",
    "Avenue de l'Annonciade",
]


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """``hour:minute`` on ``day`` in Monaco, as an aware datetime."""
    return datetime.combine(day, time(hour, minute), tzinfo=MONACO)


def make_depot(session: Session, merchant_id: str, **kw: Any) -> Depot:
    depot = Depot(
        id=new_id("dep", T0),
        merchant_id=merchant_id,
        name=kw.pop("name", "Fontvieille"),
        address_line1=kw.pop("address_line1", "6 Quai Antoine Ier"),
        city="Monaco",
        postal_code="98000",
        country="MC",
        lat=kw.pop("lat", FONTVIEILLE[0]),
        lon=kw.pop("lon", FONTVIEILLE[1]),
        opening_hours=kw.pop("opening_hours", {day: [["07:00", "20:00"]] for day in DAYS}),
        created_at=T0,
        **kw,
    )
    session.add(depot)
    session.flush()
    return depot


def make_vehicle(session: Session, merchant_id: str, **kw: Any) -> Vehicle:
    vehicle = Vehicle(
        id=new_id("veh", T0),
        merchant_id=merchant_id,
        name=kw.pop("name", "Van"),
        profile=kw.pop("profile", "van"),
        capacity_weight_kg=kw.pop("capacity_weight_kg", 300.0),
        capacity_parcels=kw.pop("capacity_parcels", 60),
        skills=kw.pop("skills", []),
        active=kw.pop("active", True),
        created_at=T0,
        **kw,
    )
    session.add(vehicle)
    session.flush()
    return vehicle


def make_driver(session: Session, merchant_id: str, **kw: Any) -> Driver:
    driver = Driver(
        id=new_id("drv", T0),
        merchant_id=merchant_id,
        name=kw.pop("name", "Marco Rossi"),
        phone=kw.pop("phone", None),
        device_id=kw.pop("device_id", "dev-" + secrets.token_hex(6)),
        skills=kw.pop("skills", []),
        active=kw.pop("active", True),
        created_at=T0,
        **kw,
    )
    session.add(driver)
    session.flush()
    return driver


def make_shift(
    session: Session,
    merchant_id: str,
    *,
    driver: Driver,
    vehicle: Vehicle,
    depot: Depot,
    start_at: datetime,
    end_at: datetime,
    **kw: Any,
) -> Shift:
    shift = Shift(
        id=new_id("shf", T0),
        merchant_id=merchant_id,
        driver_id=driver.id,
        vehicle_id=vehicle.id,
        depot_id=depot.id,
        start_at=start_at,
        end_at=end_at,
        return_to_depot=kw.pop("return_to_depot", True),
        status=kw.pop("status", "planned"),
        created_at=T0,
        **kw,
    )
    session.add(shift)
    session.flush()
    return shift


def make_order(
    session: Session,
    merchant_id: str,
    *,
    reference: str,
    lat: float,
    lon: float,
    window: tuple[datetime, datetime] | None = None,
    weight_kg: float = 2.0,
    parcels: int = 1,
    skills: list[str] | None = None,
    service_level: str = "scheduled",
    status: str = "pending",
    created_at: datetime = T0,
    **kw: Any,
) -> Order:
    """An order with every non-null column set (the tracking token hash is random)."""
    order = Order(
        id=new_id("ord", created_at),
        merchant_id=merchant_id,
        reference=reference,
        status=status,
        service_level=service_level,
        recipient_name=kw.pop("recipient_name", f"Recipient {reference}"),
        recipient_phone=kw.pop("recipient_phone", "+33612345678"),
        address_line1=kw.pop("address_line1", "1 Avenue de la Costa"),
        city="Monaco",
        postal_code="98000",
        country="MC",
        lat=lat,
        lon=lon,
        window_start=window[0] if window else None,
        window_end=window[1] if window else None,
        window_sequence=0,
        required_skills=skills or [],
        parcel_count=parcels,
        weight_kg=weight_kg,
        tracking_token_hash=secrets.token_hex(32),
        tracking_nonce=secrets.token_hex(8),
        attempts=0,
        version=1,
        created_at=created_at,
        updated_at=created_at,
        **kw,
    )
    session.add(order)
    session.flush()
    return order


@dataclass
class Day:
    """Ids of a built day: the depot, shifts (earliest first), their drivers, and orders by
    reference."""

    day: date
    depot_id: str
    shift_ids: list[str]
    driver_ids: list[str]
    vehicle_ids: list[str]
    orders: dict[str, str] = field(default_factory=dict)  # reference -> id


def monaco_day(
    session: Session, merchant_id: str, day: date, *, orders: int = 30, seed: int = 7
) -> Day:
    """A depot, three vans (300 kg, 60 parcels) on shifts 08-16, 09-17 and 10-18 (the second
    with a 30-minute break between 12:00 and 13:30), and ``orders`` orders with two-hour
    windows between 09:00 and 17:00, placed at seeded random points over Monaco."""
    rng = random.Random(seed)
    depot = make_depot(session, merchant_id)
    built = Day(day, depot.id, [], [], [])
    for i, (start, end) in enumerate([(8, 16), (9, 17), (10, 18)]):
        vehicle = make_vehicle(session, merchant_id, name=f"Van {i + 1}")
        driver = make_driver(session, merchant_id, name=f"Driver {i + 1}")
        extra: dict[str, Any] = {}
        if i == 1:
            extra = {
                "break_earliest_at": local(day, 12),
                "break_latest_at": local(day, 13, 30),
                "break_duration_s": 1800,
            }
        shift = make_shift(
            session,
            merchant_id,
            driver=driver,
            vehicle=vehicle,
            depot=depot,
            start_at=local(day, start),
            end_at=local(day, end),
            **extra,
        )
        built.shift_ids.append(shift.id)
        built.driver_ids.append(driver.id)
        built.vehicle_ids.append(vehicle.id)
    for n in range(orders):
        hour = rng.randint(9, 15)
        ref = f"MC-{n + 1:03d}"
        order = make_order(
            session,
            merchant_id,
            reference=ref,
            lat=round(rng.uniform(43.730, 43.750), 5),
            lon=round(rng.uniform(7.410, 7.440), 5),
            window=(local(day, hour), local(day, hour + 2)),
            weight_kg=round(rng.uniform(0.5, 12.0), 1),
            parcels=rng.randint(1, 3),
            address_line1=f"{rng.randint(1, 40)} {rng.choice(STREETS)}",
        )
        built.orders[ref] = order.id
    return built


def publish_new_plan(
    runtime: Runtime, merchant_id: str, depot_id: str, day: date, *, time_limit_s: float
) -> PlanView:
    """Plan ``day`` at the depot (domain call, no HTTP) and publish the plan at once."""
    view = create_plan(
        runtime.sessions,
        runtime.clock,
        runtime.settings,
        merchant_id=merchant_id,
        depot_id=depot_id,
        day=day,
        time_limit_s=time_limit_s,
    )
    with transaction(runtime.sessions) as session:
        publish_plan(session, runtime.clock, merchant_id, view.plan.id, actor=Actor.system())
    return view
