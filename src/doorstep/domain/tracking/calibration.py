"""The ETA window: split-conformal quantiles of the merchant's own ETA errors at the same horizon.

Every ETA the engine makes is recorded once per stop and *horizon* (a minutes-away bucket);
when the stop is arrived, its error (actual minus predicted, seconds) is filled in. A new ETA
``minutes_away`` from now gets the window ``eta + [lo, hi] * scale(minutes_away)``, where
``lo``/``hi`` are empirical quantiles of the normalised errors ``error / scale`` recorded in the
same bucket, taken at the split-conformal ranks so that, for exchangeable errors, at least
``confidence`` of future arrivals fall inside (ADR 0010). While a bucket has fewer than
``min_history`` errors the window leans on a prior (a normal spread that grows with the
horizon), blended away as history arrives.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist, median

HORIZONS: tuple[tuple[float, float, str], ...] = (
    (0, 10, "m0-10"),
    (10, 20, "m10-20"),
    (20, 40, "m20-40"),
    (40, 60, "m40-60"),
    (60, 90, "m60-90"),
    (90, 150, "m90-150"),
    (150, 240, "m150-240"),
    (240, math.inf, "m240+"),
)
"""Minutes-away buckets; errors are only compared with errors made as far ahead."""

SCALE_FLOOR_MIN = 10.0
PRIOR_SIGMA = (1.5, 0.12)
"""Prior error spread in minutes: ``a + b * minutes_away`` (one standard deviation)."""
PRIOR_LATE_BIAS = 0.15
"""The prior's window leans late by this share of its spread: drivers run late more often."""


def horizon_of(minutes_away: float, *, cold: bool = False) -> str:
    """The bucket ``minutes_away`` falls in; ``cold`` ETAs (made before the route has driven a
    leg, so without the driver's pace: at route start) have buckets of their own, because
    they err differently (the first hour's traffic is still unknown)."""
    suffix = "/cold" if cold else ""
    for low, high, name in HORIZONS:
        if low <= minutes_away < high:
            return name + suffix
    return HORIZONS[0][2] + suffix


def scale_s(minutes_away: float) -> float:
    """The unit errors are normalised by: errors grow with the horizon, even inside a bucket."""
    return 60.0 * (max(0.0, minutes_away) + SCALE_FLOOR_MIN)


def conformal_bounds(scores: Sequence[float], confidence: float) -> tuple[float, float]:
    """Lower and upper split-conformal quantiles of ``scores`` for a two-sided interval.

    With ``n`` scores the upper bound is the ``ceil((n + 1)(1 - a/2))``-th smallest and the
    lower the ``floor((n + 1) a/2)``-th (``a = 1 - confidence``), clamped to the sample: the
    finite-sample correction that makes the coverage at least ``confidence``."""
    if not scores:
        raise ValueError("no scores")
    ordered = sorted(scores)
    n = len(ordered)
    alpha = 1.0 - confidence
    # The tolerance keeps binary rounding (1 - 0.9 = 0.0999...) from moving a rank.
    upper_rank = math.ceil((n + 1) * (1 - alpha / 2) - 1e-9)
    lower_rank = math.floor((n + 1) * alpha / 2 + 1e-9)
    upper = ordered[min(n, max(1, upper_rank)) - 1]
    lower = ordered[min(n, max(1, lower_rank)) - 1]
    return lower, upper


def prior_bounds(minutes_away: float, confidence: float) -> tuple[float, float]:
    """The window before any history, in normalised units (see :func:`scale_s`)."""
    sigma = 60.0 * (PRIOR_SIGMA[0] + PRIOR_SIGMA[1] * max(0.0, minutes_away))
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    shift = PRIOR_LATE_BIAS * sigma
    scale = scale_s(minutes_away)
    return (shift - z * sigma) / scale, (shift + z * sigma) / scale


@dataclass(frozen=True)
class Window:
    """Offsets from the engine's raw ETA, in seconds, and what they rest on: the window is
    ``[eta + before_s, eta + after_s]`` and the ETA shown is ``eta + center_s`` (the median
    error: an engine that runs early on this merchant's streets is corrected)."""

    before_s: float
    after_s: float
    center_s: float
    history: int  # errors used (0: prior only)


def window(
    minutes_away: float,
    scores: Sequence[float],
    *,
    confidence: float,
    min_history: int,
) -> Window:
    """The window around an ETA ``minutes_away`` from now, from the bucket's ``scores``."""
    prior_lo, prior_hi = prior_bounds(minutes_away, confidence)
    prior_mid = (prior_lo + prior_hi) / 2
    n = len(scores)
    if n == 0:
        lo, hi, mid = prior_lo, prior_hi, prior_mid
    else:
        emp_lo, emp_hi = conformal_bounds(scores, confidence)
        emp_mid = median(scores)
        weight = min(1.0, n / max(1, min_history))
        lo = weight * emp_lo + (1 - weight) * prior_lo
        hi = weight * emp_hi + (1 - weight) * prior_hi
        mid = weight * emp_mid + (1 - weight) * prior_mid
    scale = scale_s(minutes_away)
    mid = min(max(mid, lo), hi)
    return Window(lo * scale, hi * scale, mid * scale, n)
