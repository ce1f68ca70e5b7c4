"""Real local peers for message tests: an aiosmtpd SMTP server and an HTTP receiver that
answers with a scripted list of status codes."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Merchant
from doorstep.domain.notifications.webhooks import create_endpoint
from doorstep.runtime import Runtime


class _Collect:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        msg = message_from_bytes(content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        with self.lock:
            self.messages.append(msg)
        return "250 OK"


@dataclass
class SmtpPeer:
    port: int
    handler: _Collect

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[EmailMessage]:
        with self.handler.lock:
            return list(self.handler.messages)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def smtp_server() -> Iterator[SmtpPeer]:
    handler = _Collect()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpPeer(port, handler)
    finally:
        controller.stop()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpPeer:
    port: int
    received: list[Received] = field(default_factory=list)
    script: list[int] = field(default_factory=list)  # status codes to answer, then 200
    delay_s: float = 0.0  # a slow receiver, to catch a sender mid-batch
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def answer(self) -> int:
        with self.lock:
            return self.script.pop(0) if self.script else 200


class _Server(ThreadingHTTPServer):
    # Many senders connect at once: a short listen backlog would refuse some of them.
    request_queue_size = 128
    daemon_threads = True


@contextmanager
def http_receiver(script: list[int] | None = None, delay_s: float = 0.0) -> Iterator[HttpPeer]:
    peer = HttpPeer(0, script=list(script or []), delay_s=delay_s)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            status = peer.answer()
            if peer.delay_s:
                time.sleep(peer.delay_s)
            with peer.lock:
                peer.received.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
            answer = b'{"ok":true}' if status < 300 else b"receiver is down"
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = _Server(("127.0.0.1", 0), Handler)
    peer.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        server.shutdown()
        server.server_close()


# --- A merchant's channels pointed at these peers --------------------------------------------


def texts_to(
    runtime: Runtime,
    merchant_id: str,
    peer: HttpPeer,
    triggers: dict[str, list[str]],
    **notifications: Any,
) -> None:
    """The merchant sends SMS through apprise (``json://``) to ``peer``, for ``triggers``
    (trigger -> channels); other ``notifications`` settings as given."""
    with transaction(runtime.sessions) as session:
        row = session.get(Merchant, merchant_id)
        assert row is not None
        row.config = {
            **(row.config or {}),
            "notifications": {
                "sms_url": f"json://127.0.0.1:{peer.port}/sms?:to={{phone}}",
                "triggers": triggers,
                **notifications,
            },
        }


def hooks_to(runtime: Runtime, merchant_id: str, peer: HttpPeer, events: list[str]) -> None:
    """A webhook endpoint of the merchant's, for ``events``, at ``peer``."""
    with transaction(runtime.sessions) as session:
        create_endpoint(
            session,
            runtime.clock,
            merchant_id,
            url=f"http://127.0.0.1:{peer.port}/hook",
            events=events,
            description=None,
            allow_private=True,
        )


def allowing_private(runtime: Runtime) -> Runtime:
    """``runtime`` with webhooks to private addresses allowed: the tests' receivers are on
    127.0.0.1, which production refuses."""
    settings = runtime.settings.model_copy(update={"webhook_allow_private": True})
    return Runtime(settings=settings, clock=runtime.clock, engine=runtime.engine)
