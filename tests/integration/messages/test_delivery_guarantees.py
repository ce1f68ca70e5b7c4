"""Delivery guarantees of the outbox: concurrent workers never send one message twice, and a
worker killed with SIGKILL mid-batch loses nothing and re-sends at most the message in flight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from doorstep.clock import FrozenClock
from doorstep.db.engine import make_engine, transaction
from doorstep.db.migrate import upgrade
from doorstep.domain.accounts.service import create_merchant
from doorstep.domain.errors import Actor
from doorstep.domain.notifications.models import OutboxMessage
from doorstep.domain.notifications.relay import relay_once, relay_stream, run_outbox
from doorstep.domain.notifications.webhooks import create_endpoint
from doorstep.domain.orders.events import append_event
from doorstep.runtime import Runtime
from doorstep.settings import Settings
from tests.conftest import NOW, TEST_SECRET
from tests.peers import http_receiver


def seed(runtime: Runtime, url: str, count: int) -> None:
    """A merchant with one endpoint and ``count`` route events, so ``count`` webhooks."""
    with transaction(runtime.sessions) as session:
        merchant = create_merchant(session, runtime.clock, name="Bench Shop", timezone="UTC")
        create_endpoint(
            session,
            runtime.clock,
            merchant.id,
            url=url,
            events=["route.*"],
            description=None,
            allow_private=True,
        )
        session.flush()
        for i in range(count):
            append_event(
                session,
                runtime.clock,
                merchant_id=merchant.id,
                type="route.published",
                actor=Actor.system(),
                route_id=f"rte_{i}",
                data={"n": i},
            )


def test_two_concurrent_workers_never_send_one_message_twice(runtime: Runtime) -> None:
    """Two relays claiming side by side (SKIP LOCKED / single writer) split 120 messages."""
    settings = runtime.settings.model_copy(
        update={"webhook_allow_private": True, "outbox_batch": 10}
    )
    rt = Runtime(settings=settings, clock=runtime.clock, engine=runtime.engine)
    with http_receiver(delay_s=0.002) as peer:
        seed(rt, peer.url, 120)
        claimed: Counter[str] = Counter()

        def work(name: str) -> None:
            for _ in range(100):  # bounded
                n = relay_once(rt, worker=name)
                claimed[name] += n
                if n == 0:
                    return

        threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        ids = Counter(r.headers["webhook-id"] for r in peer.received)
    assert len(ids) == 120
    assert max(ids.values()) == 1
    assert sum(claimed.values()) == 120


def test_sigkill_mid_batch_loses_nothing_and_resends_at_most_the_one_in_flight(
    tmp_path: Path,
) -> None:
    """A `doorstep worker` killed mid-batch: after its lease, everything arrives, once (the
    message being sent at the kill may arrive twice)."""
    db = tmp_path / "kill.sqlite3"
    env = {
        **os.environ,
        "DOORSTEP_DATABASE_URL": f"sqlite:///{db}",
        "DOORSTEP_DATA_DIR": str(tmp_path),
        "DOORSTEP_SECRET_KEY": TEST_SECRET,
        "DOORSTEP_WEBHOOK_ALLOW_PRIVATE": "true",
        "DOORSTEP_OUTBOX_CONCURRENCY": "1",
        "DOORSTEP_OUTBOX_BATCH": "100",
    }
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    clock = FrozenClock(NOW)
    settings = Settings(
        data_dir=tmp_path, secret_key=TEST_SECRET, webhook_allow_private=True, run_worker=False
    )
    runtime = Runtime(settings=settings, clock=clock, engine=engine)
    total = 150
    with http_receiver(delay_s=0.01) as peer:
        seed(runtime, peer.url, total)
        doorstep = Path(sys.executable).parent / "doorstep"
        proc = subprocess.Popen(
            [str(doorstep), "worker", "--jobs", "outbox"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(600):  # up to a minute for the worker to get going
                if len(peer.received) >= 30:
                    break
                time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        at_kill = len(peer.received)
        assert 30 <= at_kill < total  # killed in the middle of its first batch of 100
        with runtime.sessions() as session:
            stuck = session.scalar(select(func.count()).where(OutboxMessage.status == "sending"))
        assert stuck and stuck > 0
        # The killed worker ran on the system clock: move past its lease on that clock.
        clock.set(datetime.now(UTC) + timedelta(seconds=settings.outbox_lease_s + 1))
        for _ in range(20):
            if relay_once(runtime) == 0:
                break
        ids = Counter(r.headers["webhook-id"] for r in peer.received)
    engine.dispose()
    assert len(ids) == total  # nothing lost
    duplicated = sum(n - 1 for n in ids.values())
    assert duplicated <= 1  # at most the message in flight at the kill


def test_a_batch_past_its_lease_gives_its_unsent_messages_back(runtime: Runtime) -> None:
    """Messages not sent before most of the lease passed are released unsent (another worker
    may hold them by then) and go out on the next claim, attempts not counted."""
    from doorstep.domain.notifications import relay

    settings = runtime.settings.model_copy(update={"webhook_allow_private": True})
    rt = Runtime(settings=settings, clock=runtime.clock, engine=runtime.engine)
    with http_receiver() as peer:
        seed(rt, peer.url, 3)
        ids = relay.claim(rt, "slow", 10)
        outgoing = relay.prepare(rt, "slow", ids)
        long_ago = time.monotonic() - settings.outbox_lease_s
        relay.send_batch(rt, outgoing, "slow", long_ago)
        assert peer.received == []
        with rt.sessions() as session:
            rows = session.scalars(select(OutboxMessage)).all()
            assert {(r.status, r.attempts, r.locked_by) for r in rows} == {("pending", 0, None)}
        assert relay_once(rt) == 3
        assert len({r.headers["webhook-id"] for r in peer.received}) == 3


def test_one_outbox_run_streams_a_backlog_with_at_most_two_batches_unsent(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's outbox job sends a backlog of several batches in one run, each message
    once, claiming the next batch while one is sent but never holding more than two batches
    claimed and unrecorded; a partial batch ends the run."""
    from doorstep.domain.notifications import relay

    settings = runtime.settings.model_copy(
        update={"webhook_allow_private": True, "outbox_batch": 5}
    )
    rt = Runtime(settings=settings, clock=runtime.clock, engine=runtime.engine)
    unrecorded_at_claims: list[int] = []
    claim = relay.claim

    def watched_claim(runtime: Runtime, worker: str, limit: int, probe: bool = True) -> list[int]:
        with rt.sessions() as session:
            unrecorded_at_claims.append(
                session.scalar(select(func.count()).where(OutboxMessage.status == "sending")) or 0
            )
        return claim(runtime, worker, limit, probe=probe)

    monkeypatch.setattr(relay, "claim", watched_claim)
    with http_receiver(delay_s=0.002) as peer:
        seed(rt, peer.url, 33)
        assert relay_stream(rt, seconds=0) == 5  # out of time after the first batch
        assert run_outbox(rt) == 28  # 5 full batches and a partial one
        assert run_outbox(rt) == 0
        ids = Counter(r.headers["webhook-id"] for r in peer.received)
    assert len(ids) == 33 and max(ids.values()) == 1
    # Each claim found at most the batch being sent still unrecorded: with the one it
    # claims, never more than two batches.
    assert len(unrecorded_at_claims) == 8  # 1 + 6 (the last one partial) + 1 finding none
    assert max(unrecorded_at_claims) <= 5
    assert any(n > 0 for n in unrecorded_at_claims)  # claims did overlap sending


