"""The demo plays the quiet early morning at once: each action runs with the clock at its own
simulated time (so what it writes carries that time), then the clock waits just before the
first shift; a clock already past that point is never moved back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from doorstep.clock import SimulatedClock
from doorstep.simulator.demo import _catch_up

DAWN = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)


class Day:
    """Actions due at given times; each records the clock's time when it runs."""

    def __init__(self, clock: SimulatedClock, due: list[datetime]) -> None:
        self.clock = clock
        self.due = sorted(due)
        self.ran: list[tuple[datetime, datetime]] = []  # (due, clock when run)

    def next_due(self) -> datetime | None:
        return self.due[0] if self.due else None

    def advance(self, until: datetime) -> None:
        while self.due and self.due[0] <= until:
            self.ran.append((self.due.pop(0), self.clock.now()))


def test_early_actions_run_at_their_own_times_and_the_clock_stops_before_the_shift() -> None:
    clock = SimulatedClock(DAWN, speed=0)  # speed 0: only set() moves it
    due = [DAWN + timedelta(minutes=m) for m in (30, 75, 150, 200)]
    day = Day(clock, due)
    shift_start = DAWN + timedelta(minutes=180)
    _catch_up(day, clock, shift_start - timedelta(minutes=3))
    assert day.ran == [(at, at) for at in due[:3]]
    assert clock.now() == shift_start - timedelta(minutes=3)
    assert day.due == [due[3]]  # after the shift's start: played live


def test_a_clock_already_past_the_target_is_not_moved_back() -> None:
    clock = SimulatedClock(DAWN + timedelta(hours=4), speed=0)
    day = Day(clock, [DAWN + timedelta(minutes=10)])
    _catch_up(day, clock, DAWN + timedelta(hours=2))
    assert clock.now() == DAWN + timedelta(hours=4)
    assert day.ran == [(DAWN + timedelta(minutes=10), DAWN + timedelta(hours=4))]
