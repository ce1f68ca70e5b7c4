"""Merchant webhooks against a real local HTTP receiver, verified with ``standardwebhooks``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook

from doorstep.clock import FrozenClock
from doorstep.domain.notifications.relay import relay_once
from doorstep.runtime import Runtime
from tests.api.test_orders import create, move
from tests.conftest import MerchantCtx
from tests.peers import Received, allowing_private, http_receiver


@pytest.fixture
def allow_private(runtime: Runtime) -> Runtime:
    return allowing_private(runtime)


@pytest.fixture
def client(allow_private: Runtime) -> Iterator[TestClient]:
    from doorstep.web.app import create_app

    with TestClient(create_app(allow_private, migrate=False)) as c:
        yield c


def add_endpoint(
    client: TestClient, merchant: MerchantCtx, url: str, **extra: Any
) -> dict[str, Any]:
    resp = client.post(
        "/v1/webhook-endpoints", json={"url": url, **extra}, headers=merchant.headers
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def verify(secret: str, got: Received) -> dict[str, Any]:
    payload: dict[str, Any] = Webhook(secret).verify(got.body, got.headers)
    return payload


def test_every_event_is_delivered_signed_per_standard_webhooks(
    client: TestClient, merchant: MerchantCtx, allow_private: Runtime
) -> None:
    """Order events reach the endpoint with webhook-id/timestamp/signature that verify."""
    with http_receiver() as peer:
        endpoint = add_endpoint(client, merchant, peer.url)
        assert endpoint["secret"].startswith("whsec_")
        assert (
            "secret"
            not in client.get(
                f"/v1/webhook-endpoints/{endpoint['id']}", headers=merchant.headers
            ).json()
        )
        order = create(client, merchant)
        move(client, merchant, order["id"], "scheduled")
        assert relay_once(allow_private) == 2
        got = list(peer.received)
        # Both events share one frozen instant and the relay sends concurrently, so they may
        # arrive in either order (Standard Webhooks promises no order); index them by type.
        payloads = {p["type"]: p for p in (verify(endpoint["secret"], r) for r in got)}
        assert sorted(payloads) == ["delivery.scheduled", "order.created"]
        scheduled = payloads["delivery.scheduled"]
        assert payloads["order.created"]["data"]["order_id"] == order["id"]
        assert scheduled["data"]["order_id"] == order["id"]
        assert scheduled["data"]["status"] == "scheduled"
        assert scheduled["data"]["tag"] == "InfoReceived"
        assert all(r.headers["webhook-id"].startswith("msg_") for r in got)
        metrics = client.get("/metrics").text
        assert 'doorstep_messages_total{channel="webhook",outcome="sent"}' in metrics
        # message.* events (the recipient e-mail's timeline) never go to webhooks
        assert relay_once(allow_private) == 0


def test_receiver_down_three_times_gets_the_message_once_with_the_same_id(
    client: TestClient, merchant: MerchantCtx, allow_private: Runtime, clock: FrozenClock
) -> None:
    """500, 500, 500, then 200: retried with backoff (first within a minute), received once."""
    with http_receiver(script=[500, 500, 500]) as peer:
        endpoint = add_endpoint(client, merchant, peer.url, events=["order.created"])
        create(client, merchant)
        assert relay_once(allow_private) == 1
        assert relay_once(allow_private) == 0  # not due yet
        clock.advance(timedelta(seconds=60))  # first retry: 30 s +- 20 %
        assert relay_once(allow_private) == 1
        for _ in range(2):
            clock.advance(timedelta(hours=1))
            assert relay_once(allow_private) == 1
        clock.advance(timedelta(hours=1))
        assert relay_once(allow_private) == 0
        statuses = [r.json()["type"] for r in peer.received]
        assert statuses == ["order.created"] * 4
        ids = {r.headers["webhook-id"] for r in peer.received}
        assert len(ids) == 1  # one message, four attempts
        verify(endpoint["secret"], peer.received[-1])
        resp = client.get(
            f"/v1/webhook-endpoints/{endpoint['id']}/attempts", headers=merchant.headers
        )
        attempts = resp.json()["items"]
        assert [a["status_code"] for a in attempts] == [200, 500, 500, 500]
        assert attempts[1]["response_excerpt"] == "receiver is down"
        assert all(a["duration_ms"] >= 0 for a in attempts)
        # Manual replay of that one message: same webhook-id, delivered again.
        resp = client.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/replay",
            json={"message_id": attempts[0]["message_id"]},
            headers=merchant.headers,
        )
        assert resp.status_code == 202 and resp.json() == {"queued": 1}
        assert relay_once(allow_private) == 1
        assert [r.headers["webhook-id"] for r in peer.received[-1:]] == list(ids)


def test_rotation_signs_with_both_secrets(
    client: TestClient, merchant: MerchantCtx, allow_private: Runtime
) -> None:
    """After a rotation a receiver still holding the old secret verifies, and so does the new."""
    with http_receiver() as peer:
        endpoint = add_endpoint(client, merchant, peer.url)
        resp = client.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=merchant.headers
        )
        new_secret = resp.json()["secret"]
        assert new_secret != endpoint["secret"]
        create(client, merchant)
        relay_once(allow_private)
        [got] = peer.received
        assert len(got.headers["webhook-signature"].split(" ")) == 2
        verify(endpoint["secret"], got)
        verify(new_secret, got)


def test_private_and_loopback_urls_are_refused(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """Without DOORSTEP_WEBHOOK_ALLOW_PRIVATE, loopback/private/link-local hosts are a 422."""
    for url in (
        "http://127.0.0.1:9/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://localhost/hook",
    ):
        resp = app_client.post("/v1/webhook-endpoints", json={"url": url}, headers=merchant.headers)
        assert resp.status_code == 422, url
        assert resp.json()["errors"][0]["field"] == "url"


def test_a_private_url_is_refused_at_send_too(
    client: TestClient, merchant: MerchantCtx, allow_private: Runtime, runtime: Runtime
) -> None:
    """An endpoint accepted while private URLs were allowed is not called once they are not."""
    with http_receiver() as peer:
        endpoint = add_endpoint(client, merchant, peer.url)
        create(client, merchant)
        assert relay_once(runtime) == 1  # the strict settings
        assert peer.received == []
        resp = client.get(
            f"/v1/webhook-endpoints/{endpoint['id']}/attempts", headers=merchant.headers
        )
        [attempt] = resp.json()["items"]
        assert attempt["error"].startswith("refused:")


def test_endpoints_are_scoped_to_their_merchant(
    client: TestClient, merchant: MerchantCtx, make_merchant: Any
) -> None:
    """Another merchant's endpoint is a 404 for reading, changing and deleting."""
    endpoint = add_endpoint(client, merchant, "http://127.0.0.1:9/hook")
    other = make_merchant("Other Shop")
    path = f"/v1/webhook-endpoints/{endpoint['id']}"
    assert client.get(path, headers=other.headers).status_code == 404
    assert client.patch(path, json={"active": False}, headers=other.headers).status_code == 404
    assert client.delete(path, headers=other.headers).status_code == 404
    assert client.get("/v1/webhook-endpoints", headers=other.headers).json() == {"items": []}


def test_the_old_secret_stops_signing_when_the_rotation_overlap_ends(
    client: TestClient, merchant: MerchantCtx, allow_private: Runtime, clock: FrozenClock
) -> None:
    """24 hours after a rotation the worker's upkeep job forgets the old secret: one signature."""
    from doorstep.domain.notifications.webhook_health import run_webhook_health

    with http_receiver() as peer:
        endpoint = add_endpoint(client, merchant, peer.url)
        path = f"/v1/webhook-endpoints/{endpoint['id']}"
        new_secret = client.post(f"{path}/rotate-secret", headers=merchant.headers).json()["secret"]
        assert run_webhook_health(allow_private) == 0  # still in the overlap
        clock.advance(timedelta(hours=25))
        assert run_webhook_health(allow_private) == 1
        assert client.get(path, headers=merchant.headers).json()["rotation_ends_at"] is None
        create(
            client,
            merchant,
            window={"start": "2026-11-27T14:00:00+01:00", "end": "2026-11-27T16:00:00+01:00"},
        )
        relay_once(allow_private)
        [got] = peer.received
        assert len(got.headers["webhook-signature"].split(" ")) == 1
        verify(new_secret, got)
