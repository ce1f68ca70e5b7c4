"""``doorstep bench notify``: messages per second from committed event to accepted by a local
SMTP server (aiosmtpd) and a local webhook receiver, with 1 and 2 ``doorstep worker``
processes, and the messages lost and duplicated when every worker is killed with SIGKILL
mid-run and new ones take over after the lease.

Each order created is one ``order.created`` event and two messages: the confirmation e-mail
and one webhook. The receivers run in this process and count each message by its id
(``Message-ID``, ``webhook-id``); the workers are real subprocesses.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select

from doorstep.bench.local_server import free_port, scratch_database, scratch_workdir
from doorstep.clock import SystemClock
from doorstep.db.engine import transaction
from doorstep.db.migrate import upgrade
from doorstep.domain.accounts.service import create_merchant
from doorstep.domain.errors import Actor
from doorstep.domain.notifications.models import OutboxMessage
from doorstep.domain.notifications.webhooks import create_endpoint
from doorstep.domain.orders.schemas import OrderCreate
from doorstep.domain.orders.service import create_order
from doorstep.runtime import Runtime
from doorstep.settings import Settings

_MSGID = re.compile(rb"^Message-ID:\s*(<[^>]+>)", re.I | re.M)
LEASE_S = 20
WAIT_LIMIT_S = 600.0


class Tally:
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

    def total(self) -> int:
        with self.lock:
            return sum(self.ids.values())

    def distinct(self) -> int:
        with self.lock:
            return len(self.ids)

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
    """A local SMTP server and webhook receiver; yields (smtp_url, webhook_url)."""
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
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"smtp://127.0.0.1:{smtp_port}", f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()
        controller.stop()


def _order(i: int, run: str) -> OrderCreate:
    return OrderCreate.model_validate(
        {
            "reference": f"B-{run}-{i}",
            "recipient": {"name": "Bench Recipient", "email": f"r{i}@example.com"},
            "address": {
                "line1": "1 Avenue de la Costa",
                "city": "Monaco",
                "country": "MC",
                "lat": 43.7405,
                "lon": 7.4263,
            },
            "service_level": "next_day",
        }
    )


def seed(runtime: Runtime, webhook_url: str, orders: int, run: str) -> int:
    """A merchant (e-mail only, no quiet hours) with one endpoint, and ``orders`` orders."""
    with transaction(runtime.sessions) as session:
        merchant = create_merchant(session, runtime.clock, name=f"Bench {run}", timezone="UTC")
        merchant.config = {
            "notifications": {"quiet_hours": None, "triggers": {"order_confirmed": ["email"]}}
        }
        create_endpoint(
            session,
            runtime.clock,
            merchant.id,
            url=webhook_url,
            events=["order.created"],
            description="bench",
            allow_private=True,
        )
        merchant_id = merchant.id
    secret = runtime.settings.effective_secret_key
    for start in range(0, orders, 200):
        with transaction(runtime.sessions) as session:
            for i in range(start, min(start + 200, orders)):
                create_order(
                    session,
                    runtime.clock,
                    merchant_id,
                    _order(i, run),
                    actor=Actor.system(),
                    secret_key=secret,
                )
    return orders * 2


@dataclass
class RunFigures:
    workers: int
    messages: int
    received: int
    seconds: float  # from starting the workers to the last message accepted
    msgs_per_s: float  # from the first message accepted to the last (start-up excluded)
    # CPU the worker processes used (user + system, start-up included) per message: what the
    # relay costs, whatever else the machine is doing.
    worker_cpu_ms_per_msg: float


@dataclass
class KillFigures:
    messages: int
    received_at_kill: int
    # Claimed by the killed workers and not recorded (outbox rows left ``sending``): the
    # messages that may go out again once their lease expires.
    in_flight: int
    # Of those, the ones the receivers had already accepted: a re-send of one of these is a
    # duplicate, so ``duplicated`` can be at most this (and at most workers x concurrency).
    sent_unrecorded: int
    lost: int
    duplicated: int
    # Duplicates of messages that were not in flight at the kill (should be 0).
    duplicated_outside_in_flight: int


def _children_cpu() -> float:
    """CPU seconds of this process's finished (waited-for) children: the workers."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _spawn(env: dict[str, str], count: int) -> list[subprocess.Popen[bytes]]:
    doorstep = Path(sys.executable).parent / "doorstep"
    return [
        subprocess.Popen(  # noqa: S603 - our own entry point, fixed arguments
            [str(doorstep), "worker", "--jobs", "outbox"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


def _stop(procs: list[subprocess.Popen[bytes]], sig: int = signal.SIGTERM) -> None:
    for proc in procs:
        proc.send_signal(sig)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for(tally: Tally, target: int, limit_s: float = WAIT_LIMIT_S) -> None:
    deadline = time.monotonic() + limit_s
    while tally.distinct() < target and time.monotonic() < deadline:
        time.sleep(0.05)


def _public_id(ident: str) -> str:
    """The outbox id in a receiver's id: ``webhook-id`` as is, ``<msg_...@host>`` unwrapped."""
    return ident.strip("<>").split("@", 1)[0]


def _in_flight(runtime: Runtime, tally: Tally) -> tuple[set[str], set[str]]:
    """(ids of rows left ``sending``, those of them the receivers already accepted)."""
    with runtime.read_sessions() as session:
        stuck = set(
            session.scalars(
                select(OutboxMessage.public_id).where(OutboxMessage.status == "sending")
            )
        )
    with tally.lock:
        received = {_public_id(ident) for ident in tally.ids}
    return stuck, stuck & received


def run_notify_bench(
    *, database_url: str | None, orders: int, workers: list[int], kill: bool
) -> tuple[list[RunFigures], KillFigures | None]:
    tally = Tally()
    runs: list[RunFigures] = []
    killed: KillFigures | None = None
    with scratch_workdir() as workdir, scratch_database(database_url, workdir) as url:
        settings = Settings(
            data_dir=workdir, database_url=url, run_worker=False, webhook_allow_private=True
        )
        runtime = Runtime.from_settings(settings, SystemClock())
        upgrade(runtime.engine)
        with receivers(tally) as (smtp_url, webhook_url):
            env = {
                **os.environ,
                "DOORSTEP_DATABASE_URL": url,
                "DOORSTEP_DATA_DIR": str(workdir),
                "DOORSTEP_SMTP_URL": smtp_url,
                "DOORSTEP_WEBHOOK_ALLOW_PRIVATE": "true",
                "DOORSTEP_OUTBOX_LEASE_S": str(LEASE_S),
                "DOORSTEP_LOG_LEVEL": "WARNING",
            }
            for n, count in enumerate(workers):
                tally.reset()
                expected = seed(runtime, webhook_url, orders, f"r{n}")
                started = time.monotonic()
                cpu_before = _children_cpu()
                procs = _spawn(env, count)
                try:
                    _wait_for(tally, expected)
                finally:
                    _stop(procs)
                cpu = _children_cpu() - cpu_before
                last = tally.last or time.monotonic()
                steady = max(last - (tally.first or started), 1e-6)
                runs.append(
                    RunFigures(
                        count,
                        expected,
                        tally.distinct(),
                        last - started,
                        tally.total() / steady,
                        cpu * 1000 / expected,
                    )
                )
            if kill:
                tally.reset()
                expected = seed(runtime, webhook_url, orders, "kill")
                procs = _spawn(env, 2)
                _wait_for(tally, expected // 2)
                _stop(procs, signal.SIGKILL)
                time.sleep(0.5)  # a request the dead workers had fully sent still lands
                at_kill = tally.distinct()
                in_flight, sent_unrecorded = _in_flight(runtime, tally)
                time.sleep(LEASE_S + 1)  # let the dead workers' leases run out
                procs = _spawn(env, 2)
                try:
                    _wait_for(tally, expected)
                    time.sleep(1)  # let any duplicate arrive before counting
                finally:
                    _stop(procs)
                with tally.lock:
                    dup = sum(c - 1 for c in tally.ids.values())
                    twice = {_public_id(ident) for ident, c in tally.ids.items() if c > 1}
                killed = KillFigures(
                    expected,
                    at_kill,
                    len(in_flight),
                    len(sent_unrecorded),
                    expected - tally.distinct(),
                    dup,
                    len(twice - in_flight),
                )
        runtime.close()
    return runs, killed