def test_only_the_relays_outcome_commits_skip_the_wal_flush(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the relay records outcomes without waiting for the WAL flush, while the
    transactions that write events and queue their messages, and every later user of a pooled
    connection, keep the server's synchronous commit (a queued message is never lost)."""
    from doorstep.domain.notifications import relay

    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL setting")
    settings = runtime.settings.model_copy(update={"webhook_allow_private": True})
    rt = Runtime(settings=settings, clock=runtime.clock, engine=runtime.engine)
    seen: list[str | None] = []
    record_sent = relay._record_sent

    def watched(session: Session, sent: list[Any], now: datetime) -> None:
        seen.append(session.scalar(text("SHOW synchronous_commit")))
        record_sent(session, sent, now)

    monkeypatch.setattr(relay, "_record_sent", watched)
    with http_receiver() as peer:
        seed(rt, peer.url, 3)
        assert run_outbox(rt) == 3
        assert len(peer.received) == 3
    assert seen and set(seen) == {"off"}
    with transaction(rt.sessions) as session:  # what the API and event writers get
        assert session.scalar(text("SHOW synchronous_commit")) == "on"


def test_a_failed_claim_mid_stream_lets_the_batch_being_sent_finish(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When preparing the next batch fails (the database), the run ends with the error, but
    the batch already being sent goes out and is recorded, not cut off mid-send."""
    from doorstep.domain.notifications import relay

    settings = runtime.settings.model_copy(
        update={"webhook_allow_private": True, "outbox_batch": 5}
    )
    rt = Runtime(settings=settings, clock=runtime.clock, engine=runtime.engine)
    prepare = relay.prepare
    calls: list[int] = []

    def failing_second(runtime: Runtime, worker: str, ids: list[int]) -> list[Any]:
        calls.append(len(ids))
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        return prepare(runtime, worker, ids)

    monkeypatch.setattr(relay, "prepare", failing_second)
    with http_receiver(delay_s=0.02) as peer:
        seed(rt, peer.url, 12)
        with pytest.raises(RuntimeError, match="went away"):
            run_outbox(rt)
        assert len({r.headers["webhook-id"] for r in peer.received}) == 5
    with rt.sessions() as session:
        statuses = Counter(session.scalars(select(OutboxMessage.status)))
    # The first batch sent and recorded; the second stays leased until its lease runs out.
    assert statuses == Counter({"sent": 5, "sending": 5, "pending": 2})
