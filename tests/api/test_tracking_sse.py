"""The tracking page's live stream (``/t/{token}/events``) on a real server: a snapshot first,
a new snapshot with the new ETA text when an event is written, the rounded driver position
when one is written and the driver may be shown, and never a position otherwise."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import httpx
from fastapi.testclient import TestClient

from doorstep.live import InProcessBus
from doorstep.runtime import Runtime
from doorstep.web.app import create_app
from tests.conftest import NOW, MerchantCtx
from tests.live import live_server
from tests.sse_client import messages, next_of
from tests.tracking_scene import build_scene, finish_stop, set_status, write_eta, write_position


def test_stream_sends_snapshot_then_eta_change_then_driver_position(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Connected to the stream, a recipient gets the page's texts, then the new ETA window
    after a delivery.eta_updated event, then the driver's rounded position after a GPS fix."""
    scene = build_scene(app_client, runtime, merchant)
    set_status(app_client, scene, 1, "scheduled", "picked_up", "out_for_delivery")
    finish_stop(runtime, scene, 0)
    app = create_app(runtime, migrate=False)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=10.0) as client:
        with client.stream("GET", f"{scene.path(1)}/events") as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            stream = messages(resp)
            first = next_of(stream, "snapshot").json()
            assert first["headline"] == "Your parcel is out for delivery"
            assert first["stops_text"] == "You are the next stop"
            assert first["eta_text"] == "Around 09:35"
            assert "Hopper" not in str(first) and "+377" not in str(first)

            earliest = NOW + timedelta(minutes=40)
            writer = threading.Thread(
                target=write_eta,
                args=(runtime, scene, 1, earliest, earliest + timedelta(minutes=15), 0),
            )
            writer.start()
            second = next_of(stream, "snapshot")
            writer.join()
            assert second.json()["eta_text"] == "Between 08:40 and 08:55"
            assert second.id is not None and int(second.id) > int(first["seq"])

            writer = threading.Thread(
                target=write_position, args=(runtime, scene, 43.7354321, 7.4212)
            )
            writer.start()
            position = next_of(stream, "position").json()
            writer.join()
            assert position == {"lat": 43.735, "lon": 7.421, "heading": 90}
            assert _subscribers(runtime) == 1
        # The page went away: its subscription is gone too (checked for up to 5 s).
        deadline = time.monotonic() + 5
        while _subscribers(runtime) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _subscribers(runtime) == 0


def _subscribers(runtime: Runtime) -> int:
    bus = runtime.live
    assert isinstance(bus, InProcessBus)
    return bus.subscriber_count()


def test_stream_sends_no_position_while_the_driver_is_too_far(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """With the default of 5 stops but the order only scheduled (not out for delivery), a GPS
    fix on the route sends the recipient nothing; their own next event does arrive."""
    scene = build_scene(app_client, runtime, merchant)
    set_status(app_client, scene, 2, "scheduled")
    app = create_app(runtime, migrate=False)
    with (
        live_server(app) as url,
        httpx.Client(base_url=url, timeout=httpx.Timeout(10.0)) as client,
        client.stream("GET", f"{scene.path(2)}/events") as resp,
    ):
        stream = messages(resp)
        assert next_of(stream, "snapshot").json()["driver_visible"] is False
        write_position(runtime, scene, 43.73, 7.42)
        set_status(client, scene, 2, "picked_up")
        after = next(stream)
        assert after.event == "snapshot"  # the position sent nothing before it
        assert after.json()["headline"] == "Your parcel has been picked up"


def test_other_orders_eta_changes_send_nothing_but_a_delivery_before_yours_does(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """An ETA update of another stop on the route does not refresh this page; the delivery of
    a stop before it does, with one stop fewer before yours."""
    scene = build_scene(app_client, runtime, merchant)
    for i in range(3):
        set_status(app_client, scene, i, "scheduled", "picked_up", "out_for_delivery")
    app = create_app(runtime, migrate=False)
    with (
        live_server(app) as url,
        httpx.Client(base_url=url, timeout=httpx.Timeout(10.0)) as client,
        client.stream("GET", f"{scene.path(2)}/events") as resp,
    ):
        stream = messages(resp)
        assert next_of(stream, "snapshot").json()["stops_text"] == "2 stops before yours"
        write_eta(runtime, scene, 0, NOW + timedelta(minutes=5), NOW + timedelta(minutes=9), 0)
        set_status(client, scene, 0, "delivered")
        after = next(stream)
        assert after.event == "snapshot"
        assert after.json()["stops_text"] == "1 stop before yours"
