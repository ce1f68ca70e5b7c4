"""Local message sinks for a simulated day: an SMTP server (aiosmtpd) and an HTTP receiver for
webhooks and SMS, on free ports of 127.0.0.1, that keep and count what Doorstep sends them.

SMS reach the HTTP receiver through apprise's ``json://`` scheme (:attr:`Sinks.sms_url` is the
merchant's ``sms_url``), so every recipient message of the day passes through a real wire
protocol and can be counted, matched to its order and shown.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from doorstep.clock import Clock

__all__ = ["SinkMessage", "Sinks", "email_order_id"]

_THREAD_ROOT = re.compile(r"<(ord_[A-Za-z0-9]+)@")


@dataclass(frozen=True)
class SinkMessage:
    """One message as a sink received it.

    ``channel``: ``email``, ``sms`` or ``webhook``; ``to``: the address, phone number or
    webhook URL path; ``subject``: the e-mail's subject, the webhook's event type, the SMS's
    title; ``key``: the message's own id (``Message-ID``, ``webhook-id``; None for SMS), so a
    message delivered twice shows as two entries with one key; ``order_id`` when the message
    says which order it is about; ``at``: when it arrived (the sinks' clock)."""

    channel: str
    to: str
    subject: str
    body: str
    key: str | None
    order_id: str | None
    at: datetime


def email_order_id(msg: EmailMessage) -> str | None:
    """The order an e-mail is about, from its ``References`` thread root (one per order)."""
    match = _THREAD_ROOT.search(str(msg.get("References") or ""))
    return match.group(1) if match else None


def _text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = part.get_content()
    return content if isinstance(content, str) else ""


def _free_port() -> int:
    # aiosmtpd connects to its own port to check that it started, so it needs a real one.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the relay sends concurrently
    daemon_threads = True


class Sinks:
    """A context manager: starts both servers on entry, stops them on exit (thread-safe)."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._messages: list[SinkMessage] = []
        self._smtp: Controller | None = None
        self._http: _Server | None = None
        self._thread: threading.Thread | None = None
        self.smtp_url = ""
        self.webhook_url = ""
        self.sms_url = ""

    # --- life -----------------------------------------------------------------------------

    def __enter__(self) -> Sinks:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        sinks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                sinks._took_http(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                answer = b'{"ok":true}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._http = _Server(("127.0.0.1", 0), Handler)
        port = self._http.server_address[1]
        self._thread = threading.Thread(
            target=self._http.serve_forever, name="doorstep-sim-sink", daemon=True
        )
        self._thread.start()
        self.webhook_url = f"http://127.0.0.1:{port}/hooks"
        self.sms_url = f"json://127.0.0.1:{port}/sms?:to={{phone}}"

        smtp_port = _free_port()
        self._smtp = Controller(_SmtpHandler(self), hostname="127.0.0.1", port=smtp_port)
        self._smtp.start()
        self.smtp_url = f"smtp://127.0.0.1:{smtp_port}"

    def close(self) -> None:
        if self._smtp is not None:
            self._smtp.stop()
            self._smtp = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    # --- reading --------------------------------------------------------------------------

    def messages(self) -> list[SinkMessage]:
        """Everything received, newest last."""
        with self._lock:
            return list(self._messages)

    def count(self, channel: str | None = None) -> int:
        with self._lock:
            return sum(1 for m in self._messages if channel is None or m.channel == channel)

    # --- receiving ------------------------------------------------------------------------

    def _now(self) -> datetime:
        return self._clock.now() if self._clock is not None else datetime.now(UTC)

    def _add(self, message: SinkMessage) -> None:
        with self._lock:
            self._messages.append(message)

    def _took_email(self, content: bytes, rcpt: list[str]) -> None:
        msg = message_from_bytes(content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self._add(
            SinkMessage(
                channel="email",
                to=str(msg.get("To") or ",".join(rcpt)),
                subject=str(msg.get("Subject") or ""),
                body=_text_of(msg),
                key=str(msg.get("Message-ID") or "") or None,
                order_id=email_order_id(msg),
                at=self._now(),
            )
        )

    def _took_http(self, path: str, headers: dict[str, str], body: bytes) -> None:
        try:
            data = json.loads(body or b"null")
        except ValueError:
            data = None
        parts = urlsplit(path)
        if parts.path.startswith("/sms"):
            query = parse_qs(parts.query)
            payload = data if isinstance(data, dict) else {}
            to = str(payload.get("to") or (query.get("to") or [""])[0])
            self._add(
                SinkMessage(
                    channel="sms",
                    to=to,
                    subject=str(payload.get("title") or ""),
                    body=str(payload.get("message") or ""),
                    key=None,
                    order_id=None,
                    at=self._now(),
                )
            )
            return
        event = data if isinstance(data, dict) else {}
        inner = event.get("data")
        order_id = None
        if isinstance(inner, dict):
            found = inner.get("order_id") or (inner.get("order") or {}).get("id")
            order_id = str(found) if found else None
        self._add(
            SinkMessage(
                channel="webhook",
                to=parts.path,
                subject=str(event.get("type") or ""),
                body=body.decode("utf-8", "replace"),
                key=headers.get("webhook-id"),
                order_id=order_id,
                at=self._now(),
            )
        )


class _SmtpHandler:
    def __init__(self, sinks: Sinks) -> None:
        self.sinks = sinks

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        rcpt = [str(r) for r in envelope.rcpt_tos]
        self.sinks._took_email(envelope.original_content or b"", rcpt)
        return "250 OK"
