"""The HTTP geocoder against a local server that speaks Nominatim's /search JSON API (the
network edge), with its rate limit, User-Agent and on-disk cache."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from doorstep.geocoding.base import AddressQuery, GeocoderUnavailable, Outcome, Precision
from doorstep.geocoding.cache import CachedGeocoder
from doorstep.geocoding.http import HttpGeocoder

# Shaped as Nominatim documents /search?format=json&addressdetails=1 answers.
HOUSE = {
    "place_id": 1,
    "osm_type": "node",
    "osm_id": 3155214587,
    "lat": "43.7329221",
    "lon": "7.4257905",
    "class": "place",
    "type": "house",
    "addresstype": "place",
    "display_name": "6, Quai Antoine 1er, La Condamine, Monaco, 98000, Monaco",
    "address": {"house_number": "6", "road": "Quai Antoine 1er", "postcode": "98000"},
}
STREET_A = {
    "place_id": 2,
    "lat": "43.7348",
    "lon": "7.4190",
    "class": "highway",
    "type": "residential",
    "addresstype": "road",
    "display_name": "Rue Grimaldi, Monaco",
    "address": {"road": "Rue Grimaldi"},
}
STREET_B = {**STREET_A, "place_id": 3, "lat": "43.7640", "lon": "7.4670"}


class Nominatim(BaseHTTPRequestHandler):
    answers: dict[str, list[dict[str, Any]]] = {}
    seen: list[tuple[dict[str, list[str]], str]] = []

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        params = parse_qs(parts.query)
        self.seen.append((params, self.headers.get("User-Agent", "")))
        if parts.path != "/search" or params.get("format") != ["json"]:
            self.send_error(404)
            return
        street = params.get("street", [""])[0]
        if street == "boom":
            self.send_error(500)
            return
        body = json.dumps(self.answers.get(street, [])).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def server() -> Iterator[str]:
    Nominatim.answers = {
        "6 Quai Antoine 1er": [HOUSE],
        "Rue Grimaldi": [STREET_A, STREET_B],
    }
    Nominatim.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Nominatim)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _geocoder(url: str) -> HttpGeocoder:
    return HttpGeocoder(
        "nominatim", url, user_agent="Doorstep-test/1.0", min_delay_s=0.0, retries=0
    )


def test_a_house_is_found_with_its_precision_and_a_structured_query(server: str) -> None:
    """Nominatim's house answer is a house-precision place; the request is a structured
    query limited to the address's country and names Doorstep in its User-Agent."""
    result = _geocoder(server).geocode(AddressQuery("6 Quai Antoine 1er", "Monaco", "MC", "98000"))
    assert result.outcome is Outcome.FOUND
    best = result.candidates[0]
    assert (best.lat, best.lon, best.precision, best.source) == (
        43.7329221,
        7.4257905,
        Precision.HOUSE,
        "nominatim",
    )
    params, agent = Nominatim.seen[0]
    assert params["street"] == ["6 Quai Antoine 1er"]
    assert params["city"] == ["Monaco"] and params["postalcode"] == ["98000"]
    assert params["countrycodes"] == ["mc"]
    assert params["addressdetails"] == ["1"]
    assert agent == "Doorstep-test/1.0"


def test_two_far_apart_answers_are_ambiguous(server: str) -> None:
    """Two streets of one name 3 km apart: ambiguous, both offered as street candidates."""
    result = _geocoder(server).geocode(AddressQuery("Rue Grimaldi", "Monaco", "MC"))
    assert result.outcome is Outcome.AMBIGUOUS
    assert [c.precision for c in result.candidates] == [Precision.STREET, Precision.STREET]


def test_no_answer_is_not_found_and_a_server_error_is_unavailable(server: str) -> None:
    """An empty answer is 'not found'; a 500 is an error, not an empty answer."""
    geocoder = _geocoder(server)
    assert geocoder.geocode(AddressQuery("Nowhere", "Monaco", "MC")).outcome is Outcome.NOT_FOUND
    with pytest.raises(GeocoderUnavailable):
        geocoder.geocode(AddressQuery("boom", "Monaco", "MC"))


def test_answers_are_cached_on_disk_and_asked_once(server: str, tmp_path: Path) -> None:
    """The same address asked twice (even by a new process's geocoder) reaches the server
    once; errors are not cached."""
    path = tmp_path / "answers.sqlite3"
    first = CachedGeocoder(_geocoder(server), path, server)
    query = AddressQuery("6 Quai Antoine 1er", "Monaco", "MC", "98000")
    a = first.geocode(query)
    b = CachedGeocoder(_geocoder(server), path, server).geocode(query)
    assert a == b and a.outcome is Outcome.FOUND
    assert len(Nominatim.seen) == 1
    with pytest.raises(GeocoderUnavailable):
        first.geocode(AddressQuery("boom", "Monaco", "MC"))
    with pytest.raises(GeocoderUnavailable):
        first.geocode(AddressQuery("boom", "Monaco", "MC"))
    assert len(Nominatim.seen) == 3


def test_requests_keep_the_providers_rate_limit(server: str) -> None:
    """With a minimum delay of 1 s, a second request made at once waits 1 s first (the
    limiter's clock and sleep replaced, so the test takes no time)."""
    geocoder = HttpGeocoder("nominatim", server, user_agent="t", min_delay_s=1.0, retries=0)
    limiter: Any = geocoder._geocode
    slept: list[float] = []
    now = [100.0]  # the limiter's clock: stands still except while it sleeps

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter._clock = lambda: now[0]
    limiter._sleep = sleep
    geocoder.geocode(AddressQuery("6 Quai Antoine 1er", "Monaco", "MC"))
    assert slept == []
    geocoder.geocode(AddressQuery("Rue Grimaldi", "Monaco", "MC"))
    assert slept and abs(sum(slept) - 1.0) < 1e-6
    assert len(Nominatim.seen) == 2
