"""``doorstep bench eta``: how right the ETA engine is, and how honest its windows are.

Routes with known true arrival times are driven over the Monaco road network by the
simulator's driving model (rush hours, driver pace, noise, incidents, varying service times);
one route in ``gpx_every`` of the measured day is replayed from a GPX file of its drive instead.
The positions reach the engine as the server would hand them over (a batch every
``refresh_s`` seconds of simulated time, plus each stop arrival and departure), on a scratch
database and a frozen clock moved to each moment.

Warm-up days build the merchant's error history; only the days after them are measured, so
the windows are calibrated out of sample (each measured day on every day before it). Per
horizon (the ETA shown when the route starts, when the stop is 5 stops away and 1 stop away,
and 30 minutes before the arrival): the median and p90 absolute error of the ETA, and the
coverage (share of true arrivals inside the window) and mean width of the window shown.
"""

from __future__ import annotations

import tempfile
import time as timer
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from doorstep.bench.eta_scenario import DEPOT, MONACO, PlannedRoute, build_day
from doorstep.clock import FrozenClock
from doorstep.db.engine import make_engine, make_sessionmaker, transaction
from doorstep.db.migrate import upgrade
from doorstep.domain.accounts.service import create_merchant
from doorstep.domain.dispatch.models import Route, Stop
from doorstep.domain.errors import Actor
from doorstep.domain.orders.events import append_event, change_status
from doorstep.domain.orders.models import DeliveryEvent, Order
from doorstep.domain.orders.status import Status
from doorstep.domain.tracking.eta import StopForecast, refresh_route_eta
from doorstep.domain.tracking.models import Position
from doorstep.routing.travel.base import Profile, TravelTimeProvider
from doorstep.routing.travel.osm import OsmRoadProvider
from doorstep.settings import Settings
from doorstep.simulator.driving import (
    Drive,
    Fix,
    StopSpec,
    drive_route,
    fixes_from_gpx,
    fixes_to_gpx,
)

__all__ = ["EtaBenchResult", "HorizonFigures", "run_eta_bench"]

HORIZONS = ("route start", "5 stops", "1 stop", "30 min")
FIRST_DAY = date(2026, 11, 23)  # a Monday


@dataclass(frozen=True)
class HorizonFigures:
    horizon: str
    n: int
    median_abs_error_min: float | None
    p90_abs_error_min: float | None
    mean_error_min: float | None  # signed: positive when drivers came later than the ETA
    coverage: float | None
    mean_width_min: float | None


