"""The driving API: start a route, arrive, complete with proof, fail an attempt, and every
refusal (wrong state, another merchant's stop, bad or oversize images, wrong PIN, replays)."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from doorstep.db.engine import transaction
from doorstep.domain.dispatch.models import Route, Stop
from doorstep.domain.dispatch.proof import load_proof_photo
from doorstep.domain.orders.models import DeliveryEvent, Order
from doorstep.runtime import Runtime
from doorstep.web.app import create_app
from tests.conftest import MerchantCtx
from tests.driving import Published, image_bytes, publish_day


@pytest.fixture
def day(app_client: TestClient, runtime: Runtime, merchant: MerchantCtx) -> Published:
    return publish_day(app_client, runtime, merchant)


def _start(client: TestClient, day: Published) -> dict[str, Any]:
    resp = client.post(f"/v1/routes/{day.route['id']}/start", headers=day.merchant.headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _stop(day: Published, *, pin: bool) -> dict[str, Any]:
    return next(s for s in day.route["stops"] if (s["order_id"] == day.pin_order_id) == pin)


def _events(runtime: Runtime, merchant_id: str, type_: str) -> list[DeliveryEvent]:
    with transaction(runtime.sessions) as s:
        return list(
            s.scalars(
                select(DeliveryEvent)
                .where(DeliveryEvent.merchant_id == merchant_id, DeliveryEvent.type == type_)
                .order_by(DeliveryEvent.seq)
            )
        )


def _complete(
    client: TestClient, day: Published, stop_id: str, key: str | None = None, **form: Any
) -> Any:
    files = form.pop("files", None)
    headers = dict(day.merchant.headers)
    if key:
        headers["Idempotency-Key"] = key
    return client.post(f"/v1/stops/{stop_id}/complete", data=form, files=files, headers=headers)


def test_start_sends_every_order_out_for_delivery_once(
    app_client: TestClient, runtime: Runtime, day: Published
) -> None:
    """Starting a route makes it active and each order out_for_delivery with one event each."""
    route = _start(app_client, day)
    assert route["status"] == "active" and route["started_at"]
    assert {s["order"]["status"] for s in route["stops"]} == {"out_for_delivery"}
    out = _events(runtime, day.merchant.id, "delivery.out_for_delivery")
    assert sorted(e.order_id for e in out) == sorted(s["order_id"] for s in day.route["stops"])
    assert len(_events(runtime, day.merchant.id, "route.started")) == 1
    again = app_client.post(f"/v1/routes/{day.route['id']}/start", headers=day.merchant.headers)
    assert again.status_code == 409


def test_stop_actions_need_a_started_route(app_client: TestClient, day: Published) -> None:
    """Arriving at or completing a stop of a route not started yet is a 409."""
    stop = _stop(day, pin=False)
    resp = app_client.post(f"/v1/stops/{stop['id']}/arrive", headers=day.merchant.headers)
    assert resp.status_code == 409
    assert "start the route" in resp.json()["detail"]


def test_arrive_then_complete_with_photo_and_signature(
    app_client: TestClient, runtime: Runtime, day: Published
) -> None:
    """A delivered stop records arrival, the order is delivered with its proof in the event."""
    _start(app_client, day)
    stop = _stop(day, pin=False)
    arrived = app_client.post(
        f"/v1/stops/{stop['id']}/arrive",
        data={"lat": "43.74", "lon": "7.42"},
        headers=day.merchant.headers,
    )
    assert arrived.status_code == 200, arrived.text
    assert arrived.json()["status"] == "arrived" and arrived.json()["actual_arrival"]
    resp = _complete(
        app_client,
        day,
        stop["id"],
        received_by="Ada",
        lat="43.7401",
        lon="7.4262",
        files={
            "photo": ("door.jpg", image_bytes("JPEG"), "image/jpeg"),
            "signature": ("sig.png", image_bytes("PNG"), "image/png"),
        },
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "done"
    assert body["order"]["status"] == "delivered" and body["order"]["tag"] == "Delivered"
    [event] = _events(runtime, day.merchant.id, "delivery.delivered")
    assert event.data["proof"] == {
        "photo": True,
        "signature": True,
        "received_by": "Ada",
        "pin_verified": False,
        "lat": 43.7401,
        "lon": 7.4262,
    }
    assert len(_events(runtime, day.merchant.id, "stop.arrived")) == 1
    with transaction(runtime.sessions) as s:
        photo = load_proof_photo(s, runtime.settings, day.merchant.id, stop["order_id"])
    assert photo is not None and photo[1] == "image/jpeg"
    assert Image.open(io.BytesIO(photo[0])).format == "JPEG"


def test_a_second_complete_is_refused_unless_it_replays_the_key(
    app_client: TestClient, runtime: Runtime, day: Published
) -> None:
    """The same Idempotency-Key gets the first answer; another completion is a 409."""
    _start(app_client, day)
    stop = _stop(day, pin=False)
    photo = {"photo": ("p.jpg", image_bytes("JPEG"), "image/jpeg")}
    first = _complete(app_client, day, stop["id"], key="k-1", received_by="Bo", files=photo)
    assert first.status_code == 200, first.text
    replay = _complete(app_client, day, stop["id"], key="k-1", received_by="Bo", files=photo)
    assert replay.status_code == 200
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json() == first.json()
    other = _complete(app_client, day, stop["id"], key="k-2", received_by="Bo")
    assert other.status_code == 409
    assert len(_events(runtime, day.merchant.id, "delivery.delivered")) == 1


def test_wrong_or_missing_pin_is_refused_and_the_right_one_delivers(
    app_client: TestClient, runtime: Runtime, day: Published
) -> None:
    """An order that requires a PIN is delivered only with the recipient's PIN (422 else)."""
    _start(app_client, day)
    stop = _stop(day, pin=True)
    missing = _complete(app_client, day, stop["id"])
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "pin"
    wrong = _complete(app_client, day, stop["id"], pin="000000")
    assert wrong.status_code == 422
    assert stop["order_id"] == day.pin_order_id
    right = _complete(app_client, day, stop["id"], pin="246810")
    assert right.status_code == 200, right.text
    [event] = _events(runtime, day.merchant.id, "delivery.delivered")
    assert event.data["proof"]["pin_verified"] is True


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (b"%PDF-1.4 not an image at all", 422),
        (b"GIF89a" + b"\x00" * 10, 422),
        (b"\xff\xd8\xff\xe0 truncated jpeg", 422),
    ],
)
def test_photo_type_is_checked_from_the_bytes(
    app_client: TestClient, day: Published, payload: bytes, status: int
) -> None:
    """A file that is not a readable JPEG/PNG/WebP is refused whatever its name says."""
    _start(app_client, day)
    stop = _stop(day, pin=False)
    resp = _complete(
        app_client, day, stop["id"], files={"photo": ("photo.jpg", payload, "image/jpeg")}
    )
    assert resp.status_code == status, resp.text
    assert resp.json()["errors"][0]["field"] == "photo"


