"""Bad input to POST /v1/orders gets a clear 4xx problem naming the field, and creates nothing:
the mistakes a new integrator makes first."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import MerchantCtx

GOOD: dict[str, Any] = {
    "reference": "SO-1001",
    "recipient": {"name": "Ada Lovelace", "phone": "+33612345678", "email": "ada@example.com"},
    "address": {
        "line1": "1 Avenue de la Costa",
        "city": "Monaco",
        "postal_code": "98000",
        "country": "MC",
        "lat": 43.7405,
        "lon": 7.4263,
    },
    "window": {"start": "2026-11-25T14:00:00+01:00", "end": "2026-11-25T16:00:00+01:00"},
    "service_level": "scheduled",
    "parcels": [{"weight_kg": 2.5}],
}


def changed(path: str, value: Any) -> dict[str, Any]:
    """GOOD with the dotted ``path`` set to ``value`` (``...`` deletes it)."""
    data = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    target = data
    for part in parents:
        target = target[part]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return data


def assert_problem(resp: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    assert body["status"] == status and body["title"] and body["detail"]
    if field is not None:
        fields = [e["field"] for e in body["errors"]]
        assert field in fields, fields
    return body


def assert_nothing_created(client: TestClient, merchant: MerchantCtx) -> None:
    assert client.get("/v1/orders", headers=merchant.headers).json()["data"] == []


BAD_BODIES = [
    pytest.param({}, "reference", id="empty-object"),
    pytest.param(changed("reference", ...), "reference", id="missing-reference"),
    pytest.param(changed("reference", ""), "reference", id="empty-reference"),
    pytest.param(changed("reference", "x" * 101), "reference", id="long-reference"),
    pytest.param(changed("recipient.name", ...), "recipient.name", id="missing-name"),
    pytest.param(changed("address", ...), "address", id="missing-address"),
    pytest.param(changed("address.lat", 123), "address.lat", id="latitude-123"),
    pytest.param(changed("address.lon", -181), "address.lon", id="longitude-181"),
    pytest.param(changed("address.lat", "north"), "address.lat", id="latitude-text"),
    pytest.param(changed("address.country", "France"), "address.country", id="country-name"),
    pytest.param(changed("address.country", "EU"), "address.country", id="country-eu"),
    pytest.param(changed("recipient.phone", "call me"), "recipient.phone", id="phone-text"),
    pytest.param(changed("recipient.phone", "+331234"), "recipient.phone", id="phone-short"),
    pytest.param(changed("recipient.email", "ada@"), "recipient.email", id="bad-email"),
    pytest.param(changed("recipient.locale", "xx-nope"), "recipient.locale", id="bad-locale"),
    pytest.param(
        changed("window.end", "2026-11-25T13:00:00+01:00"), "window.end", id="ends-before-start"
    ),
    pytest.param(
        changed("window.end", "2026-12-05T13:00:00+01:00"), "window.end", id="window-11-days"
    ),
    pytest.param(changed("window.start", "2026-11-25T14:00:00"), "window.start", id="naive"),
    pytest.param(changed("window.start", "tomorrow"), "window.start", id="window-text"),
    pytest.param(changed("window", ...), "window", id="scheduled-without-window"),
    pytest.param(changed("service_level", "express"), "service_level", id="service-level"),
    pytest.param(changed("parcels", []), "parcels", id="no-parcels"),
    pytest.param(changed("parcels", [{}] * 101), "parcels", id="101-parcels"),
    pytest.param(
        changed("parcels", [{"weight_kg": -1}]), "parcels[0].weight_kg", id="negative-weight"
    ),
    pytest.param(changed("colour", "blue"), "colour", id="unknown-field"),
    pytest.param(changed("recipient.age", 36), "recipient.age", id="unknown-nested-field"),
    pytest.param([GOOD], "body", id="array-not-object"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_invalid_order_is_a_422_problem_naming_the_field(
    app_client: TestClient, merchant: MerchantCtx, body: Any, field: str
) -> None:
    """Each common mistake is a 422 problem whose errors[].field points at it; nothing is
    created."""
    resp = app_client.post("/v1/orders", json=body, headers=merchant.headers)
    assert_problem(resp, 422, field)
    assert_nothing_created(app_client, merchant)


def test_messages_explain_the_mistake(app_client: TestClient, merchant: MerchantCtx) -> None:
    """The messages say what is wrong in words an integrator can act on."""
    cases = [
        (changed("recipient.phone", "call me"), "not a valid phone number"),
        (changed("window.start", "2026-11-25T14:00:00"), "must include a UTC offset"),
        (changed("window.end", "2026-11-25T13:00:00+01:00"), "must be after the window start"),
        (changed("window", ...), "a scheduled order needs a window"),
        (changed("address.country", "France"), "ISO 3166-1 alpha-2"),
        (changed("colour", "blue"), "Extra inputs are not permitted"),
    ]
    for body, message in cases:
        resp = app_client.post("/v1/orders", json=body, headers=merchant.headers)
        messages = [e["message"] for e in resp.json()["errors"]]
        assert any(message in m for m in messages), (message, messages)


def test_every_error_is_reported_at_once(app_client: TestClient, merchant: MerchantCtx) -> None:
    """Several mistakes in one body are all listed, so one round trip fixes them all."""
    body = changed("address.lat", 123)
    body["recipient"]["phone"] = "not a phone"
    body["window"]["end"] = "2026-11-25T13:00:00+01:00"
    fields = {
        e["field"]
        for e in app_client.post("/v1/orders", json=body, headers=merchant.headers).json()["errors"]
    }
    assert {"address.lat", "recipient.phone", "window.end"} <= fields


def test_a_window_that_is_already_over_is_refused(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """A window that ended before now is a 422 on window.end (the clock is 2026-11-25T07:00Z)."""
    body = changed("window", {"start": "2026-11-24T14:00:00Z", "end": "2026-11-24T16:00:00Z"})
    assert_problem(
        app_client.post("/v1/orders", json=body, headers=merchant.headers), 422, "window.end"
    )
    assert_nothing_created(app_client, merchant)


def test_valid_variants_are_normalised(app_client: TestClient, merchant: MerchantCtx) -> None:
    """National phone numbers become E.164 in the address country, country codes and locales
    are normalised, and the service level defaults from the window."""
    body = copy.deepcopy(GOOD)
    body["recipient"] = {"name": "  Jean  ", "phone": "06 12 34 56 78", "locale": "pt_br"}
    body["address"]["country"] = "fr"
    del body["service_level"]
    created = app_client.post("/v1/orders", json=body, headers=merchant.headers).json()
    assert created["recipient"] == {
        "name": "Jean",
        "phone": "+33612345678",
        "email": None,
        "locale": "pt-BR",
    }
    assert created["address"]["country"] == "FR"
    assert created["service_level"] == "scheduled"
    minimal = {k: v for k, v in GOOD.items() if k not in ("window", "service_level", "parcels")}
    minimal["reference"] = "SO-1002"
    other = app_client.post("/v1/orders", json=minimal, headers=merchant.headers).json()
    assert other["service_level"] == "next_day" and other["window"] is None
    assert other["parcel_count"] == 1 and other["weight_kg"] == 0


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "text/csv"]
)
def test_a_body_that_is_not_json_is_415(
    app_client: TestClient, merchant: MerchantCtx, content_type: str
) -> None:
    """Sending the order with a non-JSON content type is a 415 problem, not a confusing 422."""
    resp = app_client.post(
        "/v1/orders",
        content=json.dumps(GOOD).encode(),
        headers={**merchant.headers, "Content-Type": content_type},
    )
    assert_problem(resp, 415)
    assert_nothing_created(app_client, merchant)


def test_malformed_json_is_400(app_client: TestClient, merchant: MerchantCtx) -> None:
    """A body that does not parse as JSON is a 400 problem."""
    resp = app_client.post(
        "/v1/orders",
        content=b'{"reference": "SO-1", "recipient": {',
        headers={**merchant.headers, "Content-Type": "application/json"},
    )
    body = assert_problem(resp, 400)
    assert body["type"].endswith("/malformed-json")
    assert_nothing_created(app_client, merchant)


def test_a_5_mb_body_is_413(app_client: TestClient, merchant: MerchantCtx) -> None:
    """A 5 MB body is refused with 413 before it is parsed."""
    huge = changed("instructions", "x" * 5_000_000)
    resp = app_client.post(
        "/v1/orders",
        content=json.dumps(huge).encode(),
        headers={**merchant.headers, "Content-Type": "application/json"},
    )
    assert_problem(resp, 413)
    assert_nothing_created(app_client, merchant)


def test_a_patch_with_bad_values_changes_nothing(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """The same rules guard PATCH: a bad phone, latitude or unknown field is a 422 problem."""
    created = app_client.post("/v1/orders", json=GOOD, headers=merchant.headers).json()
    url = f"/v1/orders/{created['id']}"
    for patch, field in [
        ({"recipient": {"phone": "call me"}}, "recipient.phone"),
        ({"address": {"lat": 123}}, "address.lat"),
        ({"address": {"country": "ZZ"}}, "address.country"),
        ({"window": {"start": "2026-11-25T15:00:00"}}, "window.start"),
        ({"colour": "blue"}, "colour"),
    ]:
        assert_problem(app_client.patch(url, json=patch, headers=merchant.headers), 422, field)
    assert app_client.get(url, headers=merchant.headers).json() == created
    not_json = app_client.patch(
        url, content=b"instructions=x", headers={**merchant.headers, "Content-Type": "text/plain"}
    )
    assert_problem(not_json, 415)
