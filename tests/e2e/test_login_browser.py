"""Signing in to the console in a real browser."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Merchant, Role
from doorstep.domain.accounts.users import create_user
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.e2e.conftest import is_real_failure

if TYPE_CHECKING:
    from playwright.sync_api import Browser

PASSWORD = "Riviera-Blooms-2026!"
SCREENSHOT = "/tmp/login.png"


@pytest.mark.browser
def test_sign_in_by_typing_into_the_form(
    browser: Browser, live_server: str, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """A wrong password shows the error; typing the right one opens the dashboard."""
    with transaction(runtime.sessions) as session:
        owner = session.get(Merchant, merchant.id)
        assert owner is not None
        create_user(
            session, runtime.clock, owner, "ada@example.com", "Ada Lovelace", Role.OWNER, PASSWORD
        )
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on(
        "requestfailed",
        lambda r: errors.append(f"failed: {r.url}") if is_real_failure(r) else None,
    )
    try:
        page.goto(f"{live_server}/console")
        assert page.url.endswith("/console/login")
        page.get_by_label("E-mail").fill("ada@example.com")
        page.get_by_label("Password").fill("Not-The-Password-1")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("alert").wait_for()
        assert "e-mail or password is incorrect" in page.get_by_role("alert").inner_text()
        assert page.get_by_label("E-mail").input_value() == "ada@example.com"
        page.screenshot(path=SCREENSHOT.replace(".png", "-error.png"), full_page=True)

        page.get_by_label("Password").type(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server}/console")
        heading = page.get_by_role("heading", level=1)
        assert heading.inner_text() == "Hello, Ada Lovelace"
        body = page.locator("main").inner_text()
        assert merchant.name in body and "Owner" in body
        page.screenshot(path=SCREENSHOT, full_page=True)

        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=SCREENSHOT.replace(".png", "-mobile.png"), full_page=True)

        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(f"{live_server}/console/login?signed_out=1")
        assert "You have signed out." in page.locator("main").inner_text()
        assert errors == [], errors  # no CSP violations, no missing files
    finally:
        context.close()