def test_oversize_photo_is_refused(runtime: Runtime, merchant: MerchantCtx) -> None:
    """A photo over proof_max_bytes is a 413 and the stop stays open."""
    small = Runtime(
        settings=runtime.settings.model_copy(update={"proof_max_bytes": 20_000}),
        clock=runtime.clock,
        engine=runtime.engine,
    )
    with TestClient(create_app(small, migrate=False)) as client:
        day = publish_day(client, small, merchant)
        _start(client, day)
        stop = _stop(day, pin=False)
        noise = Image.frombytes("RGB", (300, 300), os.urandom(300 * 300 * 3))
        out = io.BytesIO()
        noise.save(out, format="PNG")
        big = out.getvalue()
        assert len(big) > 20_000
        resp = _complete(client, day, stop["id"], files={"photo": ("p.png", big, "image/png")})
    assert resp.status_code == 413, resp.text
    with transaction(runtime.sessions) as s:
        kept = s.get(Stop, stop["id"])
        assert kept is not None and kept.status == "planned"


def test_exif_and_gps_are_stripped_from_the_stored_photo(
    app_client: TestClient, runtime: Runtime, day: Published
) -> None:
    """A photo sent with GPS EXIF is stored without any EXIF."""
    original = image_bytes("JPEG", gps=True)
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)  # the GPS is there
    _start(app_client, day)
    stop = _stop(day, pin=False)
    resp = _complete(
        app_client, day, stop["id"], files={"photo": ("p.jpg", original, "image/jpeg")}
    )
    assert resp.status_code == 200, resp.text
    with transaction(runtime.sessions) as s:
        stored = load_proof_photo(s, runtime.settings, day.merchant.id, stop["order_id"])
    assert stored is not None
    kept = Image.open(io.BytesIO(stored[0]))
    assert not kept.getexif().get_ifd(0x8825)
    assert len(kept.getexif()) == 0
    assert b"PhoneMaker" not in stored[0]


