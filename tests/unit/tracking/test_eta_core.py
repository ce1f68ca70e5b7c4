"""The pure ETA arithmetic on hand-made routes (no database, no road network)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from doorstep.domain.tracking.eta_core import (
    Pace,
    RemainingStop,
    estimate,
    explain,
    pace_so_far,
)

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def _minutes(at: datetime) -> float:
    return (at - T0).total_seconds() / 60


def test_etas_add_road_times_and_service_times_in_route_order() -> None:
    """Two stops 10 and 5 minutes apart with 2-minute services arrive at +10 and +17 min."""
    stops = [RemainingStop("a", 600, 120), RemainingStop("b", 300, 120)]
    etas = estimate(T0, T0, stops, Pace())
    assert [_minutes(e.eta) for e in etas] == [10, 17]
    assert [e.stops_before for e in etas] == [0, 1]
    assert [e.minutes_away for e in etas] == [10, 17]


def test_a_slow_driver_gets_later_etas() -> None:
    """A driver 50 % slower on the road and 2x slower at the door pushes each ETA back."""
    stops = [RemainingStop("a", 600, 120), RemainingStop("b", 300, 120)]
    etas = estimate(T0, T0, stops, Pace(travel=1.5, service=2.0))
    assert [_minutes(e.eta) for e in etas] == [15, 15 + 4 + 7.5]


def test_a_driver_at_a_stop_leaves_after_its_service() -> None:
    """Arrived 1 min ago at a 3-minute stop: the next stop is 2 min of service plus 5 of road."""
    stops = [
        RemainingStop("here", 0, 180, arrived_at=T0 - timedelta(minutes=1)),
        RemainingStop("next", 300, 120),
    ]
    etas = estimate(T0, T0 - timedelta(minutes=1), stops, Pace())
    assert _minutes(etas[0].eta) == -1  # the arrival itself, already happened
    assert _minutes(etas[1].eta) == 7


def test_the_van_waits_for_a_window_to_open() -> None:
    """A stop whose window opens later than the van could be there is served at the opening,
    and everything after it shifts with it."""
    opens = T0 + timedelta(minutes=30)
    stops = [RemainingStop("a", 600, 120, window_start=opens), RemainingStop("b", 300, 0)]
    etas = estimate(T0, T0, stops, Pace())
    assert etas[0].eta == opens
    assert _minutes(etas[1].eta) == 30 + 2 + 5


def test_no_eta_is_in_the_past() -> None:
    """A position 20 minutes old, 5 minutes from the stop: the driver is arriving now, not
    15 minutes ago."""
    stops = [RemainingStop("a", 300, 60), RemainingStop("b", 300, 60)]
    etas = estimate(T0, T0 - timedelta(minutes=20), stops, Pace())
    assert etas[0].eta == T0
    assert _minutes(etas[1].eta) == 1 + 5


def test_pace_starts_as_planned_and_follows_a_long_slow_day() -> None:
    """One slow leg moves the pace a little; a whole slow morning moves it most of the way."""
    assert pace_so_far([]) == Pace(1.0, 1.0, 0.0, legs=0)
    one = pace_so_far([(900.0, 600.0)])
    assert 1.0 < one.travel < 1.25
    many = pace_so_far([(900.0, 600.0)] * 20)
    assert 1.4 < many.travel <= 1.5
    assert pace_so_far([], [(400.0, 180.0)]).last_service_overrun_s == 220


def test_pace_is_bounded() -> None:
    """A GPS glitch (a leg 'driven' in no time, or in hours) cannot make the pace absurd."""
    assert pace_so_far([(1.0, 10_000.0)] * 5).travel == 0.6
    assert pace_so_far([(100_000.0, 100.0)] * 5).travel == 2.0


def test_reasons_name_what_moved_the_eta() -> None:
    """Later after a long stop, later in slow traffic, earlier with a brisk driver."""
    before = T0
    later, earlier = T0 + timedelta(minutes=6), T0 - timedelta(minutes=6)
    long_stop = Pace(1.0, 1.3, last_service_overrun_s=300)
    assert explain(before, later, long_stop, "position update") == "previous stop took longer"
    assert explain(before, later, Pace(travel=1.3), "position update") == "traffic"
    assert explain(before, earlier, Pace(travel=0.8), "position update") == "driver is ahead"
    assert explain(None, later, Pace(travel=1.3), "route started") == "route started"


def test_recent_legs_count_more_than_the_morning_rush() -> None:
    """Six slow rush-hour legs then six legs as planned: the pace is back near 1.0, much
    nearer than the plain average of the day."""
    legs = [(450.0, 300.0)] * 6 + [(300.0, 300.0)] * 6
    recent = pace_so_far(legs).travel
    plain = (sum(a for a, _ in legs) + 900) / (sum(e for _, e in legs) + 900)
    assert 1.0 < recent < plain
    assert recent < 1.1
