"""Verbs for the dispatch resources: depots, vehicles, drivers and shifts.

Every read goes through an ``access_*`` function scoped to one merchant, so another merchant's
object is simply not found. Deleting something a published (or superseded) plan used is refused
with 409; drivers and vehicles can be deactivated instead. Draft plans are scratch work: deleting
a shift deletes the drafts that planned it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from doorstep.clock import Clock
from doorstep.domain.accounts.models import Merchant
from doorstep.domain.dispatch.models import Depot, Driver, Plan, Route, Shift, Vehicle
from doorstep.domain.dispatch.opening import closed_note, depot_span, open_during
from doorstep.domain.dispatch.schemas import (
    BreakIn,
    DepotIn,
    DepotPatch,
    DriverIn,
    DriverPatch,
    ShiftIn,
    ShiftPatch,
    VehicleIn,
    VehiclePatch,
)
from doorstep.domain.errors import Conflict, FieldError, NotFound, Unprocessable
from doorstep.domain.orders.location import place_depot
from doorstep.domain.tracking.models import Position
from doorstep.geocoding.base import Geocoder
from doorstep.ids import new_id

MAX_SHIFT = timedelta(hours=24)
LOCKED_PLAN_STATUSES = ("published", "superseded")
ACTIVE_SHIFT_STATUSES = ("planned", "active", "ended")

M = TypeVar("M", Depot, Vehicle, Driver, Shift)


def merchant_tz(session: Session, merchant_id: str) -> ZoneInfo:
    """The merchant's IANA timezone (days, windows and answers are in it)."""
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound("no such merchant")
    return ZoneInfo(merchant.timezone)


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants at which ``day`` starts and ends in ``tz`` (23 or 25 h on DST days)."""
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start, end


def _access(session: Session, model: type[M], merchant_id: str, object_id: str, label: str) -> M:
    obj = session.scalar(
        select(model).where(model.id == object_id, model.merchant_id == merchant_id)
    )
    if obj is None:
        raise NotFound(f"no such {label}")
    return obj


def access_depot(session: Session, merchant_id: str, depot_id: str) -> Depot:
    """The merchant's depot, or 404."""
    return _access(session, Depot, merchant_id, depot_id, "depot")


def access_vehicle(session: Session, merchant_id: str, vehicle_id: str) -> Vehicle:
    """The merchant's vehicle, or 404."""
    return _access(session, Vehicle, merchant_id, vehicle_id, "vehicle")


def access_driver(session: Session, merchant_id: str, driver_id: str) -> Driver:
    """The merchant's driver, or 404."""
    return _access(session, Driver, merchant_id, driver_id, "driver")


def access_shift(session: Session, merchant_id: str, shift_id: str) -> Shift:
    """The merchant's shift, or 404."""
    return _access(session, Shift, merchant_id, shift_id, "shift")


