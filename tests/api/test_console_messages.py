"""The console's Messages page: an owner previews an edited template against a sample order,
is told the line of an error, saves it (the relay then uses it), and resets it to the default;
a dispatcher may not open the page."""

from __future__ import annotations

import html

from fastapi.testclient import TestClient

from doorstep.domain.accounts.models import Role
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.console_session import client, csrf_of, make_user, sign_in

__all__ = ["client"]  # the fixture, imported for pytest

SMS_FR = "/console/messages?trigger=delivered&channel=sms&locale=fr"


def test_preview_save_and_reset_a_template(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    make_user(runtime, merchant.id, "olga@example.com", Role.OWNER)
    sign_in(client, "olga@example.com")
    page = client.get(SMS_FR)
    assert page.status_code == 200
    assert "Doorstep&#39;s default" in page.text or "Doorstep's default" in page.text
    assert "livré" in html.unescape(page.text)  # the French default, previewed
    form = {
        "csrf_token": csrf_of(page),
        "trigger": "delivered",
        "channel": "sms",
        "locale": "fr",
        "body": "Bonjour {{ recipient_name }}, colis {{ reference }} livré !",
    }
    preview = client.post("/console/messages", data={**form, "action": "preview"})
    assert preview.status_code == 200
    text = html.unescape(preview.text)
    assert "Bonjour Ada, colis SO-1001 livré !" in text  # the sample order
    assert "1 SMS segment" in text
    api = client.get("/v1/message-templates", headers=merchant.headers).json()
    assert api["items"] == []  # a preview saves nothing
    saved = client.post("/console/messages", data={**form, "action": "save"})
    assert saved.status_code == 303
    shown = client.get(SMS_FR)
    assert "Template saved." in shown.text and "Your own template." in shown.text
    [item] = client.get("/v1/message-templates", headers=merchant.headers).json()["items"]
    assert (item["trigger"], item["channel"], item["locale"]) == ("delivered", "sms", "fr")
    reset = client.post(
        "/console/messages/reset",
        data={
            "csrf_token": csrf_of(shown),
            "trigger": "delivered",
            "channel": "sms",
            "locale": "fr",
        },
    )
    assert reset.status_code == 303
    assert client.get("/v1/message-templates", headers=merchant.headers).json()["items"] == []


def test_an_error_names_its_line_and_nothing_is_saved(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    make_user(runtime, merchant.id, "olga@example.com", Role.OWNER)
    sign_in(client, "olga@example.com")
    page = client.get("/console/messages?trigger=order_confirmed&channel=email&locale=en")
    base = {
        "csrf_token": csrf_of(page),
        "trigger": "order_confirmed",
        "channel": "email",
        "locale": "en",
        "subject": "Your order",
        "action": "save",
    }
    unknown = client.post(
        "/console/messages", data={**base, "body": "Hello\n\nYour {{ parcel_colour }} parcel"}
    )
    assert unknown.status_code == 422
    text = html.unescape(unknown.text)
    assert 'id="e-body"' in text and "Line 3:" in text and "parcel_colour" in text
    broken = client.post("/console/messages", data={**base, "body": "Hi\n{% if %}"})
    assert broken.status_code == 422 and "Line 2:" in html.unescape(broken.text)
    bad_subject = client.post(
        "/console/messages", data={**base, "subject": "{{ nope }}", "body": "Hi"}
    )
    assert bad_subject.status_code == 422 and 'id="e-subject"' in bad_subject.text
    assert client.get("/v1/message-templates", headers=merchant.headers).json()["items"] == []


def test_a_dispatcher_cannot_open_messages(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    make_user(runtime, merchant.id, "dora@example.com", Role.DISPATCHER)
    sign_in(client, "dora@example.com")
    assert client.get("/console/messages").status_code == 403
