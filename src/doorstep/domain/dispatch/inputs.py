"""What the planner reads: a depot's day as plain data (:class:`DayInput`), and the database
reads that fill it.

Orders due on a day are the plannable ones whose window starts that day in the merchant's
timezone, plus same-day/next-day orders without a window that are due by then; the shifts are
the planned or active ones starting that day at the depot, of active drivers and vehicles, that
the depot's opening hours leave some time (:mod:`.opening`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.domain.accounts.models import Merchant
from doorstep.domain.dispatch.models import Driver, Plan, Route, Shift, Stop, Vehicle
from doorstep.domain.dispatch.opening import DepotSpan, closed_note, depot_span, open_during
from doorstep.domain.dispatch.resources import access_depot, day_bounds
from doorstep.domain.errors import FieldError, NotFound, Unprocessable
from doorstep.domain.orders.location import NEEDS_LOCATION, needs_location_detail, point_of
from doorstep.domain.orders.models import Order
from doorstep.domain.orders.status import PLANNABLE
from doorstep.routing.travel.base import LatLon, Profile
from doorstep.routing.travel.straight import haversine_m
from doorstep.settings import Settings

PLANNING_SHIFT_STATUSES = ("planned", "active")
WINDOWLESS_LEVELS = {"same_day": 0, "next_day": 1}
DONE_STOP_STATUSES = frozenset({"done", "failed"})
AT_DEPOT_M = 150.0
"""A driver reporting a position within this of the depot has not left it yet."""


def starts_away(start: RouteStart, depot: LatLon) -> bool:
    """Whether a vehicle starting from ``start`` is away from ``depot``: from a stop it made,
    or from a position more than :data:`AT_DEPOT_M` away (a driver in the yard is at the
    depot)."""
    if start.kind == "position":
        distance = haversine_m(start.point.lat, start.point.lon, depot.lat, depot.lon)
        return float(distance) > AT_DEPOT_M
    return start.kind == "stop"


# --- Plain inputs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderInput:
    """An order as the planner sees it (weight in grams, service time resolved)."""

    order_id: str
    reference: str
    point: LatLon
    window_start: datetime | None
    window_end: datetime | None
    service_s: int
    weight_g: int
    parcels: int
    skills: frozenset[str]


@dataclass(frozen=True)
class ShiftInput:
    """A shift with its driver and vehicle as the planner sees it."""

    shift_id: str
    driver_id: str
    vehicle_id: str
    profile: Profile
    start_at: datetime
    end_at: datetime
    break_earliest_at: datetime | None
    break_latest_at: datetime | None
    break_duration_s: int | None
    return_to_depot: bool
    capacity_g: int
    capacity_parcels: int
    skills: frozenset[str]


@dataclass(frozen=True)
class RouteStart:
    """Where and from when a vehicle is free: the depot at its shift start, or (re-planning)
    the driver's last position or last stop made, now."""

    point: LatLon
    at: datetime
    kind: str  # depot | position | stop


@dataclass(frozen=True)
class DoneStop:
    """A stop already made (delivered or failed), copied unchanged into a re-plan."""

    order_id: str
    status: str
    planned_arrival: datetime | None
    planned_departure: datetime | None
    service_time_s: int
    load_weight_kg: float
    load_parcels: int
    distance_from_prev_m: float
    eta: datetime | None
    actual_arrival: datetime | None
    actual_departure: datetime | None


@dataclass(frozen=True)
class History:
    """The stops a route already made, and when it started."""

    route_start: datetime | None
    stops: tuple[DoneStop, ...]
    driving_s: float


