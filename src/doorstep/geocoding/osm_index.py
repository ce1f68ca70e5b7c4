"""The address index of an OSM extract (see :mod:`.offline` for what it holds and how it is
used), its JSON form for the cache, and :func:`build_index` that reads it with pyrosm."""

from __future__ import annotations

import itertools
import math
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doorstep.geocoding.base import (
    GeocoderUnavailable,
)
from doorstep.geocoding.normalise import fold, number_key, number_value, street_key

INDEX_VERSION = 1
SAME_PLACE_M = 300.0
"""Ways of one street name closer than this are the same street."""
INTERPOLATE_MAX_M = 1500.0
"""Two numbered houses farther apart than this are not used to place a number between them."""
FUZZY_CUTOFF = 0.88
SOURCE = "osm_extract"

LatLonPair = tuple[float, float]


def distance_m(a: LatLonPair, b: LatLonPair) -> float:
    """Great-circle distance in metres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_008.8 * math.asin(math.sqrt(min(1.0, h)))


def along(line: list[LatLonPair], share: float) -> LatLonPair:
    """The point ``share`` (0..1) of the way along ``line``."""
    if len(line) == 1:
        return line[0]
    legs = [distance_m(a, b) for a, b in itertools.pairwise(line)]
    total = sum(legs)
    if total <= 0:
        return line[0]
    goal = max(0.0, min(1.0, share)) * total
    for (a, b), leg in zip(itertools.pairwise(line), legs, strict=True):
        if goal <= leg and leg > 0:
            f = goal / leg
            return (a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]))
        goal -= leg
    return line[-1]


@dataclass(frozen=True)
class House:
    street: str  # street_key
    number: str  # number_key
    lat: float
    lon: float
    postcode: str | None
    city: str | None  # folded


@dataclass
class StreetPlace:
    """One place a street name stands for: its name as mapped, its lines, its middle."""

    name: str
    lines: list[list[LatLonPair]]
    middle: LatLonPair


@dataclass
class Interpolation:
    street: str
    line: list[LatLonPair]
    first: int
    last: int
    step: int  # 1 all, 2 odd/even


@dataclass
class AddressIndex:
    houses: list[House]
    streets: dict[str, list[StreetPlace]]
    interpolations: list[Interpolation]
    postcodes: dict[str, LatLonPair]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": INDEX_VERSION,
            "houses": [[h.street, h.number, h.lat, h.lon, h.postcode, h.city] for h in self.houses],
            "streets": {
                key: [[p.name, p.lines, list(p.middle)] for p in places]
                for key, places in self.streets.items()
            },
            "interpolations": [
                [i.street, i.line, i.first, i.last, i.step] for i in self.interpolations
            ],
            "postcodes": {k: list(v) for k, v in self.postcodes.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AddressIndex:
        def line(raw: list[list[float]]) -> list[LatLonPair]:
            return [(float(a), float(b)) for a, b in raw]

        return cls(
            houses=[House(*row) for row in data["houses"]],
            streets={
                key: [StreetPlace(n, [line(x) for x in lines], (m[0], m[1])) for n, lines, m in ps]
                for key, ps in data["streets"].items()
            },
            interpolations=[
                Interpolation(s, line(ln), int(a), int(b), int(st))
                for s, ln, a, b, st in data["interpolations"]
            ],
            postcodes={k: (v[0], v[1]) for k, v in data["postcodes"].items()},
        )


# --- building the index from an extract -------------------------------------------------------


def _points(geometry: Any) -> list[LatLonPair]:
    """(lat, lon) vertices of a (Multi)LineString."""
    parts = getattr(geometry, "geoms", [geometry])
    return [(float(y), float(x)) for part in parts for x, y in part.coords]


def _lines(geometry: Any) -> list[list[LatLonPair]]:
    parts = getattr(geometry, "geoms", [geometry])
    return [[(float(y), float(x)) for x, y in part.coords] for part in parts if not part.is_empty]


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _column(frame: Any, name: str) -> list[Any]:
    """A column of a pyrosm frame as a list (``None`` everywhere when it is missing)."""
    return list(frame[name]) if name in frame.columns else [None] * len(frame)


def _group_places(name: str, lines: list[list[LatLonPair]]) -> list[StreetPlace]:
    """Lines of one street name in places: lines closer than SAME_PLACE_M join one place."""
    parent = list(range(len(lines)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # Compare a thinned set of vertices: enough to join touching or nearby ways.
    samples = [[*ln[:: max(1, len(ln) // 8)], ln[-1]] for ln in lines]
    for i in range(len(lines)):
        for j in range(i + 1, len(lines)):
            if find(i) == find(j):
                continue
            if any(distance_m(a, b) < SAME_PLACE_M for a in samples[i] for b in samples[j]):
                parent[find(i)] = find(j)
    groups: dict[int, list[list[LatLonPair]]] = defaultdict(list)
    for i, ln in enumerate(lines):
        groups[find(i)].append(ln)
    places = []
    for group in groups.values():
        longest = max(
            group, key=lambda ln: sum(distance_m(a, b) for a, b in itertools.pairwise(ln))
        )
        places.append(StreetPlace(name, group, along(longest, 0.5)))
    return places


def build_index(path: Path) -> AddressIndex:
    """Read ``path`` (``.osm.pbf``) into an :class:`AddressIndex`."""
    if not path.name.lower().endswith(".pbf"):
        raise GeocoderUnavailable(f"the offline geocoder reads .osm.pbf extracts, not {path.name}")
    import pyrosm

    osm = pyrosm.OSM(str(path))
    columns = ["addr:street", "addr:housenumber", "addr:postcode", "addr:city"]
    with warnings.catch_warnings():  # an extract without interpolation lines is normal
        warnings.filterwarnings("ignore", message="Could not find any OSM data")
        try:
            found = osm.get_data_by_custom_criteria(
                custom_filter={"addr:housenumber": True},
                filter_type="keep",
                keep_nodes=True,
                keep_ways=True,
                keep_relations=False,
                tags_as_columns=columns,
            )
            ways = osm.get_data_by_custom_criteria(
                custom_filter={"addr:interpolation": True},
                filter_type="keep",
                keep_nodes=False,
                keep_ways=True,
                keep_relations=False,
                tags_as_columns=["addr:interpolation", "addr:street"],
            )
            network = osm.get_network(network_type="all")
        except Exception as exc:
            raise GeocoderUnavailable(f"could not read the OSM extract {path}: {exc}") from exc

    houses: list[House] = []
    names: dict[str, str] = {}
    if found is not None:
        for street, number, postcode, city, geometry in zip(
            *(_column(found, c) for c in [*columns, "geometry"]), strict=True
        ):
            street, number = _text(street), _text(number)
            if not street or not number or geometry is None or geometry.is_empty:
                continue
            point = geometry.representative_point()
            key = street_key(street)
            names.setdefault(key, street)
            code, town = _text(postcode), _text(city)
            for one in number.replace(";", ",").split(","):
                if one.strip():
                    houses.append(
                        House(
                            key,
                            number_key(one),
                            float(point.y),
                            float(point.x),
                            code.replace(" ", "") if code else None,
                            fold(town) if town else None,
                        )
                    )

    lines_by_name: dict[str, list[list[LatLonPair]]] = defaultdict(list)
    if network is not None:
        for name, geometry in zip(network["name"], network["geometry"], strict=True):
            text = _text(name)
            if text and geometry is not None and not geometry.is_empty:
                key = street_key(text)
                names.setdefault(key, text)
                lines_by_name[key].extend(_lines(geometry))
    streets = {key: _group_places(names[key], lines) for key, lines in lines_by_name.items()}
    by_street: dict[str, list[House]] = defaultdict(list)
    for house in houses:
        by_street[house.street].append(house)
    for key, group in by_street.items():  # streets known only from their houses
        if key not in streets:
            pts = [[(h.lat, h.lon)] for h in group]
            streets[key] = _group_places(names[key], pts)

    interpolations: list[Interpolation] = []
    at_point = {(round(h.lat, 6), round(h.lon, 6)): h for h in houses}
    if ways is not None:
        for kind_tag, street_tag, geometry in zip(
            *(_column(ways, c) for c in ("addr:interpolation", "addr:street", "geometry")),
            strict=True,
        ):
            if geometry is None or geometry.is_empty:
                continue
            line = _points(geometry)
            ends = [at_point.get((round(p[0], 6), round(p[1], 6))) for p in (line[0], line[-1])]
            if ends[0] is None or ends[1] is None:
                continue
            first, last = number_value(ends[0].number), number_value(ends[1].number)
            if first is None or last is None:
                continue
            kind = _text(kind_tag) or "all"
            street = _text(street_tag)
            interpolations.append(
                Interpolation(
                    street_key(street) if street else ends[0].street,
                    line,
                    first,
                    last,
                    2 if kind in ("odd", "even") else 1,
                )
            )

    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for house in houses:
        if house.postcode:
            acc = sums[house.postcode]
            acc[0] += house.lat
            acc[1] += house.lon
            acc[2] += 1
    postcodes = {pc: (acc[0] / acc[2], acc[1] / acc[2]) for pc, acc in sums.items()}
    return AddressIndex(houses, streets, interpolations, postcodes)
