"""The recipient's protections and the trigger rules, with SMS sent through apprise to a real
local HTTP receiver (apprise's ``json://`` service): stale messages are suppressed, delay alerts
carry the new ETA window and their lead time, ETA messages are rate-limited, quiet hours hold
non-urgent messages but not "arriving soon", and an "arriving soon" that would say nothing new
is folded into the message that said it (or into the doorbell)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from doorstep.clock import FrozenClock
from doorstep.db.engine import transaction
from doorstep.domain.errors import Actor
from doorstep.domain.notifications.relay import relay_once
from doorstep.domain.orders.events import append_event, change_status
from doorstep.domain.orders.models import Order
from doorstep.domain.orders.status import Reason, Status
from doorstep.runtime import Runtime
from tests.api.test_orders import create
from tests.conftest import MerchantCtx
from tests.driving import publish_day
from tests.integration.messages.test_email import events
from tests.peers import HttpPeer, http_receiver, texts_to


@pytest.fixture
def sms(runtime: Runtime, merchant: MerchantCtx) -> Iterator[HttpPeer]:
    """The merchant sends SMS (only) through apprise to a local receiver."""
    with http_receiver() as peer:
        texts_to(runtime, merchant.id, peer, {t: ["sms"] for t in TRIGGERS})
        yield peer


TRIGGERS = [
    "order_confirmed",
    "window_changed",
    "out_for_delivery",
    "arriving_soon",
    "delayed",
    "delivered",
    "attempt_failed",
]


def drive(runtime: Runtime, order_id: str, *statuses: str, reason: Reason | None = None) -> None:
    with transaction(runtime.sessions) as session:
        order = session.get(Order, order_id)
        assert order is not None
        for status in statuses:
            change_status(
                session, runtime.clock, order, Status(status), actor=Actor.system(), reason=reason
            )


def eta(runtime: Runtime, order_id: str, **data: Any) -> None:
    with transaction(runtime.sessions) as session:
        order = session.get(Order, order_id)
        assert order is not None
        append_event(
            session,
            runtime.clock,
            merchant_id=order.merchant_id,
            type="delivery.eta_updated",
            actor=Actor.system(),
            order=order,
            data=data,
        )


def texts(peer: HttpPeer) -> list[str]:
    return [r.json()["message"] for r in peer.received]


def message_events(
    client: TestClient, merchant: MerchantCtx, order_id: str
) -> list[tuple[str, Any, Any]]:
    return [
        (e["type"], e["data"].get("trigger"), e["data"].get("reason"))
        for e in events(client, merchant, order_id)
        if e["type"].startswith("message.")
    ]


def test_arriving_soon_after_delivery_is_suppressed_not_sent(
    app_client: TestClient,
    merchant: MerchantCtx,
    runtime: Runtime,
    sms: HttpPeer,
    clock: FrozenClock,
) -> None:
    """An "arriving soon" still queued when the parcel is delivered is suppressed as stale."""
    order = create(app_client, merchant)
    assert relay_once(runtime) == 1
    assert sms.received[0].json()["to"] == "+33612345678"  # E.164, escaped through the URL
    drive(runtime, order["id"], "picked_up", "out_for_delivery")
    clock.advance(timedelta(minutes=40))  # not minutes after "out for delivery": not folded
    eta(runtime, order["id"], stops_before=0, minutes_away=4, eta="2026-11-25T07:44:00+00:00")
    drive(runtime, order["id"], "delivered")
    assert relay_once(runtime) == 3
    sent = texts(sms)
    assert len(sent) == 2 and any("Preuve" in t for t in sent)  # the recipient's language
    log = message_events(app_client, merchant, order["id"])
    suppressed = {(t, r) for kind, t, r in log if kind == "message.suppressed"}
    assert suppressed == {
        ("out_for_delivery", "stale: the order is delivered"),
        ("arriving_soon", "stale: the order is delivered"),
    }
    # A second "next stop" ETA does not queue a second arriving-soon message.
    assert [t for kind, t, _ in log if kind == "message.queued"].count("arriving_soon") == 1


def test_delay_alert_has_the_new_eta_window_lead_time_and_a_rate_limit(
    app_client: TestClient,
    merchant: MerchantCtx,
    runtime: Runtime,
    sms: HttpPeer,
    clock: FrozenClock,
) -> None:
    """A delay reaches the recipient with the latest ETA window before the window ends; its
    lead time is recorded; a second delay within the interval is suppressed."""
    order = create(app_client, merchant)
    drive(runtime, order["id"], "picked_up", "out_for_delivery")
    clock.set(datetime(2026, 11, 25, 13, 0, tzinfo=UTC))  # 14:00 in Monaco, window 14-16
    eta(
        runtime,
        order["id"],
        eta="2026-11-25T15:40:00+00:00",
        earliest="2026-11-25T15:30:00+00:00",
        latest="2026-11-25T15:50:00+00:00",
        stops_before=12,
        minutes_away=160,
    )
    drive(runtime, order["id"], "delivery_delayed")
    relay_once(runtime)
    assert any("16:30\u201316:50" in t for t in texts(sms)), texts(sms)  # Monaco time
    timeline = events(app_client, merchant, order["id"])
    [sent] = [
        e for e in timeline if e["type"] == "message.sent" and e["data"]["trigger"] == "delayed"
    ]
    assert sent["data"]["lead_time_minutes"] == 120  # window ends 15:00 UTC
    drive(runtime, order["id"], "out_for_delivery", "delivery_delayed")
    log = message_events(app_client, merchant, order["id"])
    assert [e for e in log if e[1] == "delayed"][-1] == (
        "message.suppressed",
        "delayed",
        "rate_limited",
    )
    clock.advance(timedelta(minutes=31))
    drive(runtime, order["id"], "out_for_delivery", "delivery_delayed")
    log = message_events(app_client, merchant, order["id"])
    assert [e for e in log if e[1] == "delayed"][-1] == ("message.queued", "delayed", None)


def test_quiet_hours_hold_the_confirmation_but_not_arriving_soon(
    app_client: TestClient,
    merchant: MerchantCtx,
    runtime: Runtime,
    sms: HttpPeer,
    clock: FrozenClock,
) -> None:
    """At 22:30 in Monaco the confirmation waits until 08:00; "arriving soon" goes at once."""
    clock.set(datetime(2026, 11, 24, 21, 30, tzinfo=UTC))
    order = create(app_client, merchant)
    assert relay_once(runtime) == 0
    drive(runtime, order["id"], "picked_up", "out_for_delivery")
    clock.advance(timedelta(minutes=20))
    eta(runtime, order["id"], stops_before=0, minutes_away=3)
    assert relay_once(runtime) == 2  # out for delivery and arriving soon are urgent
    assert len(sms.received) == 2
    clock.set(datetime(2026, 11, 25, 7, 0, tzinfo=UTC))  # 08:00 in Monaco
    assert relay_once(runtime) == 1
    assert any("commande SO-1001" in t for t in texts(sms))


def test_failed_attempt_explains_the_reason_and_next_step(
    app_client: TestClient, merchant: MerchantCtx, runtime: Runtime, sms: HttpPeer
) -> None:
    """A failed attempt tells the recipient why, in their language, and what happens next."""
    order = create(
        app_client,
        merchant,
        recipient={"name": "Aino Virtanen", "phone": "+358401234567", "locale": "fi"},
    )
    drive(runtime, order["id"], "picked_up", "out_for_delivery")
    drive(runtime, order["id"], "delivery_failed", reason=Reason.CONSIGNEE_NOT_HOME)
    relay_once(runtime)
    [failed] = [t for t in texts(sms) if "epäonnistui" in t]
    assert "kukaan ei ollut kotona" in failed and "Yritämme uudelleen" in failed


def test_quiet_hours_are_read_in_the_recipients_country_timezone(
    app_client: TestClient,
    merchant: MerchantCtx,
    runtime: Runtime,
    sms: HttpPeer,
    clock: FrozenClock,
) -> None:
    """A Monaco shop's parcel for Helsinki, ordered at 21:30 Helsinki time (20:30 in Monaco):
    the confirmation waits until 08:00 in Helsinki (06:00 UTC), not 08:00 in Monaco; "arriving
    soon" goes at once."""
    clock.set(datetime(2026, 11, 24, 19, 30, tzinfo=UTC))
    order = create(
        app_client,
        merchant,
        address={
            "line1": "Mannerheimintie 1",
            "city": "Helsinki",
            "postal_code": "00100",
            "country": "FI",
            "lat": 60.1699,
            "lon": 24.9384,
        },
    )
    assert relay_once(runtime) == 0  # quiet in Helsinki, though not in Monaco
    drive(runtime, order["id"], "picked_up", "out_for_delivery")
    clock.advance(timedelta(minutes=20))
    eta(runtime, order["id"], stops_before=0, minutes_away=3)
    assert relay_once(runtime) == 2  # urgent: out for delivery, arriving soon
    clock.set(datetime(2026, 11, 25, 5, 59, tzinfo=UTC))
    assert relay_once(runtime) == 0
    clock.set(datetime(2026, 11, 25, 6, 0, tzinfo=UTC))  # 08:00 in Helsinki, 07:00 in Monaco
    assert relay_once(runtime) == 1
    assert any("SO-1001" in t for t in texts(sms))


