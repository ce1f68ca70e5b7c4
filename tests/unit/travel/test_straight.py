"""The straight-line provider: great circle x detour at a per-profile average speed."""

from __future__ import annotations

import numpy as np
import pytest

from doorstep.routing.travel.base import LatLon, Profile
from doorstep.routing.travel.straight import AVERAGE_SPEEDS, StraightLineProvider, haversine_m

MONACO = [LatLon(43.7384, 7.4246), LatLon(43.7310, 7.4190), LatLon(43.7500, 7.4400)]


def test_haversine_matches_a_known_distance() -> None:
    """One degree of latitude is about 111.2 km."""
    assert float(haversine_m(0.0, 0.0, 1.0, 0.0)) == pytest.approx(111_195, rel=1e-3)


@pytest.mark.parametrize("profile", list(Profile))
def test_matrix_is_symmetric_with_zero_diagonal(profile: Profile) -> None:
    """Straight lines go both ways equally; a point is 0 s from itself."""
    m = StraightLineProvider().matrix(MONACO, profile)
    assert m.durations_s.dtype == np.int64 and m.distances_m.dtype == np.int64
    assert (m.durations_s == m.durations_s.T).all()
    assert (m.distances_m == m.distances_m.T).all()
    assert (np.diag(m.durations_s) == 0).all()
    assert m.unreachable == set()
    assert m.snapped == MONACO and m.snap_distance_m == [0.0] * 3


def test_distance_scales_with_the_detour_factor() -> None:
    """Doubling the detour factor doubles distances and durations (up to rounding)."""
    plain = StraightLineProvider(detour_factor=1.0).matrix(MONACO, Profile.VAN)
    double = StraightLineProvider(detour_factor=2.0).matrix(MONACO, Profile.VAN)
    great_circle = float(haversine_m(MONACO[0].lat, MONACO[0].lon, MONACO[1].lat, MONACO[1].lon))
    assert plain.distances_m[0, 1] == round(great_circle)
    assert abs(double.distances_m - 2 * plain.distances_m).max() <= 1
    assert abs(double.durations_s - 2 * plain.durations_s).max() <= 1


def test_default_detour_and_speeds() -> None:
    """Default: 1.3 detour; van 30, cargo bike 15, walking 5 km/h."""
    provider = StraightLineProvider()
    m = provider.matrix(MONACO[:2], Profile.VAN)
    metres = float(haversine_m(MONACO[0].lat, MONACO[0].lon, MONACO[1].lat, MONACO[1].lon)) * 1.3
    assert m.distances_m[0, 1] == round(metres)
    assert m.durations_s[0, 1] == round(metres / (30 / 3.6))
    assert [AVERAGE_SPEEDS[p].kmh for p in Profile] == [30.0, 15.0, 5.0]
    walk = provider.matrix(MONACO[:2], Profile.WALKING)
    assert walk.durations_s[0, 1] == pytest.approx(6 * m.durations_s[0, 1], abs=3)


def test_path_is_the_points_themselves() -> None:
    """Without roads the path is straight segments between the stops."""
    assert StraightLineProvider().path(MONACO, Profile.VAN) == MONACO


def test_detour_below_one_is_refused() -> None:
    """A path can never be shorter than the great circle."""
    with pytest.raises(ValueError, match="detour_factor"):
        StraightLineProvider(detour_factor=0.5)
