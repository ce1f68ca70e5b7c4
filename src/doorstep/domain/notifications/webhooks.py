"""Merchant webhook endpoints: create, list, read, update, delete, rotate the secret, replay,
and the attempt log. Deliveries follow the Standard Webhooks spec (see :mod:`.relay`).

An endpoint URL must not reach the server's own network: a host that resolves to a loopback,
private, link-local, multicast or reserved address is refused at create/update and again at
every send, unless ``DOORSTEP_WEBHOOK_ALLOW_PRIVATE=true``.
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.domain.errors import FieldError, NotFound, Unprocessable
from doorstep.domain.notifications.config import Channel
from doorstep.domain.notifications.models import OutboxMessage, WebhookAttempt, WebhookEndpoint
from doorstep.domain.notifications.outbox import endpoint_matches, webhook_body
from doorstep.domain.orders.models import DeliveryEvent
from doorstep.ids import new_id

ROTATION_OVERLAP = timedelta(hours=24)
MAX_REPLAY = 10_000


class UnsafeURL(ValueError):
    """The URL points into the server's own network."""


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def blocked_address(address: str) -> bool:
    """Whether ``address`` is outside the public internet: loopback, private, link-local,
    multicast, reserved, unspecified or otherwise not global, IPv4-mapped IPv6 included."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (the operating system's resolver), in its order."""
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class VettedURL:
    """A webhook URL whose host was resolved once and every address checked. Connect to
    :attr:`pinned` (the first address) with :attr:`host_header` and :attr:`sni_hostname`, so
    a name that resolves elsewhere a moment later (DNS rebinding) is never asked again."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def sni_hostname(self) -> str | None:
        return self.host if self.scheme == "https" else None

    @property
    def pinned(self) -> str:
        """The URL with its host replaced by the vetted address."""
        parts = urlsplit(self.url)
        address = self.addresses[0]
        netloc = f"[{address}]" if ":" in address else address
        netloc = f"{netloc}:{self.port}"
        return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


def vet_url(url: str, *, allow_private: bool, resolver: Resolver | None = None) -> VettedURL:
    """Resolve ``url``'s host once and check every address it resolves to; raise
    :class:`UnsafeURL` if one is not public (unless ``allow_private``) or the URL is not
    http(s) with a host."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise UnsafeURL("an http:// or https:// URL with a host") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise UnsafeURL("an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise UnsafeURL("a URL without a user name or password in it")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = [str(ipaddress.ip_address(host))]  # an address literal
    except ValueError:
        try:
            addresses = (resolver or system_resolver)(host, port)
        except (OSError, UnicodeError, ValueError) as exc:
            raise UnsafeURL(f"the host {host} does not resolve") from exc
    if not addresses:
        raise UnsafeURL(f"the host {host} does not resolve")
    if not allow_private:
        for address in addresses:
            if blocked_address(address):
                raise UnsafeURL(
                    f"{host} resolves to {address}, a loopback, private or link-local "
                    "address (set DOORSTEP_WEBHOOK_ALLOW_PRIVATE=true to allow it)"
                )
    return VettedURL(url, parts.scheme, host, port, tuple(addresses))


def check_url(url: str, *, allow_private: bool, resolver: Resolver | None = None) -> None:
    """Raise :class:`UnsafeURL` if ``url`` is not http(s) or resolves into a private network
    (at create and update; every send vets it again with :func:`vet_url`)."""
    if allow_private:
        try:
            parts = urlsplit(url)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            ok = False
        if not ok:
            raise UnsafeURL("an http:// or https:// URL with a host")
        return
    vet_url(url, allow_private=False, resolver=resolver)


def _validated(url: str, events: Sequence[str], allow_private: bool) -> list[str]:
    errors: list[FieldError] = []
    try:
        check_url(url, allow_private=allow_private)
    except UnsafeURL as exc:
        errors.append(FieldError("url", str(exc), "unsafe_url"))
    for i, name in enumerate(events):
        if name != "*" and ("." not in name or name.startswith("message.")):
            errors.append(
                FieldError(f"events[{i}]", "an event name like delivery.delivered or delivery.*")
            )
    if errors:
        raise Unprocessable("the webhook endpoint is not valid", errors=errors)
    return sorted(set(events))


def get_endpoint(session: Session, merchant_id: str, endpoint_id: str) -> WebhookEndpoint:
    row = session.get(WebhookEndpoint, endpoint_id)
    if row is None or row.merchant_id != merchant_id:
        raise NotFound("no such webhook endpoint")
    return row


def list_endpoints(session: Session, merchant_id: str) -> list[WebhookEndpoint]:
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.merchant_id == merchant_id)
            .order_by(WebhookEndpoint.created_at)
        )
    )


