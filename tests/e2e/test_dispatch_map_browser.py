"""The dispatch map in a real browser, at desktop and phone sizes: the orders left out are on
the map with their reason, a route can be hidden and shown again, two stops at the same
address can each be clicked, a stop that breaks a rule is marked, publishing the plan asks
for confirmation and says how many problems it has, and axe-core finds no serious or critical
violation. Tiles are blocked (offline). Screenshots: /tmp/dispatch-map-desktop.png and
/tmp/dispatch-map-phone.png."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Merchant, Role
from doorstep.domain.accounts.users import create_user
from doorstep.domain.dispatch import moves, views
from doorstep.domain.dispatch.planning import create_plan
from doorstep.domain.errors import Actor
from doorstep.runtime import Runtime
from doorstep.settings import Settings
from tests.conftest import TEST_SECRET, MerchantCtx
from tests.factories import local, make_order, monaco_day

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

PASSWORD = "Riviera-Blooms-2026!"
TILE_HOST = "tile.openstreetmap.org"
DAY = date(2026, 11, 25)  # the frozen clock's day in Monaco
TWIN = (43.7505, 7.4405)  # one building, two orders (just outside the day's random points)
DESKTOP = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", secret_key=TEST_SECRET, plan_time_limit_s=0.5)


@dataclass
class Scene:
    plan_id: str
    first_route_stops: int
    first_route_id: str


def _scene(runtime: Runtime, merchant: MerchantCtx) -> Scene:
    """The Monaco day plus HEAVY (too big for every van), COLD (needs a skill; then placed on
    the first route by hand, which breaks a rule) and TWIN-A/TWIN-B at one address; planned as
    a draft; a dispatcher."""
    with transaction(runtime.sessions) as s:
        day = monaco_day(s, merchant.id, DAY)
        window = (local(DAY, 10), local(DAY, 12))
        make_order(
            s, merchant.id, reference="HEAVY", lat=43.74, lon=7.42, window=window, weight_kg=500
        )
        cold = make_order(
            s,
            merchant.id,
            reference="COLD",
            lat=43.741,
            lon=7.421,
            window=window,
            skills=["refrigerated"],
        )
        for ref in ("TWIN-A", "TWIN-B"):
            make_order(
                s,
                merchant.id,
                reference=ref,
                lat=TWIN[0],
                lon=TWIN[1],
                window=(local(DAY, 10), local(DAY, 16)),
                address_line1="2 Boulevard du Larvotto",
            )
        owner = s.get(Merchant, merchant.id)
        assert owner is not None
        create_user(
            s, runtime.clock, owner, "disp@example.com", "Dora Dispatch", Role.DISPATCHER, PASSWORD
        )
        cold_id = cold.id
    view = create_plan(
        runtime.sessions,
        runtime.clock,
        runtime.settings,
        merchant_id=merchant.id,
        depot_id=day.depot_id,
        day=DAY,
    )
    with transaction(runtime.sessions) as s:
        routes = views.load_plan(s, merchant.id, view.plan.id).routes
        first = routes[0].id
        moves.move_stop(
            s,
            runtime.clock,
            runtime.settings,
            merchant.id,
            view.plan.id,
            order_id=cold_id,
            to_route_id=first,
            position=0,
            actor=Actor.system(),
        )
    with transaction(runtime.read_sessions) as s:
        route = views.load_plan(s, merchant.id, view.plan.id).routes[0]
        return Scene(view.plan.id, len(route.stops), route.id)


def _serious_axe_findings(page: Page) -> list[dict[str, Any]]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        {"id": v["id"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]


def _check_map(page: Page, scene: Scene, *, phone: bool) -> None:
    """What both sizes must show and do."""
    page.locator("#dispatch-map.is-ready").wait_for()
    page.screenshot(path=f"/tmp/dispatch-map-{'phone' if phone else 'desktop'}-start.png")
    stop_markers = page.locator(".leaflet-marker-pane .stop-marker")
    total = stop_markers.count()
    assert total == 33  # 30 + TWIN-A, TWIN-B + COLD placed by hand

    # The order left out: a "?" square whose title and popup give the reason; its card too.
    heavy = page.locator('.leaflet-marker-pane .unassigned-marker[title*="HEAVY"]')
    assert heavy.count() == 1 and "Too big for every vehicle" in (
        heavy.get_attribute("title") or ""
    )
    card = page.locator(".unassigned__item", has_text="HEAVY")
    assert "Too big for every vehicle" in card.inner_text()
    assert "Window 10:00" in card.inner_text()

    # The stop that breaks a rule is marked on the map, with a "!".
    cold = page.locator('.leaflet-marker-pane .stop-marker[title*="COLD"]')
    assert "is-problem" in (cold.get_attribute("class") or "")
    assert cold.locator(".stop-marker__alert").inner_text() == "!"

    # Hide the first route, then show it again.
    layers = page.locator("[data-map-layers]")
    if phone:
        assert layers.get_attribute("open") is None  # closed: the map stays visible
        layers.locator("summary").click()
    toggle = page.locator(f'[data-toggle-route="{scene.first_route_id}"]')
    toggle.uncheck()
    assert stop_markers.count() == total - scene.first_route_stops
    assert page.locator("#dispatch-map").get_attribute("data-hidden-routes") == "1"
    assert page.locator('.leaflet-marker-pane .stop-marker[title*="COLD"]').count() == 0
    toggle.check()
    assert stop_markers.count() == total
    assert page.locator("#dispatch-map").get_attribute("data-hidden-routes") == "0"
    page.locator("[data-toggle-unassigned]").uncheck()
    assert page.locator(".leaflet-marker-pane .unassigned-marker").count() == 0
    page.locator("[data-toggle-unassigned]").check()
    assert page.locator(".leaflet-marker-pane .unassigned-marker").count() == 1
    layers.locator("summary").click()  # close it to uncover the map
    assert layers.get_attribute("open") is None

    # Two stops at one address: fanned out, each can be clicked and opens its own popup.
    twins = page.locator('.leaflet-marker-pane .stop-marker[title*="TWIN-"]')
    assert twins.count() == 2
    twin_a = page.locator('.leaflet-marker-pane .stop-marker[title*="TWIN-A"]')
    twin_a.scroll_into_view_if_needed()
    boxes = [twins.nth(i).bounding_box() for i in range(2)]
    assert boxes[0] is not None and boxes[1] is not None
    apart = abs(boxes[0]["x"] - boxes[1]["x"]) + abs(boxes[0]["y"] - boxes[1]["y"])
    assert apart >= 20  # not on top of each other
    popup = page.locator(".leaflet-popup-content")
    for ref in ("TWIN-A", "TWIN-B"):
        page.locator(f'.leaflet-marker-pane .stop-marker[title*="{ref}"]').click()
        popup.wait_for()
        assert ref in popup.inner_text()
        page.keyboard.press("Escape")
        popup.wait_for(state="detached")  # the closing popup fades out before the next opens


@pytest.mark.browser
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_map_shows_what_is_wrong_and_publishing_asks(
    browser: Browser, live_server: str, runtime: Runtime, merchant: MerchantCtx, size: str
) -> None:
    """At each size: unplanned orders with their reason, a route hidden and shown, both
    overlapping stops clickable, the problem marked, Publish refused until the "Publish anyway,
    with 1 problem" box is ticked, then published; no console errors; axe finds nothing
    serious or critical."""
    scene = _scene(runtime, merchant)
    phone = size == "phone"
    context = browser.new_context(viewport=PHONE if phone else DESKTOP)
    page = context.new_page()
    page.set_default_timeout(60_000)  # a loaded CI machine; nothing here is a timing claim
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and TILE_HOST not in (msg.location or {}).get("url", "")
            else None
        ),
    )
    page.route(f"**/{TILE_HOST}/**", lambda route: route.abort())
    url = f"{live_server}/console/dispatch?plan={scene.plan_id}"
    try:
        page.goto(url)
        page.get_by_label("E-mail").fill("disp@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(url)
        _check_map(page, scene, phone=phone)
        page.screenshot(path=f"/tmp/dispatch-map-{size}.png")
        assert _serious_axe_findings(page) == []

        # Publishing asks first, and says how many problems.
        confirm = page.locator("#confirm-violations")
        confirm.scroll_into_view_if_needed()
        assert "1 problem" in confirm.inner_text()
        publish = page.get_by_role("button", name="Publish", exact=True)
        publish.click()
        box = page.get_by_label("Publish anyway, with 1 problem")
        assert box.evaluate("el => el.validity.valueMissing") is True
        assert page.url == url  # nothing was sent
        with transaction(runtime.read_sessions) as s:
            assert views.load_plan(s, merchant.id, scene.plan_id).status == "draft"
        box.check()
        publish.click()
        page.locator("#flash.alert--success").wait_for()
        assert "Published" in page.locator(".plan-summary .status").inner_text()
        assert errors == [], errors
    finally:
        context.close()
