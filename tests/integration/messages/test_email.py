"""Recipient e-mails end to end: an order event queues a message in its own transaction, the
relay sends it to a real SMTP server, and the mail reads as a mail client would read it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar

from doorstep.domain.notifications.relay import relay_once
from doorstep.runtime import Runtime
from tests.api.test_orders import create
from tests.conftest import MerchantCtx
from tests.peers import SmtpPeer, smtp_server


@pytest.fixture
def smtp() -> Iterator[SmtpPeer]:
    with smtp_server() as peer:
        yield peer


@pytest.fixture
def mail_runtime(runtime: Runtime, smtp: SmtpPeer) -> Runtime:
    settings = runtime.settings.model_copy(update={"smtp_url": smtp.url})
    return Runtime(settings=settings, clock=runtime.clock, engine=runtime.engine)


def events(client: TestClient, merchant: MerchantCtx, order_id: str) -> list[dict[str, Any]]:
    resp = client.get(f"/v1/orders/{order_id}/events", headers=merchant.headers)
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["data"]
    return items


def parts(msg: EmailMessage) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("text/plain", "text/html", "text/calendar") and ctype not in found:
            assert isinstance(part, EmailMessage)
            found[ctype] = part.get_content()
    return found


def test_order_confirmation_mail_has_jsonld_calendar_and_one_click_unsubscribe(
    app_client: TestClient, merchant: MerchantCtx, mail_runtime: Runtime, smtp: SmtpPeer
) -> None:
    """A created order's confirmation reaches SMTP with JSON-LD, an .ics and RFC 8058 headers."""
    order = create(app_client, merchant)
    assert relay_once(mail_runtime) == 1
    [msg] = smtp.messages
    assert msg["To"] == "ada@example.com"
    assert "Riviera Florist" in msg["From"]
    body = parts(msg)
    assert "SO-1001" in body["text/plain"] and "/t/" in body["text/plain"]  # French template
    assert "Bonjour Ada" in body["text/plain"]
    html = body["text/html"]
    [raw] = re.findall(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    ld = json.loads(raw)
    assert ld["@type"] == "ParcelDelivery"
    assert ld["expectedArrivalUntil"] == "2026-11-25T15:00:00+00:00"
    assert ld["trackingUrl"] == order["tracking_url"]
    assert ld["partOfOrder"]["orderNumber"] == "SO-1001"
    assert ld["deliveryAddress"]["streetAddress"] == "1 Avenue de la Costa"
    cal = Calendar.from_ical(body["text/calendar"])
    [vevent] = [c for c in cal.walk() if c.name == "VEVENT"]
    assert str(vevent["UID"]) == f"delivery-{order['id']}@127.0.0.1"
    assert int(vevent["SEQUENCE"]) == 0
    unsubscribe = msg["List-Unsubscribe"]
    assert re.fullmatch(r"<http://127\.0\.0\.1:8000/u/[^>]+>", unsubscribe)
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["References"] == f"<{order['id']}@127.0.0.1>"
    timeline = events(app_client, merchant, order["id"])
    types = [e["type"] for e in timeline]
    assert types[:3] == ["order.created", "message.queued", "message.sent"]
    sent = timeline[2]["data"]
    assert msg["Message-ID"] == f"<{sent['message_id']}@127.0.0.1>"
    assert (sent["channel"], sent["trigger"]) == ("email", "order_confirmed")

    # One click (as a mail client does it, no cookies): opted out at once, recorded.
    path = unsubscribe.strip("<>").removeprefix("http://127.0.0.1:8000")
    resp = app_client.post(path, content=b"List-Unsubscribe=One-Click")
    assert resp.status_code == 200
    resp = app_client.patch(
        f"/v1/orders/{order['id']}",
        json={"window": {"start": "2026-11-26T14:00:00+01:00", "end": "2026-11-26T16:00:00+01:00"}},
        headers=merchant.headers,
    )
    assert resp.status_code == 200, resp.text
    assert relay_once(mail_runtime) == 0
    assert len(smtp.messages) == 1
    tail = [(e["type"], e["data"].get("reason")) for e in events(app_client, merchant, order["id"])]
    assert ("recipient.opted_out", None) in tail
    assert tail[-1] == ("message.suppressed", "opted_out")


def test_moved_window_sends_a_new_calendar_sequence_in_the_same_thread(
    app_client: TestClient, merchant: MerchantCtx, mail_runtime: Runtime, smtp: SmtpPeer
) -> None:
    """A moved window is announced with the same UID, SEQUENCE 1 and the order's References."""
    order = create(app_client, merchant)
    resp = app_client.patch(
        f"/v1/orders/{order['id']}",
        json={"window": {"start": "2026-11-26T14:00:00+01:00", "end": "2026-11-26T16:00:00+01:00"}},
        headers=merchant.headers,
    )
    assert resp.status_code == 200, resp.text
    assert relay_once(mail_runtime) == 2
    first, second = smtp.messages
    cals = [Calendar.from_ical(parts(m)["text/calendar"]) for m in (first, second)]
    vevents = [next(c for c in cal.walk() if c.name == "VEVENT") for cal in cals]
    assert {int(v["SEQUENCE"]) for v in vevents} == {1}  # both render the current window
    assert vevents[0]["UID"] == vevents[1]["UID"]
    assert first["References"] == second["References"]
    assert first["Message-ID"] != second["Message-ID"]
