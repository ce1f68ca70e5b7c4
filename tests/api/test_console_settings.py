"""The console's Settings page: an owner changes the merchant's settings, a wrong value is shown
beside its field and nothing changes, a dispatcher may not see the page."""

from __future__ import annotations

import html

from fastapi.testclient import TestClient

from doorstep.domain.accounts.models import Merchant, Role
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.console_session import client, csrf_of, make_user, sign_in

__all__ = ["client"]  # the fixture, imported for pytest

FORM = {
    "name": "Riviera Flowers",
    "timezone": "Europe/Paris",
    "locale": "fr",
    "default_service_time_s": "300",
    "logo_url": "https://shop.example/logo.png",
    "color": "#0b6e4f",
    "support_email": "help@shop.example",
    "support_phone": "+377 93 15 15 15",
}


def test_owner_saves_settings_and_the_api_reads_them(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Saving the form changes what GET /v1/merchant answers, and the page shows the values."""
    make_user(runtime, merchant.id, "olga@example.com", Role.OWNER)
    token = sign_in(client, "olga@example.com")
    page = client.get("/console/settings")
    assert page.status_code == 200 and 'value="Europe/Monaco"' in page.text
    saved = client.post("/console/settings", data={**FORM, "csrf_token": csrf_of(page)})
    assert saved.status_code == 303, saved.text
    shown = client.get("/console/settings")
    assert "Settings saved." in shown.text and 'value="#0B6E4F"' in shown.text
    api = client.get("/v1/merchant", headers=merchant.headers).json()
    assert (api["name"], api["timezone"], api["default_service_time_s"]) == (
        "Riviera Flowers",
        "Europe/Paris",
        300,
    )
    assert api["branding"]["support_phone"] == "+37793151515"
    assert token


def test_a_wrong_value_is_shown_beside_its_field_and_nothing_is_saved(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """An unknown timezone and a colour not in #RRGGBB are each named; the merchant is unchanged."""
    make_user(runtime, merchant.id, "olga@example.com", Role.OWNER)
    sign_in(client, "olga@example.com")
    token = csrf_of(client.get("/console/settings"))
    bad = {**FORM, "timezone": "Mars/Olympus", "color": "green", "csrf_token": token}
    refused = client.post("/console/settings", data=bad)
    assert refused.status_code == 422
    text = html.unescape(refused.text)
    assert 'id="e-timezone"' in text and "unknown IANA timezone" in text
    assert 'id="e-color"' in text
    with runtime.sessions() as session:
        stored = session.get(Merchant, merchant.id)
        assert stored is not None and stored.timezone == "Europe/Monaco"
        assert stored.name == "Riviera Florist"


def test_a_dispatcher_cannot_open_settings(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Settings are the owner's: a dispatcher gets 403."""
    make_user(runtime, merchant.id, "dora@example.com", Role.DISPATCHER)
    sign_in(client, "dora@example.com")
    assert client.get("/console/settings").status_code == 403