def page(
    session: Session,
    stmt: Select[M],
    id_col: InstrumentedAttribute[str],
    *,
    after: str | None,
    limit: int,
) -> tuple[list[M], str | None]:
    """One page ordered by id (ids are time-ordered); the cursor is the last id returned."""
    if after:
        stmt = stmt.where(id_col > after)
    rows = list(session.scalars(stmt.order_by(id_col).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (str(rows[-1].id) if more and rows else None)


def _flush_unique(session: Session, detail: str) -> None:
    """Flush inside a savepoint so a unique-constraint race answers 409, not 500."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(detail) from exc


def _used_by_locked_plan(session: Session, merchant_id: str, column: Any, value: str) -> bool:
    stmt = (
        select(func.count())
        .select_from(Route)
        .join(Plan, Plan.id == Route.plan_id)
        .where(
            Route.merchant_id == merchant_id,
            column == value,
            Plan.status.in_(LOCKED_PLAN_STATUSES),
        )
    )
    return bool(session.scalar(stmt))


def _delete_draft_plans(session: Session, merchant_id: str, plan_ids: Sequence[str]) -> None:
    for plan in session.scalars(
        select(Plan).where(
            Plan.merchant_id == merchant_id, Plan.id.in_(plan_ids), Plan.status == "draft"
        )
    ):
        session.delete(plan)
    session.flush()


# --- Depots ---------------------------------------------------------------------------------


def create_depot(
    session: Session,
    clock: Clock,
    merchant_id: str,
    data: DepotIn,
    *,
    geocoder: Geocoder | None = None,
) -> Depot:
    """Add a depot; an address without coordinates is geocoded (422 if it cannot be placed,
    or if its coordinates contradict its country)."""
    lat, lon = place_depot(geocoder, data.address)
    depot = Depot(
        id=new_id("dep", clock.now()),
        merchant_id=merchant_id,
        name=data.name,
        address_line1=data.address.line1,
        city=data.address.city,
        postal_code=data.address.postal_code,
        country=data.address.country,
        lat=lat,
        lon=lon,
        opening_hours=data.opening_hours,
        created_at=clock.now(),
    )
    session.add(depot)
    session.flush()
    return depot


def list_depots(
    session: Session, merchant_id: str, *, after: str | None = None, limit: int = 100
) -> tuple[list[Depot], str | None]:
    """One page of the merchant's depots."""
    stmt = select(Depot).where(Depot.merchant_id == merchant_id)
    return page(session, stmt, Depot.id, after=after, limit=limit)


def update_depot(
    session: Session,
    merchant_id: str,
    depot_id: str,
    data: DepotPatch,
    *,
    geocoder: Geocoder | None = None,
) -> Depot:
    """Change a depot's name, address or opening hours (an address without coordinates is
    geocoded, as in :func:`create_depot`)."""
    depot = access_depot(session, merchant_id, depot_id)
    if data.name is not None:
        depot.name = data.name
    if data.address is not None:
        depot.address_line1 = data.address.line1
        depot.city = data.address.city
        depot.postal_code = data.address.postal_code
        depot.country = data.address.country
        depot.lat, depot.lon = place_depot(geocoder, data.address)
    if data.opening_hours is not None:
        depot.opening_hours = data.opening_hours
    session.flush()
    return depot


def delete_depot(session: Session, merchant_id: str, depot_id: str) -> None:
    """Delete a depot no shift or published plan uses (its drafts go with it)."""
    depot = access_depot(session, merchant_id, depot_id)
    locked = session.scalar(
        select(func.count())
        .select_from(Plan)
        .where(Plan.depot_id == depot.id, Plan.status.in_(LOCKED_PLAN_STATUSES))
    )
    if locked:
        raise Conflict("the depot is used by a published plan and cannot be deleted")
    shifts = session.scalar(
        select(func.count()).select_from(Shift).where(Shift.depot_id == depot.id)
    )
    if shifts:
        raise Conflict(f"the depot has {shifts} shift(s); delete or move them first")
    drafts = session.scalars(select(Plan.id).where(Plan.depot_id == depot.id)).all()
    _delete_draft_plans(session, merchant_id, drafts)
    session.delete(depot)
    session.flush()


# --- Vehicles -------------------------------------------------------------------------------


def create_vehicle(session: Session, clock: Clock, merchant_id: str, data: VehicleIn) -> Vehicle:
    """Add a vehicle."""
    vehicle = Vehicle(
        id=new_id("veh", clock.now()),
        merchant_id=merchant_id,
        name=data.name,
        profile=data.profile,
        capacity_weight_kg=data.capacity_weight_kg,
        capacity_parcels=data.capacity_parcels,
        skills=data.skills,
        active=data.active,
        created_at=clock.now(),
    )
    session.add(vehicle)
    session.flush()
    return vehicle


def list_vehicles(
    session: Session, merchant_id: str, *, after: str | None = None, limit: int = 100
) -> tuple[list[Vehicle], str | None]:
    """One page of the merchant's vehicles."""
    stmt = select(Vehicle).where(Vehicle.merchant_id == merchant_id)
    return page(session, stmt, Vehicle.id, after=after, limit=limit)


def update_vehicle(
    session: Session, merchant_id: str, vehicle_id: str, data: VehiclePatch
) -> Vehicle:
    """Change a vehicle, or deactivate it."""
    vehicle = access_vehicle(session, merchant_id, vehicle_id)
    for name in data.model_fields_set:
        value = getattr(data, name)
        if value is None:
            raise Unprocessable("invalid vehicle", errors=[FieldError(name, "may not be null")])
        setattr(vehicle, name, value)
    session.flush()
    return vehicle


def delete_vehicle(session: Session, merchant_id: str, vehicle_id: str) -> None:
    """Delete a vehicle that has no shifts."""
    vehicle = access_vehicle(session, merchant_id, vehicle_id)
    if _used_by_locked_plan(session, merchant_id, Route.vehicle_id, vehicle.id):
        raise Conflict("the vehicle is on a published plan; deactivate it instead")
    shifts = session.scalar(
        select(func.count()).select_from(Shift).where(Shift.vehicle_id == vehicle.id)
    )
    if shifts:
        raise Conflict(f"the vehicle has {shifts} shift(s); delete them or deactivate it")
    session.delete(vehicle)
    session.flush()


# --- Drivers --------------------------------------------------------------------------------


def _check_device_free(session: Session, device_id: str | None, driver_id: str | None) -> None:
    if device_id is None:
        return
    stmt = select(Driver.id).where(Driver.device_id == device_id)
    if driver_id is not None:
        stmt = stmt.where(Driver.id != driver_id)
    if session.scalar(stmt) is not None:
        raise Conflict(f"device_id {device_id!r} is already registered to a driver")


def create_driver(session: Session, clock: Clock, merchant_id: str, data: DriverIn) -> Driver:
    """Add a driver; a device id already registered (by anyone) is 409."""
    _check_device_free(session, data.device_id, None)
    driver = Driver(
        id=new_id("drv", clock.now()),
        merchant_id=merchant_id,
        name=data.name,
        phone=data.phone,
        device_id=data.device_id,
        skills=data.skills,
        active=data.active,
        created_at=clock.now(),
    )
    session.add(driver)
    _flush_unique(session, f"device_id {data.device_id!r} is already registered to a driver")
    return driver


def list_drivers(
    session: Session, merchant_id: str, *, after: str | None = None, limit: int = 100
) -> tuple[list[Driver], str | None]:
    """One page of the merchant's drivers."""
    stmt = select(Driver).where(Driver.merchant_id == merchant_id)
    return page(session, stmt, Driver.id, after=after, limit=limit)


def update_driver(session: Session, merchant_id: str, driver_id: str, data: DriverPatch) -> Driver:
    """Change a driver, or deactivate them."""
    driver = access_driver(session, merchant_id, driver_id)
    fields = data.model_fields_set
    for name in ("name", "skills", "active"):
        if name in fields and getattr(data, name) is None:
            raise Unprocessable("invalid driver", errors=[FieldError(name, "may not be null")])
    if "device_id" in fields:
        _check_device_free(session, data.device_id, driver.id)
    for name in fields:
        setattr(driver, name, getattr(data, name))
    _flush_unique(session, f"device_id {data.device_id!r} is already registered to a driver")
    return driver


def delete_driver(session: Session, merchant_id: str, driver_id: str) -> None:
    """Delete a driver with no shifts and no recorded positions."""
    driver = access_driver(session, merchant_id, driver_id)
    if _used_by_locked_plan(session, merchant_id, Route.driver_id, driver.id):
        raise Conflict("the driver is on a published plan; deactivate them instead")
    shifts = session.scalar(
        select(func.count()).select_from(Shift).where(Shift.driver_id == driver.id)
    )
    if shifts:
        raise Conflict(f"the driver has {shifts} shift(s); delete them or deactivate the driver")
    positions = session.scalar(
        select(func.count()).select_from(Position).where(Position.driver_id == driver.id)
    )
    if positions:
        raise Conflict("the driver has recorded positions; deactivate them instead")
    session.delete(driver)
    session.flush()


# --- Shifts ---------------------------------------------------------------------------------


def _check_shift(
    session: Session,
    merchant_id: str,
    *,
    shift_id: str | None,
    driver_id: str,
    vehicle_id: str,
    depot_id: str,
    start_at: datetime,
    end_at: datetime,
    brk: BreakIn | None,
) -> None:
    """Refuse (422) what cannot be a shift, then (409) overlaps for the driver or vehicle."""
    errors: list[FieldError] = []
    for field, model, object_id in (
        ("driver_id", Driver, driver_id),
        ("vehicle_id", Vehicle, vehicle_id),
        ("depot_id", Depot, depot_id),
    ):
        obj = session.scalar(
            select(model).where(model.id == object_id, model.merchant_id == merchant_id)
        )
        label = field.removesuffix("_id")
        if obj is None:
            errors.append(FieldError(field, f"no such {label}", "not_found"))
        elif isinstance(obj, Driver | Vehicle) and not obj.active:
            errors.append(FieldError(field, f"the {label} is deactivated", "inactive"))
    if end_at <= start_at:
        errors.append(FieldError("end_at", "must be after start_at"))
    elif end_at - start_at > MAX_SHIFT:
        errors.append(FieldError("end_at", "a shift lasts at most 24 hours"))
    if brk is not None:
        if brk.earliest_start < start_at:
            errors.append(FieldError("break.earliest_start", "must be within the shift"))
        if brk.latest_start < brk.earliest_start:
            errors.append(FieldError("break.latest_start", "must not be before earliest_start"))
        if brk.latest_start + timedelta(seconds=brk.duration_s) > end_at:
            errors.append(FieldError("break.latest_start", "the break must end by end_at"))
    if errors:
        raise Unprocessable("invalid shift", errors=errors)
    stmt = select(Shift).where(
        Shift.merchant_id == merchant_id,
        Shift.status != "dropped",
        Shift.start_at < end_at,
        Shift.end_at > start_at,
        or_(Shift.driver_id == driver_id, Shift.vehicle_id == vehicle_id),
    )
    if shift_id is not None:
        stmt = stmt.where(Shift.id != shift_id)
    clash = session.scalars(stmt.limit(1)).first()
    if clash is not None:
        who = "driver" if clash.driver_id == driver_id else "vehicle"
        raise Conflict(f"the {who} already has shift {clash.id} at that time")


def _check_new_shift_times(session: Session, clock: Clock, merchant_id: str, data: ShiftIn) -> None:
    """Refuse (422) a new shift that has already ended, or that its depot leaves no open
    moment to load in (a closed day, or hours outside its opening hours, read in the
    merchant's timezone), so the dispatcher hears it now rather than at planning."""
    if data.end_at <= clock.now():
        raise Unprocessable(
            "invalid shift",
            errors=[FieldError("end_at", "the shift has already ended", "shift_past")],
        )
    depot = session.get(Depot, data.depot_id)
    merchant = session.get(Merchant, merchant_id)
    if depot is None or merchant is None or not depot.opening_hours:
        return
    tz = ZoneInfo(merchant.timezone)
    intervals = open_during(depot.opening_hours, tz, data.start_at, data.end_at) or []
    span = depot_span(intervals, data.start_at, data.end_at, returns=data.return_to_depot)
    if span is None or span.back_by <= span.leave_at:
        note = closed_note(intervals, data.start_at, data.end_at, tz)
        raise Unprocessable(
            f"invalid shift: {note}",
            errors=[FieldError("start_at", note, "depot_closed")],
        )


def create_shift(session: Session, clock: Clock, merchant_id: str, data: ShiftIn) -> Shift:
    """Add a shift after checking it (see :func:`_check_shift`); a new shift must also be still
    to come and fall when its depot is open (:func:`_check_new_shift_times`)."""
    _check_shift(
        session,
        merchant_id,
        shift_id=None,
        driver_id=data.driver_id,
        vehicle_id=data.vehicle_id,
        depot_id=data.depot_id,
        start_at=data.start_at,
        end_at=data.end_at,
        brk=data.brk,
    )
    _check_new_shift_times(session, clock, merchant_id, data)
    shift = Shift(
        id=new_id("shf", clock.now()),
        merchant_id=merchant_id,
        driver_id=data.driver_id,
        vehicle_id=data.vehicle_id,
        depot_id=data.depot_id,
        start_at=data.start_at,
        end_at=data.end_at,
        return_to_depot=data.return_to_depot,
        status="planned",
        created_at=clock.now(),
    )
    _set_break(shift, data.brk)
    session.add(shift)
    session.flush()
    return shift


def _set_break(shift: Shift, brk: BreakIn | None) -> None:
    shift.break_earliest_at = brk.earliest_start if brk else None
    shift.break_latest_at = brk.latest_start if brk else None
    shift.break_duration_s = brk.duration_s if brk else None


def _current_break(shift: Shift) -> BreakIn | None:
    if shift.break_earliest_at and shift.break_latest_at and shift.break_duration_s:
        return BreakIn(
            earliest_start=shift.break_earliest_at,
            latest_start=shift.break_latest_at,
            duration_s=shift.break_duration_s,
        )
    return None


def list_shifts(
    session: Session,
    merchant_id: str,
    *,
    day: date | None = None,
    depot_id: str | None = None,
    driver_id: str | None = None,
    after: str | None = None,
    limit: int = 100,
) -> tuple[list[Shift], str | None]:
    """Shifts, optionally those starting on ``day`` (merchant's timezone), at a depot, of a
    driver."""
    stmt = select(Shift).where(Shift.merchant_id == merchant_id)
    if day is not None:
        start, end = day_bounds(day, merchant_tz(session, merchant_id))
        stmt = stmt.where(Shift.start_at >= start, Shift.start_at < end)
    if depot_id is not None:
        stmt = stmt.where(Shift.depot_id == depot_id)
    if driver_id is not None:
        stmt = stmt.where(Shift.driver_id == driver_id)
    return page(session, stmt, Shift.id, after=after, limit=limit)


def update_shift(session: Session, merchant_id: str, shift_id: str, data: ShiftPatch) -> Shift:
    """Change a shift; the result is checked like a new one (unless dropped)."""
    shift = access_shift(session, merchant_id, shift_id)
    fields = data.model_fields_set
    for name in ("driver_id", "vehicle_id", "depot_id", "start_at", "end_at", "return_to_depot"):
        if name in fields and getattr(data, name) is None:
            raise Unprocessable("invalid shift", errors=[FieldError(name, "may not be null")])
    brk = data.brk if "brk" in fields else _current_break(shift)
    driver_id = data.driver_id or shift.driver_id
    vehicle_id = data.vehicle_id or shift.vehicle_id
    depot_id = data.depot_id or shift.depot_id
    start_at = data.start_at or shift.start_at
    end_at = data.end_at or shift.end_at
    status = data.status or shift.status
    if status != "dropped":
        _check_shift(
            session,
            merchant_id,
            shift_id=shift.id,
            driver_id=driver_id,
            vehicle_id=vehicle_id,
            depot_id=depot_id,
            start_at=start_at,
            end_at=end_at,
            brk=brk,
        )
    shift.driver_id, shift.vehicle_id, shift.depot_id = driver_id, vehicle_id, depot_id
    shift.start_at, shift.end_at, shift.status = start_at, end_at, status
    if data.return_to_depot is not None:
        shift.return_to_depot = data.return_to_depot
    _set_break(shift, brk)
    session.flush()
    return shift


def delete_shift(session: Session, merchant_id: str, shift_id: str) -> None:
    """Delete a shift no published plan uses; draft plans that planned it go too."""
    shift = access_shift(session, merchant_id, shift_id)
    if _used_by_locked_plan(session, merchant_id, Route.shift_id, shift.id):
        raise Conflict("the shift is on a published plan; set its status to dropped instead")
    drafts = session.scalars(select(Route.plan_id).where(Route.shift_id == shift.id)).all()
    _delete_draft_plans(session, merchant_id, drafts)
    session.delete(shift)
    session.flush()
