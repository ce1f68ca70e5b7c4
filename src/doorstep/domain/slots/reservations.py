"""Reservations: hold a window while the customer pays, confirm it with the order, release it.

Each calendar window has one :class:`~.models.SlotCounter` row. Taking a place is one
conditional ``UPDATE ... SET taken = taken + 1 WHERE taken < capacity``: on PostgreSQL the
row lock makes concurrent requests queue and each re-reads the row before deciding (so a window
is never sold beyond its capacity); SQLite serialises writers. Holds past ``reserved_until``
give their place back when the worker's :func:`expire_reservations` runs, and before any new
reservation of the same window is taken, so an expired hold never blocks a customer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Merchant
from doorstep.domain.errors import Conflict, FieldError, NotFound, Unprocessable
from doorstep.domain.slots.calendars import (
    CalendarWindow,
    access_calendar,
    service_level,
    window_at,
)
from doorstep.domain.slots.models import Reservation, SlotCounter
from doorstep.domain.slots.quotes import Checker
from doorstep.domain.slots.schemas import (
    Fee,
    ReservationIn,
    ReservationOut,
    UnavailableOut,
)
from doorstep.ids import new_id
from doorstep.routing.travel.base import LatLon, TravelTimeProvider
from doorstep.runtime import Runtime
from doorstep.settings import Settings

HELD = "held"
CONFIRMED = "confirmed"
RELEASED = "released"
EXPIRED = "expired"


class SlotUnavailable(Conflict):
    title = "Window not available"
    type_slug = "slot-unavailable"


class ReservationGone(Conflict):
    title = "Reservation no longer held"
    type_slug = "reservation-gone"


def reservation_out(res: Reservation, currency: str, tz: ZoneInfo) -> ReservationOut:
    return ReservationOut(
        id=res.id,
        calendar_id=res.calendar_id,
        status=res.status,
        window={
            "start": res.window_start.astimezone(tz),
            "end": res.window_end.astimezone(tz),
        },
        service_level=res.service_level,
        fee=Fee(amount_cents=res.fee_cents, currency=currency),
        reserved_until=res.expires_at.astimezone(tz),
        order_id=res.order_id,
    )


def access_reservation(
    session: Session, merchant_id: str, reservation_id: str, *, for_update: bool = False
) -> Reservation:
    res = session.get(Reservation, reservation_id, with_for_update=for_update)
    if res is None or res.merchant_id != merchant_id:
        raise NotFound("no such reservation")
    return res


# --- the counter ----------------------------------------------------------------------------


def _ensure_counter(session: Session, merchant_id: str, window: CalendarWindow) -> None:
    values = {
        "id": new_id("slc", window.start),
        "merchant_id": merchant_id,
        "calendar_id": window.calendar.id,
        "window_start": window.start,
        "window_end": window.end,
        "taken": 0,
        "minutes_taken": 0,
    }
    bind = session.get_bind()
    maker = pg_insert if bind.dialect.name == "postgresql" else sqlite_insert
    stmt = maker(SlotCounter).values(**values)
    session.execute(stmt.on_conflict_do_nothing(index_elements=["calendar_id", "window_start"]))


def _give_back(
    session: Session, calendar_id: str, window_start: datetime, count: int, minutes: int
) -> None:
    if count <= 0:
        return
    session.execute(
        update(SlotCounter)
        .where(SlotCounter.calendar_id == calendar_id, SlotCounter.window_start == window_start)
        .values(
            taken=SlotCounter.taken - count,
            minutes_taken=SlotCounter.minutes_taken - minutes,
        )
        .execution_options(synchronize_session=False)
    )


def _expire_window(session: Session, now: datetime, calendar_id: str, start: datetime) -> None:
    """Give back the places of this window's holds that have run out."""
    expired = session.execute(
        update(Reservation)
        .where(
            Reservation.calendar_id == calendar_id,
            Reservation.window_start == start,
            Reservation.status == HELD,
            Reservation.expires_at <= now,
        )
        .values(status=EXPIRED, ended_at=now)
        .returning(Reservation.minutes)
        .execution_options(synchronize_session=False)
    ).all()
    _give_back(session, calendar_id, start, len(expired), sum(m for (m,) in expired))


