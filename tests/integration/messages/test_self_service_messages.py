"""The recipient's own changes on the tracking page (redirect, hold, instructions) come back
to them as a confirmation in their language on the merchant's channels, and reach webhooks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from doorstep.domain.accounts.models import Merchant
from doorstep.domain.notifications.config import Trigger
from doorstep.domain.notifications.defaults import LOCALES
from doorstep.domain.notifications.relay import relay_once
from doorstep.domain.notifications.templates import render_message, sample_context
from doorstep.runtime import Runtime
from tests.api.test_selfservice import WINDOWS
from tests.conftest import MerchantCtx
from tests.peers import HttpPeer, allowing_private, hooks_to, http_receiver, texts_to
from tests.slots_setup import IN_MONACO, monaco_setup

SELF_SERVICE = ["redirected", "held", "instructions_changed"]


@pytest.fixture
def peers(runtime: Runtime, merchant: MerchantCtx) -> Iterator[tuple[HttpPeer, HttpPeer]]:
    """SMS through apprise to one local receiver; order.* webhooks to another."""
    with http_receiver() as sms, http_receiver() as hooks:
        texts_to(
            runtime,
            merchant.id,
            sms,
            {"order_confirmed": [], **{t: ["sms"] for t in SELF_SERVICE}},
            quiet_hours=None,
        )
        hooks_to(runtime, merchant.id, hooks, ["order.*"])
        yield sms, hooks


def new_order(client: TestClient, merchant: MerchantCtx, locale: str) -> str:
    r = client.post(
        "/v1/orders",
        headers=merchant.headers,
        json={
            "reference": f"SO-{locale}",
            "recipient": {"name": "Ada Lovelace", "phone": "+33612345678", "locale": locale},
            "address": {
                "line1": "1 Avenue de la Costa",
                "city": "Monaco",
                "country": "MC",
                **IN_MONACO,
            },
            "window": {"start": "2026-11-26T10:00:00+01:00", "end": "2026-11-26T12:00:00+01:00"},
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.mark.parametrize(
    ("locale", "neighbour", "held", "instructions"),
    [
        ("en", "will go to your neighbour Mme Curie, no. 3", "until December 1, 2026", "Ring"),
        ("fr", "ira chez votre voisin Mme Curie, n° 3", "jusqu'au 1 décembre 2026", "Ring"),
        ("fi", "menee: naapurillesi Mme Curie, nro 3", "1. joulukuuta 2026 asti", "Ring"),
    ],
)
def test_a_redirect_a_hold_and_new_instructions_are_confirmed_to_the_recipient(
    app_client: TestClient,
    runtime: Runtime,
    merchant: MerchantCtx,
    peers: tuple[HttpPeer, HttpPeer],
    locale: str,
    neighbour: str,
    held: str,
    instructions: str,
) -> None:
    sms, hooks = peers
    monaco_setup(app_client, merchant, windows=WINDOWS)
    order_id = new_order(app_client, merchant, locale)
    base = f"/v1/orders/{order_id}"
    for path, body in (
        (
            "redirect",
            {"kind": "neighbour", "neighbour": {"name": "Mme Curie", "house_number": "3"}},
        ),
        ("instructions", {"instructions": "Ring twice"}),
        ("hold", {"until": "2026-12-01"}),
    ):
        r = app_client.post(f"{base}/{path}", headers=merchant.headers, json=body)
        assert r.status_code == 200, r.text
    for _ in range(5):
        if relay_once(allowing_private(runtime)) == 0:
            break
    texts = [r.json()["message"] for r in sms.received]
    assert len(texts) == 3, texts
    # Sent concurrently: in any order, one of each.
    for expected in (neighbour, instructions, held):
        assert sum(expected in text for text in texts) == 1, (expected, texts)
    types = {r.json()["type"] for r in hooks.received}
    assert {"order.redirected", "order.instructions_changed", "order.held"} <= types


def test_a_recipient_who_turned_the_trigger_off_gets_no_confirmation(
    app_client: TestClient,
    runtime: Runtime,
    merchant: MerchantCtx,
    peers: tuple[HttpPeer, HttpPeer],
) -> None:
    """The merchant's trigger settings decide: redirect confirmations off, nothing sent; the
    webhook still goes."""
    sms, hooks = peers
    app_client.patch(
        "/v1/notification-settings",
        headers=merchant.headers,
        json={"triggers": {"redirected": []}},
    ).raise_for_status()
    monaco_setup(app_client, merchant, windows=WINDOWS)
    order_id = new_order(app_client, merchant, "en")
    r = app_client.post(
        f"/v1/orders/{order_id}/redirect",
        headers=merchant.headers,
        json={"kind": "safe_place", "safe_place": {"place": "porch", "photo_consent": True}},
    )
    assert r.status_code == 200, r.text
    relay_once(allowing_private(runtime))
    assert sms.received == []
    assert "order.redirected" in {r.json()["type"] for r in hooks.received}


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize(
    "trigger", [Trigger.REDIRECTED, Trigger.HELD, Trigger.INSTRUCTIONS_CHANGED]
)
@pytest.mark.parametrize("channel", ["email", "sms"])
def test_every_default_confirmation_renders_in_every_language(
    runtime: Runtime, merchant: MerchantCtx, locale: str, trigger: Trigger, channel: str
) -> None:
    with runtime.sessions() as session:
        row = session.get(Merchant, merchant.id)
        assert row is not None
        context = sample_context(row, locale, "https://shop.example")
        out = render_message(session, row, trigger, channel, locale, context)
    assert out.locale == locale
    assert out.subject and "{{" not in out.body
    assert "https://shop.example/t/EXAMPLE" in out.body
    if trigger is Trigger.REDIRECTED:
        assert "Grace" in out.body
