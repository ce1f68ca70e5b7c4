"""Stop events move the next recipients' ETAs at once (no worker job), and iPhone photos
(HEIC) are accepted as proof of delivery, checked from their bytes and stored as clean JPEG."""

from __future__ import annotations

import io
import threading
import time
from datetime import timedelta
from typing import Any

import httpx
import pillow_heif
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from doorstep.clock import FrozenClock
from doorstep.db.engine import transaction
from doorstep.domain.dispatch.models import Stop
from doorstep.domain.dispatch.proof import load_proof_photo
from doorstep.domain.orders.models import DeliveryEvent, Order
from doorstep.domain.tracking.links import new_tracking_token
from doorstep.runtime import Runtime
from doorstep.web.app import create_app
from tests.conftest import MerchantCtx
from tests.driving import Published, publish_day
from tests.live import live_server
from tests.sse_client import messages, next_of

PIN = "246810"  # the PIN order's (tests/driving.py); ignored for the other stops


@pytest.fixture
def day(app_client: TestClient, runtime: Runtime, merchant: MerchantCtx) -> Published:
    return publish_day(app_client, runtime, merchant)


def _eta_events(runtime: Runtime, order_id: str) -> list[dict[str, Any]]:
    with transaction(runtime.sessions) as s:
        return [
            dict(d)
            for d in s.scalars(
                select(DeliveryEvent.data)
                .where(
                    DeliveryEvent.order_id == order_id,
                    DeliveryEvent.type == "delivery.eta_updated",
                )
                .order_by(DeliveryEvent.seq)
            )
        ]


def _stop_eta(runtime: Runtime, stop_id: str) -> Any:
    with transaction(runtime.sessions) as s:
        stop = s.get(Stop, stop_id)
        assert stop is not None
        return stop.eta


def test_completing_a_stop_late_moves_the_next_stops_eta_without_the_worker(
    app_client: TestClient, runtime: Runtime, clock: FrozenClock, day: Published
) -> None:
    """Starting the route announces every ETA; a first stop finished 50 minutes late moves the
    next stop's ETA later in the same request, with a delivery.eta_updated naming the old one."""
    first, second = day.route["stops"][0], day.route["stops"][1]
    start_at = day.route["start_at"]
    assert start_at is not None
    started = app_client.post(f"/v1/routes/{day.route['id']}/start", headers=day.merchant.headers)
    assert started.status_code == 200, started.text
    [announced] = _eta_events(runtime, second["order_id"])
    assert announced["eta"] and announced["earliest"] <= announced["eta"] <= announced["latest"]
    eta_before = _stop_eta(runtime, second["id"])
    assert eta_before is not None

    clock.set(eta_before + timedelta(minutes=50))  # the driver is still at the first stop
    done = app_client.post(
        f"/v1/stops/{first['id']}/complete",
        data={"received_by": "A", "pin": PIN},
        headers=day.merchant.headers,
    )
    assert done.status_code == 200, done.text

    events = _eta_events(runtime, second["order_id"])
    assert len(events) == 2, events
    moved = events[-1]
    assert moved["previous_eta"] == announced["eta"]
    assert moved["eta"] > announced["eta"]
    eta_after = _stop_eta(runtime, second["id"])
    assert eta_after >= clock.now()  # never in the past: the next leg starts now
    assert (eta_after - eta_before) >= timedelta(minutes=40)


def test_a_failed_attempt_also_refreshes_the_etas(
    app_client: TestClient, runtime: Runtime, clock: FrozenClock, day: Published
) -> None:
    """A failed attempt recorded late moves the following stop's ETA at once too."""
    first, second = day.route["stops"][0], day.route["stops"][1]
    app_client.post(f"/v1/routes/{day.route['id']}/start", headers=day.merchant.headers)
    eta_before = _stop_eta(runtime, second["id"])
    clock.set(eta_before + timedelta(minutes=30))
    failed = app_client.post(
        f"/v1/stops/{first['id']}/fail",
        data={"reason": "consignee_not_home"},
        headers=day.merchant.headers,
    )
    assert failed.status_code == 200, failed.text
    assert len(_eta_events(runtime, second["order_id"])) == 2
    assert _stop_eta(runtime, second["id"]) > eta_before + timedelta(minutes=20)


