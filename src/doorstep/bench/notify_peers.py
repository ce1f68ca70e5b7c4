"""The peers of ``doorstep bench notify``: a local SMTP server (aiosmtpd) and a webhook receiver,
in a process of their own.

In the benchmark's process they would share its interpreter lock with the seeding and the
bookkeeping, and their CPU would be mixed with it; in their own process the figure for the
workers stays the workers', and the peers' CPU per message is measured apart (on a 2-core
machine the receivers are a real share of the work: see ADR 0011). The benchmark talks to the
process over a pipe: ``stats``, ``ids``, ``reset``, ``stop``.
"""

from __future__ import annotations

import multiprocessing
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


class _Server(ThreadingHTTPServer):
    # Many senders connect at once: a short listen backlog would refuse some of them.
    request_queue_size = 128
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a killed worker's connection reset is part of the benchmark, not an error


@contextmanager
def receivers(tally: Tally) -> Iterator[tuple[str, str]]:
    """A local SMTP server and webhook receiver in this process; yields (smtp_url,
    webhook_url)."""
    smtp_port = free_port()
    controller = Controller(_SmtpSink(tally), hostname="127.0.0.1", port=smtp_port)
    controller.start()

    class Hook(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            tally.add(self.headers.get("webhook-id") or "?")
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = _Server(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"smtp://127.0.0.1:{smtp_port}", f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()
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
