"""The embedded geocoder: an address index built from the OSM extract the travel times use.

What it knows, from the extract alone:

* **houses**: nodes, buildings and other features with ``addr:housenumber`` and
  ``addr:street`` (a building's point is a point inside its outline);
* **interpolation lines**: ``addr:interpolation`` ways, numbered at their two end nodes
  (``odd``/``even``/``all``);
* **streets**: every named highway, grouped into places (ways of one name less than
  :data:`SAME_PLACE_M` apart are one street; two far-apart streets of one name are two);
* **postcodes**: the middle of the houses that carry each ``addr:postcode``.

A query finds its street by its normalised name (:mod:`.normalise`; a close spelling is
accepted when no name matches exactly), then the house number: exactly, else on an
interpolation line, else between the nearest numbers of the same parity known on that street;
without a number (or when it cannot be placed) the middle of the street. A name that stands
for several far-apart places, and the postcode or city does not tell them apart, is ambiguous.

The index is built once per extract (about 5 s for Monaco) and kept as gzipped JSON in the
data directory, keyed by the extract's SHA-256 and :data:`INDEX_VERSION`.
"""

from __future__ import annotations

import difflib
import gzip
import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from doorstep.geocoding.base import (
    AMBIGUOUS_M,
    AddressQuery,
    Candidate,
    GeocodeResult,
    GeocoderUnavailable,
    Outcome,
    Precision,
)
from doorstep.geocoding.countries import in_country
from doorstep.geocoding.normalise import fold, number_value, split_line, street_key
from doorstep.geocoding.osm_index import (
    INDEX_VERSION,
    INTERPOLATE_MAX_M,
    SAME_PLACE_M,
    SOURCE,
    AddressIndex,
    House,
    along,
    build_index,
    distance_m,
)

FUZZY_CUTOFF = 0.88


def within_country(result: GeocodeResult, country: str) -> GeocodeResult:
    """``result`` without the places outside ``country`` (an extract spans borders: Monaco's
    has a Rue Grimaldi in Monaco and another in France). Unlisted countries keep all."""
    if not result.candidates or in_country(country, 0.0, 0.0) is None:
        return result
    inside = [c for c in result.candidates if in_country(country, c.lat, c.lon, margin=0.002)]
    if len(inside) == len(result.candidates):
        return result
    if result.outcome is Outcome.NOT_FOUND:
        return GeocodeResult(Outcome.NOT_FOUND, inside, result.detail)
    if not inside:
        return GeocodeResult(
            Outcome.NOT_FOUND,
            result.candidates,
            f"found only outside {country}: {', '.join(c.label for c in result.candidates)}",
        )
    if len(inside) == 1:
        detail = result.detail if result.outcome is Outcome.FOUND else ""
        return GeocodeResult(Outcome.FOUND, inside, detail)
    return GeocodeResult(result.outcome, inside, result.detail)


# --- the geocoder --------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexStats:
    houses: int
    streets: int
    interpolations: int
    postcodes: int
    build_s: float | None  # None: read from the cache
    cache_file: Path | None
    cache_bytes: int


