"""The simulator's message sinks are real peers: an e-mail sent by SMTP, a webhook and an SMS
(apprise's json:// form) posted over HTTP are each kept once, with who they were for."""

from __future__ import annotations

import smtplib
from datetime import UTC, datetime
from email.message import EmailMessage

import httpx

from doorstep.clock import FrozenClock
from doorstep.simulator.sinks import Sinks

AT = datetime(2026, 12, 8, 9, 30, tzinfo=UTC)


def test_an_email_is_kept_with_its_order_and_id() -> None:
    with Sinks(FrozenClock(AT)) as sinks:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "shop@example.com", "ada@example.com", "Delivered"
        msg["Message-ID"] = "<msg_1@doorstep.test>"
        msg["References"] = "<ord_01ABC@doorstep.test>"
        msg.set_content("Your order was delivered.")
        host, port = sinks.smtp_url.removeprefix("smtp://").split(":")
        with smtplib.SMTP(host, int(port)) as smtp:
            smtp.send_message(msg)
        (got,) = sinks.messages()
    assert (got.channel, got.to, got.subject, got.order_id) == (
        "email",
        "ada@example.com",
        "Delivered",
        "ord_01ABC",
    )
    assert got.key == "<msg_1@doorstep.test>" and "delivered" in got.body and got.at == AT


def test_webhooks_and_sms_are_told_apart_and_counted() -> None:
    with Sinks() as sinks:
        hook = {"type": "delivery.delivered", "data": {"order_id": "ord_9"}}
        httpx.post(sinks.webhook_url, json=hook, headers={"webhook-id": "msg_9"})
        sms_base = sinks.sms_url.replace("json://", "http://").split("?")[0]
        httpx.post(sms_base, json={"title": "", "message": "Out for delivery", "to": "+37761"})
        messages = sinks.messages()
    assert [m.channel for m in messages] == ["webhook", "sms"]
    assert (messages[0].subject, messages[0].order_id, messages[0].key) == (
        "delivery.delivered",
        "ord_9",
        "msg_9",
    )
    assert (messages[1].to, messages[1].body) == ("+37761", "Out for delivery")
    assert sinks.count("sms") == 1 and sinks.count() == 2
