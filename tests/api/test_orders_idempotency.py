"""Idempotency-Key on POST /v1/orders and POST /v1/orders/import behaves as the IETF httpapi
draft says: replay, 422 on reuse with another body, 409 while in flight, release on failure."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from doorstep.clock import FrozenClock
from doorstep.domain import idempotency
from doorstep.domain.idempotency import IdempotencyRecord
from doorstep.domain.orders import service
from doorstep.domain.orders.models import Order
from doorstep.runtime import Runtime
from doorstep.web.app import create_app
from tests.conftest import MerchantCtx
from tests.live import send_while_first_is_held

ORDER: dict[str, Any] = {
    "reference": "SO-1001",
    "recipient": {"name": "Ada Lovelace", "phone": "+33612345678"},
    "address": {"line1": "1 Avenue de la Costa", "city": "Monaco", "country": "MC",
                "lat": 43.7405, "lon": 7.4263},
    "window": {"start": "2026-11-30T14:00:00+01:00", "end": "2026-11-30T16:00:00+01:00"},
}  # fmt: skip
CSV = (
    "reference,recipient_name,address_line1,city,country,lat,lon\r\n"
    "C-1,Ada,1 Avenue de la Costa,Monaco,MC,43.7405,7.4263\r\n"
)


def order(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(ORDER)
    data.update(changes)
    return data


def with_key(merchant: MerchantCtx, key: str) -> dict[str, str]:
    return {**merchant.headers, "Idempotency-Key": key}


def count_orders(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Order)) or 0)


def test_same_key_and_body_replays_the_first_answer(
    app_client: TestClient, merchant: MerchantCtx, runtime: Runtime
) -> None:
    """A retry with the same key and body gets the same status, body and Location, flagged as
    replayed, and creates no second order."""
    first = app_client.post("/v1/orders", json=order(), headers=with_key(merchant, "k-1"))
    again = app_client.post("/v1/orders", json=order(), headers=with_key(merchant, "k-1"))
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert count_orders(runtime) == 1


def test_the_same_json_written_differently_is_the_same_request(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """Key order and whitespace do not change the fingerprint (canonical JSON)."""
    first = app_client.post("/v1/orders", json=order(), headers=with_key(merchant, "k-2"))
    reordered = json.dumps(dict(reversed(list(order().items()))), indent=4)
    again = app_client.post(
        "/v1/orders",
        content=reordered.encode(),
        headers={**with_key(merchant, "k-2"), "Content-Type": "application/json"},
    )
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"


def test_same_key_with_another_body_is_422(
    app_client: TestClient, merchant: MerchantCtx, runtime: Runtime
) -> None:
    """Reusing a key for a different request is a 422 problem and creates nothing."""
    app_client.post("/v1/orders", json=order(), headers=with_key(merchant, "k-3"))
    other = app_client.post(
        "/v1/orders", json=order(reference="SO-2"), headers=with_key(merchant, "k-3")
    )
    assert other.status_code == 422
    assert other.headers["content-type"].startswith("application/problem+json")
    assert other.json()["type"].endswith("/idempotency-key-reused")
    assert count_orders(runtime) == 1


def test_a_failed_request_releases_its_key(
    app_client: TestClient, merchant: MerchantCtx, runtime: Runtime
) -> None:
    """A 4xx answer is not stored: the client fixes the request and retries with the same key."""
    app_client.post("/v1/orders", json=order(), headers=merchant.headers)
    clash = app_client.post(
        "/v1/orders", json=order(), headers=with_key(merchant, "k-4")
    )  # the reference is taken
    assert clash.status_code == 409
    fixed = app_client.post(
        "/v1/orders", json=order(reference="SO-1002"), headers=with_key(merchant, "k-4")
    )
    assert fixed.status_code == 201 and "idempotent-replayed" not in fixed.headers
    with runtime.sessions() as session:
        states = list(session.scalars(select(IdempotencyRecord.state)))
    assert states == ["done"]


def test_a_request_still_in_flight_is_409(
    app_client: TestClient, merchant: MerchantCtx, runtime: Runtime, clock: FrozenClock
) -> None:
    """While another request holds the key (claimed, not finished), a retry is a 409 problem."""
    body = order()
    fp = idempotency.fingerprint(
        "POST", "/v1/orders", httpx.Request("POST", "/", json=body).content
    )
    with runtime.sessions() as session, session.begin():
        session.add(
            IdempotencyRecord(
                merchant_id=merchant.id,
                key="k-5",
                method="POST",
                path="/v1/orders",
                fingerprint=fp,
                state="in_flight",
                created_at=clock.now(),
                expires_at=clock.now() + timedelta(hours=24),
            )
        )
    resp = app_client.post("/v1/orders", json=body, headers=with_key(merchant, "k-5"))
    assert resp.status_code == 409
    assert resp.json()["type"].endswith("/idempotency-key-in-flight")
    assert count_orders(runtime) == 0
    # A claim whose process died (older than the lease) is taken over.
    clock.advance(idempotency.IN_FLIGHT_LEASE)
    taken = app_client.post("/v1/orders", json=body, headers=with_key(merchant, "k-5"))
    assert taken.status_code == 201


def test_a_concurrent_retry_is_409_on_a_live_server(
    runtime: Runtime, merchant: MerchantCtx, monkeypatch: Any
) -> None:
    """Two real HTTP requests with one key: while the first is still creating the order, the
    second gets 409; afterwards a retry replays the first answer. One order exists."""
    results = send_while_first_is_held(
        create_app(runtime, migrate=False),
        monkeypatch,
        service,
        "create_order",
        "/v1/orders",
        order(),
        with_key(merchant, "k-live"),
    )

    assert results["second"].status_code == 409, results["second"].text
    assert results["second"].json()["type"].endswith("/idempotency-key-in-flight")
    assert results["first"].status_code == 201
    assert results["retry"].status_code == 201
    assert results["retry"].json() == results["first"].json()
    assert results["retry"].headers["idempotent-replayed"] == "true"
    assert count_orders(runtime) == 1


def test_keys_expire_after_24_hours(
    app_client: TestClient, merchant: MerchantCtx, runtime: Runtime, clock: FrozenClock
) -> None:
    """After 24 h a key is forgotten: the same key with another body creates a new order."""
    app_client.post("/v1/orders", json=order(), headers=with_key(merchant, "k-6"))
    clock.advance(timedelta(hours=23, minutes=59))
    early = app_client.post(
        "/v1/orders", json=order(reference="B"), headers=with_key(merchant, "k-6")
    )
    assert early.status_code == 422
    clock.advance(timedelta(minutes=1))
    late = app_client.post(
        "/v1/orders", json=order(reference="B"), headers=with_key(merchant, "k-6")
    )
    assert late.status_code == 201 and "idempotent-replayed" not in late.headers
    with runtime.sessions() as session, session.begin():
        clock.advance(timedelta(hours=24))
        assert idempotency.purge_expired(session, clock) == 1
    assert count_orders(runtime) == 2


def test_keys_belong_to_one_merchant(
    app_client: TestClient, make_merchant: Callable[..., MerchantCtx], runtime: Runtime
) -> None:
    """Two merchants may use the same key; neither sees the other's stored answer."""
    first, second = make_merchant("A"), make_merchant("B")
    a = app_client.post("/v1/orders", json=order(), headers=with_key(first, "shared"))
    b = app_client.post("/v1/orders", json=order(), headers=with_key(second, "shared"))
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"] and "idempotent-replayed" not in b.headers
    assert count_orders(runtime) == 2