def take_place(
    session: Session, now: datetime, merchant_id: str, window: CalendarWindow, minutes: int
) -> bool:
    """Take one place of ``window`` (and ``minutes`` of its vehicle-minutes, if it counts
    them); False when it is full. One conditional UPDATE: never beyond capacity."""
    _ensure_counter(session, merchant_id, window)
    _expire_window(session, now, window.calendar.id, window.start)
    conditions = [
        SlotCounter.calendar_id == window.calendar.id,
        SlotCounter.window_start == window.start,
        SlotCounter.taken < window.capacity,
    ]
    if window.vehicle_minutes is not None:
        conditions.append(SlotCounter.minutes_taken + minutes <= window.vehicle_minutes)
    result = session.execute(
        update(SlotCounter)
        .where(*conditions)
        .values(taken=SlotCounter.taken + 1, minutes_taken=SlotCounter.minutes_taken + minutes)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def give_back(session: Session, now: datetime, res: Reservation, status: str) -> None:
    """End a held or confirmed reservation (released or expired) and free its place."""
    if res.status not in (HELD, CONFIRMED):
        return
    res.status = status
    res.ended_at = now
    session.flush()
    _give_back(session, res.calendar_id, res.window_start, 1, res.minutes)


# --- verbs ----------------------------------------------------------------------------------


def offered_window(
    check: Checker, calendar_id: str, start: datetime, *, field: str = "start"
) -> tuple[CalendarWindow, int]:
    """The calendar's window starting at ``start`` if it is offered to the checked address,
    and the vehicle-minutes it would take; 422 when there is no such window, 409 (with the
    reason) when it is not offered."""
    cal = access_calendar(check.session, check.merchant.id, calendar_id)
    window = window_at(cal, start, check.tz) if cal.active else None
    if window is None:
        raise Unprocessable(
            "the calendar has no window starting then",
            errors=[FieldError(field, "no window of this calendar starts then", "no_window")],
        )
    counter = check.session.scalar(
        select(SlotCounter).where(
            SlotCounter.calendar_id == cal.id, SlotCounter.window_start == window.start
        )
    )
    result = check.evaluate(window, counter)
    if isinstance(result, UnavailableOut):
        raise SlotUnavailable(
            f"the window is not available ({result.reason}): {result.detail}",
            errors=[FieldError(field, result.detail, result.reason)],
        )
    return window, check.minutes_needed(result.detour_s)


def reserve(
    session: Session,
    clock: Clock,
    settings: Settings,
    merchant: Merchant,
    data: ReservationIn,
    *,
    provider: TravelTimeProvider | None = None,
) -> Reservation:
    """Hold the window for ``hold_minutes``; 409 when it is not offered or just became full."""
    now = clock.now()
    at = LatLon(data.address.lat, data.address.lon)
    check = Checker.build(session, now, settings, merchant, at, data.parcels, provider)
    window, minutes = offered_window(check, data.calendar_id, data.start)
    return _hold(session, check, window, minutes, at, status=HELD)


def _hold(
    session: Session,
    check: Checker,
    window: CalendarWindow,
    minutes: int,
    at: LatLon,
    *,
    status: str,
    order_id: str | None = None,
) -> Reservation:
    now = check.now
    if not take_place(session, now, check.merchant.id, window, minutes):
        raise SlotUnavailable(
            "the window has just been fully booked",
            errors=[FieldError("start", "no place left in this window", "full")],
        )
    res = Reservation(
        id=new_id("rsv", now),
        merchant_id=check.merchant.id,
        calendar_id=window.calendar.id,
        window_start=window.start,
        window_end=window.end,
        order_id=order_id,
        status=status,
        fee_cents=window.fee_cents,
        service_level=_level(window, check),
        minutes=minutes,
        lat=at.lat,
        lon=at.lon,
        expires_at=now + timedelta(minutes=check.config.hold_minutes),
        created_at=now,
    )
    session.add(res)
    session.flush()
    return res


def _level(window: CalendarWindow, check: Checker) -> str:
    return service_level(window.day, check.now, check.tz)


def book_for_order(
    check: Checker, order_id: str, calendar_id: str, start: datetime
) -> tuple[Reservation, CalendarWindow]:
    """A confirmed reservation of a window offered to ``check``'s address for an existing
    order (a reschedule), and the window."""
    window, minutes = offered_window(check, calendar_id, start)
    at = check.at
    res = _hold(check.session, check, window, minutes, at, status=CONFIRMED, order_id=order_id)
    return res, window


def release(session: Session, clock: Clock, merchant_id: str, reservation_id: str) -> Reservation:
    """``DELETE``: give a held window back. Releasing twice is harmless; a confirmed
    reservation belongs to its order (cancel or reschedule the order instead): 409."""
    res = access_reservation(session, merchant_id, reservation_id, for_update=True)
    if res.status == CONFIRMED:
        raise Conflict("the reservation is confirmed by an order; cancel or reschedule the order")
    if res.status == HELD:
        now = clock.now()
        give_back(session, now, res, EXPIRED if res.expires_at <= now else RELEASED)
    return res


def confirm(
    session: Session, clock: Clock, merchant_id: str, reservation_id: str, order_id: str
) -> Reservation:
    """Confirm a held reservation for a new order; 409 once it has expired or ended."""
    res = access_reservation(session, merchant_id, reservation_id, for_update=True)
    now = clock.now()
    if res.status == HELD and res.expires_at <= now:
        give_back(session, now, res, EXPIRED)
    if res.status != HELD:
        raise ReservationGone(
            f"the reservation is {res.status}; quote and reserve a window again",
            errors=[FieldError("reservation_id", f"is {res.status}", res.status)],
        )
    res.status = CONFIRMED
    res.order_id = order_id
    session.flush()
    return res


def release_for_order(session: Session, now: datetime, merchant_id: str, order_id: str) -> None:
    """Free the window an order had confirmed (it moved to another, or was cancelled)."""
    for res in session.scalars(
        select(Reservation).where(
            Reservation.merchant_id == merchant_id,
            Reservation.order_id == order_id,
            Reservation.status == CONFIRMED,
        )
    ):
        give_back(session, now, res, RELEASED)


def expire_reservations(session: Session, clock: Clock) -> int:
    """Expire every hold past its ``reserved_until`` and free its place; how many."""
    now = clock.now()
    windows = session.execute(
        select(Reservation.calendar_id, Reservation.window_start)
        .where(Reservation.status == HELD, Reservation.expires_at <= now)
        .distinct()
    ).all()
    count = 0
    for calendar_id, start in windows:
        before = session.scalar(
            select(func.count()).where(
                Reservation.calendar_id == calendar_id,
                Reservation.window_start == start,
                Reservation.status == HELD,
                Reservation.expires_at <= now,
            )
        )
        _expire_window(session, now, calendar_id, start)
        count += int(before or 0)
    return count


def run_expire_reservations(runtime: Runtime) -> int:
    """The worker's job: :func:`expire_reservations` in its own transaction."""
    with transaction(runtime.sessions) as session:
        return expire_reservations(session, runtime.clock)
