"""A depot's opening hours as instants, and what they leave of a shift.

Opening hours are a week of local clock ranges, ``{"mon": [["08:00", "12:00"], ["14:00",
"18:00"]], ...}`` (checked by :func:`~.schemas._opening_hours`). A depot without any opening
hours is never closed; once some are set, a day that is missing or has no ranges is closed.

A vehicle loads at the depot, so it leaves at the first open moment at or after it is free; a
route that returns to the depot is back by the last open moment at or before the shift's end. A
vehicle already out is not held back. Everything here is pure; the planner turns the answers
into the optimiser's shift times (:func:`~.planning.vehicle_spec`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from doorstep.domain.dispatch.schemas import DAYS

Interval = tuple[datetime, datetime]
OpeningHours = Mapping[str, Sequence[Sequence[str]]]
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def local_instant(day: date, hhmm: str, tz: ZoneInfo) -> datetime:
    """The UTC instant at which the clocks in ``tz`` show ``hhmm`` on ``day`` (``24:00`` is the
    next midnight). A time the clocks skip (spring forward) is the moment they jump; a time they
    show twice (fall back) is its first occurrence."""
    hours, minutes = (int(part) for part in hhmm.split(":"))
    wall = datetime.combine(day, time(0)) + timedelta(hours=hours, minutes=minutes)
    first = wall.replace(tzinfo=tz).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    # Skipped: read with the offset before the jump it lies after the jump, read with the
    # offset after it lies before; the jump is the first second with the later offset.
    after = first.astimezone(tz).utcoffset()
    lo, hi = int(wall.replace(tzinfo=tz, fold=1).timestamp()), int(first.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def open_intervals(hours: OpeningHours | None, day: date, tz: ZoneInfo) -> list[Interval] | None:
    """The depot's open intervals on ``day`` (the ranges of its weekday, read in ``tz``) as UTC
    datetimes, earliest first: ``[]`` when it is closed that day, None when it has no opening
    hours at all (always open)."""
    if not hours:
        return None
    ranges = hours.get(DAYS[day.weekday()]) or ()
    spans = [(local_instant(day, start, tz), local_instant(day, end, tz)) for start, end in ranges]
    return sorted((start, end) for start, end in spans if end > start)


def open_during(
    hours: OpeningHours | None, tz: ZoneInfo, start: datetime, end: datetime
) -> list[Interval] | None:
    """The open intervals of every local date from ``start`` to ``end`` (a shift may run past
    midnight), earliest first; None when the depot has no opening hours."""
    if not hours:
        return None
    out: list[Interval] = []
    day, last = start.astimezone(tz).date(), end.astimezone(tz).date()
    while day <= last:
        out += open_intervals(hours, day, tz) or []
        day += timedelta(days=1)
    return out


@dataclass(frozen=True)
class DepotSpan:
    """When a vehicle may leave the depot, and when it must be back (its shift's end when the
    route does not return)."""

    leave_at: datetime
    back_by: datetime


def depot_span(
    intervals: Sequence[Interval] | None,
    start: datetime,
    end: datetime,
    *,
    returns: bool,
    out: bool = False,
) -> DepotSpan | None:
    """What the depot's hours leave of a shift free from ``start`` until ``end``.

    The vehicle leaves at the first open moment at or after ``start`` and, if it ``returns``, is
    back by the last open moment at or before ``end``. None: the depot is not open at any moment
    of the shift, so the vehicle cannot load. A vehicle already ``out`` is not held back; if the
    depot has no open moment left before ``end`` it has no time left (``back_by`` is ``start``).
    ``intervals`` None (no opening hours): the whole shift."""
    if intervals is None:
        return DepotSpan(start, end)
    if out:
        back = max((min(b, end) for a, b in intervals if a <= end), default=start)
        return DepotSpan(start, max(back, start) if returns else end)
    during = [(a, b) for a, b in intervals if a < end and b > start]
    if not during:
        return None
    return DepotSpan(max(during[0][0], start), min(during[-1][1], end) if returns else end)


def closed_note(intervals: Sequence[Interval], start: datetime, end: datetime, tz: ZoneInfo) -> str:
    """Why a shift free from ``start`` until ``end`` cannot leave the depot (see
    :func:`depot_span`), in words a dispatcher can act on, times in ``tz``."""
    if not intervals:
        return f"the depot is closed all day on {WEEKDAY_NAMES[start.astimezone(tz).weekday()]}"
    closed_from = max((b for _, b in intervals if b <= start), default=None)
    opens = min((a for a, _ in intervals if a >= end), default=None)
    if closed_from is not None and opens is not None:
        then = f"closed {_hhmm(closed_from, tz)}-{_hhmm(opens, tz)}"
    elif opens is not None:
        then = f"opens {_hhmm(opens, tz)}"
    else:
        then = f"closed from {_hhmm(closed_from or start, tz)}"
    return f"the depot is closed then ({then})"


def _hhmm(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%H:%M")
