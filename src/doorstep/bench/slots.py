"""``doorstep bench slots``: how long a checkout quote takes against a busy day's plan.

For each size, a scratch SQLite database gets a merchant in Monaco with one depot, a zone over
the principality, a calendar of two-hour windows from 08:00 to 20:00, vans on 08:00-20:00
shifts (one per 35 stops) and that many seeded orders with two-hour windows today; the day is
planned through Doorstep's own planner (``time_limit_s``) and published. Then ``quotes`` quotes
for seeded addresses in the zone are timed, each through :func:`~doorstep.domain.slots.quotes.
quote` in its own read transaction, exactly as ``POST /v1/slots/quote`` runs it. Last,
``rebookings`` afternoon orders are moved to the day's 18:00-20:00 window, each in its own
transaction as ``POST /v1/orders/{id}/reschedule`` runs it: taken off their route and put back
on the published plan where the quote finds room (:mod:`doorstep.domain.slots.live`); the
process CPU time of each is kept (the machines these run on are shared).
"""

from __future__ import annotations

import math
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from doorstep.bench.fleet import crew
from doorstep.clock import FrozenClock
from doorstep.db.engine import make_engine, transaction
from doorstep.db.migrate import upgrade
from doorstep.domain.accounts.models import Merchant
from doorstep.domain.accounts.service import create_merchant
from doorstep.domain.dispatch.models import Depot
from doorstep.domain.dispatch.planning import create_plan
from doorstep.domain.dispatch.publishing import publish_plan
from doorstep.domain.dispatch.schemas import DAYS
from doorstep.domain.errors import Actor
from doorstep.domain.orders.models import Order
from doorstep.domain.orders.schemas import OrderCreate
from doorstep.domain.orders.service import create_order
from doorstep.domain.slots.calendars import create_calendar
from doorstep.domain.slots.models import SlotCalendar
from doorstep.domain.slots.quotes import quote
from doorstep.domain.slots.reservations import SlotUnavailable
from doorstep.domain.slots.schemas import CalendarIn, QuoteIn, RescheduleIn, ZoneIn
from doorstep.domain.slots.selfservice import order_for_merchant, reschedule
from doorstep.domain.slots.zones import create_zone
from doorstep.ids import new_id
from doorstep.runtime import Runtime
from doorstep.settings import Settings

MONACO = ZoneInfo("Europe/Monaco")
DAY = date(2026, 11, 25)
NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)  # 07:00 in Monaco
BOX = (7.405, 43.723, 7.445, 43.755)  # lon/lat
STOPS_PER_VAN = 35


@dataclass
class SlotsBenchResult:
    stops: int
    planned: int
    routes: int
    plan_s: float
    quotes: int
    windows_per_quote: float
    p50_ms: float
    p95_ms: float
    max_ms: float
    rebookings: int = 0
    rebook_cpu_p50_ms: float | None = None
    rebook_cpu_p95_ms: float | None = None


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def _local(hour: int) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, hour, tzinfo=MONACO)


def _point(rng: random.Random) -> tuple[float, float]:
    return rng.uniform(BOX[1] + 0.005, BOX[3] - 0.005), rng.uniform(BOX[0] + 0.004, BOX[2] - 0.004)


def _build_day(runtime: Runtime, stops: int, rng: random.Random) -> tuple[str, str]:
    """The merchant, its depot, zone, calendar, vans and ``stops`` orders; (merchant, depot)."""
    clock = runtime.clock
    with transaction(runtime.sessions) as s:
        merchant = create_merchant(s, clock, name="Bench Florist", timezone="Europe/Monaco")
        depot = Depot(
            id=new_id("dep", NOW),
            merchant_id=merchant.id,
            name="Fontvieille",
            address_line1="6 Quai Antoine Ier",
            city="Monaco",
            postal_code="98000",
            country="MC",
            lat=43.7285,
            lon=7.4150,
            opening_hours={},
            created_at=NOW,
        )
        s.add(depot)
        s.flush()
        ring = [
            [BOX[0], BOX[1]],
            [BOX[2], BOX[1]],
            [BOX[2], BOX[3]],
            [BOX[0], BOX[3]],
            [BOX[0], BOX[1]],
        ]
        zone = create_zone(
            s,
            clock,
            merchant.id,
            ZoneIn(
                depot_id=depot.id,
                name="Monaco",
                geometry={"type": "Polygon", "coordinates": [ring]},
            ),
        )
        windows = [
            {"days": list(DAYS), "start": f"{h:02d}:00", "end": f"{h + 2:02d}:00", "capacity": 500}
            for h in range(8, 20, 2)
        ]
        create_calendar(
            s,
            clock,
            merchant.id,
            CalendarIn.model_validate(
                {
                    "depot_id": depot.id,
                    "zone_id": zone.id,
                    "windows": windows,
                    "same_day_cutoff": "20:00",
                    "lead_time_minutes": 30,
                }
            ),
        )
        for n in range(math.ceil(stops / STOPS_PER_VAN)):
            crew(
                s, merchant.id, depot.id, n, at=NOW, shift=(_local(8), _local(20)),
                capacity=(600.0, 120),
            )  # fmt: skip
        for n in range(stops):
            lat, lon = _point(rng)
            hour = rng.randrange(9, 18)
            payload = OrderCreate.model_validate(
                {
                    "reference": f"B-{n + 1:05d}",
                    "recipient": {"name": "Bench Recipient", "phone": "+33612345678"},
                    "address": {
                        "line1": f"{n % 40 + 1} Boulevard des Moulins",
                        "city": "Monaco",
                        "country": "MC",
                        "lat": lat,
                        "lon": lon,
                    },
                    "window": {
                        "start": _local(hour).isoformat(),
                        "end": _local(hour + 2).isoformat(),
                    },
                    "parcels": [{"weight_kg": round(rng.uniform(0.5, 5.0), 1)}],
                }
            )
            create_order(
                s,
                clock,
                merchant.id,
                payload,
                actor=Actor.system(),
                secret_key=runtime.settings.effective_secret_key,
            )
        return merchant.id, depot.id


