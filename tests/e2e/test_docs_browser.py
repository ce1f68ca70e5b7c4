"""``/docs`` renders in a real browser with every host but the server blocked: the Swagger UI
assets are our own static files, not a CDN's."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Route


def test_docs_render_offline(live_server: str, browser: Browser) -> None:
    """With the network to other hosts cut, /docs still lists the orders operations."""
    own = urlsplit(live_server).netloc
    blocked: list[str] = []

    def only_our_server(route: Route) -> None:
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context = browser.new_context()
    try:
        page = context.new_page()
        page.route("**/*", only_our_server)
        page.goto(f"{live_server}/docs")
        operation = page.locator('.opblock-summary-path[data-path="/v1/orders/{order_id}"]')
        operation.first.wait_for(timeout=15_000)
        assert page.locator(".swagger-ui .info .title").inner_text().startswith("Doorstep")
        assert blocked == []
    finally:
        context.close()


def test_root_leads_to_the_console(live_server: str, browser: Browser) -> None:
    """Opening the server's address lands on the console (its sign-in page when signed out)."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{live_server}/")
        assert urlsplit(page.url).path.startswith(("/console", "/login"))
    finally:
        context.close()
