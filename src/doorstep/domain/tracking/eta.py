"""The ETA engine: for every remaining stop of an active route, an ETA and a calibrated window,
stored on the stop, announced (``delivery.eta_updated``) only when it moves materially, and a
``delivery_delayed`` status once the window's earliest arrival passes the promised window's end,
or, in the promised window's last :data:`FINAL_STRETCH` minutes, once the ETA itself does.

:func:`refresh_route_eta` is called on each position batch and stop event (and by
:func:`run_refresh_etas` for routes with new positions). It reads the route's latest position,
asks the plan's travel provider for the road times still to drive, measures the driver's pace
so far today (:mod:`eta_core`), builds each window from the merchant's own error history
(:mod:`calibration`), records the predictions it will learn from, and fills in the errors of
stops that have been arrived since.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Merchant
from doorstep.domain.dispatch.models import Depot, Plan, Route, Shift, Stop, Vehicle
from doorstep.domain.errors import Actor
from doorstep.domain.orders.events import append_event, change_status
from doorstep.domain.orders.models import DeliveryEvent, Order
from doorstep.domain.orders.status import Reason, Status, can_transition
from doorstep.domain.tracking import calibration
from doorstep.domain.tracking.eta_core import (
    Pace,
    RemainingStop,
    StopEta,
    delay_reason,
    estimate,
    explain,
    pace_so_far,
)
from doorstep.domain.tracking.models import EtaPrediction, Position
from doorstep.routing.travel.base import UNREACHABLE, LatLon, Profile, TravelTimeProvider
from doorstep.routing.travel.factory import provider_from_settings
from doorstep.routing.travel.straight import StraightLineProvider
from doorstep.settings import Settings

if TYPE_CHECKING:
    from doorstep.runtime import Runtime

FINISHED_STOP_STATUSES = frozenset({"done", "failed", "skipped"})
DELAYABLE = frozenset(
    {Status.SCHEDULED, Status.PICKED_UP, Status.IN_TRANSIT, Status.OUT_FOR_DELIVERY}
)
ETA_UPDATED = "delivery.eta_updated"
# An arrival this soon after the stop's window opened may be a driver who was early and waited.
WAITED_SLACK = timedelta(minutes=2)


@dataclass(frozen=True)
class EtaConfig:
    """A merchant's ETA settings: ``Merchant.config`` keys ``eta_confidence`` (0.5-0.99) and
    ``eta_material_change_s``, else the ``DOORSTEP_ETA_*`` settings."""

    confidence: float
    material_change_s: int
    min_history: int
    history_size: int
    min_routes: int


def eta_config(merchant_config: dict[str, Any] | None, settings: Settings) -> EtaConfig:
    """The one accessor for a merchant's ETA settings, with the defaults of ``settings``."""
    config = merchant_config or {}
    confidence = config.get("eta_confidence", settings.eta_confidence)
    material = config.get("eta_material_change_s", settings.eta_material_change_s)
    try:
        confidence = min(0.99, max(0.5, float(confidence)))
        material = max(0, int(material))
    except (TypeError, ValueError):
        confidence, material = settings.eta_confidence, settings.eta_material_change_s
    return EtaConfig(
        confidence,
        material,
        settings.eta_min_history,
        settings.eta_history_size,
        settings.eta_min_routes,
    )


@dataclass(frozen=True)
class StopForecast:
    """What the engine concluded for one stop."""

    stop_id: str
    order_id: str
    eta: datetime
    earliest: datetime
    latest: datetime
    stops_before: int
    minutes_away: float
    published: bool  # a delivery.eta_updated event was appended
    delayed: bool  # the order became delivery_delayed


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _iso(at: datetime | None) -> str | None:
    return _utc(at).isoformat() if at is not None else None


def _place(order: Order) -> LatLon:
    if order.lat is None or order.lon is None:  # planning never routes an unplaced order
        raise ValueError(f"order {order.id} is on a route without coordinates")
    return LatLon(order.lat, order.lon)


