"""A reschedule reaches the recipient as the "new delivery time" message with the new window
(and only the latest when they move it twice), and the merchant's webhook as
``order.rescheduled``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from doorstep.domain.notifications.relay import relay_once
from doorstep.runtime import Runtime
from tests.api.test_selfservice import WINDOWS, new_order
from tests.conftest import MerchantCtx
from tests.peers import HttpPeer, allowing_private, hooks_to, http_receiver, texts_to
from tests.slots_setup import monaco_setup


@pytest.fixture
def peers(runtime: Runtime, merchant: MerchantCtx) -> Iterator[tuple[HttpPeer, HttpPeer]]:
    """New-window SMS through apprise to one local receiver; order.* webhooks to another."""
    with http_receiver() as sms, http_receiver() as hooks:
        texts_to(
            runtime,
            merchant.id,
            sms,
            {"order_confirmed": [], "window_changed": ["sms"]},
            quiet_hours=None,
        )
        hooks_to(runtime, merchant.id, hooks, ["order.*"])
        yield sms, hooks


def test_a_reschedule_is_confirmed_with_the_new_window_and_reaches_webhooks(
    app_client: TestClient,
    runtime: Runtime,
    merchant: MerchantCtx,
    peers: tuple[HttpPeer, HttpPeer],
) -> None:
    """Moved to Saturday 09-13, then to Friday 10-12 before the relay runs: one SMS, with
    Friday's window; the webhook receives both order.rescheduled events."""
    sms, hooks = peers
    cal = monaco_setup(app_client, merchant, windows=WINDOWS)["calendar"]
    order = new_order(app_client, merchant)
    for start in ("2026-11-28T09:00:00+01:00", "2026-11-27T10:00:00+01:00"):
        r = app_client.post(
            f"/v1/orders/{order['id']}/reschedule",
            headers=merchant.headers,
            json={"calendar_id": cal["id"], "start": start},
        )
        assert r.status_code == 200, r.text
    for _ in range(5):
        if relay_once(allowing_private(runtime)) == 0:
            break
    texts = [r.json()["message"] for r in sms.received]
    assert len(texts) == 1, texts
    assert "new delivery time" in texts[0]
    assert "Fri 27 Nov, 10:00\u201312:00" in texts[0], texts[0]
    rescheduled = [r.json() for r in hooks.received if r.json()["type"] == "order.rescheduled"]
    assert len(rescheduled) == 2, [r.json()["type"] for r in hooks.received]
