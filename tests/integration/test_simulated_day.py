"""A short simulated day end to end (``run_fast``: the HTTP API, OsmAnd positions, the tracking
page's forms, the worker's jobs, real SMTP and HTTP sinks), checked for what a merchant and a
recipient rely on; and the same seed giving the same KPIs, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, select, text
from sqlalchemy.orm import Session

from doorstep.db.engine import make_engine
from doorstep.domain.analytics.schemas import KpiReport
from doorstep.domain.dispatch.models import Plan, Route
from doorstep.domain.notifications.models import OutboxMessage
from doorstep.domain.orders.models import DeliveryEvent, Order
from doorstep.simulator.day import DayConfig, DaySimulation, Progress, Scenario, run_fast
from doorstep.simulator.sinks import SinkMessage
from tests.conftest import PG_URL, require_service

DAY = date(2026, 12, 8)  # a Tuesday
CONFIG = DayConfig(orders=24, drivers=2, seed=11, day=DAY)


@dataclass
class Day:
    scenario: Scenario
    kpis: KpiReport
    messages: list[SinkMessage]
    order_ids: list[str]
    database_url: str
    progress: Progress


def _simulate(database_url: str) -> Day:
    seen: dict[str, Any] = {}

    def keep(sim: DaySimulation) -> None:
        seen["sim"] = sim

    scenario, kpis = run_fast(CONFIG, database_url=database_url, progress=keep)
    sim: DaySimulation = seen["sim"]
    return Day(scenario, kpis, sim.sinks.messages(), sim.order_ids(), database_url, sim.progress())


@pytest.fixture(scope="module")
def sqlite_day(tmp_path_factory: pytest.TempPathFactory) -> Day:
    path: Path = tmp_path_factory.mktemp("simday") / "day.sqlite3"
    return _simulate(f"sqlite:///{path}")


def _load(day: Day) -> tuple[dict[str, Order], dict[str, list[DeliveryEvent]], list[OutboxMessage]]:
    engine = make_engine(day.database_url)
    try:
        with Session(engine) as s:
            orders = {
                o.id: o
                for o in s.scalars(
                    select(Order).where(Order.merchant_id == day.scenario.merchant_id)
                )
            }
            events: dict[str, list[DeliveryEvent]] = {}
            for ev in s.scalars(
                select(DeliveryEvent)
                .where(DeliveryEvent.merchant_id == day.scenario.merchant_id)
                .order_by(DeliveryEvent.seq)
            ):
                if ev.order_id is not None:
                    events.setdefault(ev.order_id, []).append(ev)
            outbox = list(
                s.scalars(
                    select(OutboxMessage).where(
                        OutboxMessage.merchant_id == day.scenario.merchant_id
                    )
                )
            )
            s.expunge_all()
    finally:
        engine.dispose()
    return orders, events, outbox


def test_every_order_ends_delivered_rebooked_or_cancelled(sqlite_day: Day) -> None:
    """No order of the day is left hanging: delivered, failed and rebooked, cancelled, or held
    by its recipient (on the tracking page) until a later day."""
    orders, events, _ = _load(sqlite_day)
    assert len(sqlite_day.order_ids) == CONFIG.orders
    outcomes: Counter[str] = Counter()
    for order_id in sqlite_day.order_ids:
        order, types = orders[order_id], [e.type for e in events[order_id]]
        if order.status == "delivered":
            outcomes["delivered"] += 1
        elif order.status == "cancelled":
            outcomes["cancelled"] += 1
        elif order.status == "on_hold":
            assert "order.held" in types, (order.reference, types)  # the recipient is away
            assert "delivery.delivered" not in types and "delivery.failed" not in types
            outcomes["held"] += 1
        else:
            failed = types.index("delivery.failed") if "delivery.failed" in types else None
            assert failed is not None, (order.reference, order.status, types)
            assert "order.rescheduled" in types[failed:], (order.reference, types)
            assert order.window_start is not None and order.window_start.date() > DAY
            outcomes["rebooked"] += 1
    assert outcomes["delivered"] >= CONFIG.orders * 0.8, outcomes


def test_every_delivery_has_its_event_proof_and_message(sqlite_day: Day) -> None:
    """A delivered order has a delivered event with a photo and a signature, and the
    recipient's "delivered" e-mail and the shop's webhook both reached the sinks."""
    orders, events, outbox = _load(sqlite_day)
    emails = {m.key: m for m in sqlite_day.messages if m.channel == "email"}
    hooks = {(m.order_id, m.subject) for m in sqlite_day.messages if m.channel == "webhook"}
    delivered = [o for o in orders.values() if o.status == "delivered"]
    assert delivered
    for order in delivered:
        done = [e for e in events[order.id] if e.type == "delivery.delivered"]
        assert len(done) == 1, order.reference
        proof = (done[0].data or {}).get("proof") or {}
        assert proof.get("photo") and proof.get("signature"), (order.reference, proof)
        rows = [
            m for m in outbox
            if m.order_id == order.id and m.topic == "delivery.delivered" and m.channel == "email"
        ]  # fmt: skip
        assert [m.status for m in rows] == ["sent"], order.reference
        key = next(k for k in emails if k and rows[0].public_id in k)
        assert emails[key].to.endswith(order.recipient_email or "?"), order.reference
        assert (order.id, "delivery.delivered") in hooks, order.reference


def test_the_live_display_agrees_with_the_report(sqlite_day: Day) -> None:
    """What the demo's display reads at the end of the day is what the analytics report."""
    p, k = sqlite_day.progress, sqlite_day.kpis
    assert (p.orders, p.delivered, p.out_for_delivery) == (k.orders, k.delivered, 0)
    assert p.late == k.late and p.failed >= k.failed_attempts
    assert p.messages_sent >= k.messages_sent > 0


