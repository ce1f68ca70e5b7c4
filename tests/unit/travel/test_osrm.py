"""The OSRM provider against a real HTTP server on 127.0.0.1 that answers like osrm-routed.

The Berlin figures are the example ``table`` response of the OSRM HTTP API documentation
(project-osrm.org/docs/v5.24.0/api, "Table service"); other pairs get synthetic values so
that chunked requests can be checked cell by cell."""

from __future__ import annotations

import itertools
import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from doorstep.routing.travel.base import UNREACHABLE, LatLon, Profile, TravelTimeError
from doorstep.routing.travel.osrm import OsrmProvider

BERLIN = [LatLon(52.517037, 13.388860), LatLon(52.529407, 13.397634), LatLon(52.523219, 13.428555)]
DOC_DURATIONS = [[0, 192.6, 382.8], [199, 0, 283.9], [344.7, 222.3, 0]]
DOC_DISTANCES = [[0, 1886.89, 3791.3], [1824, 0, 2838.09], [3275.36, 2361.73, 0]]
DOC_WAYPOINTS = [
    {"hint": "PAMAgEVJ", "distance": 4.231666, "name": "Friedrichstraße",
     "location": [13.388799, 52.517033]},
    {"hint": "npYWgHzy", "distance": 2.789393, "name": "Torstraße",
     "location": [13.397631, 52.529432]},
    {"hint": "oIl2gBoU", "distance": 2.226595, "name": "Platz der Vereinten Nationen",
     "location": [13.428554, 52.523239]},
]  # fmt: skip
ISLAND_LAT = 80.0  # points north of this have no road connection to the rest


def _key(lon: float, lat: float) -> tuple[float, float]:
    return round(lon, 5), round(lat, 5)


DOC_INDEX = {_key(p.lon, p.lat): k for k, p in enumerate(BERLIN)}


def _cell(a: tuple[float, float], b: tuple[float, float]) -> tuple[float | None, float | None]:
    if a == b:
        return 0.0, 0.0
    if a[1] > ISLAND_LAT or b[1] > ISLAND_LAT:
        return None, None
    if a in DOC_INDEX and b in DOC_INDEX:
        i, j = DOC_INDEX[a], DOC_INDEX[b]
        return DOC_DURATIONS[i][j], DOC_DISTANCES[i][j]
    metres = 111_000 * math.hypot(a[0] - b[0], a[1] - b[1]) + (7 if a < b else 0)
    return round(metres / 8.0, 1), round(metres, 2)


def _waypoint(c: tuple[float, float]) -> dict[str, Any]:
    if c in DOC_INDEX:
        return DOC_WAYPOINTS[DOC_INDEX[c]]
    far = c[0] > 100  # "snapped" 5 km away
    return {"hint": "x", "distance": 5000.0 if far else 1.5, "name": "", "location": list(c)}


class FakeOsrm(BaseHTTPRequestHandler):
    """Just enough of osrm-routed: table (with sources/destinations and a size limit), route."""

    requests: list[str]
    max_table_size = 100

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self.requests.append(self.path)
        parts = url.path.strip("/").split("/")
        if parts[0] == "broken":
            self._send(502, b"<html>Bad Gateway</html>")
            return
        if len(parts) != 4 or parts[1] != "v1":
            self._send(400, {"code": "InvalidUrl", "message": "URL string malformed"})
            return
        service, profile, coords_text = parts[0], parts[2], parts[3]
        if profile not in ("driving", "cycling", "foot"):
            self._send(400, {"code": "InvalidOptions", "message": "unknown profile"})
            return
        coords = [_key(*map(float, c.split(","))) for c in coords_text.split(";")]
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if service == "table":
            self._table(coords, query)
        elif service == "route":
            self._route(coords, query)
        else:
            self._send(400, {"code": "InvalidService", "message": "Service not found"})

    def _table(self, coords: list[tuple[float, float]], query: dict[str, str]) -> None:
        sources = [int(k) for k in query.get("sources", "").split(";") if k]
        destinations = [int(k) for k in query.get("destinations", "").split(";") if k]
        sources = sources or list(range(len(coords)))
        destinations = destinations or list(range(len(coords)))
        if len(sources) * len(destinations) > self.max_table_size**2:
            self._send(400, {"code": "TooBig", "message": "Too many table coordinates"})
            return
        assert query.get("annotations") == "duration,distance"
        cells = [[_cell(coords[i], coords[j]) for j in destinations] for i in sources]
        self._send(
            200,
            {
                "code": "Ok",
                "durations": [[c[0] for c in row] for row in cells],
                "distances": [[c[1] for c in row] for row in cells],
                "sources": [_waypoint(coords[i]) for i in sources],
                "destinations": [_waypoint(coords[j]) for j in destinations],
            },
        )

    def _route(self, coords: list[tuple[float, float]], query: dict[str, str]) -> None:
        assert query == {"overview": "full", "geometries": "geojson"}
        if any(c[1] > ISLAND_LAT for c in coords):
            self._send(400, {"code": "NoRoute", "message": "Impossible route between points"})
            return
        line: list[list[float]] = []
        for a, b in itertools.pairwise(coords):
            line += [list(a), [(a[0] + b[0]) / 2, a[1]], [(a[0] + b[0]) / 2, b[1]]]
        line.append(list(coords[-1]))
        route = {
            "distance": 90.0,
            "duration": 300.0,
            "weight": 300.0,
            "weight_name": "duration",
            "geometry": {"type": "LineString", "coordinates": line},
            "legs": [],
        }
        waypoints = [_waypoint(c) for c in coords]
        self._send(200, {"code": "Ok", "routes": [route], "waypoints": waypoints})


