"""The outbox relay: claim due messages, render them, send them, record every outcome.

1. **Claim** (one short transaction): due rows (``pending`` and due, or ``sending`` with an
   expired lease, i.e. a crashed sender's) are locked with ``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL (SQLite has one writer at a time, ``BEGIN IMMEDIATE``), then marked ``sending``
   with this worker's name and a lease. Several workers never hold the same row.
2. **Prepare** (one transaction): reload each row, re-check its tenant, suppress what became
   stale (an "arriving soon" for a delivered order), or what the recipient opted out of, and
   render the rest.
3. **Send** concurrently (SMTP, HTTP, apprise) on connections kept from batch to batch, and
   **record** outcomes by group commit: a sender keeps its concurrency slot until its outcome
   is committed, with the outcomes that arrived meanwhile, so a crash re-sends at most
   ``outbox_concurrency`` messages per worker (the ones sent but not yet recorded).

The worker's job (:func:`run_outbox`) streams: while claims come back full, the next batch is
claimed and prepared while the current one is sent (:func:`relay_stream`).

At-least-once with a stable id (the ``webhook-id``, the e-mail's ``Message-ID``). Failures are
retried with exponential backoff and jitter; recipient messages leave ``message.*`` events in
the order's timeline, webhook deliveries leave :class:`WebhookAttempt` rows.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import quote

import httpx
from sqlalchemy import Table, and_, insert, or_, select, text, update
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Merchant, Role, User
from doorstep.domain.errors import Actor
from doorstep.domain.notifications.channels import (
    Outcome,
    Outgoing,
    SmtpPool,
    Vetting,
    deliver,
)
from doorstep.domain.notifications.config import Channel, Trigger, notification_config
from doorstep.domain.notifications.mail import compose_email
from doorstep.domain.notifications.metrics import MESSAGES, SEND_SECONDS
from doorstep.domain.notifications.models import (
    OutboxMessage,
    RecipientPreference,
    WebhookAttempt,
    WebhookEndpoint,
)
from doorstep.domain.notifications.outbox import (
    load_preferences,
    message_event,
    preference_for,
    recipient_key,
)
from doorstep.domain.notifications.preferences import preferences_url, unsubscribe_url
from doorstep.domain.notifications.templates import Rendered, message_context, render_message
from doorstep.domain.notifications.transport import KeptConnections
from doorstep.domain.notifications.webhooks import signing_secrets
from doorstep.domain.orders.models import DeliveryEvent, Order
from doorstep.domain.orders.status import Status
from doorstep.domain.tracking.links import tracking_token_for, tracking_url
from doorstep.ids import new_id
from doorstep.live import publish_after_commit
from doorstep.live.hooks import event_message
from doorstep.runtime import Runtime
from doorstep.settings import Settings

log = logging.getLogger("doorstep.outbox")

# Seconds before retry n (1-based); jitter ±20 %. Webhooks: first retry within a minute, the
# last about a day after the first attempt.
WEBHOOK_BACKOFF = (30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800)
RECIPIENT_BACKOFF = (60, 300, 900, 3600)
# How long one run of the outbox job may stream batches before the runner's other jobs get
# their turn (the job is run again at once while it has work).
STREAM_S = 2.0
EXCERPT_CHARS = 500

# Statuses after which a message about the delivery in progress is stale.
_OVER = {
    Status.DELIVERED,
    Status.DELIVERY_FAILED,
    Status.CANCELLED,
    Status.RETURN_TO_SENDER,
    Status.READY_FOR_PICKUP,
    Status.ON_HOLD,
}
_STALE_WHEN: dict[Trigger, set[Status]] = {
    Trigger.ORDER_CONFIRMED: {Status.CANCELLED, Status.DELIVERED},
    Trigger.WINDOW_CHANGED: {Status.CANCELLED, Status.DELIVERED},
    Trigger.OUT_FOR_DELIVERY: _OVER,
    Trigger.ARRIVING_SOON: _OVER,
    Trigger.DELAYED: _OVER,
    Trigger.DELIVERED: set(),
    Trigger.ATTEMPT_FAILED: {Status.DELIVERED, Status.CANCELLED},
    Trigger.REDIRECTED: {Status.DELIVERED, Status.CANCELLED},
    Trigger.HELD: {Status.DELIVERED, Status.CANCELLED},
    Trigger.INSTRUCTIONS_CHANGED: {Status.DELIVERED, Status.CANCELLED},
}


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


class Suppress(Exception):
    """The message must not be sent; the text says why."""


# --- 1. claim --------------------------------------------------------------------------------


def claim(runtime: Runtime, worker: str, limit: int, *, probe: bool = True) -> list[int]:
    """Lock up to ``limit`` due messages for ``worker``; return their row ids. ``probe``
    first looks for one due row without locking (an idle worker's poll); a caller that has
    just claimed a full batch skips it."""
    settings = runtime.settings
    now = runtime.clock.now()
    due = or_(
        and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now),
        and_(OutboxMessage.status == "sending", OutboxMessage.locked_until < now),
    )
    query = select(OutboxMessage.id, OutboxMessage.status).where(due)
    if not settings.smtp_url:  # e-mails wait until SMTP is configured
        query = query.where(OutboxMessage.channel != Channel.EMAIL.value)
    # An idle worker only reads: no write lock (SQLite) or row locks every poll.
    if probe:
        with runtime.read_sessions() as reader:
            if reader.execute(query.limit(1)).first() is None:
                return []
    with transaction(runtime.sessions) as session:
        rows = session.execute(
            query.order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        ids = [row.id for row in rows]
        if not ids:
            return []
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(
                status="sending",
                locked_by=worker,
                locked_until=now + timedelta(seconds=settings.outbox_lease_s),
                attempts=OutboxMessage.attempts + 1,
            )
        )
        reclaimed = [row.id for row in rows if row.status == "sending"]
        for msg in session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(reclaimed))):
            log.warning("message %s: its sender's lease expired, retrying", msg.public_id)
            message_event(session, msg, "message.retried", now, reason="lease_expired")
    return ids


# --- 2. prepare ------------------------------------------------------------------------------


def _latest_eta(session: Session, order_id: str) -> dict[str, Any] | None:
    ev = session.scalar(
        select(DeliveryEvent)
        .where(DeliveryEvent.order_id == order_id, DeliveryEvent.type == "delivery.eta_updated")
        .order_by(DeliveryEvent.seq.desc())
        .limit(1)
    )
    return dict(ev.data) if ev is not None else None


def _sign(endpoint: WebhookEndpoint, msg_id: str, body: str, now: datetime) -> dict[str, str]:
    # The signature timestamp is transport time, checked by the receiver against its own
    # wall clock (5-minute tolerance), so it is wall time even under a simulated clock.
    sent_at = datetime.fromtimestamp(int(time.time()), UTC)
    signatures = [
        Webhook(secret).sign(msg_id, sent_at, body) for secret in signing_secrets(endpoint, now)
    ]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": " ".join(signatures),
        "content-type": "application/json",
        "user-agent": "Doorstep-Webhooks/1",
    }


def _prepare_webhook(session: Session, msg: OutboxMessage, now: datetime) -> Outgoing:
    endpoint = session.get(WebhookEndpoint, msg.target)
    if endpoint is None or endpoint.merchant_id != msg.merchant_id:
        raise Suppress("endpoint deleted")
    if not endpoint.active:
        raise Suppress("endpoint disabled")
    body = json.dumps(msg.payload, separators=(",", ":"), ensure_ascii=False)
    return Outgoing(
        id=msg.id,
        public_id=msg.public_id,
        channel=msg.channel,
        merchant_id=msg.merchant_id,
        url=endpoint.url,
        headers=_sign(endpoint, msg.public_id, body, now),
        body=body,
        endpoint_id=endpoint.id,
        event_type=msg.topic,
        order_id=msg.order_id,
        attempt=msg.attempts,
    )


def _prepare_system_email(
    runtime: Runtime, merchant: Merchant, msg: OutboxMessage, now: datetime
) -> Outgoing:
    payload = msg.payload
    rendered = Rendered(
        subject=f"Doorstep: webhook endpoint disabled ({payload.get('url')})",
        body=(
            f"Hello,\n\nThe webhook endpoint {payload.get('url')} ({payload.get('endpoint_id')}) "
            f"failed every delivery since {payload.get('failing_since')} "
            f"({payload.get('failures')} attempts in a row) and has been disabled.\n\n"
            "Fix the receiver, then re-enable it with PATCH /v1/webhook-endpoints/"
            f'{payload.get("endpoint_id")} {{"active": true}} and replay what it missed '
            "with POST .../replay."
        ),
        locale="en",
    )
    email = compose_email(
        merchant=merchant,
        order=None,
        to=msg.target,
        rendered=rendered,
        public_id=msg.public_id,
        mail_from=runtime.settings.mail_from,
        base_url=runtime.settings.base_url,
        now=now,
    )
    return Outgoing(
        msg.id, msg.public_id, msg.channel, msg.merchant_id, email=email, attempt=msg.attempts
    )


def _apprise_url(template: str, phone: str) -> str:
    """The merchant's apprise URL with ``{phone}`` replaced by the E.164 number (escaped, so
    its ``+`` survives in a query string)."""
    return template.replace("{phone}", quote(phone, safe=""))


def _prepare_recipient(
    runtime: Runtime,
    session: Session,
    merchant: Merchant,
    msg: OutboxMessage,
    now: datetime,
    known: dict[str, RecipientPreference] | None = None,
) -> Outgoing:
    settings = runtime.settings
    order = session.get(Order, msg.order_id) if msg.order_id else None
    if order is None or order.merchant_id != msg.merchant_id:
        raise Suppress("order not found")
    trigger = Trigger(str(msg.trigger))
    status = Status(order.status)
    if status in _STALE_WHEN[trigger]:
        raise Suppress(f"stale: the order is {status.value}")
    if trigger is Trigger.WINDOW_CHANGED and msg.payload.get("window_sequence", 0) < (
        order.window_sequence
    ):
        raise Suppress("superseded: the window moved again")
    if known is None:  # not pre-loaded with the batch
        pref = preference_for(session, order)
    else:
        key = recipient_key(order)
        pref = known.get(key) if key else None
    if pref is not None and pref.opted_out:
        raise Suppress("opted_out")
    if pref is not None and pref.channels and msg.channel not in pref.channels:
        raise Suppress("channel turned off by the recipient")
    secret = settings.effective_secret_key
    track = tracking_url(settings.base_url, tracking_token_for(secret, order))
    prefs = preferences_url(settings.base_url, secret, order.id)
    event = msg.payload.get("event") or {}
    eta = event.get("data") if event.get("type") == "delivery.eta_updated" else None
    if eta is None and trigger in (
        Trigger.OUT_FOR_DELIVERY,
        Trigger.DELAYED,
        Trigger.ARRIVING_SOON,
    ):
        eta = _latest_eta(session, order.id)
    locale = str(msg.payload.get("locale") or merchant.locale)
    context = message_context(
        merchant,
        order,
        locale.split("-")[0],
        event_data=event.get("data") or {},
        tracking_url=track,
        preferences_url=prefs,
        eta=eta,
    )
    rendered = render_message(session, merchant, trigger, msg.channel, locale, context)
    extra: dict[str, Any] = {}
    if trigger is Trigger.DELAYED and order.window_end is not None:
        extra["lead_time_minutes"] = round((order.window_end - now).total_seconds() / 60)
    out = Outgoing(
        msg.id,
        msg.public_id,
        msg.channel,
        msg.merchant_id,
        trigger=trigger.value,
        extra=extra,
        order_id=order.id,
        attempt=msg.attempts,
        order_status=order.status,
        order_reason=order.reason,
    )
    if msg.channel == Channel.EMAIL.value:
        config = notification_config(merchant)
        out.email = compose_email(
            merchant=merchant,
            order=order,
            to=msg.target,
            rendered=rendered,
            public_id=msg.public_id,
            mail_from=settings.mail_from,
            base_url=settings.base_url,
            now=now,
            tracking_url=track,
            preferences_url=prefs,
            unsubscribe_url=unsubscribe_url(settings.base_url, secret, order.id),
            with_calendar=trigger in (Trigger.ORDER_CONFIRMED, Trigger.WINDOW_CHANGED),
            reply_to=config.reply_to,
        )
        return out
    config = notification_config(merchant)
    template = config.sms_url if msg.channel == Channel.SMS.value else config.chat_url
    if not template:
        raise Suppress(f"no {msg.channel} service configured")
    out.url = _apprise_url(template, msg.target)
    out.body = rendered.body
    out.title = rendered.subject
    return out


def _load(session: Session, model: Any, ids: set[str]) -> list[Any]:
    """Rows of ``model`` by primary key in one query (into the session's identity map, so
    ``session.get`` finds them while the caller holds the list)."""
    if not ids:
        return []
    return list(session.scalars(select(model).where(model.id.in_(ids))))


def prepare(runtime: Runtime, worker: str, ids: list[int]) -> list[Outgoing]:
    """Reload the claimed rows; suppress the stale ones; render the rest."""
    outgoing: list[Outgoing] = []
    with transaction(runtime.sessions) as session:
        now = runtime.clock.now()
        msgs = session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.id.in_(ids), OutboxMessage.locked_by == worker
            )
        ).all()
        # Load the batch's orders and endpoints in two queries, not one per message...
        order_ids = {m.order_id for m in msgs if m.order_id}
        orders: list[Order] = []
        if order_ids:
            orders = list(session.scalars(select(Order).where(Order.id.in_(order_ids))))
        # ... and the recipients' preferences in one query per merchant.
        prefs: dict[str, dict[str, RecipientPreference]] = {}
        for merchant_id in {o.merchant_id for o in orders}:
            mine = [o for o in orders if o.merchant_id == merchant_id]
            prefs[merchant_id] = load_preferences(session, merchant_id, mine)
        endpoint_ids = {m.target for m in msgs if m.channel == Channel.WEBHOOK.value}
        # Held here: the session's identity map keeps only referenced objects.
        endpoints = _load(session, WebhookEndpoint, endpoint_ids)
        merchants: dict[str, Merchant | None] = {}
        for msg in msgs:
            if msg.merchant_id not in merchants:
                merchants[msg.merchant_id] = session.get(Merchant, msg.merchant_id)
            merchant = merchants[msg.merchant_id]
            try:
                if merchant is None:
                    raise Suppress("merchant not found")
                if msg.channel == Channel.WEBHOOK.value:
                    outgoing.append(_prepare_webhook(session, msg, now))
                elif msg.trigger is None:
                    outgoing.append(_prepare_system_email(runtime, merchant, msg, now))
                else:
                    outgoing.append(
                        _prepare_recipient(
                            runtime, session, merchant, msg, now, prefs.get(msg.merchant_id, {})
                        )
                    )
            except Suppress as exc:
                MESSAGES.labels(msg.channel, "suppressed").inc()
                reason = str(exc)
                msg.status = "suppressed"
                msg.last_error = reason
                msg.locked_by = None
                msg.locked_until = None
                message_event(session, msg, "message.suppressed", now, reason=reason)
            except Exception as exc:  # a template or data error: fail it, keep the batch
                log.exception("message %s could not be prepared", msg.public_id)
                msg.status = "failed"
                msg.last_error = f"could not render: {exc}"[:1000]
                msg.locked_by = None
                message_event(session, msg, "message.failed", now, reason=msg.last_error)
        del endpoints
    return outgoing


# --- 3. send and record ----------------------------------------------------------------------


def _owner_emails(session: Session, merchant_id: str) -> list[str]:
    return list(
        session.scalars(
            select(User.email).where(
                User.merchant_id == merchant_id, User.role == Role.OWNER.value, User.active
            )
        )
    )


def _endpoint_outcome(
    runtime: Runtime,
    session: Session,
    out: Outgoing,
    result: Outcome,
    attempt: int,
    now: datetime,
) -> None:
    session.add(
        WebhookAttempt(
            merchant_id=out.merchant_id,
            endpoint_id=out.endpoint_id or "",
            message_id=out.public_id,
            event_type=out.event_type or "",
            attempt=attempt,
            status_code=result.status_code,
            duration_ms=result.duration_ms,
            response_excerpt=result.excerpt,
            error=result.error,
            attempted_at=now,
        )
    )
    endpoint = session.get(WebhookEndpoint, out.endpoint_id) if out.endpoint_id else None
    if endpoint is None:
        return
    if result.ok:
        if endpoint.failure_streak or endpoint.failing_since is not None:
            endpoint.failure_streak = 0
            endpoint.failing_since = None
        return
    endpoint.failure_streak += 1
    endpoint.failing_since = endpoint.failing_since or now
    limit = timedelta(hours=runtime.settings.webhook_disable_after_hours)
    if endpoint.active and now - endpoint.failing_since >= limit:
        endpoint.active = False
        endpoint.disabled_reason = (
            f"every delivery failed since {endpoint.failing_since.isoformat()} "
            f"({endpoint.failure_streak} attempts)"
        )
        endpoint.updated_at = now
        log.warning("webhook endpoint %s disabled: %s", endpoint.id, endpoint.disabled_reason)
        for email in _owner_emails(session, endpoint.merchant_id):
            session.add(
                OutboxMessage(
                    public_id=new_id("msg", now),
                    merchant_id=endpoint.merchant_id,
                    channel=Channel.EMAIL.value,
                    topic="webhook_endpoint.disabled",
                    target=email,
                    payload={
                        "kind": "endpoint_disabled",
                        "endpoint_id": endpoint.id,
                        "url": endpoint.url,
                        "failing_since": endpoint.failing_since.isoformat(),
                        "failures": endpoint.failure_streak,
                    },
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )


def _record_one(
    runtime: Runtime,
    session: Session,
    msg: OutboxMessage,
    out: Outgoing,
    result: Outcome,
    now: datetime,
) -> None:
    webhook = msg.channel == Channel.WEBHOOK.value
    if webhook:
        _endpoint_outcome(runtime, session, out, result, msg.attempts, now)
    msg.locked_by = None
    msg.locked_until = None
    SEND_SECONDS.labels(msg.channel).observe(result.duration_ms / 1000)
    if result.ok:
        MESSAGES.labels(msg.channel, "sent").inc()
        msg.status = "sent"
        msg.sent_at = now
        msg.last_error = None
        message_event(session, msg, "message.sent", now, extra=out.extra or None)
        return
    msg.last_error = result.error
    schedule = WEBHOOK_BACKOFF if webhook else RECIPIENT_BACKOFF
    if msg.attempts <= len(schedule):
        delay = schedule[msg.attempts - 1] * random.uniform(0.8, 1.2)
        MESSAGES.labels(msg.channel, "retried").inc()
        msg.status = "pending"
        msg.next_attempt_at = now + timedelta(seconds=delay)
        message_event(
            session,
            msg,
            "message.retried",
            now,
            reason=result.error,
            extra={"attempt": msg.attempts, "next_attempt_at": msg.next_attempt_at.isoformat()},
        )
    else:
        MESSAGES.labels(msg.channel, "failed").inc()
        msg.status = "dead" if webhook else "failed"
        message_event(session, msg, "message.failed", now, reason=result.error)


def _record_sent(session: Session, sent: list[tuple[Outgoing, Outcome]], now: datetime) -> None:
    """The outcomes of successful sends in a few set-based statements: one UPDATE of the rows,
    one INSERT of the webhook attempts, one UPDATE of endpoints that were failing and one
    INSERT of the ``message.sent`` events. (The unit of work spent about 1 ms of CPU per
    message loading, diffing and flushing the same rows.)"""
    for out, result in sent:
        MESSAGES.labels(out.channel, "sent").inc()
        SEND_SECONDS.labels(out.channel).observe(result.duration_ms / 1000)
    # Table-level statements: no ORM bulk or session-synchronising machinery (nothing of
    # these rows is in this session).
    outbox = cast(Table, OutboxMessage.__table__)
    session.execute(
        update(outbox)
        .where(outbox.c.id.in_([out.id for out, _ in sent]))
        .values(status="sent", sent_at=now, last_error=None, locked_by=None, locked_until=None)
    )
    hooks = [(out, result) for out, result in sent if out.channel == Channel.WEBHOOK.value]
    if hooks:
        session.execute(
            insert(cast(Table, WebhookAttempt.__table__)),
            [
                {
                    "merchant_id": out.merchant_id,
                    "endpoint_id": out.endpoint_id or "",
                    "message_id": out.public_id,
                    "event_type": out.event_type or "",
                    "attempt": out.attempt,
                    "status_code": result.status_code,
                    "duration_ms": result.duration_ms,
                    "response_excerpt": result.excerpt,
                    "error": result.error,
                    "attempted_at": now,
                }
                for out, result in hooks
            ],
        )
        # Endpoints that were failing recover (a no-op on healthy ones: nothing matches). Read
        # now, not when prepared: another worker may have recorded a failure meanwhile.
        recovered = {out.endpoint_id for out, _ in hooks if out.endpoint_id}
        endpoints = cast(Table, WebhookEndpoint.__table__)
        session.execute(
            update(endpoints)
            .where(
                endpoints.c.id.in_(recovered),
                or_(endpoints.c.failure_streak != 0, endpoints.c.failing_since.is_not(None)),
            )
            .values(failure_streak=0, failing_since=None)
        )
    timeline = [out for out, _ in sent if out.channel != Channel.WEBHOOK.value and out.order_id]
    if timeline:
        _sent_events(session, timeline, now)


def _sent_events(session: Session, sent: list[Outgoing], now: datetime) -> None:
    """``message.sent`` on each recipient message's order timeline (as :func:`message_event`
    writes them one by one, with the order's status as prepared, when its tenant was checked),
    published to the live bus after the commit."""
    actor = Actor.system()
    rows: list[dict[str, Any]] = [
        {
            "id": new_id("evt", now),
            "merchant_id": out.merchant_id,
            "order_id": out.order_id,
            "route_id": None,
            "type": "message.sent",
            "status": out.order_status,
            "reason": out.order_reason,
            "actor_type": actor.type,
            "actor_id": actor.id,
            "occurred_at": now,
            "recorded_at": now,
            "data": {
                "message_id": out.public_id,
                "channel": out.channel,
                "trigger": out.trigger,
                "reason": None,
                **(out.extra or {}),
            },
        }
        for out in sent
    ]
    table = cast(Table, DeliveryEvent.__table__)
    returned = session.execute(insert(table).returning(table.c.id, table.c.seq), rows)
    seqs: dict[str, int] = {row.id: row.seq for row in returned}
    for row in rows:
        event = DeliveryEvent(seq=seqs[row["id"]], **row)  # transient: only to describe it
        publish_after_commit(session, event_message(event, None))


def _commit_without_flush_wait(session: Session) -> None:
    """PostgreSQL: this transaction's commit does not wait for its WAL to reach the disk."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))