class OfflineGeocoder:
    """Geocodes against an OSM extract (see the module docstring). ``source`` is what
    ``DOORSTEP_OSM_SOURCE`` takes: ``helsinki`` (bundled), a ``.osm.pbf`` path or a place
    name; ``cache_dir`` keeps built indexes (None: build every time)."""

    name = "osm_extract"

    def __init__(self, source: str | Path, *, cache_dir: Path | None = None) -> None:
        self.source = source
        self.cache_dir = cache_dir
        self._index: AddressIndex | None = None
        self._stats: IndexStats | None = None
        self._lock = threading.Lock()
        self._by_street: dict[str, list[House]] = {}

    def index(self) -> AddressIndex:
        """The index, built or read from the cache on first use."""
        with self._lock:
            if self._index is None:
                self._index, self._stats = self._load()
                by_street: dict[str, list[House]] = defaultdict(list)
                for house in self._index.houses:
                    by_street[house.street].append(house)
                self._by_street = dict(by_street)
            return self._index

    def stats(self) -> IndexStats:
        self.index()
        assert self._stats is not None
        return self._stats

    def _load(self) -> tuple[AddressIndex, IndexStats]:
        from doorstep.routing.travel.base import TravelTimeError
        from doorstep.routing.travel.osm_load import file_sha256, resolve_source

        try:
            path = resolve_source(self.source, self.cache_dir)
        except TravelTimeError as exc:
            raise GeocoderUnavailable(str(exc)) from exc
        cache: Path | None = None
        if self.cache_dir is not None:
            cache = self.cache_dir / f"{file_sha256(path)[:24]}-v{INDEX_VERSION}.json.gz"
            if cache.is_file():
                with gzip.open(cache, "rt", encoding="utf-8") as fh:
                    index = AddressIndex.from_json(json.load(fh))
                return index, self._stats_of(index, None, cache)
        started = time.perf_counter()
        index = build_index(path)
        seconds = time.perf_counter() - started
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            partial = cache.with_suffix(".tmp")
            with gzip.open(partial, "wt", encoding="utf-8") as fh:
                json.dump(index.to_json(), fh, separators=(",", ":"))
            partial.replace(cache)
        return index, self._stats_of(index, seconds, cache)

    @staticmethod
    def _stats_of(index: AddressIndex, seconds: float | None, cache: Path | None) -> IndexStats:
        return IndexStats(
            houses=len(index.houses),
            streets=sum(len(p) for p in index.streets.values()),
            interpolations=len(index.interpolations),
            postcodes=len(index.postcodes),
            build_s=seconds,
            cache_file=cache,
            cache_bytes=cache.stat().st_size if cache is not None and cache.is_file() else 0,
        )

    # -- lookup -------------------------------------------------------------------------

    def geocode(self, query: AddressQuery) -> GeocodeResult:
        return within_country(self._lookup(query), query.country)

    def _lookup(self, query: AddressQuery) -> GeocodeResult:
        index = self.index()
        number, street_text = split_line(query.line1)
        key = street_key(street_text)
        postcode = query.postal_code.replace(" ", "") if query.postal_code else None
        keys = self._street_keys(index, key)
        if not keys and query.line2:  # "Résidence Le Bahia" on line 1, the street on line 2
            number, street_text = split_line(query.line2)
            key = street_key(street_text)
            keys = self._street_keys(index, key)
        if not keys:
            guesses = []
            if postcode and postcode in index.postcodes:
                lat, lon = index.postcodes[postcode]
                guesses.append(Candidate(lat, lon, Precision.POSTCODE, postcode, SOURCE))
            return GeocodeResult(
                Outcome.NOT_FOUND, guesses, f"no street named {street_text!r} on the map"
            )
        if number is not None:
            houses = [h for k in keys for h in self._by_street.get(k, []) if h.number == number]
            if houses:
                return self._decide(
                    [
                        (
                            Candidate(h.lat, h.lon, Precision.HOUSE, self._label(index, h), SOURCE),
                            h.postcode,
                            h.city,
                        )
                        for h in houses
                    ],
                    postcode,
                    fold(query.city),
                    f"{number} {street_text}",
                )
            placed = self._interpolate(index, keys, number)
            if placed is not None:
                return GeocodeResult(Outcome.FOUND, [placed])
        return self._street(index, keys, postcode, fold(query.city), street_text, number)

    @staticmethod
    def _label(index: AddressIndex, house: House) -> str:
        places = index.streets.get(house.street)
        name = places[0].name if places else house.street
        return f"{house.number} {name}"

    @staticmethod
    def _street_keys(index: AddressIndex, key: str) -> list[str]:
        if not key:
            return []
        if key in index.streets:
            return [key]
        return difflib.get_close_matches(key, list(index.streets), n=1, cutoff=FUZZY_CUTOFF)

    def _interpolate(self, index: AddressIndex, keys: list[str], number: str) -> Candidate | None:
        value = number_value(number)
        if value is None:
            return None
        for line in index.interpolations:
            if line.street not in keys:
                continue
            low, high = sorted((line.first, line.last))
            if low <= value <= high and (value - line.first) % line.step == 0 and high > low:
                share = (value - line.first) / (line.last - line.first)
                lat, lon = along(line.line, share)
                label = f"{number} {index.streets[keys[0]][0].name}"
                return Candidate(lat, lon, Precision.INTERPOLATED, label, SOURCE)
        known = [
            (v, h)
            for k in keys
            for h in self._by_street.get(k, [])
            if (v := number_value(h.number)) is not None and v % 2 == value % 2
        ]
        below = max((vh for vh in known if vh[0] < value), key=lambda vh: vh[0], default=None)
        above = min((vh for vh in known if vh[0] > value), key=lambda vh: vh[0], default=None)
        if below is None or above is None:
            return None
        a, b = (below[1].lat, below[1].lon), (above[1].lat, above[1].lon)
        if distance_m(a, b) > INTERPOLATE_MAX_M:
            return None
        f = (value - below[0]) / (above[0] - below[0])
        label = f"{number} {index.streets[keys[0]][0].name}"
        point = (a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]))
        return Candidate(point[0], point[1], Precision.INTERPOLATED, label, SOURCE)

    def _street(
        self,
        index: AddressIndex,
        keys: list[str],
        postcode: str | None,
        city: str,
        street_text: str,
        number: str | None,
    ) -> GeocodeResult:
        options: list[tuple[Candidate, str | None, str | None]] = []
        for key in keys:
            for place in index.streets[key]:
                # A place's postcode and city are those of the houses mapped on it.
                near = [
                    h
                    for h in self._by_street.get(key, [])
                    if any(distance_m((h.lat, h.lon), p) < SAME_PLACE_M for ln in place.lines
                           for p in [*ln[::max(1, len(ln) // 8)], ln[-1]])
                ]  # fmt: skip
                pcs = {h.postcode for h in near if h.postcode}
                cities = {h.city for h in near if h.city}
                cand = Candidate(
                    place.middle[0], place.middle[1], Precision.STREET, place.name, SOURCE
                )
                options.append(
                    (
                        cand,
                        next(iter(pcs)) if len(pcs) == 1 else None,
                        next(iter(cities)) if len(cities) == 1 else None,
                    )
                )
        result = self._decide(options, postcode, city, street_text)
        if result.outcome is Outcome.FOUND and number is not None:
            return GeocodeResult(
                Outcome.FOUND,
                result.candidates,
                f"number {number} is not on the map; placed in the middle of the street",
            )
        return result

    @staticmethod
    def _decide(
        options: list[tuple[Candidate, str | None, str | None]],
        postcode: str | None,
        city: str,
        what: str,
    ) -> GeocodeResult:
        """One place if the options agree (or the postcode/city picks one), else ambiguous."""

        def distinct(cands: list[Candidate]) -> list[Candidate]:
            kept: list[Candidate] = []
            for c in cands:
                if all(distance_m((c.lat, c.lon), (k.lat, k.lon)) > AMBIGUOUS_M for k in kept):
                    kept.append(c)
            return kept

        places = distinct([c for c, _, _ in options])
        if len(places) > 1:
            by_code = [c for c, pc, _ in options if postcode and pc == postcode]
            by_city = [c for c, _, ct in options if city and ct == city]
            for subset in (by_code, by_city):
                narrowed = distinct(subset)
                if len(narrowed) == 1:
                    return GeocodeResult(Outcome.FOUND, narrowed)
            return GeocodeResult(
                Outcome.AMBIGUOUS,
                places,
                f"{what!r} matches {len(places)} places on the map; pick one",
            )
        return GeocodeResult(Outcome.FOUND, places)