def latest_position(session: Session, route_id: str) -> Position | None:
    """The route's most recent position by when it was recorded (late points never win).
    Read from ``positions`` (indexed by route and time) rather than ingest's
    ``current_positions``, so positions written by any path (ingest, the ETA bench) count."""
    return session.scalars(
        select(Position)
        .where(Position.route_id == route_id)
        .order_by(Position.recorded_at.desc(), Position.id.desc())
        .limit(1)
    ).first()


def resolve_arrivals(session: Session, stops: Iterable[Stop]) -> int:
    """Fill in the error of every open prediction of a stop that has been arrived."""
    arrived = {s.id: _utc(s.actual_arrival) for s in stops if s.actual_arrival is not None}
    if not arrived:
        return 0
    count = 0
    for pred in session.scalars(
        select(EtaPrediction).where(
            EtaPrediction.stop_id.in_(list(arrived)), EtaPrediction.arrived_at.is_(None)
        )
    ):
        pred.arrived_at = arrived[pred.stop_id]
        pred.error_s = (pred.arrived_at - _utc(pred.eta)).total_seconds()
        count += 1
    return count


@dataclass(frozen=True)
class ErrorHistory:
    """A bucket's recent normalised errors and how many routes they were made on."""

    scores: list[float]
    routes: int


def error_scores(
    session: Session, merchant_id: str, marks: Sequence[str], limit: int
) -> ErrorHistory:
    """The merchant's most recent normalised errors recorded at ``marks`` (newest first)."""
    rows = session.execute(
        select(EtaPrediction.error_s, EtaPrediction.minutes_away, EtaPrediction.route_id)
        .where(
            EtaPrediction.merchant_id == merchant_id,
            EtaPrediction.horizon.in_(list(marks)),
            EtaPrediction.error_s.is_not(None),
        )
        .order_by(EtaPrediction.arrived_at.desc(), EtaPrediction.id.desc())
        .limit(limit)
    )
    scores: list[float] = []
    routes: set[str] = set()
    for err, mins, route_id in rows:
        scores.append(float(err or 0.0) / calibration.scale_s(mins))
        routes.add(route_id)
    return ErrorHistory(scores, len(routes))


def _travel_s(durations: Any, a: int, b: int) -> float:
    value = int(durations[a, b])
    return float(value) if value < UNREACHABLE else 0.0


def _pace(
    done: Sequence[tuple[int, Stop]],
    durations: Any,
    start_at: datetime | None,
    opens: Mapping[str, datetime] | None = None,
) -> Pace:
    """The driver's pace from the stops done today, each with its index in the matrix (whose
    point 0 is the depot, where the route started at ``start_at``). A leg that ends when its
    stop's window opened (``opens``: stop id -> window start) says nothing about the pace: the
    driver was early and waited at the door, as planned."""
    legs: list[tuple[float, float]] = []
    services: list[tuple[float, float]] = []
    prev_departure = start_at
    prev_index = 0
    for stop_index, stop in done:
        if stop.actual_arrival is None:
            prev_departure, prev_index = None, stop_index
            continue
        if prev_departure is not None:
            actual = (_utc(stop.actual_arrival) - _utc(prev_departure)).total_seconds()
            expected = _travel_s(durations, prev_index, stop_index)
            opened = (opens or {}).get(stop.id)
            waited = opened is not None and _utc(stop.actual_arrival) <= opened + WAITED_SLACK
            if actual > 0 and expected > 0 and not waited:
                legs.append((actual, expected))
        if stop.actual_departure is not None:
            served = (_utc(stop.actual_departure) - _utc(stop.actual_arrival)).total_seconds()
            services.append((max(0.0, served), float(stop.service_time_s or 0)))
        prev_departure = stop.actual_departure
        prev_index = stop_index
    return pace_so_far(legs, services)


