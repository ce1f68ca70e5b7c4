"""Merchant message templates: validated on save (422 naming the line), previewed on a sample
order with the SMS length, and used for the next message."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import MerchantCtx


def test_unknown_variable_and_syntax_error_are_422_naming_the_line(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """A typo in a variable or a broken tag is refused with the line it is on."""
    resp = app_client.put(
        "/v1/message-templates/delivered/email/en",
        json={"subject": "Done", "body": "Hello {{ recipient_name }},\n\nProof: {{ prof_url }}"},
        headers=merchant.headers,
    )
    assert resp.status_code == 422
    [err] = resp.json()["errors"]
    assert err["field"] == "body"
    assert err["message"] == "line 3: unknown variable 'prof_url'"
    resp = app_client.put(
        "/v1/message-templates/delivered/sms/en",
        json={"body": "Hi\n{% if minutes_away %}soon"},
        headers=merchant.headers,
    )
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["message"].startswith("line 2:")


def test_saved_template_is_listed_previewed_with_segments_and_deleted(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """A saved SMS template previews on a sample order with its GSM-7/UCS-2 segment count."""
    body = "{{ merchant_name }}: arriving in {{ minutes_away }} min. {{ tracking_url }}"
    resp = app_client.put(
        "/v1/message-templates/arriving_soon/sms/en", json={"body": body}, headers=merchant.headers
    )
    assert resp.status_code == 200, resp.text
    listed = app_client.get("/v1/message-templates", headers=merchant.headers).json()
    assert [t["body"] for t in listed["items"]] == [body]
    assert "tracking_url" in listed["variables"]
    resp = app_client.post(
        "/v1/message-templates/preview",
        json={"trigger": "arriving_soon", "channel": "sms", "locale": "en"},
        headers=merchant.headers,
    )
    preview = resp.json()
    assert preview["body"].startswith("Riviera Florist: arriving in 8 min. http")
    assert preview["sms"]["encoding"] == "GSM-7" and preview["sms"]["segments"] == 1
    resp = app_client.post(
        "/v1/message-templates/preview",
        json={"trigger": "arriving_soon", "channel": "sms", "locale": "fi", "body": "Ö🙂" * 40},
        headers=merchant.headers,
    )
    assert resp.json()["sms"] == {"encoding": "UCS-2", "units": 120, "segments": 2}
    resp = app_client.delete("/v1/message-templates/arriving_soon/sms/en", headers=merchant.headers)
    assert resp.status_code == 204
    resp = app_client.post(
        "/v1/message-templates/preview",
        json={"trigger": "arriving_soon", "channel": "sms", "locale": "fr"},
        headers=merchant.headers,
    )
    assert "votre colis arrive dans environ 8 min" in resp.json()["body"]


def test_the_sandbox_refuses_unsafe_attribute_access(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """A template cannot reach Python internals through a variable."""
    resp = app_client.post(
        "/v1/message-templates/preview",
        json={
            "trigger": "delivered",
            "channel": "sms",
            "locale": "en",
            "body": "{{ merchant_name.__class__.__mro__ }}",
        },
        headers=merchant.headers,
    )
    assert resp.status_code == 422
    assert "unsafe" in resp.json()["errors"][0]["message"]


def test_notification_settings_turn_triggers_and_quiet_hours_on_and_off(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """Defaults need no configuration; a PATCH changes only what it names and is validated."""
    got = app_client.get("/v1/notification-settings", headers=merchant.headers).json()
    assert got["triggers"]["arriving_soon"] == ["email", "sms"]
    assert got["quiet_hours"] == ["21:00", "08:00"]
    resp = app_client.patch(
        "/v1/notification-settings",
        json={
            "triggers": {"order_confirmed": [], "delayed": ["sms"]},
            "quiet_hours": None,
            "sms_url": "twilio://SID:token@+15551234567/{phone}",
        },
        headers=merchant.headers,
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["triggers"]["order_confirmed"] == [] and body["triggers"]["delayed"] == ["sms"]
    assert body["triggers"]["delivered"] == ["email", "sms"]
    assert body["quiet_hours"] is None
    again = app_client.get("/v1/notification-settings", headers=merchant.headers).json()
    assert again == body
    reset = app_client.patch(
        "/v1/notification-settings",
        json={"arriving_soon_minutes": None, "sms_url": None},
        headers=merchant.headers,
    )
    assert reset.status_code == 200, reset.text
    assert reset.json()["arriving_soon_minutes"] == 10 and reset.json()["sms_url"] is None
    bad = app_client.patch(
        "/v1/notification-settings",
        json={"triggers": {"teleported": ["pigeon"]}},
        headers=merchant.headers,
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"triggers.teleported"}
