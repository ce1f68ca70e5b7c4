"""Coordinates that contradict the address's country are named: 0,0, swapped, elsewhere."""

from __future__ import annotations

import pytest

from doorstep.geocoding.countries import COUNTRY_BOXES, CoordinateProblem, coordinate_problem


@pytest.mark.parametrize(
    ("country", "lat", "lon"),
    [
        ("MC", 43.7405, 7.4263),  # Monte-Carlo
        ("MC", 43.7285, 7.3600),  # Cap-d'Ail, France: on the Monaco extract, served from it
        ("FR", 48.8566, 2.3522),
        ("FR", -20.8823, 55.4504),  # Saint-Denis, Réunion
        ("FI", 60.1699, 24.9384),
        ("US", 21.3069, -157.8583),  # Honolulu
        ("ZZ", 12.0, 34.0),  # not in the table: only 0,0 is checked
    ],
)
def test_points_in_their_country_pass(country: str, lat: float, lon: float) -> None:
    """Real places in their own country raise nothing."""
    assert coordinate_problem(country, lat, lon) is None


def test_null_island_swapped_and_elsewhere_are_told_apart() -> None:
    """0,0 is null_island (even for unlisted countries); Monte-Carlo with lat/lon exchanged is
    swapped; Paris for a Monaco address is outside_country; each with a sentence."""
    for country in ("MC", "ZZ"):
        found = coordinate_problem(country, 0.0, 0.0)
        assert found is not None and found[0] is CoordinateProblem.NULL_ISLAND
    swapped = coordinate_problem("MC", 7.4263, 43.7405)
    assert swapped is not None and swapped[0] is CoordinateProblem.SWAPPED
    assert "swapped" in swapped[1]
    paris = coordinate_problem("MC", 48.8566, 2.3522)
    assert paris is not None and paris[0] is CoordinateProblem.OUTSIDE_COUNTRY
    assert "MC" in paris[1]


def test_every_box_is_well_formed() -> None:
    """Each box has min < max within the valid ranges."""
    for boxes in COUNTRY_BOXES.values():
        for lat0, lon0, lat1, lon1 in boxes:
            assert -90 <= lat0 < lat1 <= 90 and -180 <= lon0 < lon1 <= 180