def record_many(runtime: Runtime, done: list[tuple[Outgoing, Outcome]]) -> None:
    """Store the outcomes of several sends in one transaction (a group commit). Successes,
    nearly all of them, are written set-based (:func:`_record_sent`); failures go through the
    rows one by one (retry schedule, endpoint health, disabling)."""
    if not done:
        return
    sent = [(out, result) for out, result in done if result.ok]
    failed = [(out, result) for out, result in done if not result.ok]
    with transaction(runtime.sessions) as session:
        _commit_without_flush_wait(session)
        now = runtime.clock.now()
        if sent:
            _record_sent(session, sent, now)
        if not failed:
            return
        ids = [out.id for out, _ in failed]
        msgs = {
            m.id: m for m in session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids)))
        }
        # Held here: the session's identity map keeps only referenced objects.
        orders = _load(session, Order, {m.order_id for m in msgs.values() if m.order_id})
        hooks = {out.endpoint_id for out, _ in failed if out.endpoint_id}
        endpoints = _load(session, WebhookEndpoint, hooks)
        for out, result in failed:
            msg = msgs.get(out.id)
            if msg is not None:
                _record_one(runtime, session, msg, out, result, now)
        del orders, endpoints


def record(runtime: Runtime, out: Outgoing, result: Outcome) -> None:
    """Store the outcome of one send, in its own transaction."""
    record_many(runtime, [(out, result)])


