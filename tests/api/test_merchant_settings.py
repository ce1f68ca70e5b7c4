"""``/v1/merchant``: a merchant reads and changes its own settings, validated, and only its own."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.conftest import MerchantCtx


def test_merchant_reads_and_changes_its_settings(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """A PATCH changes name, timezone, locale, branding and default service time, and merges."""
    before = app_client.get("/v1/merchant", headers=merchant.headers)
    assert before.status_code == 200
    assert before.json()["id"] == merchant.id and before.json()["timezone"] == "Europe/Monaco"
    changed = app_client.patch(
        "/v1/merchant",
        headers=merchant.headers,
        json={
            "name": "Riviera Flowers",
            "timezone": "Europe/Paris",
            "locale": "fr-FR",
            "branding": {"color": "#0b6e4f", "support_phone": "+377 93 15 15 15"},
            "default_service_time_s": 240,
            "config": {"quiet_hours": {"start": "21:00", "end": "08:00"}},
        },
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["name"], body["timezone"], body["locale"]) == (
        "Riviera Flowers",
        "Europe/Paris",
        "fr-FR",
    )
    assert body["branding"]["color"] == "#0B6E4F"
    assert body["branding"]["support_phone"] == "+37793151515"
    assert body["default_service_time_s"] == 240
    assert body["config"]["quiet_hours"] == {"start": "21:00", "end": "08:00"}
    # A second patch merges: other branding stays, a null removes one key.
    again = app_client.patch(
        "/v1/merchant",
        headers=merchant.headers,
        json={"branding": {"support_email": "help@example.com", "color": None}},
    ).json()
    assert again["branding"]["support_email"] == "help@example.com"
    assert again["branding"]["color"] is None
    assert again["branding"]["support_phone"] == "+37793151515"
    assert app_client.get("/v1/merchant", headers=merchant.headers).json() == again


def test_invalid_settings_name_each_field(app_client: TestClient, merchant: MerchantCtx) -> None:
    """A wrong timezone, colour, logo URL or negative service time is a 422 naming the field,
    and nothing changes."""
    bad = app_client.patch(
        "/v1/merchant",
        headers=merchant.headers,
        json={"timezone": "Mars/Olympus", "default_service_time_s": -5},
    )
    assert bad.status_code == 422
    fields = {e["field"] for e in bad.json()["errors"]}
    assert {"timezone", "default_service_time_s"} <= fields
    branding = app_client.patch(
        "/v1/merchant",
        headers=merchant.headers,
        json={"branding": {"color": "green", "logo_url": "ftp://x"}},
    )
    assert branding.status_code == 422
    fields = {e["field"] for e in branding.json()["errors"]}
    assert {"branding.color", "branding.logo_url"} <= fields
    unknown = app_client.patch(
        "/v1/merchant", headers=merchant.headers, json={"branding": {"font": "Comic"}}
    )
    assert unknown.status_code == 422
    cleared = app_client.patch("/v1/merchant", headers=merchant.headers, json={"name": None})
    assert cleared.status_code == 422
    now = app_client.get("/v1/merchant", headers=merchant.headers).json()
    assert now["timezone"] == "Europe/Monaco" and now["branding"]["color"] is None


def test_each_key_sees_and_changes_only_its_merchant(
    app_client: TestClient, make_merchant: Callable[..., MerchantCtx]
) -> None:
    """Merchant A's key changes A; merchant B still reads its own settings; no key is a 401."""
    first, second = make_merchant("A"), make_merchant("B")
    app_client.patch("/v1/merchant", headers=first.headers, json={"name": "A renamed"})
    assert app_client.get("/v1/merchant", headers=second.headers).json()["name"] == "B"
    assert app_client.get("/v1/merchant", headers=first.headers).json()["name"] == "A renamed"
    assert app_client.get("/v1/merchant").status_code == 401
    wrong = app_client.patch(
        "/v1/merchant",
        headers={"Authorization": "Bearer dsk_nope_nope"},
        json={"timezone": "Mars/Olympus"},
    )
    assert wrong.status_code == 401
