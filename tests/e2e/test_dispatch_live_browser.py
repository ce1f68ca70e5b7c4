"""The dispatcher's map in a real browser, live: after a GPS fix the route's vehicle appears
and then moves, and after a delay the stop's status and the "Needs attention" list change,
all without reloading the page."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import httpx
import pytest

from doorstep.domain.accounts.models import Role
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.console_session import PASSWORD, make_user
from tests.tracking_scene import build_scene, set_status, write_position

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Route


@pytest.mark.browser
def test_vehicle_moves_and_late_stop_is_listed_without_reload(
    browser: Browser, live_server: str, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Vehicle marker appears at the fix and moves to the next; a delayed stop shows its new
    status on its row and heads the attention list."""
    from playwright.sync_api import expect

    with httpx.Client(base_url=live_server, timeout=30) as client:
        scene = build_scene(client, runtime, merchant)
        for i in range(3):
            set_status(client, scene, i, "scheduled")
    make_user(runtime, merchant.id, "disp@example.com", Role.DISPATCHER)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()

    def no_tiles(route: Route) -> None:
        route.abort()

    page.route("https://tile.openstreetmap.org/**", no_tiles)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{live_server}/console/login")
        page.get_by_label("E-mail").fill("disp@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server}/console")
        page.goto(f"{live_server}/console/dispatch")
        page.wait_for_selector("#dispatch-map.is-ready[data-live=on]")
        page.evaluate("window.__notReloaded = true")
        assert page.locator(".leaflet-marker-pane .vehicle-marker").count() == 0

        write_position(runtime, scene, 43.7301, 7.4201)
        attr = f"data-vehicle-{scene.route_id}"
        page.wait_for_selector(f"#dispatch-map[{attr}='43.73010,7.42010']")
        assert page.locator(".leaflet-marker-pane .vehicle-marker").count() == 1
        write_position(runtime, scene, 43.7355, 7.4251)
        page.wait_for_selector(f"#dispatch-map[{attr}='43.73550,7.42510']")
        assert page.locator(".leaflet-marker-pane .vehicle-marker").count() == 1

        with httpx.Client(base_url=live_server, timeout=30) as client:
            set_status(client, scene, 2, "delivery_delayed", reason="weather_delay")
        row = page.locator(f'.stop[data-order-id="{scene.orders[2]["id"]}"]')
        expect(row.locator("[data-stop-status]")).to_have_text("delivery delayed")
        first = page.locator("[data-attention-list] li").first
        expect(first).to_contain_text("SO-1003")
        expect(first).to_contain_text("Late")
        expect(page.locator("[data-attention-count]")).to_have_text("1")
        # The map marks the stop too: the delayed shape and symbol, and the late "!".
        marker = page.locator('.leaflet-marker-pane .stop-marker[title*="SO-1003"]')
        expect(marker).to_have_class(re.compile(r"stop-marker--delayed.*is-problem"))
        expect(marker.locator(".stop-marker__badge")).to_have_text("\u25f7")
        expect(row.locator("[data-stop-status]")).to_have_class(re.compile("status-tag--delayed"))
        assert page.evaluate("window.__notReloaded") is True
        page.screenshot(path="/tmp/dispatch-live.png")
        assert errors == []
    finally:
        context.close()