@pytest.fixture
def osrm_server() -> Iterator[tuple[str, list[str]]]:
    """A local OSRM look-alike; yields its base URL and the list of request paths it saw."""
    seen: list[str] = []
    handler = type("Handler", (FakeOsrm,), {"requests": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_table_matches_the_documented_example(osrm_server: tuple[str, list[str]]) -> None:
    """The three Berlin points give the documentation's durations and distances, rounded."""
    url, seen = osrm_server
    m = OsrmProvider(url).matrix(BERLIN, Profile.VAN)
    assert m.durations_s.tolist() == [[0, 193, 383], [199, 0, 284], [345, 222, 0]]
    assert m.distances_m.tolist() == [[0, 1887, 3791], [1824, 0, 2838], [3275, 2362, 0]]
    assert m.snapped[0] == LatLon(52.517033, 13.388799)
    assert m.snap_distance_m == pytest.approx([4.231666, 2.789393, 2.226595])
    assert m.unreachable == set()
    assert len(seen) == 1 and seen[0].startswith("/table/v1/driving/13.388860,52.517037;")


def test_large_matrices_are_chunked_and_reassembled(osrm_server: tuple[str, list[str]]) -> None:
    """With a limit of 4x4 per request, 10 points take 9 requests and every cell is right."""
    url, seen = osrm_server
    FakeOsrm.max_table_size = 4
    try:
        pts = [LatLon(43.73 + 0.001 * k, 7.42 + 0.0013 * k) for k in range(10)]
        m = OsrmProvider(url, max_table_size=4).matrix(pts, Profile.CARGO_BIKE)
    finally:
        FakeOsrm.max_table_size = 100
    assert len(seen) == 9 and all("/table/v1/cycling/" in s for s in seen)
    for i in range(10):
        for j in range(10):
            seconds, metres = _cell(_key(pts[i].lon, pts[i].lat), _key(pts[j].lon, pts[j].lat))
            assert m.durations_s[i, j] == round(seconds or 0)
            assert m.distances_m[i, j] == round(metres or 0)
    assert (m.durations_s != m.durations_s.T).any()  # the fake is asymmetric, like oneways


def test_null_cells_become_unreachable(osrm_server: tuple[str, list[str]]) -> None:
    """A point OSRM cannot route to or from is listed; the others stay complete."""
    url, _ = osrm_server
    pts = [BERLIN[0], LatLon(81.0, 20.0), BERLIN[1], BERLIN[2]]
    m = OsrmProvider(url).matrix(pts, Profile.WALKING)
    assert m.unreachable == {1}
    assert (m.durations_s[1, [0, 2, 3]] == UNREACHABLE).all()
    assert (m.durations_s[[0, 2, 3], 1] == UNREACHABLE).all()
    assert m.durations_s[0, 2] == 193 and m.durations_s[1, 1] == 0


def test_points_snapped_too_far_are_unreachable(osrm_server: tuple[str, list[str]]) -> None:
    """OSRM snaps anything somewhere; past max_snap_m we call it unreachable."""
    url, _ = osrm_server
    pts = [LatLon(43.73, 7.42), LatLon(43.74, 107.42), LatLon(43.735, 7.425)]
    m = OsrmProvider(url, max_snap_m=1000).matrix(pts, Profile.VAN)
    assert m.unreachable == {1}
    assert m.snap_distance_m[1] == 5000.0


def test_route_returns_the_geojson_geometry(osrm_server: tuple[str, list[str]]) -> None:
    """route?overview=full&geometries=geojson: lon/lat pairs become LatLon in order."""
    url, seen = osrm_server
    path = OsrmProvider(url).path(BERLIN, Profile.VAN)
    assert (path[0].lat, path[0].lon) == pytest.approx((52.517037, 13.388860), abs=1e-5)
    assert (path[-1].lat, path[-1].lon) == pytest.approx((52.523219, 13.428555), abs=1e-5)
    assert len(path) == 7
    assert seen[0].startswith("/route/v1/driving/")


def test_long_routes_are_chunked_and_unroutable_legs_drawn_straight(
    osrm_server: tuple[str, list[str]],
) -> None:
    """Chunks overlap by one point; a NoRoute chunk falls back leg by leg, straight if need be."""
    url, seen = osrm_server
    pts = [LatLon(43.73 + 0.001 * k, 7.42) for k in range(5)]
    pts.insert(2, LatLon(81.0, 7.42))
    path = OsrmProvider(url, max_route_points=3).path(pts, Profile.VAN)
    assert path[0] == LatLon(43.73, 7.42) and path[-1] == LatLon(43.734, 7.42)
    assert LatLon(81.0, 7.42) in path
    assert all(s.startswith("/route/v1/driving/") for s in seen)


def test_http_failures_raise_clear_errors(osrm_server: tuple[str, list[str]]) -> None:
    """Refused connections, OSRM error codes and non-JSON answers are TravelTimeErrors."""
    url, _ = osrm_server
    with pytest.raises(TravelTimeError, match="did not answer"):
        OsrmProvider("http://127.0.0.1:9", timeout_s=2).matrix(BERLIN, Profile.VAN)
    bad_profile = OsrmProvider(url, profiles={Profile.VAN: "hovercraft"})
    with pytest.raises(TravelTimeError, match="InvalidOptions"):
        bad_profile.matrix(BERLIN, Profile.VAN)
    with pytest.raises(TravelTimeError, match="HTTP 502 without JSON"):
        OsrmProvider(f"{url}/broken").matrix(BERLIN, Profile.VAN)
    FakeOsrm.max_table_size = 2
    try:
        with pytest.raises(TravelTimeError, match="TooBig"):
            OsrmProvider(url, max_table_size=3).matrix(BERLIN, Profile.VAN)
    finally:
        FakeOsrm.max_table_size = 100
