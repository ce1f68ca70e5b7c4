"""The recipient's tracking page over HTTP: what it shows, what it never shows, and how a link
stops working (identical 404s, expiry on the setting, the per-client rate limit)."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient

from doorstep.clock import FrozenClock
from doorstep.domain.orders.models import Order
from doorstep.runtime import Runtime
from tests.conftest import NOW, MerchantCtx
from tests.tracking_scene import (
    build_scene,
    finish_stop,
    set_status,
    write_eta,
    write_position,
)


def visible_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_page_shows_branding_first_name_street_window_and_driver_but_no_contact_details(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """The page names the merchant with its logo and colour, greets by first name, shows the
    street, window, driver's first name and timeline, and never the phone, e-mail or surname."""
    scene = build_scene(app_client, runtime, merchant)
    set_status(app_client, scene, 0, "scheduled", "picked_up", "out_for_delivery")
    resp = app_client.get(scene.path(0))
    assert resp.status_code == 200
    page = resp.text
    text = visible_text(page)
    assert "Riviera Florist" in text
    assert 'src="https://shop.example/logo.png"' in page
    assert "--brand:#0b6e4f" in page
    assert "Hello Ada," in text
    assert "1 Avenue de la Costa, Monaco" in text
    assert "09:00" in text and "11:00" in text  # the window, in Monaco time
    assert "Your driver today is Marco" in text
    assert "Your parcel is out for delivery" in text
    assert "Out for delivery" in text and "Delivery scheduled" in text and "Order received" in text
    assert "You are the next stop" in text
    for secret in ("Lovelace", "+33612345678", "33612345678", "ada@example.com", "Rossi"):
        assert secret not in page
    # Nothing about the other recipients on the route either.
    for other in ("Grace", "Boulevard des Moulins", "Alan", "Rue Grimaldi"):
        assert other not in page
    csp = resp.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "https://shop.example" in csp
    assert "set-cookie" not in resp.headers


def test_live_eta_window_and_stops_before_come_from_the_latest_eta_event(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Before any live estimate the page shows the plan's arrival; after a
    ``delivery.eta_updated`` event it shows that event's window and stop count."""
    scene = build_scene(app_client, runtime, merchant)
    for i in range(3):
        set_status(app_client, scene, i, "scheduled", "picked_up", "out_for_delivery")
    text = visible_text(app_client.get(scene.path(2)).text)
    assert "Around 09:55" in text  # planned arrival 07:00 UTC + 75 + 40 min, in Monaco
    assert "2 stops before yours" in text
    write_eta(runtime, scene, 2, NOW + timedelta(minutes=100), NOW + timedelta(minutes=115), 1)
    text = visible_text(app_client.get(scene.path(2)).text)
    assert "Between 09:40 and 09:55" in text
    assert "1 stop before yours" in text


def test_driver_position_only_while_out_and_within_the_visible_stops(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """The driver's marker (rounded to 3 decimals) appears only once the delivery is out for
    delivery and no more than ``tracking_driver_visible_stops`` stops come before it."""
    scene = build_scene(app_client, runtime, merchant, config={"tracking_driver_visible_stops": 1})
    write_position(runtime, scene, 43.7312345, 7.4198765)
    page = app_client.get(scene.path(2)).text
    assert "data-driver-lat" not in page  # scheduled: no driver
    set_status(app_client, scene, 2, "scheduled", "picked_up", "out_for_delivery")
    page = app_client.get(scene.path(2)).text
    assert "data-driver-lat" not in page  # two stops before: too far
    finish_stop(runtime, scene, 0)
    page = app_client.get(scene.path(2)).text
    assert 'data-driver-lat="43.731" data-driver-lon="7.42"' in page
    assert "43.7312345" not in page


def test_unknown_malformed_and_expired_links_get_the_identical_404_page(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx, clock: FrozenClock
) -> None:
    """A wrong token, a malformed one, an unknown path under /t/ and an expired link answer
    the same 404 page byte for byte; the link expires tracking_link_ttl_hours after delivery."""
    scene = build_scene(app_client, runtime, merchant)
    set_status(app_client, scene, 0, "scheduled", "picked_up", "out_for_delivery", "delivered")
    token = scene.token(0)
    wrong = ("A" if token[0] != "A" else "B") + token[1:]
    answers = [app_client.get(p) for p in (f"/t/{wrong}", "/t/short", "/t/x/y/z")]
    ttl = timedelta(hours=runtime.settings.tracking_link_ttl_hours)
    clock.advance(ttl)
    assert app_client.get(f"/t/{token}").status_code == 200  # still open at the limit
    clock.advance(timedelta(seconds=1))
    answers.append(app_client.get(f"/t/{token}"))
    answers.append(app_client.get(f"/t/{token}/calendar.ics"))
    assert {a.status_code for a in answers} == {404}
    assert len({a.content for a in answers}) == 1
    assert "Tracking link not found" in answers[0].text


def test_pin_is_shown_when_the_order_requires_one(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """An order that requires a PIN shows it to its recipient until delivery."""
    scene = build_scene(app_client, runtime, merchant)
    assert "Your delivery PIN" not in app_client.get(scene.path(0)).text
    with runtime.sessions() as s, s.begin():
        order = s.get(Order, scene.orders[0]["id"])
        assert order is not None
        order.requires_pin, order.delivery_pin = True, "4821"
    page = app_client.get(scene.path(0)).text
    assert "Your delivery PIN" in page and ">4821<" in page
    set_status(app_client, scene, 0, "scheduled", "picked_up", "out_for_delivery", "delivered")
    assert "4821" not in app_client.get(scene.path(0)).text
