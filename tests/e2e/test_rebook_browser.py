"""A recipient who was out rebooks for this evening in a real Chromium: after van A's failed
attempt the tracking page opens "Choose a new delivery time" with today's 16:00-18:00; choosing
it confirms, shows the new window and an expected arrival inside it (the order joined van B's
published route), and axe-core finds no serious or critical violation on the page after the
failed attempt and after the rebooking, at phone and desktop sizes. The day is
``tests/api/test_rebook_same_day.py``'s."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from doorstep.runtime import Runtime
from tests.api.test_rebook_same_day import Day, fail_x
from tests.api.test_rebook_same_day import day as day
from tests.conftest import MerchantCtx
from tests.e2e.test_tracking_selfservice_browser import DESKTOP, PHONE, _open

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


def _axe_serious(page: Page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']}: {v['help']}"
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_a_recipient_rebooks_this_evening_after_a_failed_attempt_in_the_browser(
    browser: Browser,
    live_server: str,
    app_client: TestClient,
    runtime: Runtime,
    merchant: MerchantCtx,
    day: Day,
    viewport: dict[str, int],
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    fail_x(app_client, runtime, merchant, day)
    token = str(day.orders["X"]["tracking_url"]).rsplit("/", 1)[1]
    page = _open(browser, viewport, f"{live_server}/t/{token}")
    try:
        expect(page.get_by_role("heading", name="Choose a new delivery time")).to_be_visible()
        assert _axe_serious(page) == []
        today = page.get_by_role("group", name="Wednesday, 25 November 2026")
        today.get_by_label("16:00\u201318:00").check()
        page.get_by_role("button", name="Reschedule").click()
        expect(page.get_by_role("status")).to_have_text("Your delivery has been rescheduled.")
        expect(page.locator('[data-live="window_day"]')).to_have_text("Wednesday, 25 November 2026")
        expect(page.locator('[data-live="window_text"]')).to_have_text("16:00\u201318:00")
        eta = page.locator('[data-live="eta_text"]')
        expect(eta).to_be_visible()
        shown = re.findall(r"\d\d:\d\d", eta.inner_text())
        assert shown and all("16:00" <= t <= "18:00" for t in shown), eta.inner_text()
        page.screenshot(path=tmp_path / "rebooked.png")  # kept with the test's files
        assert _axe_serious(page) == []
    finally:
        page.context.close()
