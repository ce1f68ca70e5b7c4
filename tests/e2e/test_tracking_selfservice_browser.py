"""Recipient self-service in a real Chromium: a recipient opens the tracking link, reschedules
to a Saturday window with the page's own form, sees the new window, and the order's timeline
has ``order.rescheduled``; axe-core finds no serious or critical violation on the page with the
forms (all of them open) at phone and desktop sizes."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.slots_setup import EVERY_DAY, IN_MONACO, monaco_setup

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
WINDOWS = [
    {"days": EVERY_DAY, "start": "10:00", "end": "12:00", "capacity": 3},
    {"days": ["sat"], "start": "09:00", "end": "13:00", "capacity": 3, "fee_cents": 700},
]


def _order(live_server: str, merchant: MerchantCtx) -> dict[str, Any]:
    with httpx.Client(base_url=live_server, timeout=30) as client:
        monaco_setup(client, merchant, windows=WINDOWS)  # type: ignore[arg-type]
        point = client.post(
            "/v1/pickup-points",
            headers=merchant.headers,
            json={
                "name": "Tabac du Port",
                "kind": "shop",
                "address": {
                    "line1": "4 Quai Albert Ier",
                    "city": "Monaco",
                    "country": "MC",
                    "lat": 43.7350,
                    "lon": 7.4215,
                },
            },
        )
        assert point.status_code == 201, point.text
        r = client.post(
            "/v1/orders",
            headers=merchant.headers,
            json={
                "reference": "SO-1",
                "recipient": {"name": "Ada Lovelace", "phone": "+33612345678"},
                "address": {
                    "line1": "1 Avenue de la Costa",
                    "city": "Monaco",
                    "country": "MC",
                    **IN_MONACO,
                },
                "window": {
                    "start": "2026-11-26T10:00:00+01:00",
                    "end": "2026-11-26T12:00:00+01:00",
                },
            },
        )
        assert r.status_code == 201, r.text
        return dict(r.json())


def _open(browser: Browser, viewport: dict[str, int], url: str) -> Page:
    context = browser.new_context(viewport=viewport, is_mobile=viewport is PHONE)
    page = context.new_page()

    def no_tiles(route: Route) -> None:  # no network here: tiles are the only outside fetch
        route.abort()

    page.route("https://tile.openstreetmap.org/**", no_tiles)
    page.goto(url)
    return page


@pytest.mark.browser
def test_a_recipient_reschedules_to_a_saturday_window_in_the_browser(
    browser: Browser, live_server: str, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Opening "Deliver at another time", picking Saturday 09:00-13:00 and pressing
    Reschedule shows the confirmation and Saturday as the delivery window; the same link open
    in another tab shows the new window and timeline entry live, without a reload; the order's
    timeline (GET /v1/orders/{id}/events) has order.rescheduled by the recipient; once the
    driver sets off, the open tab's forms close live and say why."""
    from playwright.sync_api import expect

    order = _order(live_server, merchant)
    token = str(order["tracking_url"]).rsplit("/", 1)[1]
    watcher = _open(browser, DESKTOP, f"{live_server}/t/{token}")
    watcher.wait_for_selector("[data-track][data-live=on]")
    watcher.evaluate("window.__notReloaded = true")
    page = _open(browser, PHONE, f"{live_server}/t/{token}")
    try:
        page.get_by_text("Deliver at another time").click()
        saturday = page.get_by_role("group", name="Saturday, 28 November 2026")
        saturday.get_by_label("09:00\u201313:00").check()
        page.get_by_role("button", name="Reschedule").click()
        expect(page.get_by_role("status")).to_have_text("Your delivery has been rescheduled.")
        expect(page.locator('[data-live="window_day"]')).to_have_text("Saturday, 28 November 2026")
        expect(page.locator('[data-live="window_text"]')).to_have_text("09:00\u201313:00")
        # The other tab follows over SSE.
        expect(watcher.locator('[data-live="window_day"]')).to_have_text(
            "Saturday, 28 November 2026"
        )
        expect(watcher.locator('[data-live-list="timeline"]')).to_contain_text(
            "Delivery rescheduled"
        )
        assert watcher.evaluate("window.__notReloaded") is True
        # Once the driver sets off, the open tab's forms close live and say why.
        with httpx.Client(base_url=live_server, timeout=30) as client:
            for status in ("picked_up", "out_for_delivery"):
                r = client.post(
                    f"/v1/orders/{order['id']}/status",
                    headers=merchant.headers,
                    json={"status": status},
                )
                assert r.status_code == 200, r.text
        expect(watcher.locator("[data-change-closed]")).to_contain_text(
            "The driver is already on the way with your parcel."
        )
        expect(watcher.locator("[data-change-forms]")).to_be_hidden()
        assert watcher.evaluate("window.__notReloaded") is True
    finally:
        page.context.close()
        watcher.context.close()
    with httpx.Client(base_url=live_server, timeout=30) as client:
        timeline = client.get(f"/v1/orders/{order['id']}/events", headers=merchant.headers)
    assert timeline.status_code == 200
    rescheduled = [e for e in timeline.json()["data"] if e["type"] == "order.rescheduled"]
    assert len(rescheduled) == 1
    moved_to = datetime.fromisoformat(rescheduled[0]["data"]["window_start"])
    assert moved_to == datetime.fromisoformat("2026-11-28T09:00:00+01:00")
    assert rescheduled[0]["actor"]["type"] == "recipient"


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_page_with_its_forms_has_no_serious_accessibility_violations(
    browser: Browser,
    live_server: str,
    runtime: Runtime,
    merchant: MerchantCtx,
    viewport: dict[str, int],
) -> None:
    """axe-core on the tracking page with every "Change delivery" form open, before and after
    a refused form (errors shown beside the fields), reports nothing serious or critical."""
    from axe_playwright_python.sync_playwright import Axe

    order = _order(live_server, merchant)
    token = str(order["tracking_url"]).rsplit("/", 1)[1]
    page = _open(browser, viewport, f"{live_server}/t/{token}")
    try:
        for summary in page.locator("details.track-change__item > summary").all():
            summary.click()
        serious = ("serious", "critical")
        results = Axe().run(page)
        bad = [v for v in results.response["violations"] if v["impact"] in serious]
        assert bad == [], results.generate_report()
        # A safe place without consent (the browser's own check bypassed): errors shown.
        page.locator("form").filter(has=page.locator("#place")).evaluate(
            "form => { form.noValidate = true; }"
        )
        page.fill("#place", "behind the gate")
        page.get_by_role("button", name="Leave it in this place").click()
        page.wait_for_selector(".track-error[role=alert]")
        results = Axe().run(page)
        bad = [v for v in results.response["violations"] if v["impact"] in serious]
        assert bad == [], results.generate_report()
        page.screenshot(path=f"/tmp/tracking-change-{viewport['width']}.png", full_page=True)
    finally:
        page.context.close()