def test_failed_attempt_counts_and_completes_the_route(
    app_client: TestClient, runtime: Runtime, day: Published
) -> None:
    """Failing every stop: orders delivery_failed with the reason, attempts 1, route completed."""
    _start(app_client, day)
    for stop in day.route["stops"]:
        resp = app_client.post(
            f"/v1/stops/{stop['id']}/fail",
            data={"reason": "consignee_not_home", "note": "rang twice"},
            files={"photo": ("door.webp", image_bytes("WEBP"), "image/webp")},
            headers=day.merchant.headers,
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["order"]["status"] == "delivery_failed"
        assert resp.json()["order"]["reason"] == "consignee_not_home"
        assert resp.json()["order"]["attempts"] == 1
    [done] = _events(runtime, day.merchant.id, "route.completed")
    assert done.data["failed"] == len(day.route["stops"])
    with transaction(runtime.sessions) as s:
        route = s.get(Route, day.route["id"])
        assert route is not None and route.status == "done" and route.completed_at
    failed = _events(runtime, day.merchant.id, "delivery.failed")
    assert {e.reason for e in failed} == {"consignee_not_home"}
    assert failed[0].data["photo"] is True


def test_fail_refuses_a_reason_that_is_not_a_failed_attempt(
    app_client: TestClient, day: Published
) -> None:
    """A merchant decision such as merchant_cancelled is not a driver's failure reason."""
    _start(app_client, day)
    stop = _stop(day, pin=False)
    resp = app_client.post(
        f"/v1/stops/{stop['id']}/fail",
        data={"reason": "merchant_cancelled"},
        headers=day.merchant.headers,
    )
    assert resp.status_code == 422


def test_another_merchants_route_and_stop_are_not_found(
    app_client: TestClient, day: Published, make_merchant: Callable[..., MerchantCtx]
) -> None:
    """Another merchant's key gets 404 for this merchant's route, stops and drivers."""
    other = make_merchant("Other Shop")
    stop = _stop(day, pin=False)
    for path in (
        f"/v1/routes/{day.route['id']}/start",
        f"/v1/stops/{stop['id']}/arrive",
        f"/v1/stops/{stop['id']}/complete",
        f"/v1/drivers/{day.driver_id}/login-link",
    ):
        assert app_client.post(path, headers=other.headers).status_code == 404, path


def test_start_skips_a_stop_whose_order_was_cancelled(
    app_client: TestClient, runtime: Runtime, day: Published
) -> None:
    """A cancelled order on the route is skipped, not sent out, and never blocks completion."""
    stop = _stop(day, pin=False)
    cancel = app_client.post(
        f"/v1/orders/{stop['order_id']}/cancel", json={}, headers=day.merchant.headers
    )
    assert cancel.status_code == 200, cancel.text
    route = _start(app_client, day)
    skipped = [s for s in route["stops"] if s["id"] == stop["id"]]
    assert skipped[0]["status"] == "skipped"
    with transaction(runtime.sessions) as s:
        order = s.get(Order, stop["order_id"])
        assert order is not None and order.status == "cancelled"


def test_an_order_created_with_requires_pin_gets_a_six_digit_pin(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """POST /v1/orders with requires_pin answers the PIN to pass on; without it there is none."""
    body = {
        "reference": "PIN-API",
        "recipient": {"name": "Ada Lovelace", "phone": "+33612345678"},
        "address": {
            "line1": "1 Avenue de la Costa",
            "city": "Monaco",
            "country": "MC",
            "lat": 43.7405,
            "lon": 7.4263,
        },
        "window": {"start": "2026-11-25T14:00:00+01:00", "end": "2026-11-25T16:00:00+01:00"},
        "requires_pin": True,
    }
    with_pin = app_client.post("/v1/orders", json=body, headers=merchant.headers)
    assert with_pin.status_code == 201, with_pin.text
    assert with_pin.json()["requires_pin"] is True
    assert re.fullmatch(r"\d{6}", with_pin.json()["delivery_pin"])
    plain = app_client.post(
        "/v1/orders",
        json={**body, "reference": "NO-PIN", "requires_pin": False},
        headers=merchant.headers,
    )
    assert plain.status_code == 201
    assert plain.json()["requires_pin"] is False and plain.json()["delivery_pin"] is None