def create_endpoint(
    session: Session,
    clock: Clock,
    merchant_id: str,
    *,
    url: str,
    events: Sequence[str],
    description: str | None,
    allow_private: bool,
) -> WebhookEndpoint:
    """A new endpoint with a fresh ``whsec_`` secret (the caller shows it once)."""
    names = _validated(url, events, allow_private)
    now = clock.now()
    row = WebhookEndpoint(
        id=new_id("whe", now),
        merchant_id=merchant_id,
        url=url,
        secret=new_secret(),
        events=names,
        active=True,
        description=description,
        failure_streak=0,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    return row


def update_endpoint(
    session: Session,
    clock: Clock,
    merchant_id: str,
    endpoint_id: str,
    *,
    url: str | None,
    events: Sequence[str] | None,
    description: str | None,
    active: bool | None,
    allow_private: bool,
) -> WebhookEndpoint:
    row = get_endpoint(session, merchant_id, endpoint_id)
    names = _validated(
        url if url is not None else row.url,
        events if events is not None else row.events,
        allow_private,
    )
    if url is not None:
        row.url = url
    row.events = names
    if description is not None:
        row.description = description
    if active is not None:
        row.active = active
        if active:  # re-enabling starts a fresh streak
            row.failure_streak = 0
            row.failing_since = None
            row.disabled_reason = None
    row.updated_at = clock.now()
    return row


def delete_endpoint(session: Session, merchant_id: str, endpoint_id: str) -> None:
    row = get_endpoint(session, merchant_id, endpoint_id)
    session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.channel == Channel.WEBHOOK.value,
            OutboxMessage.target == row.id,
            OutboxMessage.status == "pending",
        )
        .values(status="suppressed", last_error="endpoint deleted")
    )
    session.delete(row)


def rotate_secret(
    session: Session, clock: Clock, merchant_id: str, endpoint_id: str
) -> WebhookEndpoint:
    """A new secret; the old one keeps signing too (two signatures) for 24 hours."""
    row = get_endpoint(session, merchant_id, endpoint_id)
    now = clock.now()
    row.previous_secret = row.secret
    row.previous_secret_expires_at = now + ROTATION_OVERLAP
    row.secret = new_secret()
    row.updated_at = now
    return row


def signing_secrets(row: WebhookEndpoint, now: datetime) -> list[str]:
    out = [row.secret]
    if (
        row.previous_secret
        and row.previous_secret_expires_at
        and row.previous_secret_expires_at > now
    ):
        out.append(row.previous_secret)
    return out


def list_attempts(
    session: Session, merchant_id: str, endpoint_id: str, *, limit: int = 100
) -> list[WebhookAttempt]:
    get_endpoint(session, merchant_id, endpoint_id)
    return list(
        session.scalars(
            select(WebhookAttempt)
            .where(
                WebhookAttempt.merchant_id == merchant_id,
                WebhookAttempt.endpoint_id == endpoint_id,
            )
            .order_by(WebhookAttempt.id.desc())
            .limit(limit)
        )
    )


def _requeue(row: OutboxMessage, now: datetime) -> None:
    row.status = "pending"
    row.attempts = 0
    row.next_attempt_at = now
    row.locked_by = None
    row.locked_until = None
    row.last_error = None


def replay(
    session: Session,
    clock: Clock,
    merchant_id: str,
    endpoint_id: str,
    *,
    message_id: str | None = None,
    since: datetime | None = None,
) -> int:
    """Send one message again (same ``webhook-id``), or every matching event since a time
    (existing messages are re-queued under their id, older events get new messages)."""
    endpoint = get_endpoint(session, merchant_id, endpoint_id)
    now = clock.now()
    if message_id is not None:
        msg = session.scalar(
            select(OutboxMessage).where(
                OutboxMessage.public_id == message_id,
                OutboxMessage.merchant_id == merchant_id,
                OutboxMessage.target == endpoint.id,
            )
        )
        if msg is None:
            raise NotFound("no such message for this endpoint")
        _requeue(msg, now)
        return 1
    if since is None:
        raise Unprocessable("give message_id or since", errors=[FieldError("since", "required")])
    events = session.scalars(
        select(DeliveryEvent)
        .where(DeliveryEvent.merchant_id == merchant_id, DeliveryEvent.recorded_at >= since)
        .order_by(DeliveryEvent.seq)
        .limit(MAX_REPLAY)
    ).all()
    existing = {
        m.event_id: m
        for m in session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.merchant_id == merchant_id,
                OutboxMessage.target == endpoint.id,
                OutboxMessage.created_at >= since,
            )
        )
    }
    count = 0
    for ev in events:
        if ev.type.startswith("message.") or not endpoint_matches(endpoint, ev.type):
            continue
        msg = existing.get(ev.id)
        if msg is not None:
            _requeue(msg, now)
        else:
            session.add(
                OutboxMessage(
                    public_id=new_id("msg", now),
                    merchant_id=merchant_id,
                    channel=Channel.WEBHOOK.value,
                    topic=ev.type,
                    event_id=ev.id,
                    order_id=ev.order_id,
                    target=endpoint.id,
                    payload=webhook_body(ev),
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
        count += 1
    return count
