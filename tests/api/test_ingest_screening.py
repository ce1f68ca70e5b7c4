"""What the ingest endpoints refuse or drop, each with its answer and its /metrics counter:
unknown devices (one identical 403), impossible coordinates, future timestamps, exact
duplicates and teleports (dropped, never stored); late points stored without moving the
current position back; OwnTracks over HTTP; rotation of a device id; a clean stop that writes
the buffer; pruning by age."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select

from doorstep.db.engine import transaction
from doorstep.domain.dispatch.models import Driver
from doorstep.domain.tracking.ingest import run_prune_positions
from doorstep.domain.tracking.models import Position
from doorstep.domain.tracking.writer import latest_position
from doorstep.runtime import Runtime
from doorstep.settings import Settings
from doorstep.web.app import create_app
from tests.api.ingest_support import Fleet, flush, metric, published_route
from tests.conftest import NOW, MerchantCtx


@pytest.fixture
def fleet(runtime: Runtime, merchant: MerchantCtx) -> Fleet:
    return published_route(runtime, merchant.id)


def _osmand(
    client: TestClient, device: str, minutes: float, lat: float, lon: float, **kw: Any
) -> Response:
    stamp = int((NOW + timedelta(minutes=minutes)).timestamp())
    params = {"id": device, "timestamp": str(stamp), "lat": repr(lat), "lon": repr(lon)}
    params.update({k: str(v) for k, v in kw.items()})
    return client.get("/ingest/osmand", params=params)


def _count(runtime: Runtime, driver_id: str) -> int:
    with transaction(runtime.read_sessions) as s:
        return int(
            s.scalar(
                select(func.count()).select_from(Position).where(Position.driver_id == driver_id)
            )
            or 0
        )


def test_unknown_devices_get_one_identical_answer(
    app_client: TestClient, runtime: Runtime, fleet: Fleet, merchant: MerchantCtx
) -> None:
    """Unknown ids, a deactivated driver's id and an OwnTracks stranger all get the same 403,
    counted in /metrics, and nothing is stored."""
    inactive = published_route(runtime, merchant.id, name="Lia Ferri")
    with transaction(runtime.sessions) as s:
        driver = s.get(Driver, inactive.driver_id)
        assert driver is not None
        driver.active = False
    before = metric(app_client, "doorstep_positions_refused_total", source="osmand")
    answers = [
        _osmand(app_client, "no-such-device", -1, 43.73, 7.42),
        _osmand(app_client, fleet.device_id.upper(), -1, 43.73, 7.42),
        _osmand(app_client, inactive.device_id, -1, 43.73, 7.42),
        app_client.post(
            "/ingest/osmand",
            json={
                "device_id": "x" * 300,
                "location": {
                    "timestamp": NOW.isoformat(),
                    "coords": {"latitude": 43.7, "longitude": 7.4},
                },
            },
        ),
    ]
    assert {a.status_code for a in answers} == {403}
    assert len({a.content for a in answers}) == 1
    assert answers[0].json()["detail"] == "this device is not registered to an active driver"
    stranger = app_client.post(
        "/ingest/owntracks",
        json={"_type": "location", "lat": 43.73, "lon": 7.42, "tst": 1, "tid": "zz"},
        headers={"X-Limit-U": "eve", "X-Limit-D": "phone"},
    )
    same = {k: v for k, v in answers[0].json().items() if k != "instance"}
    assert stranger.status_code == 403
    assert {k: v for k, v in stranger.json().items() if k != "instance"} == same
    assert metric(app_client, "doorstep_positions_refused_total", source="osmand") == before + 4
    flush(app_client)
    assert _count(runtime, inactive.driver_id) == 0


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(91.0, 7.42), (-90.5, 7.42), (43.7, 180.01), (0.0, 0.0), (float("nan"), 7.4)],
)
def test_impossible_coordinates_are_dropped_and_counted(
    app_client: TestClient, runtime: Runtime, fleet: Fleet, lat: float, lon: float
) -> None:
    """Coordinates no place on Earth has (or 0,0, a phone without a fix) are answered 200 so the
    app does not resend them, counted as invalid_coordinates, and never stored."""
    name, labels = "doorstep_positions_dropped_total", {"source": "osmand"}
    before = metric(app_client, name, reason="invalid_coordinates", **labels)
    answer = _osmand(app_client, fleet.device_id, -1, lat, lon)
    assert answer.status_code == 200
    assert answer.json() == {"accepted": 0, "dropped": {"invalid_coordinates": 1}}
    assert metric(app_client, name, reason="invalid_coordinates", **labels) == before + 1
    flush(app_client)
    assert _count(runtime, fleet.driver_id) == 0


def test_future_duplicate_and_teleport_are_dropped_late_points_are_kept(
    app_client: TestClient, runtime: Runtime, fleet: Fleet, merchant: MerchantCtx
) -> None:
    """A fix from the future, an exact resend and a 2 km jump in 10 s are dropped and counted;
    a late fix is stored but the current position stays the newest one."""
    name = "doorstep_positions_dropped_total"
    before = {
        r: metric(app_client, name, source="osmand", reason=r)
        for r in ("future", "duplicate", "teleport")
    }
    dev = fleet.device_id
    assert _osmand(app_client, dev, -5, 43.7312, 7.4197).json()["accepted"] == 1
    assert _osmand(app_client, dev, -4, 43.7330, 7.4210).json()["accepted"] == 1
    answers = {
        "future": _osmand(app_client, dev, 60, 43.7331, 7.4211),
        "duplicate": _osmand(app_client, dev, -4, 43.7330, 7.4210),
        # 2 km north-east in 10 s: 720 km/h.
        "teleport": _osmand(app_client, dev, -4 + 10 / 60, 43.7500, 7.4400, accuracy=10),
    }
    for reason, answer in answers.items():
        assert answer.status_code == 200
        assert answer.json() == {"accepted": 0, "dropped": {reason: 1}}, reason
        assert metric(app_client, name, source="osmand", reason=reason) == before[reason] + 1
    # Late: two minutes older than the newest, but plausible; stored, current stays.
    late = _osmand(app_client, dev, -6, 43.7305, 7.4190)
    assert late.json() == {"accepted": 1, "dropped": {}}
    flush(app_client)
    assert _count(runtime, fleet.driver_id) == 3
    with transaction(runtime.read_sessions) as s:
        latest = latest_position(s, merchant.id, fleet.route_id)
    assert latest is not None
    assert (latest.lat, latest.recorded_at) == (43.7330, NOW - timedelta(minutes=4))


def test_a_bad_first_fix_does_not_lock_the_driver_out(
    app_client: TestClient, runtime: Runtime, fleet: Fleet, merchant: MerchantCtx
) -> None:
    """After a wild first fix, three consistent real fixes re-anchor the driver and are kept."""
    dev = fleet.device_id
    assert _osmand(app_client, dev, -10, 48.8566, 2.3522).json()["accepted"] == 1  # Paris?
    results = [
        _osmand(app_client, dev, -9 + i / 6, 43.7312, 7.4197 + i * 1e-4).json() for i in range(3)
    ]
    assert [r["accepted"] for r in results] == [0, 0, 1]
    assert _osmand(app_client, dev, -8, 43.7313, 7.4201).json()["accepted"] == 1
    flush(app_client)
    with transaction(runtime.read_sessions) as s:
        latest = latest_position(s, merchant.id, fleet.route_id)
    assert latest is not None and latest.lat == 43.7313


def test_owntracks_http_location_is_taken_and_answered_with_an_empty_list(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """OwnTracks' HTTP payload (vel km/h, tst s) from the X-Limit-D device is stored in m/s and
    answered ``[]``; a non-location message from it is answered ``[]`` and stores nothing."""
    fleet = published_route(runtime, merchant.id, route_status="active")
    payload = {
        "_type": "location",
        "acc": 5,
        "alt": 48,
        "batt": 41,
        "bs": 1,
        "cog": 271,
        "conn": "m",
        "created_at": int(NOW.timestamp()) - 30,
        "lat": 43.7391,
        "lon": 7.4269,
        "tid": "mr",
        "tst": int(NOW.timestamp()) - 30,
        "vel": 36,
        "vac": 3,
        "topic": "owntracks/marco/phone",
    }
    headers = {"X-Limit-U": "marco", "X-Limit-D": fleet.device_id}
    answer = app_client.post("/ingest/owntracks", json=payload, headers=headers)
    assert (answer.status_code, answer.json()) == (200, [])
    lwt = app_client.post("/ingest/owntracks", json={"_type": "lwt", "tst": 1}, headers=headers)
    assert (lwt.status_code, lwt.json()) == (200, [])
    flush(app_client)
    with transaction(runtime.read_sessions) as s:
        [row] = s.scalars(select(Position).where(Position.driver_id == fleet.driver_id)).all()
    assert (row.source, row.route_id, row.lat, row.lon) == (
        "owntracks",
        fleet.route_id,
        43.7391,
        7.4269,
    )
    assert row.speed_mps == pytest.approx(10.0)
    assert (row.heading_deg, row.accuracy_m, row.altitude_m, row.battery_pct) == (271, 5, 48, 41)


def test_rotating_a_device_id_refuses_the_old_one_at_once(
    app_client: TestClient,
    runtime: Runtime,
    fleet: Fleet,
    merchant: MerchantCtx,
    make_merchant: Any,
) -> None:
    """After rotation the old id gets the unknown-device 403 and the new, long random id is
    taken; another merchant cannot see or rotate the driver (404)."""
    # In use (so this process remembers the binding) before the rotation.
    assert _osmand(app_client, fleet.device_id, -2, 43.73, 7.42).json()["accepted"] == 1
    shown = app_client.get(f"/v1/drivers/{fleet.driver_id}/device", headers=merchant.headers)
    assert shown.json()["device_id"] == fleet.device_id
    assert shown.json()["osmand_url"] == "http://127.0.0.1:8000/ingest/osmand"
    rotated = app_client.post(
        f"/v1/drivers/{fleet.driver_id}/device/rotate", headers=merchant.headers
    )
    assert rotated.status_code == 200, rotated.text
    new_id = rotated.json()["device_id"]
    assert new_id != fleet.device_id and len(new_id) >= 24
    assert new_id in rotated.json()["setup_url"]
    assert _osmand(app_client, fleet.device_id, -1, 43.73, 7.42).status_code == 403
    assert _osmand(app_client, new_id, -1, 43.7301, 7.4201).json()["accepted"] == 1
    other = make_merchant("Other Shop")
    for answer in (
        app_client.get(f"/v1/drivers/{fleet.driver_id}/device", headers=other.headers),
        app_client.post(f"/v1/drivers/{fleet.driver_id}/device/rotate", headers=other.headers),
    ):
        assert answer.status_code == 404


def test_track_is_scoped_to_the_merchant(
    app_client: TestClient, fleet: Fleet, merchant: MerchantCtx, make_merchant: Any
) -> None:
    """Another merchant's route track is a 404 in both formats; with no fixes yet, the owner
    gets a Feature without geometry and a GPX with an empty track."""
    other = make_merchant("Other Shop")
    for suffix in ("track", "track.gpx"):
        assert (
            app_client.get(
                f"/v1/routes/{fleet.route_id}/{suffix}", headers=other.headers
            ).status_code
            == 404
        )
        assert (
            app_client.get(f"/v1/routes/rte_nope/{suffix}", headers=merchant.headers).status_code
            == 404
        )
    mine = app_client.get(f"/v1/routes/{fleet.route_id}/track", headers=merchant.headers).json()
    assert (mine["geometry"], mine["properties"]["points"]) == (None, 0)


def test_a_clean_stop_writes_every_buffered_position(
    runtime: Runtime, settings: Settings, merchant: MerchantCtx
) -> None:
    """With a long flush interval nothing is written while running; stopping the app writes
    every accepted position."""
    fleet = published_route(runtime, merchant.id)
    slow = runtime.__class__(
        settings=settings.model_copy(
            update={"position_flush_ms": 10_000, "position_flush_batch": 10_000}
        ),
        clock=runtime.clock,
        engine=runtime.engine,
    )
    with TestClient(create_app(slow, migrate=False)) as client:
        for i in range(5):
            assert (
                _osmand(client, fleet.device_id, -5 + i / 6, 43.7312 + i * 1e-4, 7.4197).status_code
                == 200
            )
        assert client.app.state.position_ingest.writer.pending == 5  # type: ignore[attr-defined]
    assert _count(runtime, fleet.driver_id) == 5


def test_prune_deletes_positions_older_than_the_retention(
    app_client: TestClient, runtime: Runtime, fleet: Fleet
) -> None:
    """run_prune_positions removes positions recorded before the retention (30 days) only."""
    dev = fleet.device_id
    old_minutes = -31 * 24 * 60
    assert _osmand(app_client, dev, old_minutes, 43.7312, 7.4197).json()["accepted"] == 1
    assert _osmand(app_client, dev, -1, 43.7313, 7.4198).json()["accepted"] == 1
    flush(app_client)
    assert run_prune_positions(runtime) == 1
    assert _count(runtime, fleet.driver_id) == 1
    assert run_prune_positions(runtime) == 0


def test_position_goes_to_the_active_route_else_the_current_shifts_route(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """A started (active) route takes the driver's positions; without one, the published route
    of the shift running now does; a driver with neither is still stored, on no route."""
    from doorstep.domain.dispatch.models import Route, Shift

    fleet = published_route(runtime, merchant.id)
    assert _osmand(app_client, fleet.device_id, -3, 43.7312, 7.4197).json()["accepted"] == 1
    # The shift ends: no current route any more; a route started by hand is active.
    with transaction(runtime.sessions) as s:
        route = s.get(Route, fleet.route_id)
        assert route is not None
        shift = s.get(Shift, route.shift_id)
        assert shift is not None
        shift.end_at = NOW - timedelta(hours=2)
        shift.start_at = NOW - timedelta(hours=3)
    app_client.app.state.position_ingest.forget_driver(fleet.driver_id)  # type: ignore[attr-defined]
    assert _osmand(app_client, fleet.device_id, -2, 43.7313, 7.4198).json()["accepted"] == 1
    with transaction(runtime.sessions) as s:
        route = s.get(Route, fleet.route_id)
        assert route is not None
        route.status = "active"
    app_client.app.state.position_ingest.forget_driver(fleet.driver_id)  # type: ignore[attr-defined]
    assert _osmand(app_client, fleet.device_id, -1, 43.7314, 7.4199).json()["accepted"] == 1
    flush(app_client)
    with transaction(runtime.read_sessions) as s:
        routes = s.scalars(
            select(Position.route_id)
            .where(Position.driver_id == fleet.driver_id)
            .order_by(Position.recorded_at)
        ).all()
    assert routes == [fleet.route_id, None, fleet.route_id]


def test_prune_also_forgets_a_current_position_older_than_the_retention(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """A driver last seen 31 days ago has no current position after pruning, so nothing keeps
    them from being deleted and no stale dot is shown."""
    fleet = published_route(runtime, merchant.id)
    assert _osmand(app_client, fleet.device_id, -31 * 24 * 60, 43.73, 7.42).json()["accepted"] == 1
    flush(app_client)
    with transaction(runtime.read_sessions) as s:
        assert latest_position(s, merchant.id, fleet.route_id) is not None
    assert run_prune_positions(runtime) == 1
    with transaction(runtime.read_sessions) as s:
        assert latest_position(s, merchant.id, fleet.route_id) is None


def test_current_positions_are_the_merchants_own(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx, make_merchant: Any
) -> None:
    """current_positions lists each of the merchant's drivers where last seen, and nothing of
    another merchant's; latest_position of another merchant's route is None."""
    from doorstep.domain.tracking.writer import current_positions

    mine = published_route(runtime, merchant.id)
    other = make_merchant("Other Shop")
    theirs = published_route(runtime, other.id, name="Zoe Lang")
    assert _osmand(app_client, mine.device_id, -2, 43.7312, 7.4197).json()["accepted"] == 1
    assert _osmand(app_client, mine.device_id, -1, 43.7314, 7.4199).json()["accepted"] == 1
    assert _osmand(app_client, theirs.device_id, -1, 43.7400, 7.4300).json()["accepted"] == 1
    flush(app_client)
    with transaction(runtime.read_sessions) as s:
        listed = current_positions(s, merchant.id)
        assert latest_position(s, merchant.id, theirs.route_id) is None
    assert [(p.driver_id, p.route_id, p.lat) for p in listed] == [
        (mine.driver_id, mine.route_id, 43.7314)
    ]
