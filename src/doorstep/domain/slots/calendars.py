"""Slot calendars: the merchant's windows per weekday as instants, their cut-offs and lead
time, blackout dates.

Clock times are the merchant's local time and are turned into instants day by day with
:func:`~doorstep.domain.dispatch.opening.local_instant`, so a 09:00-11:00 window is 09:00-11:00
on the clocks on both sides of a daylight-saving change (a window of the night the clocks go
forward is shorter; one of the night they go back starts at the first 01:30).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.domain.dispatch.opening import local_instant
from doorstep.domain.dispatch.resources import access_depot
from doorstep.domain.dispatch.schemas import DAYS
from doorstep.domain.errors import Conflict, FieldError, NotFound, Unprocessable
from doorstep.domain.slots.models import Reservation, SlotCalendar
from doorstep.domain.slots.schemas import CalendarIn, CalendarOut, CalendarPatch
from doorstep.domain.slots.zones import access_zone, page
from doorstep.ids import new_id

SAME_DAY = "same_day"
NEXT_DAY = "next_day"
SCHEDULED = "scheduled"


@dataclass(frozen=True)
class CalendarWindow:
    """One window of one calendar on one local date."""

    calendar: SlotCalendar
    rule: dict[str, Any]
    day: date
    start: datetime
    end: datetime

    @property
    def capacity(self) -> int:
        return int(self.rule.get("capacity", 0))

    @property
    def vehicle_minutes(self) -> int | None:
        value = self.rule.get("vehicle_minutes")
        return int(value) if value is not None else None

    @property
    def fee_cents(self) -> int:
        return int(self.rule.get("fee_cents", 0))


def windows_on(calendar: SlotCalendar, day: date, tz: ZoneInfo) -> list[CalendarWindow]:
    """The calendar's windows on local date ``day`` (blackout dates included), earliest first."""
    name = DAYS[day.weekday()]
    out = [
        CalendarWindow(
            calendar,
            rule,
            day,
            local_instant(day, rule["start"], tz),
            local_instant(day, rule["end"], tz),
        )
        for rule in calendar.rules
        if name in rule.get("days", ())
    ]
    return sorted((w for w in out if w.end > w.start), key=lambda w: w.start)


def window_at(calendar: SlotCalendar, start: datetime, tz: ZoneInfo) -> CalendarWindow | None:
    """The calendar's window starting at the instant ``start``, if it has one."""
    day = start.astimezone(tz).date()
    return next((w for w in windows_on(calendar, day, tz) if w.start == start), None)


def is_blackout(calendar: SlotCalendar, day: date) -> bool:
    return day.isoformat() in (calendar.closed_dates or ())


def service_level(day: date, now: datetime, tz: ZoneInfo) -> str:
    today = now.astimezone(tz).date()
    if day == today:
        return SAME_DAY
    if day == today + timedelta(days=1):
        return NEXT_DAY
    return SCHEDULED


def cutoff_problem(window: CalendarWindow, now: datetime, tz: ZoneInfo) -> str | None:
    """Why ``window`` can no longer be booked at ``now`` (its cut-off or lead time has passed),
    in words a customer understands; None while it can."""
    cal = window.calendar
    if now >= window.start:
        return "the window has already started"
    today = now.astimezone(tz).date()
    lead = timedelta(minutes=cal.lead_time_minutes)
    if window.day == today:
        if cal.same_day_cutoff is None:
            return "no same-day delivery: book a window on a later day"
        if now >= local_instant(today, cal.same_day_cutoff, tz):
            return f"same-day orders close at {cal.same_day_cutoff}"
    elif (
        window.day == today + timedelta(days=1)
        and cal.next_day_cutoff is not None
        and now >= local_instant(today, cal.next_day_cutoff, tz)
    ):
        return f"next-day orders close at {cal.next_day_cutoff} the day before"
    if now + lead > window.start:
        return f"the window needs {cal.lead_time_minutes} minutes' notice"
    return None


# --- CRUD -----------------------------------------------------------------------------------


