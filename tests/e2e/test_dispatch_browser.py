"""The dispatcher's page in a real browser: plan the day with the button, see it on the map.

Map tiles are blocked (as on an offline machine): the markers and lines must draw anyway and
the only console errors allowed are the failed tile requests. Screenshots for a person to look
at go to /tmp/dispatch-desktop.png and /tmp/dispatch-phone.png."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Merchant, Role
from doorstep.domain.accounts.users import create_user
from doorstep.domain.dispatch import views
from doorstep.runtime import Runtime
from doorstep.settings import Settings
from tests.conftest import TEST_SECRET, MerchantCtx
from tests.e2e.conftest import is_real_failure
from tests.factories import local, make_order, monaco_day

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Request

PASSWORD = "Riviera-Blooms-2026!"
TILE_HOST = "tile.openstreetmap.org"
DESKTOP = "/tmp/dispatch-desktop.png"
PHONE = "/tmp/dispatch-phone.png"
DAY = date(2026, 11, 25)  # the frozen clock's day in Monaco


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The default (OpenStreetMap) tiles, and a 0.5 s search behind "Plan the day"."""
    return Settings(data_dir=tmp_path / "data", secret_key=TEST_SECRET, plan_time_limit_s=0.5)


def _day(runtime: Runtime, merchant: MerchantCtx) -> None:
    """The Monaco day, two orders no vehicle can take, and a dispatcher."""
    day = DAY
    with transaction(runtime.sessions) as s:
        monaco_day(s, merchant.id, day)
        window = (local(day, 10), local(day, 12))
        make_order(
            s, merchant.id, reference="HEAVY", lat=43.74, lon=7.42, window=window, weight_kg=500
        )
        make_order(
            s,
            merchant.id,
            reference="COLD",
            lat=43.741,
            lon=7.421,
            window=window,
            skills=["refrigerated"],
        )
        owner = s.get(Merchant, merchant.id)
        assert owner is not None
        create_user(
            s, runtime.clock, owner, "disp@example.com", "Dora Dispatch", Role.DISPATCHER, PASSWORD
        )


def _plan_counts(runtime: Runtime, merchant_id: str) -> tuple[int, int]:
    """Planned stops and routes with stops of the merchant's newest plan."""
    with transaction(runtime.read_sessions) as s:
        plan = views.list_plans(s, merchant_id, limit=1)[0].plan
    return sum(len(r.stops) for r in plan.routes), sum(1 for r in plan.routes if r.stops)


@pytest.mark.browser
def test_plan_the_day_and_see_it_on_the_map(
    browser: Browser, live_server: str, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Sign in, press "Plan the day": one numbered marker per planned stop, one line per
    route with stops, the OSM attribution, popups; place an order by keyboard and see what it
    breaks; publish. No errors but the blocked tiles."""
    _day(runtime, merchant)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error" and TILE_HOST not in (msg.location or {}).get("url", ""):
            errors.append(f"console: {msg.text}")

    def on_failed(request: Request) -> None:
        if TILE_HOST not in request.url and is_real_failure(request):
            errors.append(f"failed: {request.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("requestfailed", on_failed)
    page.route(f"**/{TILE_HOST}/**", lambda route: route.abort())
    try:
        page.goto(f"{live_server}/console/dispatch")
        page.get_by_label("E-mail").fill("disp@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server}/console/dispatch")
        assert page.get_by_role("heading", level=1).inner_text() == "Dispatch"

        page.get_by_role("button", name="Plan the day").click()
        page.wait_for_url("**/console/dispatch?*plan=*")
        page.locator("#dispatch-map.is-ready").wait_for()
        assert "Planned a draft" in page.get_by_role("status").first.inner_text()

        stops, routes = _plan_counts(runtime, merchant.id)
        assert stops == 30 and routes >= 2
        assert page.locator(".leaflet-marker-pane .stop-marker").count() == stops
        assert page.locator(".leaflet-marker-pane .depot-marker").count() == 1
        assert page.locator("path.route-line").count() == routes
        assert "OpenStreetMap" in page.locator(".leaflet-control-attribution").inner_text()
        labels = page.locator(".leaflet-marker-pane .stop-marker span").all_inner_texts()
        assert sorted(int(n) for n in labels)[:2] == [1, 1]  # numbered per route

        page.screenshot(path=DESKTOP)

        # A stop number in a route card opens that stop's popup on the map.
        card = page.locator("details.route-card").first
        card.locator("summary.route-card__summary").click()
        card.locator("[data-show-stop]").first.click()
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for()
        assert "Recipient" in popup.inner_text() and "Window" in popup.inner_text()
        page.screenshot(path=DESKTOP.replace(".png", "-popup.png"))

        page.set_viewport_size({"width": 390, "height": 844})
        page.reload()
        page.locator("#dispatch-map.is-ready").wait_for()
        page.screenshot(path=PHONE.replace(".png", "-top.png"))
        page.locator("details.route-card").first.locator("summary.route-card__summary").click()
        page.screenshot(path=PHONE, full_page=True)

        # Keyboard only: place the refrigerated order on a route; the card shows what breaks.
        page.set_viewport_size({"width": 1400, "height": 900})
        cold = page.locator(".unassigned__item", has_text="COLD")
        cold.locator("summary").focus()
        page.keyboard.press("Enter")
        position = cold.get_by_label("Position")
        position.fill("1")
        position.press("Enter")
        page.locator("#flash.alert--warning").wait_for()
        page.locator("#dispatch-map.is-ready").wait_for()
        assert "needs refrigerated" in page.locator("#flash").inner_text()
        assert page.locator("details.route-card--bad").count() == 1
        assert page.locator(".leaflet-marker-pane .stop-marker").count() == stops + 1
        bad = page.locator("details.route-card--bad")
        assert bad.get_attribute("open") is not None  # opens by itself
        bad.locator(".violations").scroll_into_view_if_needed()
        page.screenshot(path=DESKTOP.replace(".png", "-move.png"))

        # The plan now breaks a rule: publishing it needs the box that says so ticked.
        page.get_by_label("Publish anyway, with 1 problem").check()
        page.get_by_role("button", name="Publish").click()
        page.locator("#dispatch-map.is-ready").wait_for()
        assert "Published" in page.locator(".plan-summary .status").inner_text()
        assert errors == [], errors
    finally:
        context.close()