@dataclass
class DayInput:
    """Everything the planner needs about one depot's day, read from the database."""

    merchant_id: str
    depot_id: str
    day: date
    tz: ZoneInfo
    depot: LatLon
    orders: list[OrderInput]
    shifts: list[ShiftInput]  # the vehicles of the problem
    # Re-planning only:
    idle_shifts: list[ShiftInput] = field(default_factory=list)  # dropped/over: history only
    starts: dict[str, RouteStart] = field(default_factory=dict)
    fixed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    preferred: dict[str, frozenset[str]] = field(default_factory=dict)
    initial: dict[str, list[str]] | None = None
    history: dict[str, History] = field(default_factory=dict)
    stop_status: dict[str, str] = field(default_factory=dict)  # order -> en_route|arrived
    breaks_taken: dict[str, str] = field(default_factory=dict)  # shift -> when (ISO), re-plans
    skipped_shifts: list[dict[str, str]] = field(default_factory=list)
    # The depot's week of opening hours in ``tz``; empty: always open.
    opening_hours: dict[str, list[list[str]]] = field(default_factory=dict)
    # Due orders without a place (needs_location), as unassigned entries of the plan.
    unlocated: list[dict[str, Any]] = field(default_factory=list)

    @property
    def epoch(self) -> datetime:
        return datetime.combine(self.day, dtime(0), tzinfo=self.tz).astimezone(UTC)

    def free_at(self, shift: ShiftInput) -> datetime:
        """When the shift's vehicle is free: its start, or the re-planning start if later."""
        start = self.starts.get(shift.shift_id)
        return max(shift.start_at, start.at) if start is not None else shift.start_at

    def is_out(self, shift_id: str) -> bool:
        """Whether the vehicle is away from the depot (re-planning): it has a stop under way,
        or starts from a stop it made, or from a position away from the depot. A driver
        reporting from the depot's yard, or back from a finished route, is at the depot."""
        if self.fixed.get(shift_id):
            return True
        start = self.starts.get(shift_id)
        if start is None:
            return shift_id in self.history
        return starts_away(start, self.depot)

    def depot_span(self, shift: ShiftInput) -> DepotSpan | None:
        """When the shift's vehicle may leave the depot and must be back, as the depot's
        opening hours allow; None when they leave it no time (see :func:`.opening.depot_span`)."""
        free = self.free_at(shift)
        return depot_span(
            open_during(self.opening_hours, self.tz, free, shift.end_at),
            free,
            shift.end_at,
            returns=shift.return_to_depot,
            out=self.is_out(shift.shift_id),
        )


def unusable(
    shift: Shift,
    driver: Driver,
    vehicle: Vehicle,
    now: datetime,
    dropped: frozenset[str] = frozenset(),
) -> str | None:
    """Why a shift can take no work now, as the code plans record in ``skipped_shifts``
    (``dropped``, ``over``, ``driver_deactivated``, ``vehicle_deactivated``), or None."""
    if shift.id in dropped or shift.status == "dropped":
        return "dropped"
    if shift.status == "ended" or shift.end_at <= now:
        return "over"
    if not driver.active:
        return "driver_deactivated"
    if not vehicle.active:
        return "vehicle_deactivated"
    return None


def to_seconds(epoch: datetime, at: datetime, *, up: bool = False) -> int:
    """Whole seconds from ``epoch`` to ``at`` (rounded up for starts, down for ends)."""
    seconds = (at - epoch).total_seconds()
    return math.ceil(seconds) if up else math.floor(seconds)


def drop_closed_shifts(day: DayInput, drivers: Mapping[str, str]) -> list[ShiftInput]:
    """Take the shifts the depot's opening hours leave no time out of ``day.shifts`` and note
    each in ``day.skipped_shifts`` with a sentence for the dispatcher (``drivers``: shift id ->
    driver's name). Returns the shifts taken out."""
    kept: list[ShiftInput] = []
    closed: list[ShiftInput] = []
    for shift in day.shifts:
        (kept if day.depot_span(shift) is not None else closed).append(shift)
    for shift in closed:
        free = day.free_at(shift)
        note = closed_note(
            open_during(day.opening_hours, day.tz, free, shift.end_at) or [],
            free,
            shift.end_at,
            day.tz,
        )
        hours = f"{shift.start_at.astimezone(day.tz):%H:%M}-{shift.end_at.astimezone(day.tz):%H:%M}"
        name = drivers.get(shift.shift_id, "a driver")
        day.skipped_shifts.append(
            {
                "shift_id": shift.shift_id,
                "reason": "depot_closed",
                "detail": f"Shift of {name} {hours}: {note}",
            }
        )
        day.starts.pop(shift.shift_id, None)
    day.shifts = kept
    return closed


