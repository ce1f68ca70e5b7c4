"""The ETA arithmetic, without a database: where the driver is, the road times still to drive,
the service times still to spend, and how the driver's day has gone so far.

:func:`estimate` walks the remaining stops from the vehicle's latest known point, as the
optimiser times a route (the vehicle waits for a window to open), with every road time scaled
by the driver's travel pace and every service time by their service pace. :func:`pace_so_far`
measures those paces from the legs and stops already done today, shrunk towards 1.0 (as
planned) while there is little to go on. :func:`explain` names why a published ETA moved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

PACE_PRIOR_S = 900.0
"""Seconds of 'as planned' driving (and service) every pace starts with: one slow leg early in
the day moves the pace a little, a slow morning moves it a lot."""
PACE_BOUNDS = (0.6, 2.0)
PACE_HALF_LIFE = 4.0
"""Legs back after which a leg counts half as much in the pace."""


@dataclass(frozen=True)
class RemainingStop:
    """One stop still to serve, in route order.

    ``travel_s`` is the road time (the travel provider's, unscaled) from the previous point:
    the vehicle's origin for the first stop, the previous stop otherwise. ``arrived_at`` is set
    on the first stop only, when the driver is there and has not left yet."""

    stop_id: str
    travel_s: float
    service_s: float
    window_start: datetime | None = None
    arrived_at: datetime | None = None


@dataclass(frozen=True)
class Pace:
    """Actual over expected time so far today (1.0: as planned; 1.2: 20 % slower)."""

    travel: float = 1.0
    service: float = 1.0
    last_service_overrun_s: float = 0.0  # how much longer than planned the last stop took
    legs: int = 0  # legs driven today that the pace rests on (0: nothing known yet)


@dataclass(frozen=True)
class StopEta:
    stop_id: str
    eta: datetime
    stops_before: int  # stops the driver serves before this one
    minutes_away: float  # from now until ``eta``


def _clip(value: float) -> float:
    low, high = PACE_BOUNDS
    return min(high, max(low, value))


def pace_so_far(
    legs: Sequence[tuple[float, float]],
    services: Sequence[tuple[float, float]] = (),
    *,
    prior_s: float = PACE_PRIOR_S,
    half_life: float = PACE_HALF_LIFE,
) -> Pace:
    """The driver's pace from the legs driven and stops served today, each an
    ``(actual_s, expected_s)`` pair in route order. Recent legs count more (their weight halves
    every ``half_life`` legs back): the morning rush hour should not slow the afternoon's ETAs."""

    def ratio(pairs: Sequence[tuple[float, float]]) -> float:
        n = len(pairs)
        weights = [0.5 ** ((n - 1 - i) / half_life) for i in range(n)]
        actual = sum(w * a for w, (a, _) in zip(weights, pairs, strict=True))
        expected = sum(w * e for w, (_, e) in zip(weights, pairs, strict=True))
        return _clip((actual + prior_s) / (expected + prior_s))

    overrun = services[-1][0] - services[-1][1] if services else 0.0
    return Pace(ratio(legs), ratio(services), overrun, len(legs))


def estimate(
    now: datetime, origin_at: datetime, stops: Sequence[RemainingStop], pace: Pace
) -> list[StopEta]:
    """Arrival estimates for ``stops``, leaving the origin at ``origin_at``.

    Nothing is estimated in the past: a driver who should already be at the next stop but has
    not said so is taken to be arriving now, and everything after shifts with them."""
    out: list[StopEta] = []
    t = origin_at
    for index, stop in enumerate(stops):
        if index == 0 and stop.arrived_at is not None:
            arrival = stop.arrived_at
            service_end = arrival + timedelta(seconds=stop.service_s * pace.service)
            t = max(now, service_end)
        else:
            arrival = max(now, t + timedelta(seconds=stop.travel_s * pace.travel))
            if stop.window_start is not None:
                arrival = max(arrival, stop.window_start)
            t = arrival + timedelta(seconds=stop.service_s * pace.service)
        minutes = max(0.0, (arrival - now).total_seconds() / 60)
        out.append(StopEta(stop.stop_id, arrival, index, minutes))
    return out


def explain(previous: datetime | None, new: datetime, pace: Pace, fallback: str) -> str:
    """Why the ETA moved from ``previous`` to ``new``, in words a recipient understands."""
    if previous is None:
        return fallback
    if new > previous:
        if pace.last_service_overrun_s >= 120:
            return "previous stop took longer"
        if pace.travel >= 1.05:
            return "traffic"
        return fallback
    if pace.travel <= 0.97 or pace.last_service_overrun_s <= -120:
        return "driver is ahead"
    return fallback


def delay_reason(pace: Pace) -> str:
    """Why a route runs late, for a delay notice."""
    if pace.last_service_overrun_s >= 120:
        return "previous stop took longer"
    if pace.travel >= 1.05:
        return "traffic"
    return "the route is running late"
