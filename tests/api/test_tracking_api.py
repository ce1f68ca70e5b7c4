"""The integrator's tracking JSON and the recipient's calendar file: the same data the page
shows, scoped to the merchant; a stable iCalendar UID whose SEQUENCE follows the window."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from icalendar import Calendar

from doorstep.db.engine import transaction
from doorstep.domain.errors import Actor
from doorstep.domain.orders.events import change_status
from doorstep.domain.orders.models import Order
from doorstep.domain.orders.status import Status
from doorstep.runtime import Runtime
from tests.conftest import NOW, MerchantCtx
from tests.tracking_scene import build_scene, finish_stop, set_status, write_eta, write_position


def test_tracking_json_matches_the_page_and_hides_contact_details(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """GET /v1/orders/{id}/tracking gives status, window, live ETA, stops before, the driver's
    first name and rounded position, and no phone, e-mail or surname."""
    scene = build_scene(app_client, runtime, merchant)
    set_status(app_client, scene, 1, "scheduled", "picked_up", "out_for_delivery")
    finish_stop(runtime, scene, 0)
    write_position(runtime, scene, 43.7401234, 7.4276543)
    write_eta(runtime, scene, 1, NOW + timedelta(minutes=20), NOW + timedelta(minutes=35), 0)
    order_id = scene.orders[1]["id"]
    resp = app_client.get(f"/v1/orders/{order_id}/tracking", headers=merchant.headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "out_for_delivery" and body["tag"] == "OutForDelivery"
    assert body["tracking_url"] == scene.orders[1]["tracking_url"]
    assert body["merchant"] == {
        "name": "Riviera Florist",
        "logo_url": "https://shop.example/logo.png",
        "color": "#0b6e4f",
    }
    assert body["recipient"] == {
        "first_name": "Grace",
        "street": "2 Boulevard des Moulins",
        "city": "Monaco",
    }
    assert body["window"]["start"] == "2026-11-25T09:00:00+01:00"
    assert body["eta"]["earliest"] == "2026-11-25T08:20:00+01:00"
    assert body["eta"]["latest"] == "2026-11-25T08:35:00+01:00"
    assert body["eta"]["source"] == "live"
    assert body["stops_before"] == 0
    assert body["driver"]["first_name"] == "Marco"
    assert body["driver"]["visible"] is True
    assert body["driver"]["position"]["lat"] == 43.74
    assert body["driver"]["position"]["lon"] == 7.428
    types = [t["type"] for t in body["timeline"]]
    assert types == [
        "order.created",
        "delivery.scheduled",
        "delivery.picked_up",
        "delivery.out_for_delivery",
    ]
    text = resp.text
    for secret in ("Hopper", "+37799999999", "grace@example.com", "Rossi"):
        assert secret not in text
    # The page says the same.
    page = app_client.get(scene.path(1)).text
    assert "Between 08:20 and 08:35" in page and "You are the next stop" in page


def test_tracking_json_of_another_merchants_order_is_404(
    app_client: TestClient,
    runtime: Runtime,
    merchant: MerchantCtx,
    make_merchant: Callable[..., MerchantCtx],
) -> None:
    """Another merchant's order answers 404, as every other order endpoint does."""
    scene = build_scene(app_client, runtime, merchant)
    other = make_merchant("Other Shop")
    resp = app_client.get(f"/v1/orders/{scene.orders[0]['id']}/tracking", headers=other.headers)
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/problem+json")


def test_calendar_has_a_stable_uid_and_a_sequence_that_follows_window_moves(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """The .ics event keeps its UID when the window moves and its SEQUENCE becomes the order's
    window_sequence, with the new times."""
    scene = build_scene(app_client, runtime, merchant)
    first = Calendar.from_ical(app_client.get(f"{scene.path(0)}/calendar.ics").content)
    event = first.walk("VEVENT")[0]
    # the UID the e-mails' .ics carry (tests/integration/messages/test_email.py): one event
    assert str(event["UID"]) == f"delivery-{scene.orders[0]['id']}@127.0.0.1"
    assert event["SEQUENCE"] == 0
    assert event.decoded("DTSTART").isoformat() == "2026-11-25T08:00:00+00:00"
    assert event["URL"] == scene.orders[0]["tracking_url"]
    assert "Riviera Florist" in str(event["SUMMARY"])
    moved = app_client.patch(
        f"/v1/orders/{scene.orders[0]['id']}",
        json={"window": {"start": "2026-11-25T14:00:00+01:00", "end": "2026-11-25T16:00:00+01:00"}},
        headers=merchant.headers,
    )
    assert moved.status_code == 200, moved.text
    second = Calendar.from_ical(app_client.get(f"{scene.path(0)}/calendar.ics").content)
    again = second.walk("VEVENT")[0]
    assert str(again["UID"]) == str(event["UID"])
    assert again["SEQUENCE"] == moved.json()["window_sequence"] == 1
    assert again.decoded("DTSTART").isoformat() == "2026-11-25T13:00:00+00:00"
    other = Calendar.from_ical(app_client.get(f"{scene.path(1)}/calendar.ics").content)
    assert str(other.walk("VEVENT")[0]["UID"]) != str(event["UID"])


def test_proof_of_delivery_photo_is_served_only_through_the_link(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """After delivery the page names who received it (first name) and links the photo, which
    /t/{token}/proof.jpg serves from the configured loader; a wrong token gets the 404 page."""
    scene = build_scene(app_client, runtime, merchant)
    set_status(app_client, scene, 0, "scheduled", "picked_up", "out_for_delivery")
    with transaction(runtime.sessions) as s:
        order = s.get(Order, scene.orders[0]["id"])
        assert order is not None
        proof = {"photo": True, "signature": True, "received_by": "Ada Lovelace"}
        change_status(
            s, runtime.clock, order, Status.DELIVERED, actor=Actor.system(), data={"proof": proof}
        )
    asked: list[tuple[str, str]] = []

    def loader(
        _session: object, _settings: object, merchant_id: str, order_id: str
    ) -> tuple[bytes, str]:
        asked.append((merchant_id, order_id))
        return b"\xff\xd8\xff\xe0 jpeg bytes", "image/jpeg"

    app_client.app.state.proof_photo_loader = loader  # type: ignore[attr-defined]
    page = app_client.get(scene.path(0)).text
    assert "Received by Ada" in page and "Lovelace" not in page
    assert f'src="{scene.path(0)}/proof.jpg"' in page
    photo = app_client.get(f"{scene.path(0)}/proof.jpg")
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert photo.content.startswith(b"\xff\xd8")
    assert asked == [(merchant.id, scene.orders[0]["id"])]
    token = scene.token(0)
    wrong = ("A" if token[0] != "A" else "B") + token[1:]
    miss = app_client.get(f"/t/{wrong}/proof.jpg")
    assert miss.status_code == 404 and miss.content == app_client.get("/t/nope").content
    not_delivered = app_client.get(f"{scene.path(1)}/proof.jpg")
    assert not_delivered.status_code == 404
