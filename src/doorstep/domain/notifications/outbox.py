"""Turning events into outbox rows, in the transaction that writes the event.

A ``before_flush`` listener on every :class:`~sqlalchemy.orm.Session` looks at the new
:class:`DeliveryEvent` rows of the flush and adds, in the same flush:

* one webhook message per matching active endpoint of the merchant (every event type except
  ``message.*``),
* one recipient message per channel the trigger rules pick (:func:`recipient_trigger`), with a
  ``message.queued`` event, or a ``message.suppressed`` one when the recipient opted out, an
  ETA message came too soon after the last, or an "arriving soon" would say nothing new
  (:func:`fold_reason`).

So a message exists if and only if its event committed (ADR 0011). Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel.core import get_global
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from doorstep.domain.accounts.models import Merchant
from doorstep.domain.errors import Actor
from doorstep.domain.notifications.config import (
    ETA_BEARING,
    ETA_DRIVEN,
    URGENT,
    Channel,
    NotificationConfig,
    Trigger,
    notification_config,
)
from doorstep.domain.notifications.models import (
    OutboxMessage,
    RecipientPreference,
    WebhookEndpoint,
)
from doorstep.domain.orders.models import DeliveryEvent, Order
from doorstep.domain.orders.status import AFTERSHIP_TAG, Status
from doorstep.ids import new_id

MESSAGE_EVENT_PREFIX = "message."
_NO_OUTBOX = "doorstep_no_outbox"
_PENDING_ORDERS = "doorstep_pending_orders"
_INSERTED_ORDERS = "doorstep_inserted_orders"


class _At:
    """A clock stopped at the instant of the event that caused a message."""

    def __init__(self, at: datetime) -> None:
        self._at = at

    def now(self) -> datetime:
        return self._at


def recipient_key(order: Order) -> str | None:
    """Who the recipient is, for preferences: SHA-256 of the e-mail, else of the phone."""
    ident = (order.recipient_email or "").strip().lower() or (order.recipient_phone or "")
    return hashlib.sha256(ident.encode()).hexdigest() if ident else None


def preference_for(session: Session, order: Order) -> RecipientPreference | None:
    key = recipient_key(order)
    if key is None:
        return None
    return session.scalar(
        select(RecipientPreference).where(
            RecipientPreference.merchant_id == order.merchant_id,
            RecipientPreference.recipient_key == key,
        )
    )


def endpoint_matches(endpoint: WebhookEndpoint, event_type: str) -> bool:
    """An empty filter takes every event; ``delivery.*`` takes a whole resource."""
    if not endpoint.events:
        return True
    for pattern in endpoint.events:
        if pattern == event_type or pattern == "*":
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def webhook_body(ev: DeliveryEvent) -> dict[str, Any]:
    """The Standard Webhooks payload: ``type``, ``timestamp`` and ``data``."""
    data: dict[str, Any] = {
        "event_id": ev.id,
        "order_id": ev.order_id,
        "route_id": ev.route_id,
        "status": ev.status,
        "reason": ev.reason,
        "tag": AFTERSHIP_TAG[Status(ev.status)].value if ev.status else None,
        "actor": {"type": ev.actor_type, "id": ev.actor_id},
        "occurred_at": ev.occurred_at.astimezone(UTC).isoformat(),
        **(ev.data or {}),
    }
    return {"type": ev.type, "timestamp": ev.recorded_at.astimezone(UTC).isoformat(), "data": data}


def recipient_trigger(ev: DeliveryEvent, config: NotificationConfig) -> Trigger | None:
    """The recipient message an event calls for, if any."""
    data = ev.data or {}
    match ev.type:
        case "order.created":
            return Trigger.ORDER_CONFIRMED
        case "order.updated":
            return Trigger.WINDOW_CHANGED if "window_sequence" in data else None
        case "order.rescheduled":
            return Trigger.WINDOW_CHANGED
        case "order.redirected":
            return Trigger.REDIRECTED
        case "order.held":
            return Trigger.HELD
        case "order.instructions_changed":
            return Trigger.INSTRUCTIONS_CHANGED
        case "delivery.out_for_delivery":
            return Trigger.OUT_FOR_DELIVERY
        case "delivery.eta_updated":
            stops = data.get("stops_before")
            minutes = data.get("minutes_away")
            if stops == 0 or (minutes is not None and minutes < config.arriving_soon_minutes):
                return Trigger.ARRIVING_SOON
            return None
        case "delivery.delayed":
            return Trigger.DELAYED
        case "delivery.delivered":
            return Trigger.DELIVERED
        case "delivery.failed":
            return Trigger.ATTEMPT_FAILED
    return None


def recipient_timezone(order: Order, merchant: Merchant) -> str:
    """The timezone quiet hours are read in. Orders carry no timezone of their own, so it is
    derived from the delivery address's country (CLDR's zones per territory, from Babel):

    * the merchant's timezone when it is one of the country's zones, or the address has no
      country (the usual case: a shop delivering in its own country);
    * else the country's zone when it has exactly one (a Paris shop delivering to Helsinki
      reads quiet hours in ``Europe/Helsinki``);
    * else (a country with several zones: US, CA, AU, RU, BR, ...) the merchant's timezone.
    """
    own = merchant.timezone or "UTC"
    country = (order.country or "").upper()
    if not country:
        return own
    zones: list[str] = list(get_global("territory_zones").get(country, ()))
    if not zones or own in zones:
        return own
    return zones[0] if len(zones) == 1 else own


def quiet_until(
    config: NotificationConfig, pref: RecipientPreference | None, tz: str, at: datetime
) -> datetime | None:
    """The end of the quiet hours ``at`` falls in (recipient's timezone), or None."""
    hours = config.quiet_hours
    if pref is not None and pref.quiet_start and pref.quiet_end:
        start_h, start_m = (int(x) for x in pref.quiet_start.split(":"))
        end_h, end_m = (int(x) for x in pref.quiet_end.split(":"))
        hours = (
            datetime(2000, 1, 1, start_h, start_m).time(),
            datetime(2000, 1, 1, end_h, end_m).time(),
        )
    if hours is None:
        return None
    start, end = hours
    local = at.astimezone(ZoneInfo(tz))
    now_t = local.time()
    inside = (start <= now_t or now_t < end) if start > end else (start <= now_t < end)
    if not inside:
        return None
    end_at = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if end_at <= local:
        end_at += timedelta(days=1)
    return end_at.astimezone(UTC)


def message_event(
    session: Session,
    msg: OutboxMessage,
    type: str,
    at: datetime,
    *,
    order: Order | None = None,
    reason: str | None = None,
    extra: dict[str, Any] | None = None,
) -> DeliveryEvent | None:
    """Append a ``message.*`` event to the order's timeline (recipient messages only)."""
    from doorstep.domain.orders.events import append_event

    if msg.order_id is None or msg.channel == Channel.WEBHOOK.value:
        return None
    if order is None:
        order = session.get(Order, msg.order_id)
    if order is None or order.merchant_id != msg.merchant_id:
        return None
    data: dict[str, Any] = {
        "message_id": msg.public_id,
        "channel": msg.channel,
        "trigger": msg.trigger,
        "reason": reason,
        **(extra or {}),
    }
    return append_event(
        session,
        _At(at),
        merchant_id=msg.merchant_id,
        type=type,
        actor=Actor.system(),
        order=order,
        data=data,
    )


def _new_message(
    ev: DeliveryEvent, channel: str, target: str, payload: dict[str, Any], **extra: Any
) -> OutboxMessage:
    at = ev.recorded_at
    return OutboxMessage(
        public_id=new_id("msg", at),
        merchant_id=ev.merchant_id,
        channel=channel,
        topic=ev.type,
        event_id=ev.id,
        order_id=ev.order_id,
        target=target,
        payload=payload,
        status=extra.pop("status", "pending"),
        attempts=0,
        next_attempt_at=extra.pop("next_attempt_at", at),
        created_at=at,
        **extra,
    )


def _recent_eta_message(session: Session, order_id: str, since: datetime) -> bool:
    found = session.scalar(
        select(OutboxMessage.id)
        .where(
            OutboxMessage.order_id == order_id,
            OutboxMessage.trigger.in_([t.value for t in ETA_DRIVEN]),
            OutboxMessage.status != "suppressed",
            OutboxMessage.created_at > since,
        )
        .limit(1)
    )
    return found is not None


def _queued_since(
    session: Session, order_id: str, triggers: frozenset[Trigger], since: datetime
) -> Trigger | None:
    """The trigger of a message queued (not suppressed) for the order after ``since`` with one
    of ``triggers``, in this flush or before it; None when there is none."""
    wanted = {t.value for t in triggers}
    for obj in session.new:  # queued earlier in this very flush (same transaction)
        if (
            isinstance(obj, OutboxMessage)
            and obj.order_id == order_id
            and obj.trigger in wanted
            and obj.status != "suppressed"
            and obj.created_at > since
        ):
            return Trigger(obj.trigger)
    found = session.scalar(
        select(OutboxMessage.trigger)
        .where(
            OutboxMessage.order_id == order_id,
            OutboxMessage.trigger.in_(sorted(wanted)),
            OutboxMessage.status != "suppressed",
            OutboxMessage.created_at > since,
        )
        .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
        .limit(1)
    )
    return Trigger(found) if found else None


def _driver_at_door(session: Session, ev: DeliveryEvent) -> bool:
    """The ETA update says where the driver is: at this order's stop already."""
    from doorstep.domain.dispatch.models import Stop

    stop_id = (ev.data or {}).get("stop_id")
    stop = session.get(Stop, stop_id) if isinstance(stop_id, str) else None
    return stop is not None and stop.actual_arrival is not None


def fold_reason(
    session: Session, ev: DeliveryEvent, trigger: Trigger, order: Order, config: NotificationConfig
) -> str | None:
    """Why an "arriving soon" would tell the recipient nothing new (ADR 0011, "Messages a
    recipient does not need"), or None to send it:

    * ``driver_at_door``: the driver has already arrived at the stop (the ETA engine publishes
      the arrival as an ETA update); the doorbell says it better;
    * ``told_by_out_for_delivery`` / ``told_by_delayed``: that message, which carries the ETA
      window, was queued less than ``arriving_soon_minutes`` ago (the first stops of a route,
      or a delay alert raised minutes before the driver came): the two are folded into one.
    """
    if trigger is not Trigger.ARRIVING_SOON:
        return None
    if _driver_at_door(session, ev):
        return "driver_at_door"
    since = ev.recorded_at - timedelta(minutes=config.arriving_soon_minutes)
    told = _queued_since(session, order.id, ETA_BEARING, since)
    return f"told_by_{told.value}" if told is not None else None


def _already_queued(session: Session, order_id: str, trigger: Trigger) -> bool:
    found = session.scalar(
        select(OutboxMessage.id)
        .where(
            OutboxMessage.order_id == order_id,
            OutboxMessage.trigger == trigger.value,
            OutboxMessage.status != "suppressed",
        )
        .limit(1)
    )
    return found is not None


def _targets(
    order: Order, config: NotificationConfig, channels: list[str]
) -> list[tuple[str, str]]:
    """(channel, address) for each chosen channel the order and the merchant can serve."""
    service = {Channel.SMS.value: config.sms_url, Channel.CHAT.value: config.chat_url}
    out: list[tuple[str, str]] = []
    for channel in channels:
        if channel == Channel.EMAIL.value and order.recipient_email:
            out.append((channel, order.recipient_email))
        elif service.get(channel) and order.recipient_phone:
            out.append((channel, order.recipient_phone))
    return out


def _order_of(session: Session, ev: DeliveryEvent) -> Order | None:
    """The event's order: persistent, or new in this very flush (created with its event)."""
    if ev.order_id is None:
        return None
    # New in this flush first: ``session.get`` would query the table for it in vain.
    pending: dict[str, Order] = session.info.get(_PENDING_ORDERS) or {}
    return pending.get(ev.order_id) or session.get(Order, ev.order_id)


def hold_inserted(session: Session, order: Order) -> None:
    """Keep ``order``, inserted with Core and attached as loaded, until the next flush.

    The session's identity map holds objects weakly, and an order with parcels is freed only by
    the cycle collector: whether its messages found it without a query depended on when that
    ran (a test counting a create's statements failed once in CI for it)."""
    session.info.setdefault(_INSERTED_ORDERS, {})[order.id] = order


def _active_endpoints(session: Session, merchant_id: str) -> list[WebhookEndpoint]:
    return list(
        session.scalars(
            select(WebhookEndpoint).where(
                WebhookEndpoint.merchant_id == merchant_id, WebhookEndpoint.active.is_(True)
            )
        )
    )


def load_preferences(
    session: Session, merchant_id: str, orders: list[Order]
) -> dict[str, RecipientPreference]:
    """The preferences of these orders' recipients, in one query."""
    keys = {k for k in (recipient_key(o) for o in orders) if k}
    if not keys:
        return {}
    rows = session.scalars(
        select(RecipientPreference).where(
            RecipientPreference.merchant_id == merchant_id,
            RecipientPreference.recipient_key.in_(keys),
        )
    )
    return {row.recipient_key: row for row in rows}


def enqueue_for_event(
    session: Session,
    ev: DeliveryEvent,
    merchant: Merchant,
    *,
    endpoints: list[WebhookEndpoint] | None = None,
    prefs: dict[str, RecipientPreference] | None = None,
) -> int:
    """Add the outbox rows ``ev`` calls for; return how many were added. ``endpoints`` and
    ``prefs`` may be given pre-loaded (a flush of many events loads them once)."""
    added = 0
    if endpoints is None:
        endpoints = _active_endpoints(session, ev.merchant_id)
    matching = [e for e in endpoints if endpoint_matches(e, ev.type)]
    if matching:
        body = webhook_body(ev)
        for endpoint in matching:
            session.add(_new_message(ev, Channel.WEBHOOK.value, endpoint.id, body))
            added += 1
    if ev.order_id is None:
        return added
    config = notification_config(merchant)
    trigger = recipient_trigger(ev, config)
    if trigger is None:
        return added
    order = _order_of(session, ev)
    if order is None:
        return added
    if trigger is Trigger.ARRIVING_SOON and _already_queued(session, order.id, trigger):
        return added
    if prefs is None:
        pref = preference_for(session, order)
    else:
        key = recipient_key(order)
        pref = prefs.get(key) if key else None
    channels = config.channels_for(trigger)
    if pref is not None and pref.channels:
        channels = [c for c in channels if c in pref.channels]
    at = ev.recorded_at
    reason: str | None = None
    if pref is not None and pref.opted_out:
        reason = "opted_out"
    elif trigger in ETA_DRIVEN and _recent_eta_message(
        session, order.id, at - timedelta(minutes=config.eta_message_interval_minutes)
    ):
        reason = "rate_limited"
    else:
        reason = fold_reason(session, ev, trigger, order, config)
    due = at
    if reason is None and trigger not in URGENT:
        due = quiet_until(config, pref, recipient_timezone(order, merchant), at) or at
    locale = (pref.locale if pref else None) or order.recipient_locale or merchant.locale
    payload = {
        "trigger": trigger.value,
        "locale": locale,
        "event": {"type": ev.type, "data": ev.data or {}, "at": at.astimezone(UTC).isoformat()},
        "window_sequence": order.window_sequence,
    }
    for channel, target in _targets(order, config, channels):
        msg = _new_message(
            ev,
            channel,
            target,
            payload,
            trigger=trigger.value,
            status="suppressed" if reason else "pending",
            next_attempt_at=due,
        )
        if reason:
            msg.last_error = reason
        session.add(msg)
        added += 1
        if reason:
            message_event(session, msg, "message.suppressed", at, order=order, reason=reason)
        else:
            extra = {"due_at": due.isoformat()} if due != at else None
            message_event(session, msg, "message.queued", at, order=order, extra=extra)
    return added


def enqueue_for_inserted_events(
    session: Session, merchant_id: str, event_rows: list[dict[str, Any]]
) -> int:
    """Queue the messages of events written with a bulk ``insert()`` (which the flush
    listener cannot see), as if each had been added one by one."""
    merchant = session.get(Merchant, merchant_id)
    if merchant is None or not event_rows:
        return 0
    order_ids = [str(r["order_id"]) for r in event_rows if r.get("order_id")]
    orders: list[Order] = []
    for start in range(0, len(order_ids), 500):
        chunk = order_ids[start : start + 500]
        orders.extend(session.scalars(select(Order).where(Order.id.in_(chunk))))
    endpoints = _active_endpoints(session, merchant_id)
    prefs = load_preferences(session, merchant_id, orders)
    added = 0
    with session.no_autoflush:
        for row in event_rows:
            ev = DeliveryEvent(**row)  # transient: the row is already in the table
            added += enqueue_for_event(session, ev, merchant, endpoints=endpoints, prefs=prefs)
    return added


def skip_outbox(session: Session) -> None:
    """Write events in this session without messages (imports of history, tests of the log)."""
    session.info[_NO_OUTBOX] = True


@event.listens_for(Session, "before_flush")
def _enqueue_messages(session: Session, _ctx: Any, _instances: Any) -> None:
    inserted: dict[str, Order] = session.info.pop(_INSERTED_ORDERS, None) or {}
    if session.info.get(_NO_OUTBOX):
        return
    fresh = [
        obj
        for obj in session.new
        if isinstance(obj, DeliveryEvent) and not obj.type.startswith(MESSAGE_EVENT_PREFIX)
    ]
    if not fresh:
        return
    by_merchant: dict[str, list[DeliveryEvent]] = {}
    for ev in fresh:  # in the order they were added
        by_merchant.setdefault(ev.merchant_id, []).append(ev)
    session.info[_PENDING_ORDERS] = inserted | {
        o.id: o for o in session.new if isinstance(o, Order)
    }
    try:
        _enqueue_by_merchant(session, by_merchant)
    finally:
        session.info.pop(_PENDING_ORDERS, None)


def _enqueue_by_merchant(session: Session, by_merchant: dict[str, list[DeliveryEvent]]) -> None:
    with session.no_autoflush:
        for merchant_id, evs in by_merchant.items():
            merchant = session.get(Merchant, merchant_id)
            if merchant is None:
                continue
            endpoints = _active_endpoints(session, merchant_id)
            orders = [o for o in (_order_of(session, ev) for ev in evs) if o is not None]
            prefs = load_preferences(session, merchant_id, orders)
            for ev in evs:
                enqueue_for_event(session, ev, merchant, endpoints=endpoints, prefs=prefs)