def test_no_message_was_sent_twice(sqlite_day: Day) -> None:
    """Each e-mail and webhook reached its sink once, and the analytics count no duplicate."""
    keys = [m.key for m in sqlite_day.messages if m.key is not None]
    assert keys and len(keys) == len(set(keys))
    assert sqlite_day.kpis.duplicate_messages == 0


def test_every_late_delivery_was_warned_before_it_arrived(sqlite_day: Day) -> None:
    """A delivery after its window had a ``delivery.delayed`` event before the driver came."""
    orders, events, _ = _load(sqlite_day)
    for order in orders.values():
        if order.status != "delivered" or order.window_end is None:
            continue
        assert order.delivered_at is not None
        if order.delivered_at <= order.window_end:
            continue
        arrived = min(
            e.occurred_at
            for e in events[order.id]
            if e.type in ("stop.arrived", "delivery.delivered")
        )
        delays = [e.occurred_at for e in events[order.id] if e.type == "delivery.delayed"]
        assert delays and min(delays) < arrived, order.reference


def test_a_replan_does_not_start_a_route_again(sqlite_day: Day) -> None:
    """The 10:15 re-plan keeps the routes under way: each shift's route starts once (one
    ``route.started`` per driver and shift), and every delivery after it happened on a route
    of the re-plan."""
    engine = make_engine(sqlite_day.database_url)
    try:
        with Session(engine) as s:
            starts = s.scalars(
                select(DeliveryEvent).where(
                    DeliveryEvent.merchant_id == sqlite_day.scenario.merchant_id,
                    DeliveryEvent.type == "route.started",
                )
            ).all()
            shifts = Counter(str((e.data or {}).get("shift_id")) for e in starts)
            replanned_at = s.scalar(
                select(Plan.published_at).where(
                    Plan.merchant_id == sqlite_day.scenario.merchant_id,
                    Plan.status == "published",
                    Plan.parent_plan_id.is_not(None),
                )
            )
            delivered_on = s.scalars(
                select(Plan.status)
                .join(Route, Route.plan_id == Plan.id)
                .join(DeliveryEvent, DeliveryEvent.route_id == Route.id)
                .where(
                    DeliveryEvent.merchant_id == sqlite_day.scenario.merchant_id,
                    DeliveryEvent.type == "delivery.delivered",
                    DeliveryEvent.occurred_at > replanned_at,
                )
            ).all()
    finally:
        engine.dispose()
    assert shifts and max(shifts.values()) == 1, shifts
    assert replanned_at is not None and set(delivered_on) == {"published"}


def _figures(kpis: KpiReport) -> dict[str, Any]:
    """Every figure of the report, overall and per day, driver, zone and route: all of them
    must replay (ETA errors, window coverage and message counts included). Only what is not a
    figure is left out: when the report was made and the objects' random ids (drivers and
    zones by name, routes by driver and figures)."""
    data = kpis.model_dump(mode="json", by_alias=True)
    data.pop("generated_at")
    for groups in ("by_driver", "by_zone"):
        data[groups] = sorted(
            ({k: v for k, v in g.items() if k != "key"} for g in data[groups]),
            key=lambda g: str(g["label"]),
        )
    data["routes"] = sorted(
        ({k: v for k, v in r.items() if k not in ("id", "driver_id")} for r in data["routes"]),
        key=lambda r: (str(r["driver_name"]), r["stops"], r["distance_km"]),
    )
    return data


def _fresh_pg_url() -> str:
    name = f"doorstep_test_simday_{os.getpid()}"
    admin = make_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        require_service("PostgreSQL", f"{make_url(PG_URL).render_as_string()}: {exc}")
    finally:
        admin.dispose()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def test_the_same_seed_gives_the_same_kpis(sqlite_day: Day, tmp_path: Path) -> None:
    """Replaying the seed gives the same figures: on PostgreSQL when it is there (so the
    database does not change the day either), else on a second SQLite file."""
    from tests.conftest import IN_CI

    url = _fresh_pg_url() if IN_CI else f"sqlite:///{tmp_path / 'again.sqlite3'}"
    again = _simulate(url)
    assert _figures(again.kpis) == _figures(sqlite_day.kpis)
    assert sqlite_day.kpis.orders > 0 and sqlite_day.kpis.delivered > 0


