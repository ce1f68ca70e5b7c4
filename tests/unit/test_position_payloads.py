"""The GPS apps' payloads parse into SI fixes exactly as their documentation says, and the
screen's speed check allows GPS jitter but not teleports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from doorstep.domain.tracking.payloads import (
    Fix,
    MalformedPayload,
    parse_osmand_json,
    parse_osmand_query,
    parse_owntracks,
)
from doorstep.domain.tracking.screen import DropReason, Screen, distance_m

NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
WHEN = datetime(2026, 11, 25, 6, 58, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    "stamp",
    [
        str(int(WHEN.timestamp())),  # seconds, as OsmAnd and Traccar Client send
        str(int(WHEN.timestamp()) * 1000),  # milliseconds
        "2026-11-25T06:58:20Z",
        "2026-11-25T07:58:20+01:00",
        "2026-11-25 06:58:20",  # Traccar's server's other form, UTC
    ],
)
def test_osmand_timestamp_forms_traccar_accepts(stamp: str) -> None:
    """Seconds, milliseconds, ISO 8601 and 'yyyy-MM-dd HH:mm:ss' all name the same instant."""
    _, fix = parse_osmand_query({"id": "a", "lat": "1", "lon": "2", "timestamp": stamp}, NOW)
    assert fix.recorded_at == WHEN


def test_osmand_query_units_and_unknowns() -> None:
    """Knots become m/s, battery stays %, an absent timestamp is the arrival time, and -1
    (unknown) speed or bearing becomes None."""
    device, fix = parse_osmand_query(
        {
            "deviceid": "van-7",
            "lat": "43.7",
            "lon": "7.4",
            "speed": "-1",
            "bearing": "-1",
            "batt": "55.5",
        },
        NOW,
    )
    assert (device, fix.recorded_at, fix.speed_mps, fix.heading_deg) == ("van-7", NOW, None, None)
    assert fix.battery_pct == 55.5
    _, fast = parse_osmand_query({"id": "v", "lat": "1", "lon": "2", "speed": "20"}, NOW)
    assert fast.speed_mps == pytest.approx(20 * 0.514444, rel=1e-5)


def test_traccar_json_list_of_objects_and_top_level_battery() -> None:
    """A list of JSON objects is taken whole; battery.level (0-1) becomes a percentage."""
    items = [
        {
            "device_id": 1234567,
            "location": {
                "timestamp": "2026-11-25T06:58:20.000Z",
                "coords": {"latitude": 43.7, "longitude": 7.4, "speed": 3.5},
            },
            "battery": {"level": 0.25},
        },
        {
            "device_id": "1234567",
            "location": {
                "timestamp": "2026-11-25T06:58:30Z",
                "coords": {"latitude": 43.71, "longitude": 7.41},
            },
        },
    ]
    parsed = parse_osmand_json(items)
    assert [d for d, _ in parsed] == ["1234567", "1234567"]
    assert parsed[0][1] == Fix(WHEN, 43.7, 7.4, speed_mps=3.5, battery_pct=25.0)
    assert parsed[1][1].recorded_at == WHEN + timedelta(seconds=10)


@pytest.mark.parametrize(
    "body",
    [
        {
            "location": {
                "timestamp": "2026-11-25T06:58:20Z",
                "coords": {"latitude": 1, "longitude": 2},
            }
        },
        {"device_id": "a", "location": {"coords": {"latitude": 1, "longitude": 2}}},
        {"device_id": "a", "location": {"timestamp": "yesterday", "coords": {"latitude": 1}}},
        {"device_id": "a", "location": []},
        [1, 2],
    ],
)
def test_traccar_json_that_is_not_a_position_is_malformed(body: object) -> None:
    """Missing device, time, coordinates or locations raise MalformedPayload (a 400)."""
    with pytest.raises(MalformedPayload):
        parse_osmand_json(body)


def test_owntracks_identity_and_units() -> None:
    """OwnTracks: km/h to m/s; the device from headers/topic first, then user/device, then tid;
    non-location messages carry no fix."""
    body = {
        "_type": "location",
        "lat": 43.7,
        "lon": 7.4,
        "tst": int(WHEN.timestamp()),
        "vel": 54,
        "acc": 12,
        "cog": 180,
        "batt": 90,
        "tid": "mr",
        "topic": "owntracks/marco/phone",
    }
    identity, fix = parse_owntracks(body)
    assert identity.candidates() == ["phone", "marco/phone", "mr"]
    assert fix is not None and fix.speed_mps == pytest.approx(15.0)
    assert (fix.recorded_at, fix.accuracy_m, fix.heading_deg, fix.battery_pct) == (
        WHEN,
        12,
        180,
        90,
    )
    headers, _ = parse_owntracks(body, user="ops", device="dev-123")
    assert headers.candidates()[:2] == ["dev-123", "ops/dev-123"]
    assert parse_owntracks({"_type": "lwt", "tst": 1})[1] is None


def test_screen_allows_jitter_but_not_teleports() -> None:
    """40 m of GPS jitter in one second within the fixes' accuracy passes; 1 km in 5 s does
    not; a fix one hour ahead of the clock is 'future'."""
    screen = Screen(max_speed_mps=250 / 3.6, max_future=timedelta(minutes=5))
    base = Fix(WHEN, 43.7300, 7.4200, accuracy_m=20)
    assert screen.check("d", base, NOW) is None
    jitter = Fix(WHEN + timedelta(seconds=1), 43.73036, 7.4200, accuracy_m=20)
    assert distance_m(base.lat, base.lon, jitter.lat, jitter.lon) == pytest.approx(40, abs=1)
    assert screen.check("d", jitter, NOW) is None
    jump = Fix(WHEN + timedelta(seconds=6), 43.7390, 7.4200, accuracy_m=5)
    assert screen.check("d", jump, NOW) is DropReason.TELEPORT
    ahead = Fix(NOW + timedelta(hours=1), 43.7300, 7.4200)
    assert screen.check("d", ahead, NOW) is DropReason.FUTURE