def refresh_route_eta(
    session: Session,
    clock: Clock,
    route_id: str,
    *,
    travel: TravelTimeProvider,
    reason: str = "position update",
    settings: Settings | None = None,
) -> list[StopForecast]:
    """Recompute the ETA and window of every remaining stop of ``route_id`` (an active route;
    anything else is left alone and gives an empty list)."""
    settings = settings or Settings()
    route = session.get(Route, route_id)
    if route is None or route.status != "active":
        return []
    now = _utc(clock.now())
    merchant = session.get(Merchant, route.merchant_id)
    config = eta_config(merchant.config if merchant else None, settings)
    stops = list(route.stops)
    resolve_arrivals(session, stops)
    orders = {
        o.id: o
        for o in session.scalars(
            select(Order).where(
                Order.merchant_id == route.merchant_id,
                Order.id.in_([s.order_id for s in stops]),
            )
        )
    }
    depot = session.scalars(
        select(Depot).join(Shift, Shift.depot_id == Depot.id).where(Shift.id == route.shift_id)
    ).one()
    vehicle = session.get(Vehicle, route.vehicle_id)
    profile = Profile(vehicle.profile) if vehicle else Profile.VAN

    # Points: 0 the depot, 1..n the stops in route order, n + 1 the latest position.
    points = [LatLon(depot.lat, depot.lon)] + [_place(orders[s.order_id]) for s in stops]
    position = latest_position(session, route.id)
    if position is not None:
        points.append(LatLon(position.lat, position.lon))
    durations = travel.matrix(points, profile).durations_s

    finished = [
        (i + 1, s)
        for i, s in enumerate(stops)
        if s.status in FINISHED_STOP_STATUSES or s.actual_departure is not None
    ]
    remaining = [
        (i + 1, s)
        for i, s in enumerate(stops)
        if s.status not in FINISHED_STOP_STATUSES and s.actual_departure is None
    ]
    if not remaining:
        route.eta_refreshed_at = now
        return []
    started_at = _route_started_at(session, route)
    opens = {
        s.id: _utc(w) for _, s in finished if (w := orders[s.order_id].window_start) is not None
    }
    pace = _pace(finished, durations, started_at, opens)

    # Where the driver is: at the current stop, at the latest position, or where they left.
    first_index, first = remaining[0]
    last_done = finished[-1] if finished else None
    last_departure = (
        _utc(last_done[1].actual_departure) if last_done and last_done[1].actual_departure else None
    )
    if first.actual_arrival is not None:
        origin_index, origin_at = first_index, _utc(first.actual_arrival)
    elif position is not None and (
        last_departure is None or _utc(position.recorded_at) >= last_departure
    ):
        origin_index, origin_at = len(points) - 1, _utc(position.recorded_at)
    elif last_done is not None:
        origin_index, origin_at = last_done[0], last_departure or now
    else:
        origin_index, origin_at = 0, max(now, _utc(started_at or route.start_at or now))

    remaining_stops: list[RemainingStop] = []
    prev = origin_index
    for index, stop in remaining:
        order = orders[stop.order_id]
        arrived = stop.actual_arrival if index == first_index else None
        remaining_stops.append(
            RemainingStop(
                stop_id=stop.id,
                travel_s=0.0 if arrived is not None else _travel_s(durations, prev, index),
                service_s=float(stop.service_time_s or 0),
                window_start=_utc(order.window_start) if order.window_start else None,
                arrived_at=_utc(arrived) if arrived is not None else None,
            )
        )
        prev = index
    etas = estimate(now, origin_at, remaining_stops, pace)

    by_id = {s.id: s for _, s in remaining}
    recorded: set[tuple[str, str]] = {
        (stop_id, horizon)
        for stop_id, horizon in session.execute(
            select(EtaPrediction.stop_id, EtaPrediction.horizon).where(
                EtaPrediction.stop_id.in_(list(by_id))
            )
        )
    }
    score_cache: dict[tuple[str, ...], ErrorHistory] = {}
    out: list[StopForecast] = []
    for item in etas:
        stop = by_id[item.stop_id]
        order = orders[stop.order_id]
        out.append(
            _apply(
                session,
                clock,
                route,
                stop,
                order,
                item,
                now=now,
                pace=pace,
                reason=reason,
                config=config,
                recorded=recorded,
                score_cache=score_cache,
            )
        )
    route.eta_refreshed_at = now
    return out