@dataclass
class EtaBenchResult:
    source: str
    routes_per_day: int
    stops_per_route: int
    warmup_days: int
    measured_days: int
    seed: int
    confidence: float
    horizons: list[HorizonFigures]
    measured_stops: int
    gpx_routes: int
    late_arrivals: int
    late_warned: int
    eta_events_per_stop: float
    refreshes: int
    refresh_ms_mean: float
    seconds: float

    def figures(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Seen:
    """What the engine showed for one measured stop at each horizon: (eta, earliest, latest)."""

    shown: dict[str, tuple[datetime, datetime, datetime]] = field(default_factory=dict)


def _fix_batches(
    fixes: list[Fix], start: datetime, step_s: float
) -> list[tuple[datetime, list[Fix]]]:
    """Fixes grouped by the batch that delivers them: every ``step_s`` from ``start``."""
    batches: dict[int, list[Fix]] = {}
    for f in fixes:
        k = max(1, int(((f.at - start).total_seconds() + step_s - 1e-9) // step_s))
        batches.setdefault(k, []).append(f)
    return [(start + timedelta(seconds=k * step_s), fs) for k, fs in sorted(batches.items())]


class _RouteRun:
    """Feeds one route's drive to the engine, as the server would."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: FrozenClock,
        travel: TravelTimeProvider,
        settings: Settings,
        planned: PlannedRoute,
        drive: Drive,
        fixes: list[Fix],
        refresh_s: float,
    ) -> None:
        self.sessions, self.clock, self.travel, self.settings = sessions, clock, travel, settings
        self.planned, self.drive, self.fixes, self.refresh_s = planned, drive, fixes, refresh_s
        self.refreshes = 0
        self.refresh_s_total = 0.0
        self.seen = {s.stop_id: _Seen() for s in planned.stops}
        self.truth = {planned.stops[v.index].stop_id: v.arrival for v in drive.visits}
        self.last_before_30: dict[str, tuple[datetime, datetime, datetime]] = {}

    def _refresh(self, session: Session, reason: str) -> None:
        started = timer.perf_counter()
        forecasts = refresh_route_eta(
            session,
            self.clock,
            self.planned.route_id,
            travel=self.travel,
            reason=reason,
            settings=self.settings,
        )
        self.refresh_s_total += timer.perf_counter() - started
        self.refreshes += 1
        self._observe(forecasts, first=self.refreshes == 1)

    def _observe(self, forecasts: list[StopForecast], *, first: bool) -> None:
        now = self.clock.now()
        for f in forecasts:
            shown = (f.eta, f.earliest, f.latest)
            seen = self.seen[f.stop_id].shown
            if first:
                seen.setdefault("route start", shown)
            if f.stops_before == 5:
                seen.setdefault("5 stops", shown)
            if f.stops_before == 1:
                seen.setdefault("1 stop", shown)
            truth = self.truth.get(f.stop_id)
            if truth is not None and now <= truth - timedelta(minutes=30):
                self.last_before_30[f.stop_id] = shown

    def run(self) -> None:
        planned = self.planned
        self.clock.set(planned.start_at)
        with transaction(self.sessions) as session:
            route = session.get(Route, planned.route_id)
            assert route is not None
            route.status = "active"
            append_event(
                session,
                self.clock,
                merchant_id=route.merchant_id,
                type="route.started",
                actor=Actor("driver", planned.driver_id),
                route_id=route.id,
            )
            for order in session.scalars(
                select(Order).where(Order.id.in_([s.order_id for s in planned.stops]))
            ):
                actor = Actor("driver", planned.driver_id)
                change_status(session, self.clock, order, Status.PICKED_UP, actor=actor)
                change_status(session, self.clock, order, Status.OUT_FOR_DELIVERY, actor=actor)
            session.flush()
            self._refresh(session, "route started")

        events: list[tuple[datetime, int, Any]] = []
        for at, batch in _fix_batches(self.fixes, planned.start_at, self.refresh_s):
            events.append((at, 2, batch))
        for visit in self.drive.visits:
            events.append((visit.arrival, 0, ("arrive", visit)))
            events.append((visit.departure, 1, ("depart", visit)))
        events.sort(key=lambda e: (e[0], e[1]))
        for at, kind, payload in events:
            self.clock.set(at)
            with transaction(self.sessions) as session:
                if kind == 2:
                    self._positions(session, payload)
                    reason = "position update"
                else:
                    reason = self._stop_event(session, *payload)
                self._refresh(session, reason)
        with transaction(self.sessions) as session:
            route = session.get(Route, planned.route_id)
            assert route is not None
            route.status = "done"
        for stop_id, shown in self.last_before_30.items():
            self.seen[stop_id].shown["30 min"] = shown

    def _positions(self, session: Session, fixes: list[Fix]) -> None:
        merchant_id = session.get(Route, self.planned.route_id).merchant_id  # type: ignore[union-attr]
        now = self.clock.now()
        session.add_all(
            Position(
                merchant_id=merchant_id,
                driver_id=self.planned.driver_id,
                route_id=self.planned.route_id,
                source="sim",
                recorded_at=f.at,
                received_at=now,
                lat=f.lat,
                lon=f.lon,
                speed_mps=f.speed_mps,
                heading_deg=f.heading_deg,
                accuracy_m=f.accuracy_m,
            )
            for f in fixes
        )
        session.flush()

    def _stop_event(self, session: Session, what: str, visit: Any) -> str:
        spec = self.planned.stops[visit.index]
        stop = session.get(Stop, spec.stop_id)
        assert stop is not None
        if what == "arrive":
            stop.status = "arrived"
            stop.actual_arrival = visit.arrival
            session.flush()
            return "driver arrived"
        stop.status = "done"
        stop.actual_departure = visit.departure
        order = session.get(Order, spec.order_id)
        assert order is not None
        change_status(
            session,
            self.clock,
            order,
            Status.DELIVERED,
            actor=Actor("driver", self.planned.driver_id),
        )
        session.flush()
        return "stop completed"


def _figures(
    horizon: str, rows: list[tuple[datetime, tuple[datetime, datetime, datetime]]]
) -> HorizonFigures:
    if not rows:
        return HorizonFigures(horizon, 0, None, None, None, None, None)
    signed = np.array([(truth - eta).total_seconds() / 60 for truth, (eta, _, _) in rows])
    errors = np.abs(signed)
    inside = [lo <= truth <= hi for truth, (_, lo, hi) in rows]
    widths = [(hi - lo).total_seconds() / 60 for _, (_, lo, hi) in rows]
    return HorizonFigures(
        horizon,
        len(rows),
        round(float(np.median(errors)), 2),
        round(float(np.percentile(errors, 90)), 2),
        round(float(np.mean(signed)), 2),
        round(sum(inside) / len(inside), 3),
        round(float(np.mean(widths)), 1),
    )


def run_eta_bench(
    *,
    routes: int = 6,
    stops: int = 14,
    warmup_days: int = 3,
    measured_days: int = 1,
    seed: int = 7,
    refresh_s: float = 30.0,
    gpx_every: int = 3,
    source: str = "monaco",
    database_url: str | None = None,
    cache_dir: Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> EtaBenchResult:
    """Drive ``warmup_days`` days of history, then ``measured_days`` measured days (each
    calibrated on every day before it); return the figures."""
    started = timer.perf_counter()
    settings = Settings(travel_provider="osm", osm_source=source)
    travel = OsmRoadProvider(source, cache_dir=cache_dir)
    with tempfile.TemporaryDirectory(prefix="doorstep-bench-eta-") as tmp:
        url = database_url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        engine = make_engine(url)
        try:
            upgrade(engine)
            sessions = make_sessionmaker(engine)
            clock = FrozenClock(
                datetime.combine(FIRST_DAY - timedelta(days=1), datetime.min.time(), MONACO)
            )
            with transaction(sessions) as session:
                merchant = create_merchant(
                    session, clock, name="ETA bench florist", timezone="Europe/Monaco"
                )
                merchant_id = merchant.id
            measured: dict[str, list[tuple[datetime, tuple[datetime, datetime, datetime]]]] = {
                h: [] for h in HORIZONS
            }
            total_days = warmup_days + measured_days
            refreshes, refresh_total, gpx_routes, measured_stops = 0, 0.0, 0, 0
            measured_route_ids: list[str] = []
            for d in range(total_days):
                day = FIRST_DAY + timedelta(days=d)
                is_measured = d >= warmup_days
                with transaction(sessions) as session:
                    day_routes = build_day(
                        session,
                        merchant_id,
                        day,
                        travel,
                        routes=routes,
                        stops=stops,
                        seed=seed * 1000 + d,
                    )
                for r, planned in enumerate(day_routes):
                    if progress:
                        progress(f"day {d + 1}/{total_days}", r, len(day_routes))
                    drive = drive_route(
                        travel,
                        Profile.VAN,
                        DEPOT,
                        [StopSpec(s.point, s.service_s, s.window_start) for s in planned.stops],
                        planned.start_at,
                        seed=seed * 100_000 + d * 100 + r,
                        tz=MONACO,
                        end=DEPOT,
                    )
                    fixes = drive.fixes
                    if is_measured and gpx_every > 0 and r % gpx_every == 0:
                        fixes = fixes_from_gpx(fixes_to_gpx(drive.fixes, planned.route_id))
                        gpx_routes += 1
                    run = _RouteRun(
                        sessions, clock, travel, settings, planned, drive, fixes, refresh_s
                    )
                    run.run()
                    refreshes += run.refreshes
                    refresh_total += run.refresh_s_total
                    if is_measured:
                        measured_route_ids.append(planned.route_id)
                        for stop_id, seen in run.seen.items():
                            measured_stops += 1
                            truth = run.truth[stop_id]
                            for h, shown in seen.shown.items():
                                measured[h].append((truth, shown))
            if progress:
                progress("done", total_days, total_days)
            with sessions() as session:
                late, warned, eta_events = _outcomes(session, merchant_id, measured_route_ids)
        finally:
            engine.dispose()
    return EtaBenchResult(
        source=source,
        routes_per_day=routes,
        stops_per_route=stops,
        warmup_days=warmup_days,
        measured_days=measured_days,
        seed=seed,
        confidence=settings.eta_confidence,
        horizons=[_figures(h, measured[h]) for h in HORIZONS],
        measured_stops=measured_stops,
        gpx_routes=gpx_routes,
        late_arrivals=late,
        late_warned=warned,
        eta_events_per_stop=round(eta_events / max(1, measured_stops), 2),
        refreshes=refreshes,
        refresh_ms_mean=round(1000 * refresh_total / max(1, refreshes), 2),
        seconds=round(timer.perf_counter() - started, 1),
    )


def _outcomes(session: Session, merchant_id: str, route_ids: list[str]) -> tuple[int, int, int]:
    """Late arrivals on the measured day, how many were warned (a ``delivery.delayed`` event
    before the window ended), and how many ``delivery.eta_updated`` events were published."""
    rows = session.execute(
        select(Stop.order_id, Stop.actual_arrival, Order.window_end)
        .join(Order, Order.id == Stop.order_id)
        .where(Stop.route_id.in_(route_ids))
    ).all()
    order_ids = [r[0] for r in rows]
    delayed = {
        e.order_id: e.occurred_at
        for e in session.scalars(
            select(DeliveryEvent).where(
                DeliveryEvent.merchant_id == merchant_id,
                DeliveryEvent.order_id.in_(order_ids),
                DeliveryEvent.type == "delivery.delayed",
            )
        )
    }
    late = warned = 0
    for order_id, arrival, window_end in rows:
        if arrival is not None and window_end is not None and arrival > window_end:
            late += 1
            at = delayed.get(order_id)
            if at is not None and at < window_end:
                warned += 1
    eta_events = len(
        session.scalars(
            select(DeliveryEvent.id).where(
                DeliveryEvent.merchant_id == merchant_id,
                DeliveryEvent.order_id.in_(order_ids),
                DeliveryEvent.type == "delivery.eta_updated",
            )
        ).all()
    )
    return late, warned, eta_events
