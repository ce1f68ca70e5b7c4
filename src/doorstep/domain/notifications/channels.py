"""The I/O seam of the relay: sending one prepared message by SMTP (aiosmtplib, pooled
connections), HTTP (httpx, Standard Webhooks headers already signed) or apprise (SMS, chat),
and reporting the outcome. Nothing here touches the database."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
import apprise
import httpx

from doorstep.domain.notifications.config import Channel
from doorstep.domain.notifications.mail import ComposedEmail
from doorstep.domain.notifications.webhooks import Resolver, UnsafeURL, VettedURL, vet_url
from doorstep.settings import Settings

EXCERPT_CHARS = 500


@dataclass
class Outgoing:
    id: int
    public_id: str
    channel: str
    merchant_id: str
    trigger: str | None = None
    email: ComposedEmail | None = None
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    title: str = ""
    endpoint_id: str | None = None
    event_type: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    order_id: str | None = None
    attempt: int = 1  # the outbox row's ``attempts`` once claimed
    # The order's status and reason as prepared, copied onto its ``message.sent`` event.
    order_status: str | None = None
    order_reason: str | None = None


@dataclass
class Outcome:
    ok: bool
    duration_ms: int
    status_code: int | None = None
    excerpt: str | None = None
    error: str | None = None


def _smtp_kwargs(url: str, timeout: float) -> dict[str, Any]:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    implicit_tls = parts.scheme == "smtps"
    return {
        "hostname": parts.hostname or "127.0.0.1",
        "port": parts.port or (465 if implicit_tls else 25),
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "use_tls": implicit_tls,
        "start_tls": query.get("starttls", ["false"])[0].lower() == "true",
        "timeout": timeout,
    }


def _apprise_send(url: str, title: str, body: str) -> None:
    notifier = apprise.Apprise()
    if not notifier.add(url):
        raise ValueError("the apprise URL is not valid")
    if not notifier.notify(body=body, title=title):
        raise RuntimeError("the service did not accept the message")


class SmtpPool:
    """Up to ``size`` open SMTP connections, reused from message to message and batch to
    batch (a connection that failed is dropped, not reused). A connection idle for a while is
    checked with NOOP first, and one the server closed while idle is replaced before a message
    is given to it."""

    IDLE_CHECK_S = 5.0

    def __init__(self, settings: Settings, size: int) -> None:
        assert settings.smtp_url is not None
        self._kwargs = _smtp_kwargs(settings.smtp_url, settings.webhook_timeout_s)
        self._idle: asyncio.LifoQueue[tuple[aiosmtplib.SMTP, float]] = asyncio.LifoQueue(
            maxsize=size
        )

    async def _fresh(self) -> aiosmtplib.SMTP:
        conn = aiosmtplib.SMTP(**self._kwargs)
        await conn.connect()
        return conn

    async def _pooled(self) -> aiosmtplib.SMTP | None:
        while not self._idle.empty():
            conn, since = self._idle.get_nowait()
            if not conn.is_connected:
                continue
            if time.monotonic() - since > self.IDLE_CHECK_S:
                try:
                    await conn.noop()
                except (aiosmtplib.SMTPException, OSError):
                    conn.close()
                    continue
            return conn
        return None

    async def send(self, message: ComposedEmail) -> None:
        conn = await self._pooled()
        if conn is not None:
            try:
                await conn.sendmail(message.mail_from, [message.to], message.data)
            except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                # The server dropped a kept connection (restarted, idle timeout): it did not
                # take the message, which goes on a fresh connection instead.
                conn.close()
            except BaseException:
                conn.close()
                raise
            else:
                self._keep(conn)
                return
        conn = await self._fresh()
        try:
            await conn.sendmail(message.mail_from, [message.to], message.data)
        except BaseException:
            conn.close()
            raise
        self._keep(conn)

    def _keep(self, conn: aiosmtplib.SMTP) -> None:
        """Back to the pool for the next message (closed if the pool is full)."""
        try:
            self._idle.put_nowait((conn, time.monotonic()))
        except asyncio.QueueFull:
            conn.close()

    async def close(self) -> None:
        while not self._idle.empty():
            conn, _ = self._idle.get_nowait()
            try:
                await conn.quit()
            except (aiosmtplib.SMTPException, OSError):
                conn.close()


Vetting = dict[str, "asyncio.Future[VettedURL]"]


def _is_address(url: str) -> bool:
    try:
        ipaddress.ip_address(urlsplit(url).hostname or "")
    except ValueError:
        return False
    return True


async def _vet(
    url: str, settings: Settings, resolver: Resolver | None, vetting: Vetting | None
) -> VettedURL:
    """:func:`vet_url`, in a thread when it may ask the DNS (not for an address literal), and
    once per URL per ``vetting`` (a batch): its messages all go to the address checked."""

    async def check() -> VettedURL:
        allow = settings.webhook_allow_private
        if _is_address(url):
            return vet_url(url, allow_private=allow, resolver=resolver)
        return await asyncio.to_thread(vet_url, url, allow_private=allow, resolver=resolver)

    if vetting is None:
        return await check()
    found = vetting.get(url)
    if found is None:
        found = vetting[url] = asyncio.ensure_future(check())
    return await asyncio.shield(found)


async def _post_webhook(
    out: Outgoing,
    client: httpx.AsyncClient,
    settings: Settings,
    resolver: Resolver | None,
    vetting: Vetting | None = None,
) -> httpx.Response:
    """POST to the endpoint at a vetted address: the host is resolved once (per batch with
    ``vetting``), every address checked, and the connection goes to the checked address with
    the original ``Host`` and TLS server name (certificates are verified against the name), so
    DNS rebinding between check and connect cannot reach the server's own network. Redirects
    are not followed (a 3xx is a failed attempt)."""
    assert out.url is not None
    vetted = await _vet(out.url, settings, resolver, vetting)
    extensions = {"sni_hostname": vetted.sni_hostname} if vetted.sni_hostname else None
    return await client.post(
        vetted.pinned,
        content=out.body.encode(),
        headers={**out.headers, "host": vetted.host_header},
        extensions=extensions,
        follow_redirects=False,
    )


async def deliver(
    out: Outgoing,
    client: httpx.AsyncClient,
    smtp: SmtpPool | None,
    settings: Settings,
    resolver: Resolver | None = None,
    vetting: Vetting | None = None,
) -> Outcome:
    """Send ``out``; never raises: a failure is an :class:`Outcome` with the error.
    ``resolver`` (host, port) -> addresses replaces the system's for webhooks (tests);
    ``vetting`` shares one vetting per webhook URL among the sends of a batch."""
    started = time.perf_counter()

    def took() -> int:
        return round((time.perf_counter() - started) * 1000)

    try:
        if out.email is not None:
            if smtp is None:
                raise RuntimeError("no SMTP server configured")
            await smtp.send(out.email)
            return Outcome(True, took())
        if out.channel == Channel.WEBHOOK.value:
            resp = await _post_webhook(out, client, settings, resolver, vetting)
            excerpt = resp.text[:EXCERPT_CHARS]
            ok = 200 <= resp.status_code < 300
            return Outcome(
                ok,
                took(),
                resp.status_code,
                excerpt,
                None if ok else f"HTTP {resp.status_code}",
            )
        assert out.url is not None
        await asyncio.to_thread(_apprise_send, out.url, out.title, out.body)
        return Outcome(True, took())
    except UnsafeURL as exc:
        return Outcome(False, took(), error=f"refused: {exc}")
    except Exception as exc:
        return Outcome(False, took(), error=f"{type(exc).__name__}: {exc}"[:1000])
