"""The driver app in a real browser on a phone-sized screen (390x844): sign in with the link,
start the route, deliver a stop with a photo and a drawn signature; deliver a stop while the
phone is offline and see it completed exactly once when the network returns; and axe-core
finds no serious or critical accessibility violation.

Screenshots for a person to look at: /tmp/driver-route.png and /tmp/driver-phone.png."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import select

from doorstep.db.engine import transaction
from doorstep.domain.dispatch import signin
from doorstep.domain.dispatch.models import Stop
from doorstep.domain.feedback.models import Attachment
from doorstep.domain.orders.models import DeliveryEvent, Order
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.driving import image_bytes
from tests.e2e.conftest import is_real_failure
from tests.factories import local, make_order, monaco_day

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

PHONE = {"width": 390, "height": 844}
DELIVER = re.compile(r"^Deliver")
SCREENSHOT = "/tmp/driver-phone.png"
ROUTE_SCREENSHOT = "/tmp/driver-route.png"
DAY_ISO = "2026-11-25"


def _published_route(live_server: str, runtime: Runtime, merchant: MerchantCtx) -> dict[str, Any]:
    """Plan and publish a small day through the HTTP API; its longest route."""
    day = date.fromisoformat(DAY_ISO)
    with transaction(runtime.sessions) as s:
        built = monaco_day(s, merchant.id, day, orders=3)
        make_order(
            s,
            merchant.id,
            reference="PIN-1",
            lat=43.7395,
            lon=7.4255,
            window=(local(day, 9), local(day, 17)),
            requires_pin=True,
            delivery_pin="135790",
        )
    with httpx.Client(base_url=live_server, headers=merchant.headers, timeout=60) as http:
        plan = http.post(
            "/v1/plans", json={"depot_id": built.depot_id, "date": DAY_ISO, "time_limit_s": 0.2}
        )
        assert plan.status_code == 201, plan.text
        published = http.post(f"/v1/plans/{plan.json()['id']}/publish")
        assert published.status_code == 200, published.text
    route: dict[str, Any] = max(published.json()["routes"], key=lambda r: len(r["stops"]))
    return route


def _sign_in_link(runtime: Runtime, merchant: MerchantCtx, driver_id: str, base: str) -> str:
    with transaction(runtime.sessions) as s:
        issued = signin.issue_login(
            s,
            runtime.clock,
            merchant.id,
            driver_id,
            secret_key=runtime.settings.effective_secret_key,
            base_url=base,
            ttl=timedelta(minutes=10),
        )
    return issued.url


@pytest.fixture
def phone(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=PHONE, has_touch=True, is_mobile=True)
    try:
        yield context
    finally:
        context.close()


def _watch(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on(
        "requestfailed",
        lambda r: (
            errors.append(f"failed: {r.url}")
            if is_real_failure(r) and "/ingest/" not in r.url
            else None
        ),
    )
    return errors


def _open_app(page: Page, link: str) -> None:
    page.goto(link)
    page.get_by_role("button", name="Sign in as").click()
    page.get_by_role("button", name="Start route").wait_for()


def _start(page: Page) -> None:
    page.get_by_role("button", name="Start route").click()
    page.locator("[data-route-state]").get_by_text("Under way").wait_for()


def _sign(page: Page) -> None:
    box = page.locator("#pod-signature").bounding_box()
    assert box is not None
    x, y = box["x"] + 20, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 12):
        page.mouse.move(x + step * 25, y + (18 if step % 2 else -18))
    page.mouse.up()


def _delivered_events(runtime: Runtime, order_id: str) -> list[DeliveryEvent]:
    with transaction(runtime.sessions) as s:
        return list(
            s.scalars(
                select(DeliveryEvent).where(
                    DeliveryEvent.order_id == order_id, DeliveryEvent.type == "delivery.delivered"
                )
            )
        )


@pytest.mark.browser
def test_driver_signs_in_starts_and_delivers_with_photo_and_signature(
    phone: BrowserContext, live_server: str, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Link → route → start → deliver with photo, signature and name: the order is delivered
    with both images kept."""
    route = _published_route(live_server, runtime, merchant)
    page = phone.new_page()
    errors = _watch(page)
    _open_app(page, _sign_in_link(runtime, merchant, route["driver"]["id"], live_server))
    _start(page)
    assert not page.get_by_role("button", name="Start route").is_visible()
    page.screenshot(path=ROUTE_SCREENSHOT, full_page=True)
    stop = next(s for s in route["stops"] if s["reference"] != "PIN-1")
    card = page.locator(f"#stop-{stop['id']}")
    card.get_by_role("button", name="I'm here").click()
    card.locator("[data-stop-state]").get_by_text("Arrived", exact=True).wait_for()
    card.get_by_role("button", name=DELIVER).click()
    page.set_input_files(
        "#pod-photo",
        files=[{"name": "door.jpg", "mimeType": "image/jpeg", "buffer": image_bytes(gps=True)}],
    )
    _sign(page)
    page.get_by_label("Received by").fill("Ada")
    assert not page.get_by_label("Delivery PIN").is_visible()
    page.screenshot(path=SCREENSHOT)
    page.get_by_role("button", name="Confirm delivery").click()
    card.locator("[data-stop-state]").get_by_text("Delivered", exact=True).wait_for()
    [event] = _delivered_events(runtime, stop["order_id"])
    assert event.data["proof"]["photo"] and event.data["proof"]["signature"]
    assert event.data["proof"]["received_by"] == "Ada"
    with transaction(runtime.sessions) as s:
        kinds = sorted(
            s.scalars(select(Attachment.kind).where(Attachment.order_id == stop["order_id"]))
        )
    assert kinds == ["pod", "signature"]
    assert errors == []