def release(runtime: Runtime, worker: str, out: Outgoing) -> None:
    """Give back a claimed message not sent in time: due again at once, attempt not counted."""
    with transaction(runtime.sessions) as session:
        session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == out.id,
                OutboxMessage.locked_by == worker,
                OutboxMessage.status == "sending",
            )
            .values(
                status="pending",
                locked_by=None,
                locked_until=None,
                attempts=OutboxMessage.attempts - 1,
            )
        )


class _Recorder:
    """Group commit of outcomes. A sender hands its outcome over and waits until it is
    committed; the outcomes that arrive while one commit runs go together into the next. So a
    busy relay commits a handful of outcomes per transaction, and a quiet one commits each at
    once: never more than ``outbox_concurrency`` messages sent but not recorded."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.queue: asyncio.Queue[tuple[Outgoing, Outcome, asyncio.Future[None]]] = asyncio.Queue()

    async def record(self, out: Outgoing, result: Outcome) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self.queue.put((out, result, done))
        await done

    async def run(self) -> None:
        while True:
            items = [await self.queue.get()]
            while not self.queue.empty():
                items.append(self.queue.get_nowait())
            try:
                await asyncio.to_thread(
                    record_many, self.runtime, [(out, res) for out, res, _ in items]
                )
            except Exception as exc:  # the senders see it; the rows stay leased
                for _, _, done in items:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, _, done in items:
                    if not done.done():
                        done.set_result(None)


class _Sender:
    """One worker thread's event loop, HTTP client and SMTP connections, kept from batch to
    batch: a batch does not pay for a TLS context, TCP handshakes and SMTP greetings again."""

    def __init__(self, settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.smtp = SmtpPool(settings, settings.outbox_concurrency) if settings.smtp_url else None
        self.client: httpx.AsyncClient | None = None
        self.timeout = httpx.Timeout(settings.webhook_timeout_s)

    def http(self) -> httpx.AsyncClient:
        if self.client is None:  # made inside the loop it will run in
            self.client = httpx.AsyncClient(
                timeout=self.timeout, follow_redirects=False, transport=KeptConnections()
            )
        return self.client

    def close(self) -> None:
        async def _close() -> None:
            if self.client is not None:
                await self.client.aclose()
            if self.smtp is not None:
                await self.smtp.close()

        try:
            self.loop.run_until_complete(_close())
        finally:
            self.loop.close()


_senders = threading.local()


def _sender(settings: Settings) -> _Sender:
    """This thread's sender for these settings (a new one when the settings change)."""
    key = (settings.smtp_url, settings.webhook_timeout_s, settings.outbox_concurrency)
    current: tuple[tuple[Any, ...], _Sender] | None = getattr(_senders, "current", None)
    if current is not None and current[0] == key:
        return current[1]
    if current is not None:
        current[1].close()
    sender = _Sender(settings)
    _senders.current = (key, sender)
    return sender


