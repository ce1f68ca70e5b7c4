"""The driver page's GPS app card in a real browser on a phone-sized screen: the QR code is
drawn and named, "Issue a new device id" asks first and then shows the new id, and axe-core
finds no serious or critical accessibility violation. Screenshot: /tmp/device-phone.png."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Merchant, Role
from doorstep.domain.accounts.users import create_user
from doorstep.domain.dispatch.models import Driver
from doorstep.runtime import Runtime
from tests.api.ingest_support import published_route
from tests.conftest import MerchantCtx
from tests.e2e.conftest import is_real_failure

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Dialog

PASSWORD = "Riviera-Blooms-2026!"
PHONE = "/tmp/device-phone.png"


@pytest.mark.browser
def test_driver_page_pairs_a_gps_app_on_a_phone(
    browser: Browser, live_server: str, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """The dispatcher sees the QR code and the settings, issues a new id after confirming,
    and the page shows it; no console errors, no failed requests, no serious axe findings."""
    from axe_playwright_python.sync_playwright import Axe

    fleet = published_route(runtime, merchant.id)
    with transaction(runtime.sessions) as s:
        owner = s.get(Merchant, merchant.id)
        assert owner is not None
        create_user(s, runtime.clock, owner, "disp@example.com", "Dora", Role.DISPATCHER, PASSWORD)
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on(
        "requestfailed",
        lambda r: errors.append(f"failed: {r.url}") if is_real_failure(r) else None,
    )
    questions: list[str] = []

    def accept(dialog: Dialog) -> None:
        questions.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    try:
        url = f"{live_server}/console/drivers/drivers/{fleet.driver_id}"
        page.goto(url)
        page.get_by_label("E-mail").fill("disp@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(url)
        card = page.locator("#gps-app")
        qr = card.get_by_role("img", name="Settings for Marco Rossi's GPS app")
        assert qr.is_visible()
        box = qr.bounding_box()
        assert box is not None and 120 <= box["width"] <= 390
        assert fleet.device_id in card.inner_text()

        page.get_by_role("button", name="Issue a new device id").click()
        page.locator("#flash").wait_for()
        assert "has a new device id" in page.locator("#flash").inner_text()
        assert questions and "stops working at once" in questions[0]
        with transaction(runtime.read_sessions) as s:
            driver = s.get(Driver, fleet.driver_id)
            assert driver is not None and driver.device_id
            new_id = driver.device_id
        assert new_id != fleet.device_id
        assert new_id in page.locator("#gps-app").inner_text()
        page.screenshot(path=PHONE, full_page=True)

        results = Axe().run(page)
        bad = [
            v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")
        ]
        assert not bad, results.generate_report()
        assert errors == []
    finally:
        context.close()
