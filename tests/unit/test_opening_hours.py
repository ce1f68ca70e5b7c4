"""A depot's opening hours as UTC intervals, and what they leave of a shift (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from doorstep.domain.dispatch.opening import (
    DepotSpan,
    closed_note,
    depot_span,
    open_during,
    open_intervals,
)
from doorstep.routing.problem import Job, VehicleSpec
from doorstep.routing.route_timing import time_route

PARIS = ZoneInfo("Europe/Paris")
MONACO = ZoneInfo("Europe/Monaco")
WED = date(2026, 11, 25)
LUNCH = {"wed": [["08:00", "12:00"], ["14:00", "18:00"]]}


def utc(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


def at(hour: int, minute: int = 0, day: date = WED) -> datetime:
    """``hour:minute`` in Monaco on ``day`` (UTC+1 in November)."""
    return datetime.combine(day, time(hour, minute), tzinfo=MONACO)


def test_a_lunch_closure_gives_two_intervals_in_utc() -> None:
    """Wednesday 08:00-12:00 and 14:00-18:00 in Monaco (UTC+1) are 07-11 and 13-17 UTC."""
    assert open_intervals(LUNCH, WED, MONACO) == [
        (utc(WED, 7), utc(WED, 11)),
        (utc(WED, 13), utc(WED, 17)),
    ]


def test_no_hours_is_always_open_and_a_missing_day_is_closed() -> None:
    """No opening hours at all: None (no restriction); hours without this weekday: closed."""
    assert open_intervals({}, WED, MONACO) is None
    assert open_intervals(None, WED, MONACO) is None
    assert open_intervals({"mon": [["08:00", "18:00"]]}, WED, MONACO) == []
    assert open_intervals({"wed": []}, WED, MONACO) == []


def test_24_00_is_the_next_midnight() -> None:
    """A range open until 24:00 ends at the next local midnight."""
    assert open_intervals({"wed": [["20:00", "24:00"]]}, WED, MONACO) == [
        (utc(WED, 19), utc(WED, 23))
    ]


def test_spring_forward_day_in_paris() -> None:
    """On 2026-03-29 Paris goes from UTC+1 to UTC+2 at 02:00: the day has 23 hours, 08:00 is
    06:00 UTC (07:00 UTC the day before), a range across the jump is an hour shorter and a
    range starting in the skipped hour opens at the jump."""
    sunday, saturday = date(2026, 3, 29), date(2026, 3, 28)
    week = {
        "sat": [["08:00", "12:00"], ["14:00", "18:00"]],
        "sun": [["01:00", "04:00"], ["08:00", "12:00"], ["14:00", "18:00"]],
    }
    assert open_intervals(week, saturday, PARIS) == [
        (utc(saturday, 7), utc(saturday, 11)),
        (utc(saturday, 13), utc(saturday, 17)),
    ]
    assert open_intervals(week, sunday, PARIS) == [
        (utc(sunday, 0), utc(sunday, 2)),
        (utc(sunday, 6), utc(sunday, 10)),
        (utc(sunday, 12), utc(sunday, 16)),
    ]
    whole = open_intervals({"sun": [["00:00", "24:00"]]}, sunday, PARIS)
    assert whole == [(utc(saturday, 23), utc(sunday, 22))]
    assert whole[0][1] - whole[0][0] == timedelta(hours=23)
    assert open_intervals({"sun": [["02:30", "05:00"]]}, sunday, PARIS) == [
        (utc(sunday, 1), utc(sunday, 3))
    ]
    assert open_intervals({"sun": [["02:00", "02:45"]]}, sunday, PARIS) == []


def test_fall_back_day_in_paris() -> None:
    """On 2026-10-25 02:00-03:00 happens twice: a time in it is its first occurrence."""
    sunday = date(2026, 10, 25)
    assert open_intervals({"sun": [["02:30", "10:00"]]}, sunday, PARIS) == [
        (utc(sunday, 0, 30), utc(sunday, 9))
    ]


def _span(
    start: datetime, end: datetime, *, returns: bool = True, out: bool = False
) -> DepotSpan | None:
    return depot_span(open_during(LUNCH, MONACO, start, end), start, end, returns=returns, out=out)


def test_a_shift_leaves_while_open_and_is_back_while_open() -> None:
    """08-12/14-18: 07:00-17:00 plans 08:00-17:00; 12:30-19:00 leaves at 14:00 and is back by
    18:00 (by 19:00 if it does not return); 07:00-12:30 is back by 12:00."""
    assert _span(at(7), at(17)) == DepotSpan(at(8), at(17))
    assert _span(at(12, 30), at(19)) == DepotSpan(at(14), at(18))
    assert _span(at(12, 30), at(19), returns=False) == DepotSpan(at(14), at(19))
    assert _span(at(7), at(12, 30)) == DepotSpan(at(8), at(12))
    assert _span(at(12), at(19)) == DepotSpan(at(14), at(18))


def test_a_shift_with_no_open_moment_cannot_be_used() -> None:
    """Before opening, inside the lunch closure, after closing, or on a closed day: None."""
    assert _span(at(6), at(7, 30)) is None
    assert _span(at(12), at(14)) is None
    assert _span(at(18), at(21)) is None
    closed = open_during({"mon": [["08:00", "18:00"]]}, MONACO, at(8), at(16))
    assert depot_span(closed, at(8), at(16), returns=True) is None


def test_a_vehicle_already_out_is_only_held_to_its_return() -> None:
    """Out at 12:30: it goes on at once, and is back by 18:00; out at 18:30 with the depot
    closed for the rest of the shift, it has no time left; without a return, no limit."""
    assert _span(at(12, 30), at(19), out=True) == DepotSpan(at(12, 30), at(18))
    assert _span(at(18, 30), at(19), out=True) == DepotSpan(at(18, 30), at(18, 30))
    assert _span(at(18, 30), at(19), out=True, returns=False) == DepotSpan(at(18, 30), at(19))


def test_no_hours_leave_the_whole_shift() -> None:
    """A depot without opening hours does not change a shift."""
    assert open_during({}, MONACO, at(6), at(22)) is None
    assert depot_span(None, at(6), at(22), returns=True) == DepotSpan(at(6), at(22))


def test_an_overnight_shift_reads_both_days() -> None:
    """Open until 24:00 on Wednesday and until 01:00 on Thursday: a 22:00-02:00 shift is back
    by 01:00 on Thursday."""
    hours = {"wed": [["20:00", "24:00"]], "thu": [["00:00", "01:00"]]}
    thu = WED + timedelta(days=1)
    start, end = at(22), at(2, day=thu)
    span = depot_span(open_during(hours, MONACO, start, end), start, end, returns=True)
    assert span == DepotSpan(at(22), at(1, day=thu))


@pytest.mark.parametrize(
    ("start", "end", "note"),
    [
        (at(6), at(7, 30), "the depot is closed then (opens 08:00)"),
        (at(12, 15), at(13, 45), "the depot is closed then (closed 12:00-14:00)"),
        (at(18, 30), at(21), "the depot is closed then (closed from 18:00)"),
    ],
)
def test_closed_note_says_when_the_depot_opens(start: datetime, end: datetime, note: str) -> None:
    """The sentence names the opening or closing a dispatcher can plan around."""
    assert closed_note(open_during(LUNCH, MONACO, start, end) or [], start, end, MONACO) == note


def test_closed_note_for_a_closed_day() -> None:
    """A depot with hours but none that day is closed all day."""
    assert closed_note([], at(8), at(16), MONACO) == "the depot is closed all day on Wednesday"


def test_a_late_departure_stays_inside_the_opening_hours() -> None:
    """One stop at 13:00-13:30, ten minutes away: leaving as late as possible would be 12:50,
    in the lunch closure; with the open spans it leaves at 12:00, when the depot closes."""
    h = 3600
    vehicle = VehicleSpec("v", 0, 0, shift_start_s=8 * h, shift_end_s=17 * h, capacity=(9, 9))
    job = Job("j", 1, 300, 13 * h, 13 * h + 1800, (1, 1))
    matrix = np.array([[0, 600], [600, 0]], dtype=np.int64)
    free = time_route(vehicle, [job], matrix, matrix)
    assert free.start_s == 12 * h + 50 * 60
    opening = [(8 * h, 12 * h), (14 * h, 18 * h)]
    held = time_route(vehicle, [job], matrix, matrix, leave_within=opening)
    assert held.start_s == 12 * h and held.stops[0].start_s == 13 * h
    assert held.end_s == free.end_s and held.violations == []
