"""The ETA window: split-conformal quantiles of the merchant's own ETA errors at the same horizon.

Every ETA the engine makes is recorded once per stop and *mark* (minutes away: 5, 10, 15, ...);
when the stop is arrived, its error (actual minus predicted, seconds) is filled in. A new ETA
``minutes_away`` from now gets the window ``eta + [lo, hi] * scale(minutes_away)``, where
``lo``/``hi`` are empirical quantiles of the normalised errors ``error / scale`` recorded at the
marks of the same bucket, taken at the split-conformal ranks so that, for exchangeable errors,
at least ``confidence`` of future arrivals fall inside (ADR 0010). While a bucket has fewer than
``min_history`` errors from ``min_routes`` routes the window leans on a prior (:data:`PRIOR`,
fitted to driven days: it leans late and grows with the horizon), blended away as history
arrives.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist, median

BUCKETS: tuple[tuple[float, ...], ...] = (
    (5, 10),
    (15, 20),
    (25, 30, 35, 40),
    (50, 60),
    (75, 90),
    (120, 150),
    (180, 240),
    (300, 420, math.inf),
)
"""Minutes-away *marks*, grouped in buckets. An ETA is recorded once per stop and mark (the
smallest mark at or above its minutes away), so each bucket holds errors made all across its
range, and a window is computed from the errors of its own bucket only."""
MARKS: tuple[float, ...] = tuple(m for bucket in BUCKETS for m in bucket)

SCALE_FLOOR_MIN = 10.0


@dataclass(frozen=True)
class Prior:
    """The error of an ETA before any history, in normalised units (error / :func:`scale_s`):
    a split normal, i.e. a median and one spread on each side (errors run late further than
    early: a driver can lose ten minutes in traffic, seldom gain them)."""

    median: float
    early: float  # the spread below the median (one standard deviation)
    late: float  # ... and above it


PRIOR = {
    False: Prior(0.044, 0.094, 0.117),
    True: Prior(0.056, 0.063, 0.131),
}
"""The prior of warm (``False``) and cold (``True``, route start) ETAs: fitted to the 5 %, 50 %
and 95 % quantiles of 6,829 normalised errors of the ETA engine on driven days (``doorstep
bench eta``'s five days and the simulated day of seed 7; ADR 0010). In minutes, the errors of
an ETA 30 minutes away have a median of +1.8 and a 90 % window from 4.4 minutes before to 9.5
after; quantiles in these units change only slowly with the horizon, so one prior
serves every bucket."""


def _label(mark: float, cold: bool) -> str:
    return ("m+" if math.isinf(mark) else f"m{int(mark)}") + ("/cold" if cold else "")


def _mark(minutes_away: float) -> float:
    return next(m for m in MARKS if minutes_away <= m)


def mark_of(minutes_away: float, *, cold: bool = False) -> str:
    """The mark an ETA ``minutes_away`` ahead is recorded under, e.g. ``m30``. ``cold`` ETAs
    (made before the route has driven a leg, so without the driver's pace: at route start)
    have marks of their own, because they err differently (the first hour is still unknown)."""
    return _label(_mark(max(0.0, minutes_away)), cold)


def bucket_of(minutes_away: float, *, cold: bool = False) -> tuple[str, ...]:
    """The marks whose errors calibrate a window ``minutes_away`` ahead."""
    mark = _mark(max(0.0, minutes_away))
    bucket = next(b for b in BUCKETS if mark in b)
    return tuple(_label(m, cold) for m in bucket)


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


def prior_bounds(confidence: float, *, cold: bool = False) -> tuple[float, float, float]:
    """The window before any history, in normalised units (see :func:`scale_s`): lower
    bound, median and upper bound of the :data:`PRIOR` at ``confidence``."""
    prior = PRIOR[cold]
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    return prior.median - z * prior.early, prior.median, prior.median + z * prior.late


@dataclass(frozen=True)
class Window:
    """Offsets from the engine's raw ETA, in seconds, and what they rest on: the window is
    ``[eta + before_s, eta + after_s]`` and the ETA shown is ``eta + center_s`` (the median
    error of this merchant's history, by its weight: an engine that runs early on their
    streets is corrected; the prior's median is not applied, see :func:`window`)."""

    before_s: float
    after_s: float
    center_s: float
    history: int  # errors used (0: prior only)


def history_weight(n: int, routes: int, *, min_history: int, min_routes: int) -> float:
    """How much a bucket's history counts against the prior: fully from ``min_history``
    errors made on ``min_routes`` routes, in proportion to the scarcer of the two before. The
    errors of one route share its driver, its traffic and its day, so a morning of a few routes
    is a few observations, not hundreds: counted by errors alone, the first day's rush hour
    made the afternoon's windows start too late."""
    by_errors = n / max(1, min_history)
    by_routes = routes / max(1, min_routes)
    return min(1.0, by_errors) * min(1.0, by_routes)


def window(
    minutes_away: float,
    scores: Sequence[float],
    *,
    confidence: float,
    min_history: int,
    routes: int | None = None,
    min_routes: int = 1,
    cold: bool = False,
) -> Window:
    """The window around an ETA ``minutes_away`` from now, from the bucket's ``scores``, made
    on ``routes`` different routes (None: as many as scores).

    The bounds blend history with the prior's; the shown ETA moves by history's median only
    (times its weight). The prior's median is no fixed truth: route-start medians were
    +0.106, +0.043 and +0.015 in the three sources it was fitted or checked on, and applying
    it more than doubled the median error of seed 11's simulated route-start ETAs (2.1 to
    5.7 min, ADR 0010)."""
    prior_lo, _, prior_hi = prior_bounds(confidence, cold=cold)
    n = len(scores)
    if n == 0:
        lo, hi, mid = prior_lo, prior_hi, 0.0
    else:
        emp_lo, emp_hi = conformal_bounds(scores, confidence)
        emp_mid = median(scores)
        weight = history_weight(
            n, n if routes is None else routes, min_history=min_history, min_routes=min_routes
        )
        lo = weight * emp_lo + (1 - weight) * prior_lo
        hi = weight * emp_hi + (1 - weight) * prior_hi
        mid = weight * emp_mid
    scale = scale_s(minutes_away)
    mid = min(max(mid, lo), hi)
    return Window(lo * scale, hi * scale, mid * scale, n)