def test_a_paced_day_runs_with_the_worker_in_its_own_thread(tmp_path: Path) -> None:
    """The demo's way: the clock runs on its own (here 2400x), the worker is the server's
    thread, and ``advance(clock.now())`` is called every 100 ms; the day completes, every
    order is delivered and the recipients' messages reach the sinks."""
    import time as wall

    from fastapi.testclient import TestClient

    from doorstep.clock import SimulatedClock
    from doorstep.runtime import Runtime
    from doorstep.simulator.day import simulation_settings
    from doorstep.simulator.sinks import Sinks
    from doorstep.web.app import create_app

    config = DayConfig(orders=5, drivers=1, seed=5, day=DAY)
    clock = SimulatedClock(datetime(2026, 12, 8, 5, 0, tzinfo=UTC), speed=2400)
    url = f"sqlite:///{tmp_path / 'paced.sqlite3'}"
    with Sinks(clock) as sinks:
        settings = simulation_settings(
            config,
            database_url=url,
            smtp_url=sinks.smtp_url,
            secret_key="p" * 40,
            worker_poll_s=0.05,  # as the demo polls at this speed: about a simulated minute
        )
        runtime = Runtime(settings=settings, clock=clock, engine=make_engine(url))
        try:
            with TestClient(create_app(runtime), base_url=settings.base_url) as client:
                sim = DaySimulation(config, runtime, client, sinks)
                sim.setup()
                started = wall.monotonic()
                while not sim.finished() and wall.monotonic() - started < 120:
                    sim.advance(clock.now())
                    wall.sleep(0.1)
                wall.sleep(0.5)  # the worker's last outbox round
                progress = sim.progress()
                with runtime.sessions() as session:
                    outbox = Counter(
                        (m.channel, m.status) for m in session.scalars(select(OutboxMessage))
                    )
                received = Counter(m.channel for m in sinks.messages())
        finally:
            runtime.close()
    assert sim.finished() and not sim.errors
    assert progress.orders == progress.delivered > 0
    assert received["email"] > 0  # the confirmations at least
    # Nothing recorded as sent that the sinks did not get (read first: a send may land in
    # between). At 2,400x a busy machine can make every text stale before the worker's turn
    # (a text is minutes of the day), and a stale message is suppressed, not sent: so texts
    # are queued and accounted for, not required to arrive.
    assert sum(n for (ch, _), n in outbox.items() if ch == "sms") > 0
    assert outbox[("email", "sent")] > 0
    for channel in ("email", "sms"):
        assert outbox[(channel, "sent")] <= received[channel], (channel, outbox, received)


def test_a_checkout_whose_hold_lapsed_quotes_and_reserves_again(tmp_path: Path) -> None:
    """A customer who pays after the reservation lapsed gets a 409 "reservation gone" from
    ``POST /v1/orders``; the simulated shop then does what a real checkout does: quotes and
    reserves again, and the order is created once (a busy machine at thousands of times real
    speed lapsed holds in the paced day)."""
    from datetime import timedelta

    from fastapi.testclient import TestClient

    from doorstep.clock import SimulatedClock
    from doorstep.runtime import Runtime
    from doorstep.simulator.day import simulation_settings
    from doorstep.simulator.demand import OrderSpec
    from doorstep.simulator.sinks import Sinks
    from doorstep.web.app import create_app

    answers: list[int] = []

    class LateToPay(DaySimulation):
        """Each customer's first pass pays an hour after reserving."""

        def _checkout(self, spec: OrderSpec, attempt: int) -> Any:
            self.attempt = attempt
            created = super()._checkout(spec, attempt)
            answers.append(created.status_code)
            return created

        def _checkout_at(self, spec: OrderSpec, seconds: int) -> None:
            super()._checkout_at(spec, seconds)
            if seconds == 60 and self.attempt == 0:
                self._set_clock(self.runtime.clock.now() + timedelta(hours=1))

    config = DayConfig(orders=3, drivers=1, seed=5, day=DAY)
    clock = SimulatedClock(datetime(2026, 12, 8, 5, 0, tzinfo=UTC), speed=1)
    url = f"sqlite:///{tmp_path / 'lapse.sqlite3'}"
    with Sinks(clock) as sinks:
        settings = simulation_settings(
            config, database_url=url, smtp_url=sinks.smtp_url, secret_key="l" * 40
        )
        runtime = Runtime(settings=settings, clock=clock, engine=make_engine(url))
        try:
            with TestClient(create_app(runtime), base_url=settings.base_url) as client:
                sim = LateToPay(config, runtime, client, sinks)
                sim.setup()
                with runtime.sessions() as session:
                    orders = session.scalars(select(Order)).all()
        finally:
            runtime.close()
    booked_ahead = len(answers) // 2
    assert booked_ahead > 0 and answers == [409, 201] * booked_ahead
    assert len(orders) == booked_ahead and len({o.reference for o in orders}) == booked_ahead
    assert all(o.window_start is not None for o in orders)