def test_an_unusable_key_is_400(app_client: TestClient, merchant: MerchantCtx) -> None:
    """An empty, over-long or non-ASCII key is a 400 problem; a quoted key is accepted."""
    for key in ("", "x" * 256, "clé"):
        resp = app_client.post(
            "/v1/orders",
            json=order(),
            headers=[*merchant.headers.items(), ("Idempotency-Key", key.encode())],
        )
        assert resp.status_code == 400, key
        assert resp.json()["errors"][0]["field"] == "Idempotency-Key"
    quoted = app_client.post("/v1/orders", json=order(), headers=with_key(merchant, '"abc"'))
    plain = app_client.post("/v1/orders", json=order(), headers=with_key(merchant, "abc"))
    assert quoted.status_code == 201 and plain.headers["idempotent-replayed"] == "true"


def test_the_csv_import_is_idempotent_too(
    app_client: TestClient, merchant: MerchantCtx, runtime: Runtime
) -> None:
    """Retrying an import with its key replays the answer; another file with it is a 422."""
    headers = {**with_key(merchant, "imp-1"), "Content-Type": "text/csv"}
    first = app_client.post("/v1/orders/import", content=CSV.encode(), headers=headers)
    again = app_client.post("/v1/orders/import", content=CSV.encode(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    other = app_client.post(
        "/v1/orders/import", content=CSV.replace("C-1", "C-2").encode(), headers=headers
    )
    assert other.status_code == 422
    assert count_orders(runtime) == 1
