"""The recipient's preference page and one-click unsubscribe, reached by the tokenised link
in every message."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from doorstep.domain.notifications.preferences import preferences_token
from tests.api.test_orders import create
from tests.conftest import TEST_SECRET, MerchantCtx
from tests.integration.messages.test_email import events


def test_preference_page_saves_channels_language_and_quiet_hours(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """The page shows the recipient's choices, saves them, and the change is in the timeline;
    a later message uses only the channels kept."""
    order = create(app_client, merchant)
    token = preferences_token(TEST_SECRET, order["id"])
    page = app_client.get(f"/p/{token}")
    assert page.status_code == 200
    assert "Riviera Florist" in page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    saved = app_client.post(
        f"/p/{token}",
        data={
            "csrf_token": csrf.group(1),
            "channels": ["sms"],
            "locale": "fi",
            "quiet_start": "22:00",
            "quiet_end": "07:30",
        },
    )
    assert saved.status_code == 200, saved.text
    assert "Your choices are saved." in saved.text
    assert 'value="22:00"' in saved.text and 'value="fi" selected' in saved.text
    [changed] = [
        e
        for e in events(app_client, merchant, order["id"])
        if e["type"] == "recipient.preferences_changed"
    ]
    assert changed["data"]["channels"] == ["sms"]
    assert changed["data"]["quiet_hours"] == ["22:00", "07:30"]
    # The next window change queues no e-mail: the recipient kept only SMS.
    before = [e for e in events(app_client, merchant, order["id"]) if e["type"] == "message.queued"]
    resp = app_client.patch(
        f"/v1/orders/{order['id']}",
        json={"window": {"start": "2026-11-26T14:00:00+01:00", "end": "2026-11-26T16:00:00+01:00"}},
        headers=merchant.headers,
    )
    assert resp.status_code == 200
    after = [e for e in events(app_client, merchant, order["id"]) if e["type"] == "message.queued"]
    assert after == before


def test_a_wrong_token_is_404_and_opening_the_unsubscribe_link_changes_nothing(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """A forged token is a plain 404; GET /u/ (what link scanners do) does not opt out, the
    RFC 8058 POST does, once."""
    order = create(app_client, merchant)
    token = preferences_token(TEST_SECRET, order["id"])
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert app_client.get(f"/p/{forged}").status_code == 404
    assert app_client.post(f"/u/{forged}").status_code == 404
    assert app_client.get(f"/u/{token}").status_code == 200
    types = [e["type"] for e in events(app_client, merchant, order["id"])]
    assert "recipient.opted_out" not in types
    for _ in range(2):
        assert (
            app_client.post(f"/u/{token}", content=b"List-Unsubscribe=One-Click").status_code == 200
        )
    types = [e["type"] for e in events(app_client, merchant, order["id"])]
    assert types.count("recipient.opted_out") == 1
    assert "You receive no more messages" in app_client.get(f"/p/{token}").text