def _log_of(client: TestClient, merchant: MerchantCtx, order_id: str, trigger: str) -> list[Any]:
    return [(k, r) for k, t, r in message_events(client, merchant, order_id) if t == trigger]


def test_arriving_soon_minutes_after_out_for_delivery_is_folded_into_it(
    app_client: TestClient,
    merchant: MerchantCtx,
    runtime: Runtime,
    sms: HttpPeer,
    clock: FrozenClock,
) -> None:
    """The first stop of a route: "out for delivery" (with its ETA window) and, three minutes
    later, "next stop" would be two texts for one piece of news; the second is suppressed with
    its reason on the timeline. A real heads-up later on (8 min away) still goes."""
    order = create(app_client, merchant)
    drive(runtime, order["id"], "picked_up", "out_for_delivery")
    clock.advance(timedelta(minutes=3))
    eta(runtime, order["id"], stops_before=0, minutes_away=12)
    relay_once(runtime)
    assert _log_of(app_client, merchant, order["id"], "arriving_soon") == [
        ("message.suppressed", "told_by_out_for_delivery")
    ]
    assert len(sms.received) == 2  # the confirmation and "out for delivery"
    clock.advance(timedelta(minutes=40))
    eta(runtime, order["id"], stops_before=0, minutes_away=8)
    relay_once(runtime)
    assert _log_of(app_client, merchant, order["id"], "arriving_soon")[-2:] == [
        ("message.queued", None),
        ("message.sent", None),
    ]


