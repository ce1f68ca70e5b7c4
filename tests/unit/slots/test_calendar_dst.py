"""Slot windows, cut-offs and lead times in the merchant's local time across the two
daylight-saving changes of Europe/Monaco in 2026 (29 March, 25 October)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from doorstep.domain.slots.calendars import cutoff_problem, service_level, window_at, windows_on
from doorstep.domain.slots.models import SlotCalendar

MONACO = ZoneInfo("Europe/Monaco")
EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def calendar(**kw: Any) -> SlotCalendar:
    rules = kw.pop(
        "rules",
        [
            {"days": EVERY_DAY, "start": "09:00", "end": "11:00", "capacity": 5, "fee_cents": 0},
            {"days": ["sun"], "start": "03:00", "end": "05:00", "capacity": 5, "fee_cents": 0},
        ],
    )
    return SlotCalendar(
        id="cal_test",
        merchant_id="mer_test",
        depot_id="dep_test",
        zone_id=None,
        name="test",
        rules=rules,
        closed_dates=[],
        same_day_cutoff=kw.pop("same_day_cutoff", "14:00"),
        next_day_cutoff=kw.pop("next_day_cutoff", "22:00"),
        lead_time_minutes=kw.pop("lead_time_minutes", 60),
        horizon_days=14,
        currency="EUR",
        active=True,
    )


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_morning_window_stays_at_nine_on_the_clocks_across_both_changes() -> None:
    """09:00-11:00 local is 08:00 UTC before the spring change and 07:00 UTC after it, and
    back to 08:00 UTC after the autumn change."""
    cal = calendar()
    starts = {
        day: windows_on(cal, day, MONACO)[-1].start
        for day in (date(2026, 3, 28), date(2026, 3, 29), date(2026, 10, 24), date(2026, 10, 25))
    }
    assert starts[date(2026, 3, 28)] == utc(2026, 3, 28, 8)
    assert starts[date(2026, 3, 29)] == utc(2026, 3, 29, 7)
    assert starts[date(2026, 10, 24)] == utc(2026, 10, 24, 7)
    assert starts[date(2026, 10, 25)] == utc(2026, 10, 25, 8)
    for start in starts.values():
        assert start.astimezone(MONACO).strftime("%H:%M") == "09:00"
    ends = [windows_on(cal, d, MONACO)[-1].end for d in starts]
    assert all(e.astimezone(MONACO).strftime("%H:%M") == "11:00" for e in ends)


def test_night_windows_on_the_change_days_start_when_the_clocks_show_three() -> None:
    """03:00-05:00 on 29 March (after the 02:00-03:00 jump) starts at 01:00 UTC and lasts
    2 h; on 25 October it starts at 02:00 UTC, after the repeated hour."""
    cal = calendar()
    spring = windows_on(cal, date(2026, 3, 29), MONACO)[0]
    assert spring.start == utc(2026, 3, 29, 1)
    assert (spring.end - spring.start).total_seconds() == 2 * 3600
    autumn = windows_on(cal, date(2026, 10, 25), MONACO)[0]
    assert autumn.start == utc(2026, 10, 25, 2)
    assert window_at(cal, autumn.start, MONACO) == autumn


def test_the_next_day_cutoff_is_22_local_on_the_eve_of_the_change() -> None:
    """Saturday 28 March is still UTC+1: booking Sunday's window closes at 21:00 UTC."""
    cal = calendar()
    sunday_nine = windows_on(cal, date(2026, 3, 29), MONACO)[-1]
    assert cutoff_problem(sunday_nine, utc(2026, 3, 28, 20, 59), MONACO) is None
    refused = cutoff_problem(sunday_nine, utc(2026, 3, 28, 21, 0), MONACO)
    assert refused == "next-day orders close at 22:00 the day before"


def test_the_same_day_cutoff_is_14_local_on_the_day_after_the_change() -> None:
    """Sunday 29 March is UTC+2: same-day orders close at 12:00 UTC, not 13:00."""
    cal = calendar(rules=[{"days": EVERY_DAY, "start": "17:00", "end": "19:00", "capacity": 5}])
    evening = windows_on(cal, date(2026, 3, 29), MONACO)[0]
    assert cutoff_problem(evening, utc(2026, 3, 29, 11, 59), MONACO) is None
    assert cutoff_problem(evening, utc(2026, 3, 29, 12, 0), MONACO) == (
        "same-day orders close at 14:00"
    )
    assert service_level(evening.day, utc(2026, 3, 29, 11, 59), MONACO) == "same_day"


def test_lead_time_counts_real_minutes_across_the_jump() -> None:
    """At 01:30 local (00:30 UTC) on 29 March the 03:00 window is only 30 real minutes away
    (the clocks skip 02:00-03:00), so a 60-minute lead time refuses it; 45 minutes earlier the
    hour is there."""
    cal = calendar(same_day_cutoff="23:00")
    night = windows_on(cal, date(2026, 3, 29), MONACO)[0]
    assert cutoff_problem(night, utc(2026, 3, 29, 0, 30), MONACO) == (
        "the window needs 60 minutes' notice"
    )
    assert cutoff_problem(night, utc(2026, 3, 28, 23, 45), MONACO) is None


def test_no_same_day_cutoff_means_no_same_day_windows() -> None:
    """A calendar without a same-day cut-off never sells today's windows."""
    cal = calendar(same_day_cutoff=None)
    today = windows_on(cal, date(2026, 10, 25), MONACO)[-1]
    assert cutoff_problem(today, utc(2026, 10, 25, 5), MONACO) == (
        "no same-day delivery: book a window on a later day"
    )