@pytest.mark.browser
def test_a_delivery_made_offline_is_sent_once_when_back_online(
    phone: BrowserContext, live_server: str, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Offline, the app still opens (service worker) and the delivery waits on the phone;
    online again, the stop is completed exactly once."""
    route = _published_route(live_server, runtime, merchant)
    page = phone.new_page()
    _open_app(page, _sign_in_link(runtime, merchant, route["driver"]["id"], live_server))
    _start(page)
    # The service worker controls the page and keeps a copy of it.
    page.wait_for_function(
        "() => navigator.serviceWorker.controller !== null"
        " && caches.match('/driver').then((r) => r !== undefined)"
    )
    phone.set_offline(True)
    page.reload()
    page.locator("[data-route-state]").get_by_text("Under way").wait_for()
    stop = next(s for s in route["stops"] if s["reference"] != "PIN-1")
    card = page.locator(f"#stop-{stop['id']}")
    card.get_by_role("button", name=DELIVER).click()
    _sign(page)
    page.get_by_role("button", name="Confirm delivery").click()
    card.locator("[data-stop-state]").get_by_text("Delivered · waiting to send").wait_for()
    page.locator("#net-status").get_by_text("Offline").wait_for()
    with transaction(runtime.sessions) as s:
        kept = s.get(Stop, stop["id"])
        assert kept is not None and kept.status != "done"
    phone.set_offline(False)
    card.locator("[data-stop-state]").get_by_text("Delivered", exact=True).wait_for(timeout=20_000)
    # The phone says its saved actions went (the start may have been waiting too).
    page.locator("#net-status").get_by_text(re.compile(r"^[12] saved actions? sent\.$")).wait_for()
    assert len(_delivered_events(runtime, stop["order_id"])) == 1
    with transaction(runtime.sessions) as s:
        order = s.get(Order, stop["order_id"])
        assert order is not None and order.status == "delivered"
    # The queue is empty: nothing is sent again after a reload.
    page.reload()
    page.locator(f"#stop-{stop['id']} [data-stop-state]").get_by_text("Delivered").wait_for()
    assert len(_delivered_events(runtime, stop["order_id"])) == 1


@pytest.mark.browser
def test_driver_app_has_no_serious_accessibility_violations(
    browser: Browser, live_server: str, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """axe-core on the sign-in page and on the route (with the delivery dialog open)."""
    from axe_playwright_python.sync_playwright import Axe

    route = _published_route(live_server, runtime, merchant)
    context = browser.new_context(viewport=PHONE, bypass_csp=True)
    page = context.new_page()
    axe = Axe()

    def serious() -> list[str]:
        found = axe.run(page).response["violations"]
        return [
            f"{v['id']} ({v['impact']})" for v in found if v["impact"] in ("serious", "critical")
        ]

    try:
        page.goto(f"{live_server}/driver")
        assert serious() == []
        _open_app(page, _sign_in_link(runtime, merchant, route["driver"]["id"], live_server))
        assert serious() == []
        _start(page)
        page.locator(".drv-stop").first.get_by_role("button", name=DELIVER).click()
        assert serious() == []
    finally:
        context.close()
