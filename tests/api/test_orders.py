"""The orders API: create, read, list, edit, cancel, status changes and timeline, each scoped to
the calling merchant."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from doorstep.clock import FrozenClock
from doorstep.runtime import Runtime
from tests.conftest import NOW, MerchantCtx

EXAMPLE: dict[str, Any] = {
    "reference": "SO-1001",
    "recipient": {
        "name": "Ada Lovelace",
        "phone": "+33612345678",
        "email": "ada@example.com",
        "locale": "fr",
    },
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
    "parcels": [{"weight_kg": 2.5, "fragile": True}],
    "instructions": "Door code 1234",
}


def payload(**changes: Any) -> dict[str, Any]:
    """The brief's example order with top-level fields replaced."""
    data = copy.deepcopy(EXAMPLE)
    data.update(changes)
    return data


def create(client: TestClient, merchant: MerchantCtx, **changes: Any) -> dict[str, Any]:
    resp = client.post("/v1/orders", json=payload(**changes), headers=merchant.headers)
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def lifecycle(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The order's own events, without the ``message.*`` events its messages add."""
    return [e for e in events if not e["type"].startswith("message.")]


def move(client: TestClient, merchant: MerchantCtx, order_id: str, *statuses: str) -> None:
    for status in statuses:
        resp = client.post(
            f"/v1/orders/{order_id}/status", json={"status": status}, headers=merchant.headers
        )
        assert resp.status_code == 200, resp.text


def test_create_answers_201_with_status_tag_tracking_url_and_location(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """A created order comes back with id, status/reason/tag, tracking link and its fields."""
    resp = app_client.post("/v1/orders", json=payload(), headers=merchant.headers)
    assert resp.status_code == 201
    body = resp.json()
    assert resp.headers["location"] == f"/v1/orders/{body['id']}"
    assert body["id"].startswith("ord_")
    assert (body["status"], body["reason"], body["tag"]) == ("pending", None, "Pending")
    assert body["tracking_url"].startswith("http://127.0.0.1:8000/t/")
    assert body["reference"] == "SO-1001"
    assert body["recipient"] == EXAMPLE["recipient"]
    assert body["address"] == {**EXAMPLE["address"], "line2": None}
    assert body["window"] == EXAMPLE["window"]  # shown in the merchant's timezone (Monaco)
    assert body["window_sequence"] == 0
    assert body["service_level"] == "scheduled"
    assert body["parcels"][0]["weight_kg"] == 2.5 and body["parcels"][0]["fragile"] is True
    assert body["parcel_count"] == 1 and body["weight_kg"] == 2.5
    assert body["instructions"] == "Door code 1234"
    assert body["created_at"] == body["updated_at"] == "2026-11-25T07:00:00Z"


def test_get_reads_back_what_create_answered(app_client: TestClient, merchant: MerchantCtx) -> None:
    """GET /v1/orders/{id} answers exactly what the creation answered."""
    created = create(app_client, merchant)
    resp = app_client.get(f"/v1/orders/{created['id']}", headers=merchant.headers)
    assert resp.status_code == 200
    assert resp.json() == created


def test_creation_is_logged_as_order_created(app_client: TestClient, merchant: MerchantCtx) -> None:
    """Creating an order appends one order.created event naming the API key that acted."""
    created = create(app_client, merchant)
    events = app_client.get(f"/v1/orders/{created['id']}/events", headers=merchant.headers)
    assert events.status_code == 200
    (event,) = lifecycle(events.json()["data"])
    assert event["type"] == "order.created"
    assert (event["status"], event["reason"], event["tag"]) == ("pending", None, "Pending")
    assert event["actor"]["type"] == "api_key"
    assert merchant.api_key.startswith(event["actor"]["id"] + "_")
    assert event["occurred_at"] == event["recorded_at"] == "2026-11-25T07:00:00Z"
    assert event["data"]["reference"] == "SO-1001"


def test_tracking_url_opens_only_its_order(
    app_client: TestClient, make_merchant: Callable[..., MerchantCtx]
) -> None:
    """The page at tracking_url shows its own order; a wrong or malformed token gets the same
    404 page as an unknown one."""
    merchant = make_merchant("A")
    created = create(app_client, merchant)
    other = create(app_client, make_merchant("B"), reference="SO-2")
    token = created["tracking_url"].rsplit("/", 1)[1]
    assert len(token) >= 22
    page = app_client.get(urlsplit(created["tracking_url"]).path)
    assert page.status_code == 200
    assert "SO-1001" in page.text and "Bonjour Ada," in page.text and "SO-2" not in page.text
    assert "SO-2" in app_client.get(urlsplit(other["tracking_url"]).path).text
    wrong = ("A" if token[0] != "A" else "B") + token[1:]
    misses = [app_client.get(f"/t/{t}") for t in (wrong, "short")]
    assert [m.status_code for m in misses] == [404, 404]
    assert misses[0].content == misses[1].content


def test_tracking_link_expires_after_the_delivery(
    app_client: TestClient, merchant: MerchantCtx, runtime: Runtime, clock: FrozenClock
) -> None:
    """The page stops opening tracking_link_ttl_hours (the setting) after the delivery."""
    created = create(app_client, merchant)
    move(app_client, merchant, created["id"], "picked_up", "out_for_delivery", "delivered")
    path = urlsplit(created["tracking_url"]).path
    assert app_client.get(path).status_code == 200
    clock.advance(timedelta(hours=runtime.settings.tracking_link_ttl_hours))
    assert app_client.get(path).status_code == 200
    clock.advance(timedelta(seconds=1))
    expired = app_client.get(path)
    assert expired.status_code == 404
    assert expired.content == app_client.get("/t/short").content


def test_a_reference_is_used_once_per_merchant(
    app_client: TestClient, make_merchant: Callable[..., MerchantCtx]
) -> None:
    """A second order with the same reference is a 409; another merchant may use it."""
    first, second = make_merchant("A"), make_merchant("B")
    create(app_client, first)
    again = app_client.post("/v1/orders", json=payload(), headers=first.headers)
    assert again.status_code == 409
    assert again.json()["errors"][0]["field"] == "reference"
    create(app_client, second)


def test_list_filters_by_status_reference_window_day_and_creation_time(
    app_client: TestClient, merchant: MerchantCtx, clock: FrozenClock
) -> None:
    """Each list filter narrows the orders to the expected ones."""
    a = create(app_client, merchant, reference="A")
    clock.advance(timedelta(minutes=1))
    b = create(
        app_client,
        merchant,
        reference="B",
        window={"start": "2026-11-26T00:30:00+01:00", "end": "2026-11-26T02:00:00+01:00"},
    )
    clock.advance(timedelta(minutes=1))
    c = create(app_client, merchant, reference="C")
    app_client.post(f"/v1/orders/{c['id']}/cancel", headers=merchant.headers)

    def refs(**params: Any) -> list[str]:
        resp = app_client.get("/v1/orders", params=params, headers=merchant.headers)
        assert resp.status_code == 200, resp.text
        return [o["reference"] for o in resp.json()["data"]]

    assert refs() == ["C", "B", "A"]
    assert refs(status="cancelled") == ["C"]
    assert refs(status=["cancelled", "pending"]) == ["C", "B", "A"]
    assert refs(reference="B") == ["B"]
    # 2026-11-26T00:30+01:00 is still the 25th in UTC, but the 26th in Monaco.
    assert refs(window_date="2026-11-26") == ["B"]
    assert refs(window_date="2026-11-25") == ["C", "A"]
    assert refs(created_after=a["created_at"]) == ["C", "B"]
    assert refs(created_before=c["created_at"]) == ["B", "A"]
    assert refs(created_after=a["created_at"], created_before=c["created_at"]) == ["B"]
    assert b["id"]


def test_cursor_pagination_is_stable_while_orders_arrive(
    app_client: TestClient, merchant: MerchantCtx, clock: FrozenClock
) -> None:
    """Paging with next_cursor visits every order once even when new ones are created between
    pages, including orders created in the same instant."""
    for i in range(5):
        create(app_client, merchant, reference=f"R{i}")
        if i % 2:
            clock.advance(timedelta(seconds=1))
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = app_client.get("/v1/orders", params=params, headers=merchant.headers).json()
        seen += [o["reference"] for o in page["data"]]
        assert page["has_more"] == (page["next_cursor"] is not None)
        cursor = page["next_cursor"]
        clock.advance(timedelta(seconds=1))
        create(app_client, merchant, reference=f"new-{len(seen)}")
        if cursor is None:
            break
    assert sorted(seen) == [f"R{i}" for i in range(5)]
    assert len(set(seen)) == 5


def test_list_refuses_a_tampered_cursor_and_a_limit_over_500(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """A cursor the API did not give out is a 400 problem; limit is bounded to 1..500."""
    bogus = base64.urlsafe_b64encode(b"[1, 2, 3]").decode()
    resp = app_client.get("/v1/orders", params={"cursor": bogus}, headers=merchant.headers)
    assert resp.status_code == 400
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["errors"][0]["field"] == "cursor"
    assert app_client.get("/v1/orders?limit=501", headers=merchant.headers).status_code == 422
    assert app_client.get("/v1/orders?limit=500", headers=merchant.headers).status_code == 200


def test_patch_merges_fields_and_logs_them_with_contact_details_masked(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """A merge patch changes only the fields sent; the event lists old→new, phone and e-mail
    masked; a national phone number is read in the (new) address country."""
    created = create(app_client, merchant)
    resp = app_client.patch(
        f"/v1/orders/{created['id']}",
        json={
            "recipient": {"phone": "06 11 22 33 44", "email": "grace@example.org"},
            "address": {"country": "FR", "city": "Beausoleil"},
            "instructions": "Ring twice",
        },
        headers={**merchant.headers, "Content-Type": "application/merge-patch+json"},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["recipient"] == {
        "name": "Ada Lovelace",
        "phone": "+33611223344",
        "email": "grace@example.org",
        "locale": "fr",
    }
    assert body["address"]["city"] == "Beausoleil" and body["address"]["line1"].startswith("1 ")
    assert body["instructions"] == "Ring twice"
    assert body["window_sequence"] == 0 and body["version"] == 2
    events = app_client.get(f"/v1/orders/{created['id']}/events", headers=merchant.headers)
    updated = lifecycle(events.json()["data"])[-1]
    assert updated["type"] == "order.updated"
    changes = updated["data"]["changes"]
    assert changes["recipient.phone"] == {"from": "+33*******78", "to": "+33*******44"}
    assert changes["recipient.email"] == {"from": "a***@example.com", "to": "g***@example.org"}
    assert changes["address.city"] == {"from": "Monaco", "to": "Beausoleil"}
    assert changes["instructions"] == {"from": "Door code 1234", "to": "Ring twice"}
    assert "612345678" not in str(updated) and "grace@" not in str(updated)


def test_moving_the_window_increments_window_sequence(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """Each window move adds one to window_sequence; other edits leave it alone."""
    created = create(app_client, merchant)
    url = f"/v1/orders/{created['id']}"
    moved = app_client.patch(
        url, json={"window": {"end": "2026-11-25T17:00:00+01:00"}}, headers=merchant.headers
    )
    assert moved.json()["window"]["end"] == "2026-11-25T17:00:00+01:00"
    assert moved.json()["window_sequence"] == 1
    same = app_client.patch(
        url, json={"window": {"end": "2026-11-25T16:00:00Z"}}, headers=merchant.headers
    )
    assert same.json()["window_sequence"] == 1  # the same instant written in UTC
    other = app_client.patch(url, json={"service_time_s": 240}, headers=merchant.headers)
    assert other.json()["window_sequence"] == 1 and other.json()["service_time_s"] == 240
    timeline = lifecycle(app_client.get(f"{url}/events", headers=merchant.headers).json()["data"])
    assert [e["type"] for e in timeline] == ["order.created", "order.updated", "order.updated"]
    assert timeline[1]["data"]["window_sequence"] == 1


def test_patch_null_clears_an_optional_field_but_not_a_required_one(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """``null`` removes optional fields; removing a required one is a 422 naming the field."""
    created = create(app_client, merchant)
    url = f"/v1/orders/{created['id']}"
    cleared = app_client.patch(
        url, json={"recipient": {"email": None}, "instructions": None}, headers=merchant.headers
    )
    assert cleared.status_code == 200
    assert cleared.json()["recipient"]["email"] is None and cleared.json()["instructions"] is None
    for patch, field in [
        ({"recipient": {"name": None}}, "recipient.name"),
        ({"window": None}, "window"),  # a scheduled order needs its window
        ({"address": {"lat": 123}}, "address.lat"),
        ({"window": {"end": "2026-11-25T13:00:00+01:00"}}, "window.end"),
    ]:
        resp = app_client.patch(url, json=patch, headers=merchant.headers)
        assert resp.status_code == 422, (patch, resp.text)
        assert field in [e["field"] for e in resp.json()["errors"]]
    assert app_client.get(url, headers=merchant.headers).json()["version"] == 2


def test_patch_refuses_fields_that_cannot_be_edited(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """Unknown or non-editable fields (reference, service_level) are a 422 and change nothing."""
    created = create(app_client, merchant)
    url = f"/v1/orders/{created['id']}"
    for patch in ({"reference": "X"}, {"service_level": "same_day"}, {"recipient": {"age": 3}}):
        resp = app_client.patch(url, json=patch, headers=merchant.headers)
        assert resp.status_code == 422, patch
    assert app_client.get(url, headers=merchant.headers).json() == created


def test_patch_is_refused_once_the_order_is_out_for_delivery(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """Outside the editable statuses a patch is a 409 NotEditable problem."""
    created = create(app_client, merchant)
    move(app_client, merchant, created["id"], "picked_up", "out_for_delivery")
    resp = app_client.patch(
        f"/v1/orders/{created['id']}", json={"instructions": "x"}, headers=merchant.headers
    )
    assert resp.status_code == 409
    assert resp.json()["type"].endswith("/not-editable")


def test_cancel_records_the_reason_and_a_delivered_order_cannot_be_cancelled(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """Cancelling sets cancelled/merchant_cancelled/Exception; a delivered order gives 409."""
    created = create(app_client, merchant)
    resp = app_client.post(f"/v1/orders/{created['id']}/cancel", headers=merchant.headers)
    assert resp.status_code == 200
    assert (resp.json()["status"], resp.json()["reason"], resp.json()["tag"]) == (
        "cancelled",
        "merchant_cancelled",
        "Exception",
    )
    other = create(app_client, merchant, reference="SO-1002")
    explained = app_client.post(
        f"/v1/orders/{other['id']}/cancel",
        json={"reason": "consignee_cancelled", "note": "customer called"},
        headers=merchant.headers,
    )
    assert explained.json()["reason"] == "consignee_cancelled"
    last = app_client.get(f"/v1/orders/{other['id']}/events", headers=merchant.headers)
    assert lifecycle(last.json()["data"])[-1]["type"] == "order.cancelled"
    assert lifecycle(last.json()["data"])[-1]["data"]["note"] == "customer called"

    delivered = create(app_client, merchant, reference="SO-1003")
    move(app_client, merchant, delivered["id"], "picked_up", "out_for_delivery", "delivered")
    refused = app_client.post(f"/v1/orders/{delivered['id']}/cancel", headers=merchant.headers)
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/invalid-transition")


def test_status_changes_follow_the_transition_table_and_fill_the_timeline(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """Legal changes apply with reason, tag and occurred_at; the timeline shows each in order."""
    created = create(app_client, merchant)
    url = f"/v1/orders/{created['id']}"
    move(app_client, merchant, created["id"], "picked_up", "out_for_delivery")
    failed = app_client.post(
        f"{url}/status",
        json={
            "status": "delivery_failed",
            "reason": "consignee_not_home",
            "occurred_at": "2026-11-25T07:55:00+01:00",
        },
        headers=merchant.headers,
    ).json()
    assert (failed["status"], failed["reason"], failed["tag"]) == (
        "delivery_failed",
        "consignee_not_home",
        "AttemptFail",
    )
    assert failed["attempts"] == 1
    move(app_client, merchant, created["id"], "out_for_delivery")
    done = app_client.post(
        f"{url}/status",
        json={"status": "delivered", "occurred_at": "2026-11-25T06:58:00Z"},
        headers=merchant.headers,
    ).json()
    assert done["delivered_at"] == "2026-11-25T06:58:00Z" and done["attempts"] == 2
    timeline = lifecycle(app_client.get(f"{url}/events", headers=merchant.headers).json()["data"])
    assert [e["type"] for e in timeline] == [
        "order.created",
        "delivery.picked_up",
        "delivery.out_for_delivery",
        "delivery.failed",
        "delivery.out_for_delivery",
        "delivery.delivered",
    ]
    assert timeline[3]["occurred_at"] == "2026-11-25T06:55:00Z"
    assert timeline[3]["recorded_at"] == "2026-11-25T07:00:00Z"
    assert timeline[3]["data"] == {"from": "out_for_delivery", "to": "delivery_failed"}
    assert timeline[-1]["tag"] == "Delivered"


def test_an_illegal_or_unknown_status_change_is_refused(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """pending→delivered is a 409 problem; an unknown status or reason, or a future occurred_at,
    is a 422; the order does not change."""
    created = create(app_client, merchant)
    url = f"/v1/orders/{created['id']}/status"
    illegal = app_client.post(url, json={"status": "delivered"}, headers=merchant.headers)
    assert illegal.status_code == 409
    assert illegal.headers["content-type"].startswith("application/problem+json")
    for body in (
        {"status": "teleported"},
        {"status": "on_hold", "reason": "because"},
        {"status": "on_hold", "occurred_at": (NOW + timedelta(hours=1)).isoformat()},
        {"status": "on_hold", "occurred_at": "2026-11-25T07:00:00"},
    ):
        resp = app_client.post(url, json=body, headers=merchant.headers)
        assert resp.status_code == 422, body
    get = app_client.get(f"/v1/orders/{created['id']}", headers=merchant.headers)
    assert get.json() == created


def test_another_merchants_order_is_404_on_every_endpoint(
    app_client: TestClient, make_merchant: Callable[..., MerchantCtx]
) -> None:
    """Every order endpoint answers 404 for an order of another merchant and changes nothing."""
    owner, stranger = make_merchant("Owner"), make_merchant("Stranger")
    created = create(app_client, owner)
    oid = created["id"]
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"/v1/orders/{oid}", None),
        ("PATCH", f"/v1/orders/{oid}", {"instructions": "mine now"}),
        ("POST", f"/v1/orders/{oid}/cancel", None),
        ("POST", f"/v1/orders/{oid}/status", {"status": "on_hold"}),
        ("GET", f"/v1/orders/{oid}/events", None),
    ]
    for method, url, body in calls:
        resp = app_client.request(method, url, json=body, headers=stranger.headers)
        assert resp.status_code == 404, (method, url, resp.text)
        assert resp.json()["detail"] == f"no order {oid!r}"
    missing = app_client.get("/v1/orders/ord_NOPE", headers=owner.headers).json()
    assert missing["detail"] == "no order 'ord_NOPE'"  # the same answer as for a stranger
    listed = app_client.get("/v1/orders", headers=stranger.headers).json()
    assert listed["data"] == []
    by_ref = app_client.get("/v1/orders", params={"reference": "SO-1001"}, headers=stranger.headers)
    assert by_ref.json()["data"] == []
    assert app_client.get(f"/v1/orders/{oid}", headers=owner.headers).json() == created


def test_every_order_endpoint_needs_an_api_key(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """Without a valid key every endpoint is a 401 problem asking for a Bearer token."""
    created = create(app_client, merchant)
    oid = created["id"]
    for method, url in [
        ("POST", "/v1/orders"),
        ("POST", "/v1/orders/import"),
        ("GET", "/v1/orders"),
        ("GET", f"/v1/orders/{oid}"),
        ("PATCH", f"/v1/orders/{oid}"),
        ("POST", f"/v1/orders/{oid}/cancel"),
        ("POST", f"/v1/orders/{oid}/status"),
        ("GET", f"/v1/orders/{oid}/events"),
    ]:
        for headers in ({}, {"Authorization": "Bearer dsk_nope_nope"}):
            resp = app_client.request(method, url, headers=headers)
            assert resp.status_code == 401, (method, url)
            assert resp.headers["www-authenticate"] == "Bearer"


def test_openapi_documents_the_orders_api(app_client: TestClient) -> None:
    """The schema lists every orders endpoint with its models, problems and the CSV body."""
    spec = app_client.get("/openapi.json").json()
    paths = spec["paths"]
    assert set(paths["/v1/orders"]) == {"get", "post"}
    assert set(paths["/v1/orders/{order_id}"]) == {"get", "patch"}
    for suffix in ("cancel", "status", "events"):
        assert f"/v1/orders/{{order_id}}/{suffix}" in paths
    create_op = paths["/v1/orders"]["post"]
    assert create_op["tags"] == ["orders"]
    assert "Idempotency-Key" in [p["name"] for p in create_op["parameters"]]
    assert "application/problem+json" in create_op["responses"]["409"]["content"]
    assert create_op["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OrderOut"
    }
    import_op = paths["/v1/orders/import"]["post"]
    assert "text/csv" in import_op["requestBody"]["content"]
    assert "Problem" in spec["components"]["schemas"]
