"""The recipient's tracking page in a real browser, on a phone and on a desktop: it updates
itself over SSE (the ETA text changes and the driver's marker appears and moves after an event
and a position are written) without reloading; and axe-core finds no serious or critical
accessibility violation on it."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import TYPE_CHECKING

import httpx
import pytest

from doorstep.runtime import Runtime
from tests.conftest import NOW, MerchantCtx
from tests.e2e.conftest import is_real_failure
from tests.tracking_scene import (
    Scene,
    build_scene,
    finish_stop,
    set_status,
    write_eta,
    write_position,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (120, 40), (11, 110, 79)).save(out, "PNG")
    return out.getvalue()


LOGO_PNG = _png()
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def _scene(live_server: str, runtime: Runtime, merchant: MerchantCtx) -> Scene:
    with httpx.Client(base_url=live_server, timeout=30) as client:
        scene = build_scene(client, runtime, merchant)
        set_status(client, scene, 1, "scheduled", "picked_up", "out_for_delivery")
    finish_stop(runtime, scene, 0)
    return scene


def _open(browser: Browser, viewport: dict[str, int], url: str) -> tuple[Page, list[str]]:
    context = browser.new_context(viewport=viewport, is_mobile=viewport is PHONE)
    page = context.new_page()
    errors: list[str] = []

    def no_tiles(route: Route) -> None:  # no network here: tiles are the only outside fetch
        route.abort()

    def logo(route: Route) -> None:  # the merchant's logo, served here instead of its site
        route.fulfill(status=200, content_type="image/png", body=LOGO_PNG)

    page.route("https://tile.openstreetmap.org/**", no_tiles)
    page.route("https://shop.example/**", logo)
    page.on(
        "console",
        lambda m: (
            errors.append(f"{m.text} {m.location.get('url', '')}") if m.type == "error" else None
        ),
    )
    page.on(
        "requestfailed",
        lambda r: (
            errors.append(f"failed: {r.url}")
            if is_real_failure(r) and "tile.openstreetmap.org" not in r.url
            else None
        ),
    )
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_selector("[data-track][data-live=on]")
    return page, [e for e in errors if "tile.openstreetmap.org" not in e]


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_eta_text_and_driver_marker_update_live_without_reload(
    browser: Browser,
    live_server: str,
    runtime: Runtime,
    merchant: MerchantCtx,
    viewport: dict[str, int],
) -> None:
    """After an ETA event the page's ETA text changes, and after a GPS fix the driver's marker
    shows at the rounded position, then moves, all without a reload."""
    from playwright.sync_api import expect

    scene = _scene(live_server, runtime, merchant)
    page, errors = _open(browser, viewport, f"{live_server}{scene.path(1)}")
    try:
        page.evaluate("window.__notReloaded = true")
        eta = page.locator('[data-live="eta_text"]')
        assert eta.inner_text() == "Around 09:35"
        assert page.locator('[data-live="stops_text"]').inner_text() == "You are the next stop"

        earliest = NOW + timedelta(minutes=40)
        write_eta(runtime, scene, 1, earliest, earliest + timedelta(minutes=15), 0)
        expect(eta).to_have_text("Between 08:40 and 08:55")
        write_position(runtime, scene, 43.7301111, 7.4202222)
        page.wait_for_selector("#track-map[data-driver-lat='43.73'][data-driver-lon='7.42']")
        assert page.locator(".track-driver-marker").count() == 1
        write_position(runtime, scene, 43.7354444, 7.4251111)
        page.wait_for_selector("#track-map[data-driver-lat='43.735'][data-driver-lon='7.425']")
        assert page.evaluate("window.__notReloaded") is True
        page.screenshot(path=f"/tmp/tracking-{viewport['width']}.png", full_page=True)
        assert errors == []
    finally:
        page.context.close()


@pytest.mark.browser
def test_tracking_page_has_no_serious_accessibility_violations(
    browser: Browser, live_server: str, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """axe-core on the tracking page (with the map and driver shown) and on the 404 page
    reports no serious or critical violation, on a phone."""
    from axe_playwright_python.sync_playwright import Axe

    scene = _scene(live_server, runtime, merchant)
    write_position(runtime, scene, 43.73, 7.42)
    page, _errors = _open(browser, PHONE, f"{live_server}{scene.path(1)}")
    try:
        page.wait_for_selector(".track-driver-marker")
        for url in (None, f"{live_server}/t/no-such-link"):
            if url is not None:
                page.goto(url)  # the 404 page too
            results = Axe().run(page)
            serious = ("serious", "critical")
            bad = [v for v in results.response["violations"] if v["impact"] in serious]
            assert bad == [], results.generate_report()
    finally:
        page.context.close()