# --- Database -------------------------------------------------------------------------------


def order_input(order: Order, default_service_s: int) -> OrderInput:
    """An order row as planner input."""
    return OrderInput(
        order_id=order.id,
        reference=order.reference,
        point=LatLon(*point_of(order)),
        window_start=order.window_start,
        window_end=order.window_end,
        service_s=order.service_time_s if order.service_time_s is not None else default_service_s,
        weight_g=round((order.weight_kg or 0.0) * 1000),
        parcels=max(0, order.parcel_count or 0),
        skills=frozenset(order.required_skills or ()),
    )


def split_located(orders: list[Order]) -> tuple[list[Order], list[dict[str, Any]]]:
    """Orders that can be planned, and the unassigned entries (reason ``needs_location``,
    with the places the address may be) of those whose address has no place yet."""
    located = [o for o in orders if o.location_state != NEEDS_LOCATION and o.lat is not None]
    unlocated = [
        {
            "order_id": o.id,
            "reference": o.reference,
            "reason": "needs_location",
            "detail": needs_location_detail(o),
            "candidates": list(o.location_candidates or []),
        }
        for o in orders
        if o.location_state == NEEDS_LOCATION or o.lat is None
    ]
    return located, unlocated


def shift_input(shift: Shift, driver: Driver, vehicle: Vehicle) -> ShiftInput:
    """A shift row with its driver and vehicle as planner input; skills are the union."""
    return ShiftInput(
        shift_id=shift.id,
        driver_id=driver.id,
        vehicle_id=vehicle.id,
        profile=Profile(vehicle.profile),
        start_at=shift.start_at,
        end_at=shift.end_at,
        break_earliest_at=shift.break_earliest_at,
        break_latest_at=shift.break_latest_at,
        break_duration_s=shift.break_duration_s,
        return_to_depot=shift.return_to_depot,
        capacity_g=round(vehicle.capacity_weight_kg * 1000),
        capacity_parcels=vehicle.capacity_parcels,
        skills=frozenset(driver.skills or ()) | frozenset(vehicle.skills or ()),
    )


def default_service_s(merchant: Merchant, settings: Settings) -> int:
    """Seconds at the door when the order does not say: the merchant's, else the settings'."""
    value = (merchant.config or {}).get("default_service_time_s")
    return int(value) if isinstance(value, int) and value >= 0 else settings.default_service_time_s


def _published_order_ids(session: Session, merchant_id: str, *conditions: Any) -> set[str]:
    stmt = (
        select(Stop.order_id)
        .join(Route, Route.id == Stop.route_id)
        .join(Plan, Plan.id == Route.plan_id)
        .where(Plan.merchant_id == merchant_id, Plan.status == "published", *conditions)
    )
    return set(session.scalars(stmt))


