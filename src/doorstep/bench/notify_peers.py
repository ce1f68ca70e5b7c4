"""The peers of ``doorstep bench notify``: a local SMTP server (aiosmtpd) and a webhook receiver,
in a process of their own.

In the benchmark's process they would share its interpreter lock with the seeding and the
bookkeeping, and their CPU would be mixed with it; in their own process the figure for the
workers stays the workers', and the peers' CPU per message is measured apart (on a 2-core
machine the receivers are a real share of the work: see ADR 0011). The benchmark talks to the
process over a pipe: ``stats``, ``ids``, ``reset``, ``stop``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from doorstep.bench.local_server import free_port

_MSGID = re.compile(rb"^Message-ID:\s*(<[^>]+>)", re.I | re.M)
_START_TIMEOUT_S = 60.0


class Tally:
    """Every accepted message by its id, with the (monotonic, system-wide) times of the first
    and the last."""

    def __init__(self) -> None:
        self.ids: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.first: float | None = None
        self.last: float | None = None

    def add(self, ident: str) -> None:
        now = time.monotonic()
        with self.lock:
            self.ids[ident] += 1
            self.first = self.first or now
            self.last = now

    def reset(self) -> None:
        with self.lock:
            self.ids.clear()
            self.first = self.last = None


class _SmtpSink:
    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        found = _MSGID.search(envelope.original_content or b"")
        self.tally.add(found.group(1).decode() if found else "?")
        return "250 OK"


_NO_CONTENT = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"
_LENGTH_REQUIRED = b"HTTP/1.1 411 Length Required\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


async def _serve_webhooks(
    tally: Tally,
    open_connections: set[asyncio.StreamWriter],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    """One keep-alive HTTP/1.1 connection of the webhook receiver: each POST's head and its
    whole body (``content-length``) are read, its ``webhook-id`` counted, and 204 answered.

    The least a real receiver does, on the SMTP server's event loop: the standard library's
    threaded server spent a thread hand-off and an ``email`` header parse per request, about
    a fifth of the peers' CPU (ADR 0011). A request without a length (chunked) is refused
    with 411, which the relay's client never sends."""
    open_connections.add(writer)
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            headers: dict[bytes, bytes] = {}
            for line in head.split(b"\r\n")[1:]:
                name, colon, value = line.partition(b":")
                if colon:
                    headers[name.strip().lower()] = value.strip()
            length = headers.get(b"content-length", b"")
            if not length.isdigit():
                writer.write(_LENGTH_REQUIRED)
                return
            try:
                await reader.readexactly(int(length))
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            tally.add(headers.get(b"webhook-id", b"?").decode())
            writer.write(_NO_CONTENT)
            if headers.get(b"connection", b"").lower() == b"close":
                return
    finally:
        open_connections.discard(writer)
        writer.close()


@contextmanager
def receivers(tally: Tally) -> Iterator[tuple[str, str]]:
    """A local SMTP server and webhook receiver in this process, on one event loop thread;
    yields (smtp_url, webhook_url)."""
    smtp_port = free_port()
    controller = Controller(_SmtpSink(tally), hostname="127.0.0.1", port=smtp_port)
    controller.start()

    open_connections: set[asyncio.StreamWriter] = set()

    async def start_http() -> asyncio.Server:
        # Many senders connect at once: a short listen backlog would refuse some of them.
        return await asyncio.start_server(
            partial(_serve_webhooks, tally, open_connections), "127.0.0.1", 0, backlog=128
        )

    async def stop_http() -> None:
        # Connections closed, not their tasks cancelled: each handler ends on its own (a
        # cancelled one is reported as an error by asyncio's stream callback).
        server.close()
        for writer in list(open_connections):
            writer.close()
        for _ in range(100):
            if not open_connections:
                break
            await asyncio.sleep(0.01)

    server = asyncio.run_coroutine_threadsafe(start_http(), controller.loop).result(
        _START_TIMEOUT_S
    )
    http_port = server.sockets[0].getsockname()[1]
    try:
        yield f"smtp://127.0.0.1:{smtp_port}", f"http://127.0.0.1:{http_port}/hook"
    finally:
        asyncio.run_coroutine_threadsafe(stop_http(), controller.loop).result(_START_TIMEOUT_S)
        controller.stop()


def _peers_main(link: Connection) -> None:
    """The peers' process: serve until told to stop, answering the benchmark's questions."""
    tally = Tally()
    with receivers(tally) as urls:
        link.send(urls)
        while True:
            command = link.recv()
            if command == "stop":
                break
            if command == "reset":
                tally.reset()
                link.send(None)
            elif command == "stats":
                with tally.lock:
                    total, distinct = sum(tally.ids.values()), len(tally.ids)
                    first, last = tally.first, tally.last
                link.send((total, distinct, first, last, time.process_time()))
            elif command == "ids":
                with tally.lock:
                    link.send(dict(tally.ids))


@dataclass(frozen=True)
class PeerStats:
    total: int  # messages accepted, duplicates included
    distinct: int  # distinct message ids accepted
    first: float | None  # time.monotonic() of the first and the last accepted
    last: float | None
    cpu_s: float  # CPU the peers' process has used since it started


class Peers:
    """The client side: the peers' process and the pipe to it."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._link, child = context.Pipe()
        self._process = context.Process(target=_peers_main, args=(child,), daemon=True)
        self.smtp_url = self.webhook_url = ""

    def __enter__(self) -> Peers:
        self._process.start()
        if not self._link.poll(_START_TIMEOUT_S):
            self._process.kill()
            raise RuntimeError("the peers' process did not start")
        self.smtp_url, self.webhook_url = self._link.recv()
        return self

    def __exit__(self, *_exc: object) -> None:
        with suppress(OSError):
            self._link.send("stop")
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()

    def _ask(self, command: str) -> Any:
        self._link.send(command)
        return self._link.recv()

    def stats(self) -> PeerStats:
        return PeerStats(*self._ask("stats"))

    def ids(self) -> Counter[str]:
        return Counter(self._ask("ids"))

    def reset(self) -> None:
        self._ask("reset")
