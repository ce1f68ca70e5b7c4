"""Whether a point can be in a country: a bounding-box table, and the checks that catch
coordinates contradicting their address (``0,0``, latitude and longitude swapped, another
country).

No country-polygon dataset is installed with Doorstep, so each country listed here has one or
more boxes (min_lat, min_lon, max_lat, max_lon) that enclose its territory, taken from its
extreme points and rounded outwards (ADR 0014 lists the sources). A box is coarse near borders
(Monaco's is exact to ~10 m, taken from its OSM boundary; France's box also covers part of
Switzerland), so the check catches a point in the wrong part of the world, not a house on the
wrong side of a border. Countries not listed are checked only for ``0,0``."""

from __future__ import annotations

from enum import StrEnum

Box = tuple[float, float, float, float]

COUNTRY_BOXES: dict[str, tuple[Box, ...]] = {
    # From the administrative boundary in the Monaco OSM extract (relation "Monaco").
    "MC": ((43.7247, 7.4090, 43.7520, 7.4399),),
    # Metropolitan France with Corsica; the overseas departments that use FR addresses.
    "FR": (
        (41.33, -5.15, 51.09, 9.57),
        (15.83, -61.81, 16.52, -61.0),  # Guadeloupe
        (14.38, -61.23, 14.88, -60.81),  # Martinique
        (2.11, -54.61, 5.75, -51.61),  # French Guiana
        (-21.39, 55.21, -20.87, 55.84),  # Réunion
        (-13.0, 45.01, -12.63, 45.3),  # Mayotte
    ),
    "FI": ((59.70, 19.08, 70.10, 31.59),),
    "DE": ((47.27, 5.86, 55.06, 15.05),),
    "IT": ((35.49, 6.62, 47.10, 18.52),),
    "ES": ((35.17, -9.30, 43.80, 4.33), (27.63, -18.17, 29.42, -13.42)),  # + Canary Islands
    "BE": ((49.49, 2.54, 51.51, 6.41),),
    "NL": ((50.75, 3.35, 53.56, 7.23),),
    "LU": ((49.44, 5.73, 50.19, 6.53),),
    "CH": ((45.81, 5.95, 47.81, 10.50),),
    "AT": ((46.37, 9.53, 49.02, 17.17),),
    "PT": ((36.96, -9.53, 42.16, -6.18), (32.40, -17.27, 33.13, -16.27)),  # + Madeira
    "GB": ((49.86, -8.65, 60.86, 1.77),),
    "IE": ((51.42, -10.48, 55.39, -5.99),),
    "DK": ((54.56, 8.07, 57.75, 15.20),),
    "SE": ((55.33, 11.10, 69.06, 24.17),),
    "NO": ((57.96, 4.64, 71.19, 31.08),),
    "PL": ((49.00, 14.12, 54.84, 24.15),),
    "EE": ((57.51, 21.76, 59.68, 28.21),),
    "US": (
        (24.52, -124.77, 49.39, -66.95),  # contiguous states
        (51.2, -179.15, 71.39, -129.98),  # Alaska
        (18.91, -160.25, 22.24, -154.81),  # Hawaii
    ),
    "CA": ((41.68, -141.01, 83.11, -52.62),),
}

MARGIN_DEG = 0.05
"""Slack around each box before a point counts as outside the country (about 5 km)."""
MARGINS: dict[str, float] = {"MC": 0.15}
"""Wider slack for a country much smaller than the area its shops serve: Monaco is 2 km
across and its deliveries (and the shipped extract) reach the French communes around it."""


class CoordinateProblem(StrEnum):
    NULL_ISLAND = "null_island"
    SWAPPED = "swapped"
    OUTSIDE_COUNTRY = "outside_country"


def in_country(country: str, lat: float, lon: float, *, margin: float = 0.0) -> bool | None:
    """Whether (lat, lon) is inside one of ``country``'s boxes; None for unlisted countries."""
    boxes = COUNTRY_BOXES.get(country.upper())
    if boxes is None:
        return None
    return any(
        b[0] - margin <= lat <= b[2] + margin and b[1] - margin <= lon <= b[3] + margin
        for b in boxes
    )


def coordinate_problem(
    country: str, lat: float, lon: float
) -> tuple[CoordinateProblem, str] | None:
    """What is wrong with (lat, lon) as the place of an address in ``country``, with a
    sentence saying it; None when nothing is."""
    if abs(lat) < 1e-6 and abs(lon) < 1e-6:
        return CoordinateProblem.NULL_ISLAND, (
            "0,0 is not an address (it is in the Gulf of Guinea); the coordinates are missing"
        )
    margin = MARGINS.get(country.upper(), MARGIN_DEG)
    inside = in_country(country, lat, lon, margin=margin)
    if inside is None or inside:
        return None
    if abs(lon) <= 90 and in_country(country, lon, lat, margin=margin):
        return CoordinateProblem.SWAPPED, (
            f"latitude and longitude look swapped: ({lon}, {lat}) is in {country}, "
            f"({lat}, {lon}) is not"
        )
    return CoordinateProblem.OUTSIDE_COUNTRY, (
        f"({lat}, {lon}) is outside {country}, the country of the address"
    )