def close_sender() -> None:
    """Close this thread's connections (a worker thread that stops)."""
    current: tuple[tuple[Any, ...], _Sender] | None = getattr(_senders, "current", None)
    if current is not None:
        _senders.current = None
        current[1].close()


# (monotonic time of the claim, the claimed row ids, the messages prepared from them)
_Batch = tuple[float, list[int], list[Outgoing]]
_NO_BATCH: _Batch = (0.0, [], [])


async def _send_all(
    runtime: Runtime,
    sender: _Sender,
    worker: str,
    batch: _Batch,
    more: Callable[[], Awaitable[_Batch]] | None = None,
) -> int:
    """Send ``batch``, and the batches ``more`` returns until it returns an empty one; return
    how many rows were claimed. The next batch is claimed and prepared (in a thread, on its own
    connection) while this one is sent, and its messages queue for the same concurrency slots,
    so the slots never wait for the database between batches. At most two batches are claimed
    and unsent at a time: ``more`` is awaited only once the batch before the current one is
    done."""
    settings = runtime.settings
    gate = asyncio.Semaphore(settings.outbox_concurrency)
    recorder = _Recorder(runtime)
    recording = asyncio.create_task(recorder.run())
    client = sender.http()
    vetting: Vetting = {}  # one DNS look-up and check per webhook URL per stream

    async def one(out: Outgoing, send_by: float) -> None:
        # A message holds its place until its outcome is committed, so at most
        # ``outbox_concurrency`` messages per worker are sent but not yet recorded: the
        # ones a SIGKILL could make us send twice.
        async with gate:
            if time.monotonic() > send_by:
                await asyncio.to_thread(release, runtime, worker, out)
                return
            result = await deliver(out, client, sender.smtp, settings, vetting=vetting)
            await recorder.record(out, result)

    tasks: list[asyncio.Future[None]] = []
    previous: list[asyncio.Future[None]] = []
    claimed = 0
    try:
        while True:
            claimed_at, ids, outgoing = batch
            claimed += len(ids)
            # Past most of its lease a message may be claimed by another worker: give it back
            # unsent rather than risk a double send (a slow receiver must not turn into
            # duplicates).
            send_by = claimed_at + settings.outbox_lease_s * 0.8
            current: list[asyncio.Future[None]] = [
                asyncio.ensure_future(one(out, send_by)) for out in outgoing
            ]
            tasks += current
            await asyncio.gather(*previous)
            if more is None:
                break
            try:
                batch = await more()
            except Exception:
                # A failed claim or prepare (the database) ends the run, but only once the
                # messages already being sent are through: they are not cut off mid-send.
                await asyncio.gather(*tasks)
                raise
            if not batch[1]:
                break
            previous = current
        await asyncio.gather(*tasks)
    finally:
        # The loop outlives the batch: nothing of this batch may run on into the next one.
        for task in (*tasks, recording):
            task.cancel()
        await asyncio.gather(*tasks, recording, return_exceptions=True)
    return claimed