def run_slots_bench(
    stops: int,
    *,
    quotes: int = 200,
    time_limit_s: float = 5.0,
    seed: int = 1,
    rebookings: int = 0,
    on_phase: Callable[[str], None] | None = None,
) -> SlotsBenchResult:
    """Build and plan a day of ``stops`` stops, then time ``quotes`` quotes against it and
    ``rebookings`` reschedules into it."""
    phase = on_phase or (lambda _name: None)
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="doorstep-bench-slots-") as tmp:
        path = Path(tmp)
        settings = Settings(data_dir=path / "data", secret_key="bench-" + "x" * 40)
        engine = make_engine(f"sqlite:///{path / 'bench.sqlite3'}")
        runtime = Runtime(settings=settings, clock=FrozenClock(NOW), engine=engine)
        try:
            upgrade(engine)
            phase(f"building a day of {stops} stops")
            merchant_id, depot_id = _build_day(runtime, stops, rng)
            phase(f"planning it ({time_limit_s:g} s)")
            started = time.perf_counter()
            view = create_plan(
                runtime.sessions,
                runtime.clock,
                settings,
                merchant_id=merchant_id,
                depot_id=depot_id,
                day=DAY,
                time_limit_s=time_limit_s,
                seed=seed,
            )
            plan_s = time.perf_counter() - started
            with transaction(runtime.sessions) as s:
                published = publish_plan(
                    s, runtime.clock, merchant_id, view.plan.id, actor=Actor.system()
                )
                planned = sum(len(r.stops) for r in published.plan.routes)
                routes = sum(1 for r in published.plan.routes if r.stops)
            phase(f"timing {quotes} quotes")
            timings: list[float] = []
            windows = 0
            for _ in range(quotes):
                lat, lon = _point(rng)
                body = QuoteIn.model_validate(
                    {
                        "address": {"lat": lat, "lon": lon},
                        "from": DAY.isoformat(),
                        "to": DAY.isoformat(),
                    }
                )
                started = time.perf_counter()
                with runtime.read_sessions() as s, s.begin():
                    merchant = s.get(Merchant, merchant_id)
                    assert merchant is not None
                    answer = quote(s, runtime.clock.now(), settings, merchant, body)
                timings.append((time.perf_counter() - started) * 1000)
                windows += len(answer.windows) + len(answer.unavailable)
            if rebookings:
                phase(f"timing {rebookings} rebookings into the plan")
            rebook_cpu = _time_rebookings(runtime, merchant_id, rebookings, rng)
        finally:
            engine.dispose()
    timings.sort()
    return SlotsBenchResult(
        stops=stops,
        planned=planned,
        routes=routes,
        plan_s=round(plan_s, 2),
        quotes=quotes,
        windows_per_quote=round(windows / max(1, quotes), 1),
        p50_ms=round(statistics.median(timings), 2),
        p95_ms=round(_p95(timings), 2),
        max_ms=round(timings[-1], 2),
        rebookings=len(rebook_cpu),
        rebook_cpu_p50_ms=round(statistics.median(rebook_cpu), 2) if rebook_cpu else None,
        rebook_cpu_p95_ms=round(_p95(rebook_cpu), 2) if rebook_cpu else None,
    )


def _time_rebookings(
    runtime: Runtime, merchant_id: str, count: int, rng: random.Random
) -> list[float]:
    """Process CPU milliseconds of each of ``count`` reschedules of afternoon orders to the
    day's 18:00-20:00 window (placed on the published plan; one no route can take any more is
    refused and not timed)."""
    if not count:
        return []
    with runtime.read_sessions() as s:
        calendar_id = s.scalar(
            select(SlotCalendar.id).where(SlotCalendar.merchant_id == merchant_id)
        )
        afternoon = list(
            s.scalars(
                select(Order.id)
                .where(Order.merchant_id == merchant_id, Order.window_start >= _local(12))
                .order_by(Order.id)
            )
        )
    assert calendar_id is not None
    change = RescheduleIn(calendar_id=calendar_id, start=_local(18))
    cpu: list[float] = []
    for order_id in rng.sample(afternoon, min(count, len(afternoon))):
        started = time.process_time()
        try:
            with transaction(runtime.sessions) as s:
                order = order_for_merchant(s, merchant_id, order_id)
                reschedule(
                    s,
                    runtime.clock,
                    runtime.settings,
                    order,
                    change,
                    actor=Actor.system(),
                    by="merchant",
                )
        except SlotUnavailable:
            continue
        cpu.append((time.process_time() - started) * 1000)
    return cpu
