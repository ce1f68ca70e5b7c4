"""``doorstep bench notify``: messages per second from committed event to accepted by a local
SMTP server (aiosmtpd) and a local webhook receiver, with 1 and 2 ``doorstep worker``
processes, and the messages lost and duplicated when every worker is killed with SIGKILL
mid-run and new ones take over after the lease.

Each order created is one ``order.created`` event and two messages: the confirmation e-mail
and one webhook. The events are committed before the workers start, their messages held back
until every worker is ready (imports done) and then made due at once: the figure is the rate
at which ready workers drain a backlog, from the message becoming due to the peer's
acceptance, without the workers' start-up (reported apart, per worker). The
receivers run in a process of their own (:mod:`doorstep.bench.notify_peers`) and count each
message by its id (``Message-ID``, ``webhook-id``); the workers are real subprocesses. CPU per
message is measured apart for the workers, the peers and (PostgreSQL) the database backends
serving this benchmark's database, so the figure holds whatever else the machine is doing.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, text, update

from doorstep.bench.local_server import is_postgres, scratch_database, scratch_workdir
from doorstep.bench.notify_peers import Peers
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

LEASE_S = 20
WAIT_LIMIT_S = 600.0
READY_LIMIT_S = 180.0


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
    seconds: float  # from the backlog becoming due (workers ready) to the last accepted
    msgs_per_s: float  # from the first message accepted to the last
    # CPU per message (user + system) of the worker processes once ready, of the peers'
    # process, and of the PostgreSQL backends serving the benchmark's database (NaN on
    # SQLite): what each side costs, whatever else the machine is doing.
    worker_cpu_ms_per_msg: float
    peer_cpu_ms_per_msg: float
    db_cpu_ms_per_msg: float
    worker_startup_cpu_s: float  # per worker: imports and settings, before the first claim


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


def _proc_cpu(pid: int) -> float | None:
    """CPU seconds of another process of this machine, from ``/proc`` (None if gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _DatabaseCpu:
    """CPU of the PostgreSQL backends connected to the benchmark's database (the server runs on
    this machine): read before the workers start and before they stop, while their backends
    still exist. Nothing on SQLite, where the database works inside the workers."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.enabled = is_postgres(str(runtime.engine.url))
        self.before: dict[int, float] = {}

    def _backends(self) -> dict[int, float]:
        if not self.enabled:
            return {}
        with self.runtime.read_sessions() as session:
            pids = session.scalars(
                text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            ).all()
        found = {pid: _proc_cpu(pid) for pid in pids}
        return {pid: cpu for pid, cpu in found.items() if cpu is not None}

    def start(self) -> None:
        self.before = self._backends()

    def used(self) -> float:
        """CPU seconds since :meth:`start` (NaN on SQLite, or where ``/proc`` is closed)."""
        now = self._backends()
        if not now:
            return math.nan
        return sum(cpu - self.before.get(pid, 0.0) for pid, cpu in now.items())


class _Workers:
    """``doorstep worker --jobs outbox`` processes. Each is ready once it logs that its runner
    started: imports and settings done, the next step is its first claim. (Importing the
    application costs a worker about 2 s of CPU on an idle machine, several on a loaded one;
    counted apart from the messages.)"""

    def __init__(self, env: dict[str, str], count: int) -> None:
        doorstep = Path(sys.executable).parent / "doorstep"
        self.procs = [
            subprocess.Popen(  # noqa: S603 - our own entry point, fixed arguments
                [str(doorstep), "worker", "--jobs", "outbox"],
                env={**env, "DOORSTEP_LOG_LEVEL": "INFO"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for _ in range(count)
        ]
        self._ready = [threading.Event() for _ in self.procs]
        for proc, ready in zip(self.procs, self._ready, strict=True):
            threading.Thread(target=self._watch, args=(proc, ready), daemon=True).start()

    @staticmethod
    def _watch(proc: subprocess.Popen[bytes], ready: threading.Event) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:  # read to the end, so the pipe never fills
            if b"worker started" in line:
                ready.set()
        ready.set()  # it ended (or failed) before: do not wait for it

    def wait_ready(self, limit_s: float = READY_LIMIT_S) -> None:
        deadline = time.monotonic() + limit_s
        for ready in self._ready:
            ready.wait(max(deadline - time.monotonic(), 0))

    def cpu(self) -> float:
        """CPU seconds the living workers have used so far."""
        return sum(_proc_cpu(proc.pid) or 0.0 for proc in self.procs)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        for proc in self.procs:
            proc.send_signal(sig)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _hold(runtime: Runtime) -> None:
    """Keep the seeded backlog from being claimed until :func:`_release`."""
    with transaction(runtime.sessions) as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == "pending")
            .values(next_attempt_at=runtime.clock.now() + timedelta(days=1))
        )


def _release(runtime: Runtime) -> None:
    """Make the whole backlog due now: as if every event had just been committed."""
    with transaction(runtime.sessions) as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == "pending")
            .values(next_attempt_at=runtime.clock.now())
        )


def _wait_for(peers: Peers, target: int, limit_s: float = WAIT_LIMIT_S) -> None:
    deadline = time.monotonic() + limit_s
    while peers.stats().distinct < target and time.monotonic() < deadline:
        time.sleep(0.05)


def _public_id(ident: str) -> str:
    """The outbox id in a receiver's id: ``webhook-id`` as is, ``<msg_...@host>`` unwrapped."""
    return ident.strip("<>").split("@", 1)[0]


def _in_flight(runtime: Runtime, peers: Peers) -> tuple[set[str], set[str]]:
    """(ids of rows left ``sending``, those of them the receivers already accepted)."""
    with runtime.read_sessions() as session:
        stuck = set(
            session.scalars(
                select(OutboxMessage.public_id).where(OutboxMessage.status == "sending")
            )
        )
    received = {_public_id(ident) for ident in peers.ids()}
    return stuck, stuck & received


def _measure(
    runtime: Runtime, peers: Peers, env: dict[str, str], count: int, expected: int
) -> RunFigures:
    """Start ``count`` workers, wait until they are ready, make the seeded backlog due and
    time it until the peers have every message."""
    peers.reset()
    _hold(runtime)
    workers = _Workers(env, count)
    try:
        workers.wait_ready()
        started_cpu = workers.cpu()
        database = _DatabaseCpu(runtime)
        database.start()
        peer_cpu_before = peers.stats().cpu_s
        started = time.monotonic()
        _release(runtime)
        _wait_for(peers, expected)
        # Read while the workers and their database backends are still there.
        worker_cpu = workers.cpu() - started_cpu
        db_cpu = database.used()
    finally:
        workers.stop()
    stats = peers.stats()
    last = stats.last or time.monotonic()
    steady = max(last - (stats.first or started), 1e-6)
    return RunFigures(
        count,
        expected,
        stats.distinct,
        last - started,
        stats.total / steady,
        worker_cpu * 1000 / expected,
        (stats.cpu_s - peer_cpu_before) * 1000 / expected,
        db_cpu * 1000 / expected,
        started_cpu / count,
    )


def _kill_run(runtime: Runtime, peers: Peers, env: dict[str, str], expected: int) -> KillFigures:
    """Two workers SIGKILLed half-way; two new ones finish after the lease."""
    peers.reset()
    _hold(runtime)
    workers = _Workers(env, 2)
    workers.wait_ready()
    _release(runtime)
    _wait_for(peers, expected // 2)
    workers.stop(signal.SIGKILL)
    time.sleep(0.5)  # a request the dead workers had fully sent still lands
    at_kill = peers.stats().distinct
    in_flight, sent_unrecorded = _in_flight(runtime, peers)
    time.sleep(LEASE_S + 1)  # let the dead workers' leases run out
    workers = _Workers(env, 2)
    try:
        _wait_for(peers, expected)
        time.sleep(1)  # let any duplicate arrive before counting
    finally:
        workers.stop()
    ids = peers.ids()
    twice = {_public_id(ident) for ident, c in ids.items() if c > 1}
    return KillFigures(
        expected,
        at_kill,
        len(in_flight),
        len(sent_unrecorded),
        expected - len(ids),
        sum(c - 1 for c in ids.values()),
        len(twice - in_flight),
    )


def run_notify_bench(
    *, database_url: str | None, orders: int, workers: list[int], kill: bool
) -> tuple[list[RunFigures], KillFigures | None]:
    runs: list[RunFigures] = []
    killed: KillFigures | None = None
    with scratch_workdir() as workdir, scratch_database(database_url, workdir) as url:
        settings = Settings(
            data_dir=workdir, database_url=url, run_worker=False, webhook_allow_private=True
        )
        runtime = Runtime.from_settings(settings, SystemClock())
        upgrade(runtime.engine)
        with Peers() as peers:
            env = {
                **os.environ,
                "DOORSTEP_DATABASE_URL": url,
                "DOORSTEP_DATA_DIR": str(workdir),
                "DOORSTEP_SMTP_URL": peers.smtp_url,
                "DOORSTEP_WEBHOOK_ALLOW_PRIVATE": "true",
                "DOORSTEP_OUTBOX_LEASE_S": str(LEASE_S),
                "DOORSTEP_LOG_LEVEL": "WARNING",
            }
            for n, count in enumerate(workers):
                expected = seed(runtime, peers.webhook_url, orders, f"r{n}")
                runs.append(_measure(runtime, peers, env, count, expected))
            if kill:
                expected = seed(runtime, peers.webhook_url, orders, "kill")
                killed = _kill_run(runtime, peers, env, expected)
        runtime.close()
    return runs, killed
