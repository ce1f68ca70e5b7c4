"""The driver app in French on a phone (390x844, Chromium): a stop a recipient redirected to a
neighbour shows the new destination; a redirect made while the page is open appears without
the driver reloading; axe-core finds no serious or critical violation on the French page.

Screenshot for a person to look at: /tmp/driver-fr-changes.png."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.e2e.test_driver_browser import PHONE, _published_route, _sign_in_link

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

SCREENSHOT = "/tmp/driver-fr-changes.png"


@pytest.fixture
def french_phone(browser: Browser) -> Iterator[BrowserContext]:
    # bypass_csp only so that axe-core can be injected; the app itself runs under its CSP.
    context = browser.new_context(
        viewport=PHONE, has_touch=True, is_mobile=True, locale="fr-FR", bypass_csp=True
    )
    try:
        yield context
    finally:
        context.close()


def _redirect(live_server: str, merchant: MerchantCtx, order_id: str, body: dict[str, Any]) -> None:
    with httpx.Client(base_url=live_server, headers=merchant.headers, timeout=30) as http:
        resp = http.post(f"/v1/orders/{order_id}/redirect", json=body)
        assert resp.status_code == 200, resp.text


def _serious(page: Page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [f"{v['id']} ({v['impact']})" for v in found if v["impact"] in ("serious", "critical")]


@pytest.mark.browser
def test_french_driver_app_shows_a_redirected_stop_and_news_without_a_reload(
    french_phone: BrowserContext, live_server: str, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """A French phone signs in and sees, on the stop the recipient redirected, who to leave
    the parcel with (name, house number); a safe place chosen while the page is open shows up
    when the app next asks for news (no manual reload); the page passes axe."""
    route = _published_route(live_server, runtime, merchant)
    first, second = [s for s in route["stops"] if s["reference"] != "PIN-1"][:2]
    _redirect(
        live_server,
        merchant,
        first["order_id"],
        {"kind": "neighbour", "neighbour": {"name": "Mme Curie", "house_number": "3"}},
    )
    page = french_phone.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(_sign_in_link(runtime, merchant, route["driver"]["id"], live_server))
    page.get_by_role("button", name="Se connecter en tant que").click()
    page.get_by_role("button", name="Commencer la tournée").wait_for()
    assert page.locator("html").get_attribute("lang") == "fr"

    card = page.locator(f"#stop-{first['id']}")
    card.get_by_text("Modifié par le destinataire").wait_for()
    assert card.get_by_text("Laissez-le chez le voisin Mme Curie, au numéro 3.").is_visible()
    assert "%283%29" in (card.get_by_role("link", name="Itinéraire").get_attribute("href") or "")
    assert _serious(page) == []

    # News while the page is open: the app asks /driver/state when it comes to the front.
    _redirect(
        live_server,
        merchant,
        second["order_id"],
        {
            "kind": "safe_place",
            "safe_place": {"place": "derrière le portail bleu", "photo_consent": True},
        },
    )
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    other = page.locator(f"#stop-{second['id']}")
    other.get_by_text("Déposez-le à l'endroit sûr : derrière le portail bleu.").wait_for(
        timeout=15_000
    )
    page.locator("#net-status").get_by_text("Un destinataire a modifié une livraison.").wait_for()
    page.screenshot(path=SCREENSHOT, full_page=True)
    assert _serious(page) == []
    assert errors == []
