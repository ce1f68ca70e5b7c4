"""Webhook endpoints over time: disabled only after a long failure streak (the owner is told
by e-mail), re-enabled by the merchant, and replayed from a point in time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from doorstep.clock import FrozenClock
from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Merchant, Role
from doorstep.domain.accounts.users import create_user
from doorstep.domain.notifications.relay import relay_once
from doorstep.runtime import Runtime
from doorstep.web.app import create_app
from tests.api.test_orders import create
from tests.conftest import MerchantCtx
from tests.peers import SmtpPeer, http_receiver, smtp_server

LATER = {"start": "2026-11-27T14:00:00+01:00", "end": "2026-11-27T16:00:00+01:00"}


@pytest.fixture
def smtp() -> Iterator[SmtpPeer]:
    with smtp_server() as peer:
        yield peer


@pytest.fixture
def rt(runtime: Runtime, smtp: SmtpPeer) -> Runtime:
    settings = runtime.settings.model_copy(
        update={
            "webhook_allow_private": True,
            "smtp_url": smtp.url,
            "webhook_disable_after_hours": 6,
        }
    )
    return Runtime(settings=settings, clock=runtime.clock, engine=runtime.engine)


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt, migrate=False)) as c:
        yield c


def test_a_long_failure_streak_disables_the_endpoint_and_emails_the_owner(
    client: TestClient, merchant: MerchantCtx, rt: Runtime, clock: FrozenClock, smtp: SmtpPeer
) -> None:
    """Failing for the configured hours (not one bad answer) disables it; the owner is told."""
    with transaction(rt.sessions) as session:
        row = session.get(Merchant, merchant.id)
        assert row is not None
        row.config = {"notifications": {"triggers": {"order_confirmed": []}}}  # webhooks only
        create_user(
            session,
            rt.clock,
            row,
            "owner@riviera.example",
            "Owner",
            Role.OWNER,
            "a long and decent passphrase",
        )
    with http_receiver(script=[500] * 50) as peer:
        resp = client.post(
            "/v1/webhook-endpoints",
            json={"url": peer.url, "events": ["order.*"]},
            headers=merchant.headers,
        )
        endpoint = resp.json()
        path = f"/v1/webhook-endpoints/{endpoint['id']}"
        create(client, merchant)
        relay_once(rt)
        assert client.get(path, headers=merchant.headers).json()["active"] is True
        for _ in range(5):  # retries at 30 s, 2 min, 10 min, 30 min, 1 h: still under 6 h
            clock.advance(timedelta(hours=1))
            relay_once(rt)
        state = client.get(path, headers=merchant.headers).json()
        assert state["active"] is True and state["failure_streak"] >= 5  # 5 or 6: jitter
        clock.advance(timedelta(hours=3))  # past the next retry, 8 h after the first failure
        relay_once(rt)
        state = client.get(path, headers=merchant.headers).json()
        assert state["active"] is False
        assert "every delivery failed" in state["disabled_reason"]
        relay_once(rt)  # the owner's e-mail
        [mail] = smtp.messages
        assert mail["To"] == "owner@riviera.example"
        assert "disabled" in mail["Subject"]
        assert endpoint["id"] in mail.get_content()
        # Disabled: later events are not sent to it. Re-enabled by the merchant, they are.
        create(client, merchant, reference="SO-1002", window=LATER)
        assert relay_once(rt) == 0  # nothing queued for a disabled endpoint (replay catches up)
        sent_before = len(peer.received)
        resp = client.patch(path, json={"active": True}, headers=merchant.headers)
        assert resp.json()["active"] is True and resp.json()["failure_streak"] == 0
        peer.script.clear()
        create(client, merchant, reference="SO-1003", window=LATER)
        relay_once(rt)
        assert len(peer.received) == sent_before + 1
        assert peer.received[-1].json()["data"]["order_id"]


def test_replay_since_a_time_sends_events_from_before_the_endpoint_existed(
    client: TestClient, merchant: MerchantCtx, rt: Runtime, clock: FrozenClock
) -> None:
    """An integrator that joins late asks for everything since a time and gets it, in order."""
    first = create(client, merchant, reference="SO-1")
    clock.advance(timedelta(minutes=5))
    second = create(client, merchant, reference="SO-2")
    with http_receiver() as peer:
        resp = client.post(
            "/v1/webhook-endpoints",
            json={"url": peer.url, "events": ["order.created"]},
            headers=merchant.headers,
        )
        endpoint_id = resp.json()["id"]
        since = (clock.now() - timedelta(minutes=10)).astimezone(UTC)
        resp = client.post(
            f"/v1/webhook-endpoints/{endpoint_id}/replay",
            json={"since": since.isoformat()},
            headers=merchant.headers,
        )
        assert resp.status_code == 202 and resp.json() == {"queued": 2}
        relay_once(rt)
        got = sorted(r.json()["data"]["order_id"] for r in peer.received)
        assert got == sorted([first["id"], second["id"]])
        resp = client.post(
            f"/v1/webhook-endpoints/{endpoint_id}/replay",
            json={"since": datetime(2030, 1, 1, tzinfo=UTC).isoformat()},
            headers=merchant.headers,
        )
        assert resp.json() == {"queued": 0}
