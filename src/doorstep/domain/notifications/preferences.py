"""The recipient's say: channels, language, quiet hours, opt-out.

A recipient reaches their preferences through a link in every message:
``/p/{token}`` (the page) and ``/u/{token}`` (RFC 8058 one-click unsubscribe), where the token
is ``{order_id}.{HMAC-SHA256(secret, "prefs:" + order_id)}``. The link names the order it came
with; the preferences belong to the recipient (by e-mail or phone) across the merchant's orders.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import datetime

from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.domain.errors import Actor, FieldError, Unprocessable
from doorstep.domain.notifications.defaults import LOCALES
from doorstep.domain.notifications.models import RecipientPreference
from doorstep.domain.notifications.outbox import preference_for, recipient_key
from doorstep.domain.orders.events import append_event
from doorstep.domain.orders.models import Order
from doorstep.ids import new_id

_MAC_CHARS = 32
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _mac(secret_key: str, order_id: str) -> str:
    digest = hmac.new(secret_key.encode(), f"prefs:{order_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:_MAC_CHARS]


def preferences_token(secret_key: str, order_id: str) -> str:
    return f"{order_id}.{_mac(secret_key, order_id)}"


def preferences_url(base_url: str, secret_key: str, order_id: str) -> str:
    return f"{base_url.rstrip('/')}/p/{preferences_token(secret_key, order_id)}"


def unsubscribe_url(base_url: str, secret_key: str, order_id: str) -> str:
    return f"{base_url.rstrip('/')}/u/{preferences_token(secret_key, order_id)}"


def order_for_token(session: Session, secret_key: str, token: str) -> Order | None:
    """The order a preferences token names, or None for any wrong token."""
    order_id, _, mac = token.partition(".")
    if not order_id or len(mac) != _MAC_CHARS:
        return None
    if not hmac.compare_digest(mac, _mac(secret_key, order_id)):
        return None
    return session.get(Order, order_id)


def _ensure(session: Session, order: Order, now: datetime) -> RecipientPreference:
    pref = preference_for(session, order)
    if pref is None:
        key = recipient_key(order)
        if key is None:
            raise Unprocessable("this order has no recipient contact")
        pref = RecipientPreference(
            id=new_id("rpf", now),
            merchant_id=order.merchant_id,
            recipient_key=key,
            channels=[],
            opted_out=False,
            updated_at=now,
        )
        session.add(pref)
    return pref


def opt_out(session: Session, clock: Clock, order: Order, *, via: str) -> RecipientPreference:
    """Stop every recipient message to this recipient at once (pending ones are suppressed
    when their turn comes); recorded as ``recipient.opted_out``."""
    now = clock.now()
    pref = _ensure(session, order, now)
    if not pref.opted_out:
        pref.opted_out = True
        pref.updated_at = now
        append_event(
            session,
            clock,
            merchant_id=order.merchant_id,
            type="recipient.opted_out",
            actor=Actor("recipient"),
            order=order,
            data={"via": via},
        )
    return pref


def set_preferences(
    session: Session,
    clock: Clock,
    order: Order,
    *,
    channels: list[str],
    locale: str | None,
    quiet_start: str | None,
    quiet_end: str | None,
    opted_out: bool,
) -> RecipientPreference:
    """Save the recipient's choices; logs ``recipient.preferences_changed`` (and
    ``recipient.opted_out`` when they opt out)."""
    errors: list[FieldError] = []
    bad = [c for c in channels if c not in ("email", "sms", "chat")]
    if bad:
        errors.append(FieldError("channels", f"unknown channel {bad[0]}"))
    if locale and locale not in LOCALES:
        errors.append(FieldError("locale", f"one of {', '.join(LOCALES)}"))
    for name, value in (("quiet_start", quiet_start), ("quiet_end", quiet_end)):
        if value and not _HHMM.match(value):
            errors.append(FieldError(name, "a time as HH:MM"))
    if errors:
        raise Unprocessable("the preferences are not valid", errors=errors)
    now = clock.now()
    pref = _ensure(session, order, now)
    if opted_out:
        opt_out(session, clock, order, via="preferences")
    else:
        pref.opted_out = False
    pref.channels = list(channels)
    pref.locale = locale or None
    pref.quiet_start = quiet_start or None
    pref.quiet_end = quiet_end or None
    pref.updated_at = now
    append_event(
        session,
        clock,
        merchant_id=order.merchant_id,
        type="recipient.preferences_changed",
        actor=Actor("recipient"),
        order=order,
        data={
            "channels": pref.channels,
            "locale": pref.locale,
            "quiet_hours": [pref.quiet_start, pref.quiet_end] if pref.quiet_start else None,
            "opted_out": pref.opted_out,
        },
    )
    return pref
