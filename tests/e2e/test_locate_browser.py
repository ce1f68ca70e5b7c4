"""In Chromium: an order whose address was not found is placed by clicking the dispatch map."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Merchant, Role
from doorstep.domain.accounts.users import create_user
from doorstep.domain.orders.models import Order
from doorstep.runtime import Runtime
from doorstep.settings import Settings
from tests.conftest import TEST_SECRET, MerchantCtx
from tests.factories import local, make_order, monaco_day

if TYPE_CHECKING:
    from playwright.sync_api import Browser

PASSWORD = "Riviera-Blooms-2026!"
TILE_HOST = "tile.openstreetmap.org"
DAY = date(2026, 11, 25)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", secret_key=TEST_SECRET, plan_time_limit_s=0.3)


@pytest.mark.browser
def test_clicking_the_map_places_an_order_that_needs_a_location(
    browser: Browser, live_server: str, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """With "Set the spot" open, a click on the map fills the coordinates; Place stores them
    (precision point, source dispatcher) and the page says so."""
    with transaction(runtime.sessions) as s:
        monaco_day(s, merchant.id, DAY, orders=3)
        lost = make_order(
            s, merchant.id, reference="LOST-1", lat=0.0, lon=0.0,
            window=(local(DAY, 10), local(DAY, 12)),
        )  # fmt: skip
        lost.lat = lost.lon = None
        lost.location_state, lost.location_reason = "needs_location", "address_not_found"
        lost_id = lost.id
        owner = s.get(Merchant, merchant.id)
        assert owner is not None
        create_user(s, runtime.clock, owner, "disp@example.com", "Dora", Role.DISPATCHER, PASSWORD)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.route(f"**/{TILE_HOST}/**", lambda route: route.abort())
    page.goto(f"{live_server}/console/dispatch")
    page.get_by_label("E-mail").fill("disp@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server}/console/dispatch")
    page.get_by_role("button", name="Plan the day").click()
    page.wait_for_url("**/console/dispatch?*plan=*")
    page.locator("#dispatch-map.is-ready").wait_for()

    item = page.locator(".unassigned__item", has_text="LOST-1")
    assert "Address not placed on the map yet" in item.inner_text()
    item.locator("details.locate-spot summary").click()
    box = page.locator("#dispatch-map").bounding_box()
    assert box is not None
    page.locator("#dispatch-map").click(
        position={"x": box["width"] * 0.3, "y": box["height"] * 0.4}
    )
    lat = item.get_by_label("Latitude").input_value()
    lon = item.get_by_label("Longitude").input_value()
    assert 43.6 < float(lat) < 43.9 and 7.3 < float(lon) < 7.6
    item.get_by_role("button", name="Place").click()
    page.wait_for_url("**/console/dispatch?*")
    assert "Placed LOST-1" in page.get_by_role("status").first.inner_text()
    with transaction(runtime.read_sessions) as s:
        order = s.get(Order, lost_id)
        assert order is not None and order.location_state == "located"
        assert (round(order.lat or 0, 6), round(order.lon or 0, 6)) == (float(lat), float(lon))
        assert order.location_source == "dispatcher"
    context.close()