def _route_started_at(session: Session, route: Route) -> datetime | None:
    """When the route started: its ``route.started`` event, else its planned start."""
    started = session.scalar(
        select(func.min(DeliveryEvent.occurred_at)).where(
            DeliveryEvent.merchant_id == route.merchant_id,
            DeliveryEvent.route_id == route.id,
            DeliveryEvent.type == "route.started",
        )
    )
    at = started or route.start_at
    return _utc(at) if at is not None else None


def _apply(
    session: Session,
    clock: Clock,
    route: Route,
    stop: Stop,
    order: Order,
    item: StopEta,
    *,
    now: datetime,
    pace: Pace,
    reason: str,
    config: EtaConfig,
    recorded: set[tuple[str, str]],
    score_cache: dict[tuple[str, ...], ErrorHistory],
) -> StopForecast:
    cold = pace.legs == 0
    horizon = calibration.mark_of(item.minutes_away, cold=cold)
    bucket = calibration.bucket_of(item.minutes_away, cold=cold)
    if bucket not in score_cache:
        score_cache[bucket] = error_scores(session, route.merchant_id, bucket, config.history_size)
    history = score_cache[bucket]
    win = calibration.window(
        item.minutes_away,
        history.scores,
        confidence=config.confidence,
        min_history=config.min_history,
        routes=history.routes,
        min_routes=config.min_routes,
        cold=cold,
    )
    raw, raw_minutes = item.eta, item.minutes_away
    if stop.actual_arrival is not None:  # the driver is there: no window left to guess
        shown = earliest = latest = raw
    else:
        shown = max(now, raw + timedelta(seconds=win.center_s))
        earliest = min(shown, max(now, raw + timedelta(seconds=win.before_s)))
        latest = max(shown, raw + timedelta(seconds=win.after_s))
    item = replace(item, eta=shown, minutes_away=max(0.0, (shown - now).total_seconds() / 60))
    stop.eta, stop.eta_earliest, stop.eta_latest = shown, earliest, latest
    stop.eta_confidence = config.confidence
    stop.eta_computed_at = now

    if stop.actual_arrival is None and (stop.id, horizon) not in recorded:
        session.add(
            EtaPrediction(
                merchant_id=route.merchant_id,
                route_id=route.id,
                stop_id=stop.id,
                horizon=horizon,
                predicted_at=now,
                eta=raw,
                stops_away=item.stops_before,
                minutes_away=raw_minutes,
            )
        )
        recorded.add((stop.id, horizon))

    published = _publish_if_material(
        session, clock, route, stop, order, item, earliest, latest, pace, reason, config
    )
    delayed = _delay_if_late(session, clock, route, order, item, earliest, now, pace, reason)
    return StopForecast(
        stop.id,
        order.id,
        item.eta,
        earliest,
        latest,
        item.stops_before,
        item.minutes_away,
        published,
        delayed,
    )


def _moved(old: datetime | None, new: datetime, threshold_s: int) -> bool:
    return old is None or abs((_utc(old) - new).total_seconds()) >= threshold_s


def _publish_if_material(
    session: Session,
    clock: Clock,
    route: Route,
    stop: Stop,
    order: Order,
    item: StopEta,
    earliest: datetime,
    latest: datetime,
    pace: Pace,
    reason: str,
    config: EtaConfig,
) -> bool:
    # The ETA itself at the threshold; the window's edges at twice it (they breathe a little
    # as the stop moves from one horizon to the next, which is not news to anyone).
    threshold = config.material_change_s
    if not (
        _moved(stop.eta_published, item.eta, threshold)
        or _moved(stop.eta_published_earliest, earliest, 2 * threshold)
        or _moved(stop.eta_published_latest, latest, 2 * threshold)
    ):
        return False
    previous = _utc(stop.eta_published) if stop.eta_published else None
    append_event(
        session,
        clock,
        merchant_id=route.merchant_id,
        type=ETA_UPDATED,
        actor=Actor.system(),
        order=order,
        route_id=route.id,
        data={
            "stop_id": stop.id,
            "eta": _iso(item.eta),
            "earliest": _iso(earliest),
            "latest": _iso(latest),
            "confidence": stop.eta_confidence,
            "stops_before": item.stops_before,
            "minutes_away": round(item.minutes_away, 1),
            "reason": explain(previous, item.eta, pace, reason),
            "previous_eta": _iso(previous),
        },
    )
    stop.eta_published = item.eta
    stop.eta_published_earliest = earliest
    stop.eta_published_latest = latest
    return True