def test_the_next_recipients_tracking_page_moves_when_the_previous_stop_is_done(
    app_client: TestClient, runtime: Runtime, clock: FrozenClock, day: Published
) -> None:
    """Connected to the next stop's tracking stream, the recipient gets a new ETA text as soon
    as the driver completes the stop before theirs late (no worker job runs)."""
    first, second = day.route["stops"][0], day.route["stops"][1]
    started = app_client.post(f"/v1/routes/{day.route['id']}/start", headers=day.merchant.headers)
    assert started.status_code == 200, started.text
    link = new_tracking_token(runtime.settings.effective_secret_key, second["order_id"])
    with transaction(runtime.sessions) as s:  # the factory's orders have no usable link
        order = s.get(Order, second["order_id"])
        assert order is not None
        order.tracking_nonce, order.tracking_token_hash = link.nonce, link.token_hash
    path = f"/t/{link.token}"
    clock.set(_stop_eta(runtime, second["id"]) + timedelta(minutes=50))
    app = create_app(runtime, migrate=False)
    with (
        live_server(app) as url,
        httpx.Client(base_url=url, timeout=10.0) as client,
        client.stream("GET", f"{path}/events") as resp,
    ):
        assert resp.status_code == 200
        stream = messages(resp)
        before = next_of(stream, "snapshot").json()
        done: list[int] = []

        def complete() -> None:
            with httpx.Client(base_url=url, timeout=10.0) as api:
                answer = api.post(
                    f"/v1/stops/{first['id']}/complete",
                    data={"pin": PIN},
                    headers=day.merchant.headers,
                )
                done.append(answer.status_code)

        # The page listens before the driver acts (as a page open before the stop is done).
        deadline = time.monotonic() + 5
        while runtime.live.subscriber_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        writer = threading.Thread(target=complete)
        writer.start()
        # The stop's own events may come first; the new ETA follows in the same commit.
        seen = []
        for _ in range(4):
            seen.append(next_of(stream, "snapshot").json()["eta_text"])
            if seen[-1] != before["eta_text"]:
                break
        writer.join()
    assert done == [200]
    assert seen[-1] and seen[-1] != before["eta_text"], seen


def _heic(*, gps: bool) -> bytes:
    """A small HEIC as an iPhone saves it, with EXIF (camera make and GPS) when asked."""
    image = Image.new("RGB", (96, 64), (30, 140, 200))
    exif = Image.Exif()
    if gps:
        exif[0x010F] = "PhoneMaker"
        exif[0x8825] = {1: "N", 2: (43.0, 44.0, 10.0), 3: "E", 4: (7.0, 25.0, 30.0)}
    heif = pillow_heif.from_pillow(image)
    out = io.BytesIO()
    heif.save(out, quality=80, exif=exif.tobytes() if gps else None)
    return out.getvalue()


def test_a_heic_photo_is_accepted_and_kept_as_a_jpeg_without_exif(
    app_client: TestClient, runtime: Runtime, day: Published
) -> None:
    """A HEIC photo sent under a misleading name and type is read from its bytes, delivered,
    and stored as a JPEG with no EXIF, GPS or camera make left."""
    original = _heic(gps=True)
    assert original[4:12] in (b"ftypheic", b"ftypmif1")
    assert b"PhoneMaker" in original
    app_client.post(f"/v1/routes/{day.route['id']}/start", headers=day.merchant.headers)
    stop = day.route["stops"][0]
    resp = app_client.post(
        f"/v1/stops/{stop['id']}/complete",
        data={"pin": PIN},
        files={"photo": ("IMG_0001.txt", original, "text/plain")},
        headers=day.merchant.headers,
    )
    assert resp.status_code == 200, resp.text
    with transaction(runtime.sessions) as s:
        stored = load_proof_photo(s, runtime.settings, day.merchant.id, stop["order_id"])
    assert stored is not None
    content, media_type = stored
    assert media_type == "image/jpeg" and content[:3] == b"\xff\xd8\xff"
    kept = Image.open(io.BytesIO(content))
    assert kept.format == "JPEG" and kept.size == (96, 64)
    assert len(kept.getexif()) == 0
    assert b"PhoneMaker" not in content


def test_a_truncated_heic_is_refused_naming_the_field(
    app_client: TestClient, day: Published
) -> None:
    """Half a HEIC file is a 422 on the photo field; the stop stays to do."""
    app_client.post(f"/v1/routes/{day.route['id']}/start", headers=day.merchant.headers)
    stop = day.route["stops"][0]
    broken = _heic(gps=False)
    resp = app_client.post(
        f"/v1/stops/{stop['id']}/complete",
        data={"pin": PIN},
        files={"photo": ("IMG_0002.heic", broken[: len(broken) // 2], "image/heic")},
        headers=day.merchant.headers,
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["errors"][0]["field"] == "photo"