def test_arriving_soon_minutes_after_a_delay_alert_is_folded_into_it(
    app_client: TestClient,
    merchant: MerchantCtx,
    runtime: Runtime,
    sms: HttpPeer,
    clock: FrozenClock,
) -> None:
    """A delay alert carries the new ETA window; an "arriving soon" five minutes later adds
    nothing to it and is suppressed (reason ``told_by_delayed``)."""
    order = create(app_client, merchant)
    drive(runtime, order["id"], "picked_up", "out_for_delivery")
    clock.set(datetime(2026, 11, 25, 14, 50, tzinfo=UTC))  # 15:50 in Monaco, window 14-16
    eta(
        runtime,
        order["id"],
        eta="2026-11-25T15:08:00+00:00",
        earliest="2026-11-25T15:04:00+00:00",
        latest="2026-11-25T15:15:00+00:00",
        stops_before=1,
        minutes_away=18,
    )
    drive(runtime, order["id"], "delivery_delayed")
    clock.advance(timedelta(minutes=5))
    eta(runtime, order["id"], stops_before=0, minutes_away=11)
    relay_once(runtime)
    assert _log_of(app_client, merchant, order["id"], "delayed")[-1] == ("message.sent", None)
    assert _log_of(app_client, merchant, order["id"], "arriving_soon") == [
        ("message.suppressed", "told_by_delayed")
    ]


def test_no_arriving_soon_once_the_driver_is_at_the_door(
    app_client: TestClient,
    merchant: MerchantCtx,
    runtime: Runtime,
    sms: HttpPeer,
    clock: FrozenClock,
) -> None:
    """The ETA engine publishes the driver's arrival at a stop as an ETA update (0 min away);
    an "arriving soon" then would reach the recipient after the doorbell: it is suppressed
    (reason ``driver_at_door``), so the recipient's texts are "out for delivery" and then
    "delivered"."""
    day = publish_day(app_client, runtime, merchant)
    h = merchant.headers
    assert app_client.post(f"/v1/routes/{day.route['id']}/start", headers=h).status_code == 200
    stop = next(s for s in day.route["stops"] if s["order_id"] != day.pin_order_id)
    clock.advance(timedelta(minutes=45))
    arrived = app_client.post(f"/v1/stops/{stop['id']}/arrive", headers=h)
    assert arrived.status_code == 200, arrived.text
    eta(runtime, stop["order_id"], stop_id=stop["id"], stops_before=0, minutes_away=0.0)
    relay_once(runtime)
    log = _log_of(app_client, merchant, stop["order_id"], "arriving_soon")
    assert ("message.suppressed", "driver_at_door") in log
    assert ("message.queued", None) not in log
