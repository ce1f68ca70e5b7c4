"""The Analytics console page in a real browser at desktop size: a dispatcher picks a day and
reads its KPIs and charts; no console error, no failed request, no request to another host,
and no axe-core violation. Screenshot: /tmp/analytics-desktop.png."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe

from doorstep.domain.accounts.models import Role
from doorstep.runtime import Runtime
from tests.analytics_scene import build_day
from tests.conftest import MerchantCtx
from tests.console_session import PASSWORD, make_user
from tests.e2e.conftest import is_real_failure

if TYPE_CHECKING:
    from playwright.sync_api import Browser

SCREENSHOT = "/tmp/analytics-desktop.png"


@pytest.mark.browser
def test_a_dispatcher_reads_a_days_kpis_and_charts(
    browser: Browser, live_server: str, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Picking 25 November shows 33.3 % on time, the drivers and zones and their charts; the
    page loads only from its own server and passes axe's accessibility rules."""
    build_day(runtime, merchant.id)
    make_user(runtime, merchant.id, "dora@example.com", Role.DISPATCHER)
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    errors: list[str] = []
    hosts: set[str] = set()
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on(
        "requestfailed",
        lambda r: errors.append(f"failed: {r.url}") if is_real_failure(r) else None,
    )
    page.on("request", lambda r: hosts.add(urlsplit(r.url).netloc))
    page.goto(f"{live_server}/console/analytics")
    page.get_by_label("E-mail").fill("dora@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Analytics", exact=True).wait_for()
    page.get_by_label("From").fill("2026-11-25")
    page.get_by_label("To").fill("2026-11-25")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/console/analytics?from=2026-11-25&to=2026-11-25")
    tile = page.locator(".kpi-tile", has_text="On time")
    assert "33.3 %" in tile.inner_text()
    drivers = page.get_by_role("table", name="KPIs by driver")
    assert drivers.locator("tbody tr").count() == 2
    assert page.get_by_role("img", name="On-time rate by zone").is_visible()
    page.screenshot(path=SCREENSHOT, full_page=True)
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
    assert errors == []
    assert hosts == {urlsplit(live_server).netloc}