def relay_once(runtime: Runtime, worker: str | None = None, limit: int | None = None) -> int:
    """Claim, prepare and send one batch; return how many messages were claimed."""
    worker = worker or worker_name()
    claimed_at = time.monotonic()
    ids = claim(runtime, worker, limit or runtime.settings.outbox_batch)
    if not ids:
        return 0
    send_batch(runtime, prepare(runtime, worker, ids), worker, claimed_at)
    return len(ids)


def relay_stream(
    runtime: Runtime,
    worker: str | None = None,
    limit: int | None = None,
    seconds: float = STREAM_S,
) -> int:
    """Like :func:`relay_once`, then batch after batch while every claim is full (a backlog)
    and for at most ``seconds``, each claimed and prepared while the one before is sent;
    return how many messages were claimed. A partial batch ends the stream: the outbox had
    nothing more due when it was claimed."""
    worker = worker or worker_name()
    limit = limit or runtime.settings.outbox_batch
    claimed_at = time.monotonic()
    ids = claim(runtime, worker, limit)
    if not ids:
        return 0
    first: _Batch = (claimed_at, ids, prepare(runtime, worker, ids))
    until = claimed_at + seconds
    full = [len(ids) >= limit]

    async def more() -> _Batch:
        if not full[0] or time.monotonic() >= until:
            return _NO_BATCH
        at = time.monotonic()
        ids = await asyncio.to_thread(claim, runtime, worker, limit, probe=False)
        full[0] = len(ids) >= limit
        if not ids:
            return _NO_BATCH
        return (at, ids, await asyncio.to_thread(prepare, runtime, worker, ids))

    sender = _sender(runtime.settings)
    return sender.loop.run_until_complete(_send_all(runtime, sender, worker, first, more))


def send_batch(runtime: Runtime, outgoing: list[Outgoing], worker: str, claimed_at: float) -> None:
    """Send prepared messages on this thread's connections and record their outcomes;
    ``claimed_at`` (monotonic) starts the lease clock."""
    if outgoing:
        sender = _sender(runtime.settings)
        sender.loop.run_until_complete(
            _send_all(runtime, sender, worker, (claimed_at, [], outgoing))
        )


def run_outbox(runtime: Runtime) -> int:
    """The worker job: the outbox's due messages, batch after batch (:func:`relay_stream`)."""
    return relay_stream(runtime)