def due_orders(
    session: Session, merchant: Merchant, depot_id: str, day: date, today: date
) -> list[Order]:
    """Orders to deliver on ``day``: plannable ones whose window starts that day (merchant's
    timezone), and same-day/next-day ones without a window that are due by then. Left out:
    orders on another depot's published plan for that day, and windowless orders already on a
    published plan for another day that is not over yet."""
    tz = ZoneInfo(merchant.timezone)
    start, end = day_bounds(day, tz)
    base = select(Order).where(Order.merchant_id == merchant.id, Order.status.in_(PLANNABLE))
    windowed = list(
        session.scalars(base.where(Order.window_start >= start, Order.window_start < end))
    )
    windowless = [
        o
        for o in session.scalars(
            base.where(
                Order.window_start.is_(None),
                Order.service_level.in_(tuple(WINDOWLESS_LEVELS)),
                Order.created_at < end,
            )
        )
        if o.created_at.astimezone(tz).date() + timedelta(days=WINDOWLESS_LEVELS[o.service_level])
        <= day
    ]
    taken = _published_order_ids(session, merchant.id, Plan.date == day, Plan.depot_id != depot_id)
    if windowless:
        taken |= _published_order_ids(
            session,
            merchant.id,
            Plan.date != day,
            Plan.date >= today,
            Stop.status.not_in(("failed", "skipped")),
        )
    orders = [o for o in windowed + windowless if o.id not in taken]
    return sorted(orders, key=lambda o: o.id)


def day_shifts(
    session: Session, merchant_id: str, depot_id: str, day: date, tz: ZoneInfo
) -> list[tuple[Shift, Driver, Vehicle]]:
    """Planned or active shifts starting on ``day`` at the depot, earliest first."""
    start, end = day_bounds(day, tz)
    rows = session.execute(
        select(Shift, Driver, Vehicle)
        .join(Driver, Driver.id == Shift.driver_id)
        .join(Vehicle, Vehicle.id == Shift.vehicle_id)
        .where(
            Shift.merchant_id == merchant_id,
            Shift.depot_id == depot_id,
            Shift.start_at >= start,
            Shift.start_at < end,
            Shift.status.in_(PLANNING_SHIFT_STATUSES),
        )
        .order_by(Shift.start_at, Shift.id)
    ).all()
    return [(s, d, v) for s, d, v in rows]


def load_day(
    session: Session, clock: Clock, settings: Settings, merchant_id: str, depot_id: str, day: date
) -> DayInput:
    """Read ``day`` at the depot: due orders and the shifts of active drivers and vehicles.

    Planning the current day mid-way starts every vehicle at the depot no earlier than now,
    and leaves out shifts that are already over, and those the depot's opening hours leave no
    time (:func:`drop_closed_shifts`)."""
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound("no such merchant")
    tz = ZoneInfo(merchant.timezone)
    try:
        depot = access_depot(session, merchant_id, depot_id)
    except NotFound:
        raise Unprocessable(
            "invalid plan", errors=[FieldError("depot_id", "no such depot", "not_found")]
        ) from None
    now = clock.now()
    today = now.astimezone(tz).date()
    if day < today:
        raise Unprocessable("invalid plan", errors=[FieldError("date", "that day has passed")])
    depot_point = LatLon(depot.lat, depot.lon)
    shifts: list[ShiftInput] = []
    starts: dict[str, RouteStart] = {}
    skipped: list[dict[str, str]] = []
    drivers: dict[str, str] = {}
    for shift, driver, vehicle in day_shifts(session, merchant_id, depot_id, day, tz):
        why = unusable(shift, driver, vehicle, now)
        if why is not None:
            skipped.append({"shift_id": shift.id, "reason": why})
            continue
        if shift.start_at < now:
            starts[shift.id] = RouteStart(depot_point, now, "depot")
        shifts.append(shift_input(shift, driver, vehicle))
        drivers[shift.id] = driver.name
    service = default_service_s(merchant, settings)
    located, unlocated = split_located(due_orders(session, merchant, depot_id, day, today))
    orders = [order_input(o, service) for o in located]
    day_input = DayInput(
        merchant_id=merchant_id,
        depot_id=depot_id,
        day=day,
        tz=tz,
        depot=depot_point,
        orders=orders,
        shifts=shifts,
        starts=starts,
        skipped_shifts=skipped,
        opening_hours=depot.opening_hours or {},
        unlocated=unlocated,
    )
    drop_closed_shifts(day_input, drivers)
    return day_input
