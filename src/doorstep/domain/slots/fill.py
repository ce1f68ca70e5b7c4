"""How full each calendar window of a day is, for the console."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.domain.slots.calendars import cutoff_problem, is_blackout, windows_on
from doorstep.domain.slots.models import ServiceZone, SlotCalendar
from doorstep.domain.slots.quotes import counters_between


@dataclass(frozen=True)
class WindowFill:
    calendar_id: str
    calendar: str
    zone: str
    start: datetime
    end: datetime
    fee_cents: int
    currency: str
    taken: int
    capacity: int
    # open | full | closed (past cut-off or lead time) | blackout
    state: str
    note: str

    @property
    def percent(self) -> int:
        if not self.capacity:
            return 100
        return round(100 * self.taken / self.capacity)


def day_fill(
    session: Session, merchant_id: str, tz: ZoneInfo, day: date, now: datetime
) -> list[WindowFill]:
    """Every active calendar's windows on local date ``day``, with places taken (held and
    confirmed) and whether a customer can still book it now."""
    calendars = list(
        session.scalars(
            select(SlotCalendar)
            .where(SlotCalendar.merchant_id == merchant_id, SlotCalendar.active)
            .order_by(SlotCalendar.name, SlotCalendar.id)
        )
    )
    zones = {
        z.id: z.name
        for z in session.scalars(select(ServiceZone).where(ServiceZone.merchant_id == merchant_id))
    }
    windows = [w for cal in calendars for w in windows_on(cal, day, tz)]
    if not windows:
        return []
    lo = min(w.start for w in windows)
    counters = counters_between(
        session, [c.id for c in calendars], lo, max(w.start for w in windows) + timedelta(seconds=1)
    )
    out = []
    for w in sorted(windows, key=lambda w: (w.start, w.calendar.name)):
        counter = counters.get((w.calendar.id, w.start))
        taken = counter.taken if counter else 0
        problem = cutoff_problem(w, now, tz)
        if is_blackout(w.calendar, day):
            state, note = "blackout", "blackout date"
        elif taken >= w.capacity:
            state, note = "full", "every place is taken"
        elif problem is not None:
            state, note = "closed", problem
        else:
            state, note = "open", ""
        out.append(
            WindowFill(
                calendar_id=w.calendar.id,
                calendar=w.calendar.name or w.calendar.id,
                zone=zones.get(w.calendar.zone_id or "", "every zone of the depot"),
                start=w.start,
                end=w.end,
                fee_cents=w.fee_cents,
                currency=w.calendar.currency,
                taken=taken,
                capacity=w.capacity,
                state=state,
                note=note,
            )
        )
    return out
