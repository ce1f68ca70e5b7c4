"""The dispatcher's live stream (``/console/dispatch/events``) on a real server: signed-in
users get their merchant's vehicle positions and stop changes (late ones flagged), never another
merchant's; a reconnect with Last-Event-ID first replays what changed meanwhile; and the page
lists late and at-risk stops first."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from doorstep.clock import FrozenClock
from doorstep.domain.accounts.models import Role
from doorstep.runtime import Runtime
from doorstep.web.app import create_app
from doorstep.web.pages import dispatch_live
from tests.conftest import NOW, MerchantCtx
from tests.console_session import PASSWORD, make_user, sign_in
from tests.live import live_server
from tests.sse_client import messages, next_of
from tests.tracking_scene import build_scene, order_body, set_status, write_eta, write_position


def _sign_in(client: httpx.Client, email: str) -> None:
    login = client.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
    assert token
    answer = client.post(
        "/console/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token.group(1)},
    )
    assert answer.status_code == 303, answer.text


def test_stream_needs_a_signed_in_user(client: TestClient) -> None:
    """Without a session the stream redirects to the sign-in page instead of streaming."""
    resp = client.get("/console/dispatch/events")
    assert resp.status_code == 303
    assert "/console/login" in resp.headers["location"]


def test_console_stream_sends_vehicles_and_stop_changes_of_its_merchant_only(
    app_client: TestClient,
    runtime: Runtime,
    merchant: MerchantCtx,
    make_merchant: Callable[..., MerchantCtx],
) -> None:
    """A GPS fix arrives as ``vehicle`` (unrounded: staff see the van), a delay as a ``stop``
    flagged late; the other merchant's changes never reach this stream; reconnecting with the
    last id replays the stop that changed while disconnected."""
    scene = build_scene(app_client, runtime, merchant)
    other = make_merchant("Other Shop")
    other_order = app_client.post(
        "/v1/orders",
        json=order_body(0, reference="OTHER-1"),
        headers=other.headers,
    ).json()
    make_user(runtime, merchant.id, "disp@example.com", Role.DISPATCHER)
    app = create_app(runtime, migrate=False)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=10.0) as client:
        _sign_in(client, "disp@example.com")
        with client.stream("GET", "/console/dispatch/events") as resp:
            assert resp.status_code == 200
            stream = messages(resp)
            next_of(stream, "ready")
            app_client.post(
                f"/v1/orders/{other_order['id']}/status",
                json={"status": "scheduled"},
                headers=other.headers,
            )
            write_position(runtime, scene, 43.7312345, 7.4198765)
            vehicle = next_of(stream, "vehicle").json()
            assert vehicle["route_id"] == scene.route_id
            assert (vehicle["lat"], vehicle["lon"]) == (43.7312345, 7.4198765)
            set_status(app_client, scene, 0, "scheduled")
            scheduled = next_of(stream, "stop")
            assert scheduled.json()["order_id"] == scene.orders[0]["id"]
            set_status(app_client, scene, 0, "delivery_delayed", reason="weather_delay")
            delayed = next_of(stream, "stop")
            body = delayed.json()
            assert body["status"] == "delivery_delayed" and body["attention"] == "late"
            assert body["route_id"] == scene.route_id
        last_id = delayed.id
        assert last_id is not None
        set_status(app_client, scene, 1, "scheduled")  # while disconnected
        with client.stream(
            "GET", "/console/dispatch/events", headers={"Last-Event-ID": last_id}
        ) as resp:
            stream = messages(resp)
            replayed = next(stream)
            assert replayed.event == "stop"
            assert replayed.json()["order_id"] == scene.orders[1]["id"]
            assert next(stream).event == "ready"


def test_page_lists_late_then_at_risk_stops_first(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """A delayed delivery is listed as late before one whose live ETA falls after its window
    ends (at risk); a stop whose ETA is inside its window is not listed, even when the far edge
    of its calibrated window passes the window's end (the windows end at NOW + 180 min)."""
    scene = build_scene(client, runtime, merchant)
    for i in range(3):
        set_status(client, scene, i, "scheduled")
    # ETA NOW + 190 min: past the end, though the window's earliest edge is not (not delayed).
    write_eta(runtime, scene, 2, NOW + timedelta(minutes=170), NOW + timedelta(minutes=210), 2)
    # ETA NOW + 165 min, latest edge NOW + 200 min: probably on time, so not at risk.
    write_eta(runtime, scene, 0, NOW + timedelta(minutes=130), NOW + timedelta(minutes=200), 4)
    set_status(client, scene, 1, "delivery_delayed", reason="carrier_vehicle_issue")
    make_user(runtime, merchant.id, "disp@example.com", Role.DISPATCHER)
    sign_in(client, "disp@example.com")
    page = client.get("/console/dispatch")
    assert page.status_code == 200
    section = page.text.split("data-attention-list", 1)[1].split("</ol>", 1)[0]
    items = re.findall(r'data-order-id="([^"]+)"', section)
    assert items == [scene.orders[1]["id"], scene.orders[2]["id"]]
    assert "Late" in section and "At risk" in section
    assert 'data-events-url="/console/dispatch/events"' in page.text


def test_stop_late_by_the_clock_alone_is_streamed(
    app_client: TestClient,
    runtime: Runtime,
    merchant: MerchantCtx,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When a stop's window ends undelivered, with no event at all, the stream still says it
    is late (checked every LATE_CHECK_S; shortened here)."""
    monkeypatch.setattr(dispatch_live, "LATE_CHECK_S", 0.2)
    scene = build_scene(app_client, runtime, merchant)
    set_status(app_client, scene, 0, "scheduled")
    set_status(app_client, scene, 1, "scheduled", "picked_up", "out_for_delivery", "delivered")
    make_user(runtime, merchant.id, "disp@example.com", Role.DISPATCHER)
    app = create_app(runtime, migrate=False)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=10.0) as client:
        _sign_in(client, "disp@example.com")
        with client.stream("GET", "/console/dispatch/events") as resp:
            stream = messages(resp)
            next_of(stream, "ready")
            clock.advance(timedelta(hours=3, minutes=1))  # past the 11:00 (Monaco) window end
            late = {next_of(stream, "stop").json()["order_id"] for _ in range(2)}
            # The delivered one is not late; the pending one, never planned out, is.
            assert late == {scene.orders[0]["id"], scene.orders[2]["id"]}
