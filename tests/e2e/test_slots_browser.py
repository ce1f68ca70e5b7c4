"""The delivery-options console page in a real browser: a dispatcher adds a zone and a
calendar with a Saturday window by typing into the forms, then reads Saturday's windows and
their fill; the page passes axe's accessibility rules. Screenshot: /tmp/slots-desktop.png."""

# The page writes ranges with an en dash, so the expected texts do too.
# ruff: noqa: RUF001, RUF002

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from axe_playwright_python.sync_playwright import Axe

from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Merchant, Role
from doorstep.domain.accounts.users import create_user
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.e2e.conftest import is_real_failure
from tests.factories import make_depot
from tests.slots_setup import MONACO_RING

if TYPE_CHECKING:
    from playwright.sync_api import Browser

PASSWORD = "Riviera-Blooms-2026!"
SCREENSHOT = "/tmp/slots-desktop.png"


@pytest.mark.browser
def test_a_dispatcher_adds_a_zone_and_a_saturday_calendar_and_reads_the_fill(
    browser: Browser, live_server: str, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Typed forms create a zone and a calendar; Saturday shows 09:00–12:00 at 0 of 25 places,
    open; no console errors, failed requests or axe violations."""
    with transaction(runtime.sessions) as s:
        owner = s.get(Merchant, merchant.id)
        assert owner is not None
        create_user(s, runtime.clock, owner, "disp@example.com", "Dora", Role.DISPATCHER, PASSWORD)
        make_depot(s, merchant.id, name="Fontvieille")
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on(
        "requestfailed",
        lambda r: errors.append(f"failed: {r.url}") if is_real_failure(r) else None,
    )
    page.goto(f"{live_server}/console/slots")
    page.get_by_label("E-mail").fill("disp@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Delivery options").wait_for()

    zone = page.locator("form[action='/console/slots/zones/new']")
    zone.get_by_label("Name").fill("Monaco")
    zone.get_by_label("Depot").select_option(label="Fontvieille")
    geometry = json.dumps({"type": "Polygon", "coordinates": [MONACO_RING]})
    zone.get_by_label("Area (GeoJSON)").fill(geometry)
    zone.get_by_role("button", name="Add zone").click()
    page.locator("#flash").wait_for()
    assert "Added Monaco." in page.locator("#flash").inner_text()

    cal = page.locator("form[action='/console/slots/calendars/new']")
    cal.get_by_label("Name").fill("Weekends")
    cal.get_by_label("Depot").select_option(label="Fontvieille")
    cal.get_by_label("Zone").select_option(label="Monaco")
    cal.get_by_label("Windows, one per line").fill("sat 09:00-12:00 25 7.90")
    cal.get_by_role("button", name="Add calendar").click()
    page.locator("#flash").wait_for()
    assert "Added Weekends." in page.locator("#flash").inner_text()

    page.goto(f"{live_server}/console/slots?date=2026-11-28")
    row = page.locator("table.slots-fill tbody tr").first
    assert row.locator("th").inner_text() == "09:00–12:00"
    assert "0 / 25 (0 %)" in row.inner_text()
    assert "Open" in row.inner_text()
    page.screenshot(path=SCREENSHOT, full_page=True)
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
    assert errors == []
