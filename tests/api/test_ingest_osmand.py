"""Positions from OsmAnd and Traccar Client reach the driver's route: the query form (GET, POST
with the query in the URL, form body) and the JSON form, as those apps send them, stored in SI
units; a GPX drive replayed through /ingest/osmand comes back as the route's driven track."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import gpxpy
import gpxpy.gpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from doorstep.db.engine import transaction
from doorstep.domain.tracking.models import Position
from doorstep.domain.tracking.payloads import KNOT_MPS
from doorstep.domain.tracking.writer import latest_position
from doorstep.runtime import Runtime
from tests.api.ingest_support import Fleet, flush, published_route
from tests.conftest import NOW, MerchantCtx


@pytest.fixture
def fleet(runtime: Runtime, merchant: MerchantCtx) -> Fleet:
    return published_route(runtime, merchant.id)


def _positions(runtime: Runtime, driver_id: str) -> list[Position]:
    with transaction(runtime.read_sessions) as s:
        return list(
            s.scalars(
                select(Position)
                .where(Position.driver_id == driver_id)
                .order_by(Position.recorded_at, Position.id)
            )
        )


def _ts(minutes: float) -> int:
    return int((NOW + timedelta(minutes=minutes)).timestamp())


def test_osmand_get_query_form_is_stored_on_the_route_in_si_units(
    app_client: TestClient, runtime: Runtime, fleet: Fleet
) -> None:
    """OsmAnd's GET (speed in knots, battery in %) is stored on the route with speed in m/s."""
    answer = app_client.get(
        "/ingest/osmand",
        params={
            "id": fleet.device_id,
            "timestamp": str(_ts(-1)),
            "lat": "43.7312",
            "lon": "7.4197",
            "speed": "10.0",
            "bearing": "87.5",
            "altitude": "41.2",
            "accuracy": "6.0",
            "batt": "76.0",
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"accepted": 1, "dropped": {}}
    flush(app_client)
    [row] = _positions(runtime, fleet.driver_id)
    assert (row.route_id, row.source, row.lat, row.lon) == (
        fleet.route_id,
        "osmand",
        43.7312,
        7.4197,
    )
    assert row.speed_mps == pytest.approx(10.0 * KNOT_MPS)
    assert (row.heading_deg, row.altitude_m, row.accuracy_m, row.battery_pct) == (
        87.5,
        41.2,
        6.0,
        76.0,
    )
    assert row.recorded_at == NOW - timedelta(minutes=1)


def test_traccar_client_post_with_query_in_url_and_form_body(
    app_client: TestClient, runtime: Runtime, fleet: Fleet
) -> None:
    """Traccar Client's POST with the query in the URL and an empty body, and the same fields
    as a form body, are both taken; timestamps in ms and ISO 8601 are read as Traccar does."""
    first = app_client.post(
        f"/ingest/osmand?id={fleet.device_id}&timestamp={_ts(-3) * 1000}&lat=43.73&lon=7.42"
    )
    second = app_client.post(
        "/ingest/osmand",
        data={
            "id": fleet.device_id,
            "timestamp": (NOW - timedelta(minutes=2)).isoformat().replace("+00:00", "Z"),
            "lat": "43.7301",
            "lon": "7.4202",
        },
    )
    third = app_client.get(
        "/ingest/osmand",
        params={
            "id": fleet.device_id,
            "timestamp": (NOW - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S"),
            "location": "43.7302,7.4204",
        },
    )
    assert [a.status_code for a in (first, second, third)] == [200, 200, 200]
    flush(app_client)
    rows = _positions(runtime, fleet.driver_id)
    assert [r.recorded_at for r in rows] == [NOW - timedelta(minutes=m) for m in (3, 2, 1)]
    assert [(r.lat, r.lon) for r in rows] == [(43.73, 7.42), (43.7301, 7.4202), (43.7302, 7.4204)]


# Traccar Client's body: its background-geolocation location template plus ``device_id``.
TRACCAR_JSON = {
    "location": {
        "event": "motionchange",
        "is_moving": True,
        "uuid": "3a2f9c1e-8d7b-4f61-9a0e-1c2b3d4e5f60",
        "timestamp": "2026-11-25T06:58:30.125Z",
        "odometer": 1234.5,
        "coords": {
            "latitude": 43.7391,
            "longitude": 7.4269,
            "accuracy": 4.8,
            "speed": 8.33,
            "speed_accuracy": 0.5,
            "heading": 271.0,
            "heading_accuracy": 10.0,
            "altitude": 52.0,
            "ellipsoidal_altitude": 101.0,
            "altitude_accuracy": 3.0,
            "age": 12,
        },
        "activity": {"type": "in_vehicle", "confidence": 100},
        "battery": {"is_charging": False, "level": 0.63},
        "extras": {},
        "_": "&id=0&lat=43.7391&lon=7.4269&timestamp=2026-11-25T06:58:30.125Z&",
    },
    "device_id": "",
}


def test_traccar_client_json_form_single_and_batched(
    app_client: TestClient, runtime: Runtime, fleet: Fleet
) -> None:
    """Traccar Client's JSON body (speed m/s, battery 0-1) and a list of locations are taken."""
    one = {**TRACCAR_JSON, "device_id": fleet.device_id}
    answer = app_client.post("/ingest/osmand", json=one)
    assert answer.json() == {"accepted": 1, "dropped": {}}
    later = [
        {
            **TRACCAR_JSON["location"],  # type: ignore[dict-item]
            "timestamp": f"2026-11-25T06:59:{s:02d}Z",
            "coords": {"latitude": 43.7392 + s / 1e5, "longitude": 7.4268, "speed": -1},
        }
        for s in (0, 10, 20)
    ]
    batch = app_client.post(
        "/ingest/osmand", json={"device_id": fleet.device_id, "location": later}
    )
    assert batch.json() == {"accepted": 3, "dropped": {}}
    flush(app_client)
    rows = _positions(runtime, fleet.driver_id)
    assert len(rows) == 4
    first = rows[0]
    assert first.recorded_at == datetime(2026, 11, 25, 6, 58, 30, 125000, tzinfo=UTC)
    assert (first.speed_mps, first.heading_deg, first.accuracy_m) == (8.33, 271.0, 4.8)
    assert (first.altitude_m, first.battery_pct) == (52.0, 63.0)
    assert rows[1].speed_mps is None  # iOS reports -1 for "unknown"


def test_malformed_payloads_are_400_problems(app_client: TestClient, fleet: Fleet) -> None:
    """A request that is no position at all is a 400 problem that says what is wrong."""
    cases = [
        app_client.get("/ingest/osmand", params={"id": fleet.device_id, "lat": "43.7"}),
        app_client.get(
            "/ingest/osmand", params={"id": fleet.device_id, "lat": "north", "lon": "7.4"}
        ),
        app_client.get("/ingest/osmand", params={"lat": "43.7", "lon": "7.4"}),
        app_client.post(
            "/ingest/osmand", content=b"{not json", headers={"content-type": "application/json"}
        ),
        app_client.post("/ingest/osmand", json={"device_id": fleet.device_id}),
    ]
    for answer in cases:
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
    details = [a.json()["detail"] for a in cases]
    assert details[:3] == ["lon is missing", "lat must be a number, got 'north'", "id is missing"]


def _gpx_drive() -> gpxpy.gpx.GPX:
    """A short drive along the Monaco harbour, one point every 15 s (written by the test)."""
    gpx = gpxpy.gpx.GPX()
    track = gpxpy.gpx.GPXTrack(name="harbour")
    segment = gpxpy.gpx.GPXTrackSegment()
    start = NOW - timedelta(minutes=10)
    for i in range(24):
        segment.points.append(
            gpxpy.gpx.GPXTrackPoint(
                latitude=round(43.7312 + i * 0.0004, 6),
                longitude=round(7.4197 + i * 0.0003, 6),
                elevation=5.0 + i,
                time=start + timedelta(seconds=15 * i),
            )
        )
    track.segments.append(segment)
    gpx.tracks.append(track)
    return gpxpy.parse(gpx.to_xml(version="1.1"))  # as a file would be read


def test_gpx_drive_replayed_through_osmand_is_the_routes_driven_track(
    app_client: TestClient, runtime: Runtime, fleet: Fleet, merchant: MerchantCtx
) -> None:
    """Each point of a GPX drive posted as OsmAnd does comes back, in order and with its
    time, from /track.gpx and /track (GeoJSON, lon/lat), and is the route's latest position."""
    drive = _gpx_drive()
    points = drive.tracks[0].segments[0].points
    for previous, point in zip([None, *points], points, strict=False):
        speed = point.speed_between(previous) if previous else 0.0
        answer = app_client.get(
            "/ingest/osmand",
            params={
                "id": fleet.device_id,
                "timestamp": str(int(point.time.timestamp())),
                "lat": str(point.latitude),
                "lon": str(point.longitude),
                "altitude": str(point.elevation),
                "speed": str((speed or 0.0) / KNOT_MPS),
            },
        )
        assert answer.json() == {"accepted": 1, "dropped": {}}
    flush(app_client)

    gpx = gpxpy.parse(
        app_client.get(f"/v1/routes/{fleet.route_id}/track.gpx", headers=merchant.headers).text
    )
    got = gpx.tracks[0].segments[0].points
    assert [(p.latitude, p.longitude, p.time) for p in got] == [
        (p.latitude, p.longitude, p.time) for p in points
    ]
    feature = app_client.get(f"/v1/routes/{fleet.route_id}/track", headers=merchant.headers)
    assert feature.headers["content-type"] == "application/geo+json"
    body = feature.json()
    assert body["geometry"]["type"] == "LineString"
    assert body["geometry"]["coordinates"][0] == [points[0].longitude, points[0].latitude]
    assert body["properties"]["coordTimes"][-1] == points[-1].time.isoformat().replace(
        "+00:00", "Z"
    )
    with transaction(runtime.read_sessions) as s:
        latest = latest_position(s, merchant.id, fleet.route_id)
    assert latest is not None
    assert (latest.lat, latest.lon, latest.recorded_at) == (
        points[-1].latitude,
        points[-1].longitude,
        points[-1].time,
    )


def test_osmand_app_online_tracking_url_as_osmand_fills_it(
    app_client: TestClient, runtime: Runtime, fleet: Fleet, merchant: MerchantCtx
) -> None:
    """The OsmAnd address the pairing gives, with OsmAnd's placeholders filled as the app does
    (time in ms, accuracy as hdop, speed in m/s), is stored with those values."""
    template = app_client.get(
        f"/v1/drivers/{fleet.driver_id}/device", headers=merchant.headers
    ).json()["osmand_app_url"]
    when = NOW - timedelta(seconds=40)
    url = template.format(43.7312, 7.4197, int(when.timestamp() * 1000), 7.5, 38.0, 9.72, 181.0)
    answer = app_client.get(url.removeprefix("http://127.0.0.1:8000"))
    assert answer.json() == {"accepted": 1, "dropped": {}}
    flush(app_client)
    [row] = _positions(runtime, fleet.driver_id)
    assert (row.recorded_at, row.lat, row.lon) == (when, 43.7312, 7.4197)
    assert (row.accuracy_m, row.altitude_m, row.speed_mps, row.heading_deg) == (
        7.5,
        38.0,
        9.72,
        181.0,
    )


def test_listeners_hear_of_each_committed_position_with_its_row_id(
    app_client: TestClient, runtime: Runtime, fleet: Fleet
) -> None:
    """What reacts to new positions (the live map) is told of each stored row after the
    commit, with the id the database gave it."""
    heard: list[tuple[int, str | None, float]] = []
    writer = app_client.app.state.position_ingest.writer  # type: ignore[attr-defined]
    writer.on_written.append(
        lambda batch: heard.extend((s.id, s.position.route_id, s.position.fix.lat) for s in batch)
    )
    for i in range(3):
        app_client.get(
            "/ingest/osmand",
            params={
                "id": fleet.device_id,
                "timestamp": str(_ts(i - 5)),
                "lat": str(43.7312 + i * 1e-4),
                "lon": "7.4197",
            },
        )
    flush(app_client)
    rows = _positions(runtime, fleet.driver_id)
    assert sorted(heard) == [(r.id, fleet.route_id, r.lat) for r in rows]