def calendar_out(cal: SlotCalendar) -> CalendarOut:
    return CalendarOut(
        id=cal.id,
        depot_id=cal.depot_id,
        zone_id=cal.zone_id,
        name=cal.name,
        windows=cal.rules,
        same_day_cutoff=cal.same_day_cutoff,
        next_day_cutoff=cal.next_day_cutoff,
        lead_time_minutes=cal.lead_time_minutes,
        horizon_days=cal.horizon_days,
        blackout_dates=cal.closed_dates,
        currency=cal.currency,
        active=cal.active,
        created_at=cal.created_at,
    )


def access_calendar(
    session: Session, merchant_id: str, calendar_id: str, *, for_update: bool = False
) -> SlotCalendar:
    """The merchant's calendar, or 404."""
    cal = session.get(SlotCalendar, calendar_id, with_for_update=for_update)
    if cal is None or cal.merchant_id != merchant_id:
        raise NotFound("no such slot calendar")
    return cal


def _check_zone(session: Session, merchant_id: str, depot_id: str, zone_id: str | None) -> None:
    if zone_id is None:
        return
    try:
        zone = access_zone(session, merchant_id, zone_id)
    except NotFound as exc:
        raise Unprocessable(
            "no such zone", errors=[FieldError("zone_id", "no such zone", "not_found")]
        ) from exc
    if zone.depot_id != depot_id:
        raise Unprocessable(
            "the zone belongs to another depot",
            errors=[FieldError("zone_id", "belongs to another depot", "other_depot")],
        )


def create_calendar(
    session: Session, clock: Clock, merchant_id: str, data: CalendarIn
) -> SlotCalendar:
    depot = access_depot(session, merchant_id, data.depot_id)
    _check_zone(session, merchant_id, depot.id, data.zone_id)
    now = clock.now()
    cal = SlotCalendar(
        id=new_id("cal", now),
        merchant_id=merchant_id,
        depot_id=depot.id,
        zone_id=data.zone_id,
        name=data.name,
        rules=[w.model_dump() for w in data.windows],
        closed_dates=[d.isoformat() for d in data.blackout_dates],
        same_day_cutoff=data.same_day_cutoff,
        next_day_cutoff=data.next_day_cutoff,
        lead_time_minutes=data.lead_time_minutes,
        horizon_days=data.horizon_days,
        currency=data.currency,
        active=data.active,
        created_at=now,
        updated_at=now,
    )
    session.add(cal)
    session.flush()
    return cal


def update_calendar(
    session: Session, clock: Clock, merchant_id: str, calendar_id: str, data: CalendarPatch
) -> SlotCalendar:
    """Change a calendar. Reservations already held or confirmed keep their window and fee; a
    smaller capacity only stops new ones (the window shows as full, its fill above 100 %)."""
    cal = access_calendar(session, merchant_id, calendar_id, for_update=True)
    given = data.model_fields_set
    if "zone_id" in given:
        _check_zone(session, merchant_id, cal.depot_id, data.zone_id)
        cal.zone_id = data.zone_id
    if data.name is not None:
        cal.name = data.name
    if data.windows is not None:
        cal.rules = [w.model_dump() for w in data.windows]
    if "same_day_cutoff" in given:
        cal.same_day_cutoff = data.same_day_cutoff
    if "next_day_cutoff" in given:
        cal.next_day_cutoff = data.next_day_cutoff
    if data.lead_time_minutes is not None:
        cal.lead_time_minutes = data.lead_time_minutes
    if data.horizon_days is not None:
        cal.horizon_days = data.horizon_days
    if data.blackout_dates is not None:
        cal.closed_dates = [d.isoformat() for d in data.blackout_dates]
    if data.active is not None:
        cal.active = data.active
    cal.updated_at = clock.now()
    session.flush()
    return cal


def list_calendars(
    session: Session, merchant_id: str, *, after: str | None = None, limit: int = 100
) -> tuple[list[SlotCalendar], str | None]:
    stmt = select(SlotCalendar).where(SlotCalendar.merchant_id == merchant_id)
    return page(session, stmt, SlotCalendar.id, after=after, limit=limit)


def delete_calendar(session: Session, merchant_id: str, calendar_id: str) -> None:
    """Delete a calendar that never had a reservation; 409 otherwise (deactivate it)."""
    cal = access_calendar(session, merchant_id, calendar_id)
    used = session.scalar(select(Reservation.id).where(Reservation.calendar_id == cal.id).limit(1))
    if used is not None:
        raise Conflict("the calendar has reservations; deactivate it instead")
    session.delete(cal)
    session.flush()
