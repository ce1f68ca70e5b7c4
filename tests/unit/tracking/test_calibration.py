"""The calibrated window: split-conformal quantiles of past errors, a prior while history is
thin, narrowing as the stop approaches (no database)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from doorstep.domain.tracking.calibration import (
    bucket_of,
    conformal_bounds,
    mark_of,
    prior_bounds,
    window,
)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(100, 1500),
    shape=st.sampled_from(["normal", "lognormal", "late_tail", "uniform"]),
    confidence=st.sampled_from([0.8, 0.9, 0.95]),
)
def test_conformal_window_covers_new_errors_at_the_stated_confidence(
    seed: int, n: int, shape: str, confidence: float
) -> None:
    """Bounds from n past errors contain about `confidence` of 20,000 new errors from the same
    distribution, whatever its shape (never much less, never much more)."""
    rng = np.random.default_rng(seed)

    def draw(k: int) -> np.ndarray:
        if shape == "normal":
            return rng.normal(60, 240, k)
        if shape == "lognormal":
            return rng.lognormal(4, 1, k) - 80
        if shape == "late_tail":  # mostly on time, sometimes very late (an incident)
            return rng.normal(0, 90, k) + (rng.random(k) < 0.1) * rng.uniform(300, 900, k)
        return rng.uniform(-300, 600, k)

    lo, hi = conformal_bounds(list(draw(n)), confidence)
    fresh = draw(20_000)
    coverage = float(np.mean((fresh >= lo) & (fresh <= hi)))
    # The coverage of split-conformal bounds is random with a spread of about
    # sqrt(c(1-c)/n); 5 spreads either side, and at least the target minus that.
    spread = (confidence * (1 - confidence) / n) ** 0.5
    assert confidence - 5 * spread <= coverage <= min(1.0, confidence + 5 * spread + 2 / n)


def test_conformal_bounds_use_the_finite_sample_ranks() -> None:
    """With 19 scores 1..19 a 90 % interval runs from the smallest to the largest score
    ((19 + 1) * 0.95 = 19th); with 99 it runs from the 5th to the 95th."""
    assert conformal_bounds([float(i) for i in range(1, 20)], 0.9) == (1.0, 19.0)
    assert conformal_bounds([float(i) for i in range(1, 100)], 0.9) == (5.0, 95.0)


def test_the_prior_window_narrows_as_the_stop_approaches() -> None:
    """Without history the window two hours out is much wider than the one 5 minutes out."""
    near = window(5, [], confidence=0.9, min_history=50)
    far = window(120, [], confidence=0.9, min_history=50)
    assert near.history == far.history == 0
    assert 0 < near.after_s - near.before_s < far.after_s - far.before_s
    assert near.before_s < 0 < near.after_s


def test_history_replaces_the_prior() -> None:
    """A merchant whose drivers always come 1 to 3 minutes later than the engine says gets a
    window that sits late, and a shown ETA corrected by the median error."""
    minutes_away = 15.0
    scale = 60 * (minutes_away + 10)
    scores = [s / scale for s in np.linspace(60, 180, 200)]
    win = window(minutes_away, scores, confidence=0.9, min_history=50)
    assert win.history == 200
    assert 60 <= win.before_s < 70
    assert 170 < win.after_s <= 180
    assert abs(win.center_s - 120) < 1


def test_thin_history_is_blended_with_the_prior() -> None:
    """Ten errors are not trusted fully: the window lies between the prior's and history's."""
    scale = 60 * (30 + 10)
    scores = [s / scale for s in np.linspace(-30, 30, 10)]
    prior = window(30, [], confidence=0.9, min_history=50)
    thin = window(30, scores, confidence=0.9, min_history=50)
    full = window(30, scores * 10, confidence=0.9, min_history=50)
    assert full.after_s < thin.after_s < prior.after_s
    assert prior.before_s < thin.before_s < full.before_s


def test_higher_confidence_gives_a_wider_prior() -> None:
    """A 95 % window is wider than a 80 % one, around the same median."""
    lo80, mid80, hi80 = prior_bounds(0.8)
    lo95, mid95, hi95 = prior_bounds(0.95)
    assert lo95 < lo80 < mid80 == mid95 < hi80 < hi95


def test_the_prior_leans_late_as_driven_days_do() -> None:
    """Before any history the window reaches further after the ETA than before it (drivers
    lose time more than they gain it): 30 minutes away, from 4.4 minutes before to 9.5 after
    (ADR 0010); the ETA shown is the engine's until the merchant's own history moves it."""
    win = window(30, [], confidence=0.9, min_history=50)
    assert win.center_s == 0
    assert -5 * 60 < win.before_s < -4 * 60 and 9 * 60 < win.after_s < 10 * 60
    cold = window(30, [], confidence=0.9, min_history=50, cold=True)
    assert cold.after_s > -2 * cold.before_s > 0


def test_errors_of_few_routes_count_as_few_observations() -> None:
    """Two hundred errors made on three routes (one morning's rush hour) move the window less
    from the prior than the same errors made on thirty routes."""
    scale = 60 * (30 + 10)
    late = [s / scale for s in np.linspace(600, 1200, 200)]  # 10 to 20 minutes late
    kw = {"confidence": 0.9, "min_history": 50, "min_routes": 20}
    prior = window(30, [], confidence=0.9, min_history=50)
    few = window(30, late, routes=3, **kw)
    many = window(30, late, routes=30, **kw)
    assert prior.before_s < few.before_s < many.before_s
    assert prior.center_s < few.center_s < many.center_s
    assert 600 <= many.before_s < 650 and abs(many.center_s - 900) < 5  # history alone


def test_marks_and_buckets() -> None:
    """An ETA is recorded at the smallest mark at or above its minutes away, and calibrated on
    the errors of every mark of its bucket; cold (route start) ETAs have marks of their own."""
    assert mark_of(0) == "m5"
    assert mark_of(10) == "m10"
    assert mark_of(10.1) == "m15"
    assert mark_of(33) == "m35"
    assert mark_of(600) == "m+"
    assert bucket_of(33) == ("m25", "m30", "m35", "m40")
    assert bucket_of(2) == ("m5", "m10")
    assert bucket_of(45, cold=True) == ("m50/cold", "m60/cold")
    assert mark_of(45, cold=True) in bucket_of(45, cold=True)