FINAL_STRETCH = timedelta(minutes=30)
"""How close to the promised window's end an ETA past it is reason enough to warn (ADR 0010)."""


def _delay_if_late(
    session: Session,
    clock: Clock,
    route: Route,
    order: Order,
    item: StopEta,
    earliest: datetime,
    now: datetime,
    pace: Pace,
    reason: str,
) -> bool:
    """``delivery_delayed`` once per promised window, while that window has not ended yet: when
    even the window's earliest arrival is past the promised end (late almost surely), or, in the
    window's last :data:`FINAL_STRETCH`, when the ETA itself is (late more likely than not, and
    a warning that waited for certainty would come after the doorbell or not at all)."""
    if order.window_end is None:
        return False
    window_end = _utc(order.window_end)
    status = Status(order.status)
    if now >= window_end or status not in DELAYABLE:
        return False
    certain = earliest > window_end
    likely = item.eta > window_end and window_end - now <= FINAL_STRETCH
    if not (certain or likely):
        return False
    if not can_transition(status, Status.DELIVERY_DELAYED):
        return False
    already = session.scalars(
        select(DeliveryEvent.data).where(
            DeliveryEvent.merchant_id == order.merchant_id,
            DeliveryEvent.order_id == order.id,
            DeliveryEvent.type == "delivery.delayed",
        )
    ).all()
    if any(d.get("window_sequence") == order.window_sequence for d in already):
        return False
    change_status(
        session,
        clock,
        order,
        Status.DELIVERY_DELAYED,
        actor=Actor.system(),
        reason=Reason.CARRIER_NOT_ENOUGH_TIME,
        data={
            "route_id": route.id,
            "eta": _iso(item.eta),
            "earliest": _iso(earliest),
            "window_end": _iso(window_end),
            "window_sequence": order.window_sequence,
            "minutes_late": round(
                ((earliest if certain else item.eta) - window_end).total_seconds() / 60, 1
            ),
            "basis": "earliest" if certain else "eta",
            "explanation": delay_reason(pace),
        },
    )
    return True


def routes_needing_refresh(session: Session) -> list[str]:
    """Active routes with a position received since their last ETA refresh."""
    newest = (
        select(Position.route_id, func.max(Position.received_at).label("newest"))
        .where(Position.route_id.is_not(None))
        .group_by(Position.route_id)
        .subquery()
    )
    rows = session.execute(
        select(Route.id)
        .join(newest, newest.c.route_id == Route.id)
        .where(
            Route.status == "active",
            (Route.eta_refreshed_at.is_(None)) | (newest.c.newest > Route.eta_refreshed_at),
        )
        .order_by(Route.id)
    )
    return [r for (r,) in rows]


def travel_for_plan(settings: Settings, plan_provider: str) -> TravelTimeProvider:
    """The provider a plan was made with (``Plan.travel_provider``): the configured one when it
    has that name, else straight lines (a plan made before the configuration changed)."""
    configured = provider_from_settings(settings)
    if configured.name == plan_provider:
        return configured
    return StraightLineProvider(settings.straight_detour_factor)


def run_refresh_etas(runtime: Runtime) -> int:
    """Worker job: refresh the ETAs of every active route with new positions, one transaction
    per route. Returns how many routes were refreshed."""
    with runtime.read_sessions() as session:
        route_ids = routes_needing_refresh(session)
    done = 0
    for route_id in route_ids:
        with transaction(runtime.sessions) as session:
            route = session.get(Route, route_id)
            if route is None:
                continue
            plan = session.get(Plan, route.plan_id)
            travel = travel_for_plan(runtime.settings, plan.travel_provider if plan else "")
            refresh_route_eta(
                session,
                runtime.clock,
                route_id,
                travel=travel,
                reason="position update",
                settings=runtime.settings,
            )
            done += 1
    return done
