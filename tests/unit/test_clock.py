"""The simulated clock runs at its speed from where it is set: the demo's 60x day, and the
simulator moving it back to a booking time without stopping it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from doorstep.clock import SimulatedClock

T = datetime(2026, 12, 8, 7, 0, tzinfo=UTC)


def test_it_runs_at_its_speed_and_set_re_anchors_it() -> None:
    clock = SimulatedClock(T, speed=600.0)
    assert clock.speed == 600.0
    time.sleep(0.05)
    assert T + timedelta(seconds=20) <= clock.now() < T + timedelta(minutes=5)
    earlier = T - timedelta(days=2)
    clock.set(earlier)
    assert earlier <= clock.now() < earlier + timedelta(minutes=1)
    time.sleep(0.05)
    assert clock.now() >= earlier + timedelta(seconds=20)  # still running after set()


def test_it_refuses_naive_times() -> None:
    with pytest.raises(ValueError):
        SimulatedClock(datetime(2026, 12, 8, 7, 0))
    with pytest.raises(ValueError):
        SimulatedClock(T).set(datetime(2026, 12, 8, 7, 0))
