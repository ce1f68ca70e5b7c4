"""The orders screen in a real browser, at desktop and phone sizes: a dispatcher signs in,
finds an order by typing part of the recipient's name, opens its page, moves its window with
the form, and sees the new window and a "Window moved" line in the timeline. axe-core finds no
serious or critical violation on the list, the order's page or the import preview. A file
with an error is previewed and not imported; a clean one is imported from its preview (the
file's text intact through the form) and undone. No console errors, no failed requests.

Screenshots for a person to look at: /tmp/orders-desktop*.png, /tmp/orders-phone*.png."""

# The pages write ranges with an en dash, so the expected texts do too.
# ruff: noqa: RUF001

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
from tests.conftest import MerchantCtx
from tests.e2e.conftest import is_real_failure
from tests.factories import local, make_order

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

PASSWORD = "Riviera-Blooms-2026!"
DAY = date(2026, 11, 25)
SIZES = {"desktop": (1400, 900), "phone": (390, 844)}


def _scene(runtime: Runtime, merchant: MerchantCtx) -> str:
    """A dispatcher and a dozen orders; the id of the one the test looks for."""
    with transaction(runtime.sessions) as s:
        owner = s.get(Merchant, merchant.id)
        assert owner is not None
        create_user(
            s, runtime.clock, owner, "disp@example.com", "Dora Dispatch", Role.DISPATCHER, PASSWORD
        )
        for n in range(12):
            make_order(
                s,
                merchant.id,
                reference=f"FL-{2000 + n}",
                lat=43.73,
                lon=7.42,
                window=(local(DAY, 9), local(DAY, 11)),
                recipient_name=f"Customer {n}",
            )
        wanted = make_order(
            s,
            merchant.id,
            reference="FL-3141",
            lat=43.7384,
            lon=7.4246,
            window=(local(DAY, 9), local(DAY, 11)),
            recipient_name="Océane Laurent",
            address_line1="12 Rue Grimaldi",
        )
        return wanted.id


def _no_serious_violations(page: Page) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert bad == [], results.generate_report()


@pytest.mark.browser
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_find_an_order_open_it_and_move_its_window(
    browser: Browser,
    live_server: str,
    runtime: Runtime,
    merchant: MerchantCtx,
    size: str,
    tmp_path: Path,
) -> None:
    """Search, open, move the window: the page and the timeline show the change, the database
    holds it, and the pages pass axe's serious and critical rules."""
    order_id = _scene(runtime, merchant)
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on(
        "requestfailed",
        lambda r: errors.append(f"failed: {r.url}") if is_real_failure(r) else None,
    )
    shot = f"/tmp/orders-{size}"
    try:
        page.goto(f"{live_server}/console/orders")
        page.get_by_label("E-mail").fill("disp@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server}/console/orders")
        assert page.locator("#order-count").inner_text() == "13"
        _no_serious_violations(page)

        search = page.get_by_label("Search", exact=True)
        search.click()
        search.press_sequentially("océane")
        page.get_by_role("button", name="Show orders").click()
        page.wait_for_url("**/console/orders?q=*")
        rows = page.locator("table.orders-table tbody tr")
        assert rows.count() == 1
        assert "12 Rue Grimaldi" in rows.first.inner_text()
        page.screenshot(path=f"{shot}-list.png", full_page=True)

        page.get_by_role("link", name="FL-3141").click()
        page.wait_for_url(f"**/console/orders/{order_id}")
        assert page.locator("#order-window").inner_text() == "Wed 25 Nov, 09:00–11:00"
        _no_serious_violations(page)

        page.get_by_label("From", exact=True).fill("15:00")
        page.get_by_label("To", exact=True).fill("17:00")
        page.get_by_role("button", name="Move window").click()
        page.locator("#flash").wait_for()
        assert (
            "Moved the window of FL-3141 to Wed 25 Nov, 15:00–17:00."
            in page.locator("#flash").inner_text()
        )
        assert page.locator("#order-window").inner_text() == "Wed 25 Nov, 15:00–17:00"
        newest = page.locator(".timeline__item").first.inner_text()
        assert "Window moved" in newest
        assert "09:00–11:00 → Wed 25 Nov, 15:00–17:00" in newest
        assert "Dora Dispatch" in newest
        page.screenshot(path=f"{shot}-order.png", full_page=True)
        _no_serious_violations(page)

        csv = tmp_path / "orders.csv"
        csv.write_text(
            "reference,recipient_name,address_line1,city,country,lat,lon\n"
            "NEW-1,Ada,1 Rue Basse,Monaco,MC,43.73,7.42\n"
            "NEW-2,,2 Rue Basse,Monaco,MC,43.73,7.42\n"
        )
        page.goto(f"{live_server}/console/orders/import")
        page.get_by_label("CSV file").set_input_files(str(csv))
        page.get_by_role("button", name="Preview").click()
        page.locator("#preview-summary").wait_for()
        assert "1 problem in 1 row" in page.locator("#preview-summary").inner_text()
        page.screenshot(path=f"{shot}-preview.png", full_page=True)
        _no_serious_violations(page)

        csv.write_text(
            "reference,recipient_name,address_line1,city,country,lat,lon,instructions\n"
            'NEW-3,Ada,1 Rue Basse,Monaco,MC,43.73,7.42,"Ring twice,\nthen wait"\n'
            "NEW-4,Bo,2 Rue Basse,Monaco,MC,43.73,7.42,\n"
        )
        page.get_by_role("link", name="Choose another file").click()
        page.get_by_label("CSV file").set_input_files(str(csv))
        page.get_by_role("button", name="Preview").click()
        page.get_by_role("button", name="Import 2 orders").click()
        page.locator("#flash").wait_for()
        assert page.locator("#flash").inner_text() == "Imported 2 orders."
        page.get_by_role("button", name="Undo import: cancel 2 orders").click()
        page.wait_for_function("document.querySelector('#flash').innerText.startsWith('Undid')")
        assert "cancelled 2 orders" in page.locator("#flash").inner_text()
        assert page.locator(".order-status--cancelled").count() == 2
        assert errors == []
    finally:
        context.close()
    with transaction(runtime.read_sessions) as s:
        order = s.get(Order, order_id)
        assert order is not None
        assert order.window_start == local(DAY, 15)
        assert s.query(Order).filter(Order.reference.in_(["NEW-1", "NEW-2"])).count() == 0
        kept = s.query(Order).filter_by(reference="NEW-3").one()
        assert kept.instructions == "Ring twice,\nthen wait"  # the preview kept the file intact
        assert kept.status == "cancelled"
