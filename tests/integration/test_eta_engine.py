"""The ETA engine on a real database: stored ETAs and windows, eta_updated only on material
moves, the delayed status once and before the window ends, the prediction history, and the
worker job's choice of routes (straight-line travel, SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.clock import FrozenClock
from doorstep.db.engine import transaction
from doorstep.domain.dispatch.models import Plan, Route, Stop
from doorstep.domain.orders.models import DeliveryEvent, Order
from doorstep.domain.orders.status import Status
from doorstep.domain.tracking.eta import eta_config, refresh_route_eta, run_refresh_etas
from doorstep.domain.tracking.models import EtaPrediction, Position
from doorstep.ids import new_id
from doorstep.routing.travel.straight import StraightLineProvider
from doorstep.runtime import Runtime
from doorstep.settings import Settings
from tests.conftest import MerchantCtx
from tests.factories import make_depot, make_driver, make_order, make_shift, make_vehicle

TRAVEL = StraightLineProvider()
LARVOTTO = (43.7450, 7.4350)  # about 6 minutes from the depot in Fontvieille
ROQUEBRUNE = (43.7600, 7.4700)  # about 14 minutes
MONTE_CARLO = (43.7395, 7.4275)
NICE = (43.7000, 7.2700)  # about 40 minutes


@dataclass
class Built:
    route_id: str
    driver_id: str
    stop_ids: list[str]
    order_ids: list[str]


def _route(
    session: Session,
    merchant_id: str,
    now: datetime,
    points: list[tuple[float, float]],
    windows: list[tuple[datetime, datetime]],
    *,
    status: str = "active",
) -> Built:
    depot = make_depot(session, merchant_id)
    vehicle = make_vehicle(session, merchant_id)
    driver = make_driver(session, merchant_id)
    shift = make_shift(
        session,
        merchant_id,
        driver=driver,
        vehicle=vehicle,
        depot=depot,
        start_at=now,
        end_at=now + timedelta(hours=8),
    )
    plan = Plan(
        id=new_id("pln", now),
        merchant_id=merchant_id,
        depot_id=depot.id,
        date=now.date(),
        status="published",
        seed=1,
        time_limit_s=1.0,
        travel_provider="straight",
        created_at=now,
    )
    session.add(plan)
    session.flush()
    route = Route(
        id=new_id("rte", now),
        merchant_id=merchant_id,
        plan_id=plan.id,
        shift_id=shift.id,
        driver_id=driver.id,
        vehicle_id=vehicle.id,
        position=0,
        status=status,
        start_at=now,
    )
    session.add(route)
    session.flush()
    built = Built(route.id, driver.id, [], [])
    for i, ((lat, lon), window) in enumerate(zip(points, windows, strict=True)):
        order = make_order(
            session,
            merchant_id,
            reference=f"ETA-{route.id[-6:]}-{i + 1}",
            lat=lat,
            lon=lon,
            window=window,
            status=Status.OUT_FOR_DELIVERY.value,
        )
        stop = Stop(
            id=new_id("stp", now),
            merchant_id=merchant_id,
            route_id=route.id,
            order_id=order.id,
            sequence=i + 1,
            status="planned",
            service_time_s=180,
        )
        session.add(stop)
        built.stop_ids.append(stop.id)
        built.order_ids.append(order.id)
    session.flush()
    return built


def _position(
    session: Session, merchant_id: str, built: Built, at: datetime, point: tuple[float, float]
) -> None:
    session.add(
        Position(
            merchant_id=merchant_id,
            driver_id=built.driver_id,
            route_id=built.route_id,
            source="osmand",
            recorded_at=at,
            received_at=at,
            lat=point[0],
            lon=point[1],
        )
    )
    session.flush()


def _events(session: Session, type_: str) -> list[DeliveryEvent]:
    return list(
        session.scalars(
            select(DeliveryEvent).where(DeliveryEvent.type == type_).order_by(DeliveryEvent.seq)
        )
    )


def _refresh(session: Session, clock: FrozenClock, built: Built, reason: str = "test") -> list:  # type: ignore[type-arg]
    return refresh_route_eta(
        session, clock, built.route_id, travel=TRAVEL, reason=reason, settings=Settings()
    )


def test_etas_and_windows_are_stored_and_announced_only_when_they_move(
    runtime: Runtime, clock: FrozenClock, merchant: MerchantCtx
) -> None:
    """The first refresh announces every stop; 20 s later nothing is re-announced; a position
    that puts the van half an hour farther away announces new ETAs, with the previous one."""
    now = clock.now()
    window = (now, now + timedelta(hours=3))
    with transaction(runtime.sessions) as session:
        built = _route(session, merchant.id, now, [LARVOTTO, MONTE_CARLO], [window, window])
        forecasts = _refresh(session, clock, built, "route started")
        assert [f.stops_before for f in forecasts] == [0, 1]
        assert forecasts[0].eta < forecasts[1].eta
        for stop_id in built.stop_ids:
            stop = session.get(Stop, stop_id)
            assert stop is not None and stop.eta is not None
            assert stop.eta_earliest is not None and stop.eta_latest is not None
            assert stop.eta_earliest <= stop.eta <= stop.eta_latest
            assert stop.eta_confidence == 0.9
        first = _events(session, "delivery.eta_updated")
        assert len(first) == 2
        assert first[0].data["reason"] == "route started"
        assert first[0].data["previous_eta"] is None
        assert set(first[0].data) >= {
            "eta",
            "earliest",
            "latest",
            "confidence",
            "stops_before",
            "minutes_away",
            "reason",
            "previous_eta",
        }

    clock.advance(timedelta(seconds=20))
    with transaction(runtime.sessions) as session:
        _refresh(session, clock, built)
        assert len(_events(session, "delivery.eta_updated")) == 2

    clock.advance(timedelta(seconds=10))
    with transaction(runtime.sessions) as session:
        _position(session, merchant.id, built, clock.now(), NICE)
        _refresh(session, clock, built, "position update")
        events = _events(session, "delivery.eta_updated")
        assert len(events) == 4
        moved = events[2]
        assert moved.data["previous_eta"] == first[0].data["eta"]
        assert datetime.fromisoformat(moved.data["eta"]) > datetime.fromisoformat(
            first[0].data["eta"]
        ) + timedelta(minutes=20)


def test_delayed_once_and_before_the_window_ends(
    runtime: Runtime, clock: FrozenClock, merchant: MerchantCtx
) -> None:
    """A stop 14 minutes away whose window ends in 2 becomes delivery_delayed at once, with a
    reason, and never twice for that window; a stop whose window already ended is not
    'warned' after the fact."""
    now = clock.now()
    with transaction(runtime.sessions) as session:
        built = _route(
            session,
            merchant.id,
            now,
            [ROQUEBRUNE, LARVOTTO],
            [
                (now - timedelta(hours=1), now + timedelta(minutes=2)),
                (now - timedelta(hours=2), now),
            ],
        )
        forecasts = _refresh(session, clock, built)
        assert [f.delayed for f in forecasts] == [True, False]
        late = session.get(Order, built.order_ids[0])
        assert late is not None and late.status == Status.DELIVERY_DELAYED.value
        assert late.reason == "carrier_not_enough_time"
        gone = session.get(Order, built.order_ids[1])
        assert gone is not None and gone.status == Status.OUT_FOR_DELIVERY.value
        delayed = _events(session, "delivery.delayed")
        assert len(delayed) == 1
        assert delayed[0].occurred_at < now + timedelta(minutes=2)
        assert delayed[0].data["window_sequence"] == 0
        assert delayed[0].data["explanation"]

    clock.advance(timedelta(seconds=30))
    with transaction(runtime.sessions) as session:
        _refresh(session, clock, built)
        assert len(_events(session, "delivery.delayed")) == 1


def test_an_eta_past_the_window_end_warns_only_in_the_windows_last_half_hour(
    runtime: Runtime, clock: FrozenClock, merchant: MerchantCtx
) -> None:
    """Late more likely than not (the ETA past the promised end, the window's earliest not):
    a stop 14 minutes away is warned, because waiting for certainty would warn after the
    doorbell; a stop 40 minutes away is not yet, since much can change in 40 minutes."""
    now = clock.now()
    wide = (now - timedelta(hours=1), now + timedelta(hours=3))
    with transaction(runtime.sessions) as session:
        near = _route(session, merchant.id, now, [ROQUEBRUNE], [wide])
        far = _route(session, merchant.id, now, [NICE], [wide])
        for built, expect in ((near, True), (far, False)):
            (first,) = _refresh(session, clock, built)
            assert not first.delayed
            assert first.earliest < first.eta
            order = session.get(Order, built.order_ids[0])
            assert order is not None
            order.window_end = first.earliest + (first.eta - first.earliest) / 2
            session.flush()
            (again,) = _refresh(session, clock, built)
            assert again.delayed is expect, (again.eta - now, expect)
        delayed = _events(session, "delivery.delayed")
        assert [e.order_id for e in delayed] == [near.order_ids[0]]
        assert delayed[0].data["basis"] == "eta"
        assert delayed[0].data["minutes_late"] > 0


def test_predictions_are_recorded_and_learn_their_error_on_arrival(
    runtime: Runtime, clock: FrozenClock, merchant: MerchantCtx
) -> None:
    """Each stop's ETA is kept once per horizon; when the stop is arrived its error is filled
    in as actual minus predicted arrival."""
    now = clock.now()
    window = (now, now + timedelta(hours=3))
    with transaction(runtime.sessions) as session:
        built = _route(session, merchant.id, now, [LARVOTTO, MONTE_CARLO], [window, window])
        _refresh(session, clock, built)
        _refresh(session, clock, built)  # same horizon: not recorded twice
        preds = list(session.scalars(select(EtaPrediction)))
        assert sorted(p.stop_id for p in preds) == sorted(built.stop_ids)
        assert all(p.error_s is None for p in preds)
        predicted = {p.stop_id: p.eta for p in preds}

    clock.advance(timedelta(minutes=9))
    with transaction(runtime.sessions) as session:
        stop = session.get(Stop, built.stop_ids[0])
        assert stop is not None
        stop.status, stop.actual_arrival = "arrived", clock.now()
        session.flush()
        _refresh(session, clock, built)
        resolved = session.scalars(
            select(EtaPrediction).where(EtaPrediction.stop_id == built.stop_ids[0])
        ).all()
        assert resolved and all(p.error_s is not None for p in resolved)
        first = min(resolved, key=lambda p: p.predicted_at)
        expected = (clock.now() - predicted[built.stop_ids[0]]).total_seconds()
        assert abs((first.error_s or 0) - expected) < 1
        # The driver is at the stop: its ETA is the arrival, the next one comes after service.
        assert stop.eta == clock.now() == stop.eta_earliest == stop.eta_latest


def test_the_worker_refreshes_only_active_routes_with_new_positions(
    runtime: Runtime, clock: FrozenClock, merchant: MerchantCtx
) -> None:
    """run_refresh_etas picks an active route once per new position, and leaves a planned
    route alone even when its driver reports."""
    now = clock.now()
    window = (now, now + timedelta(hours=3))
    with transaction(runtime.sessions) as session:
        active = _route(session, merchant.id, now, [LARVOTTO], [window])
        planned = _route(session, merchant.id, now, [MONTE_CARLO], [window], status="planned")
        _position(session, merchant.id, active, now, MONTE_CARLO)
        _position(session, merchant.id, planned, now, MONTE_CARLO)
    clock.advance(timedelta(seconds=5))
    assert run_refresh_etas(runtime) == 1
    assert run_refresh_etas(runtime) == 0
    with transaction(runtime.sessions) as session:
        stop = session.get(Stop, active.stop_ids[0])
        other = session.get(Stop, planned.stop_ids[0])
        assert stop is not None and stop.eta is not None
        assert other is not None and other.eta is None
    clock.advance(timedelta(seconds=5))
    with transaction(runtime.sessions) as session:
        _position(session, merchant.id, active, clock.now(), LARVOTTO)
    clock.advance(timedelta(seconds=5))
    assert run_refresh_etas(runtime) == 1


def test_merchant_settings_override_the_defaults() -> None:
    """A merchant's own confidence and threshold win over DOORSTEP_ETA_*; nonsense is ignored."""
    settings = Settings()
    assert eta_config({}, settings).confidence == 0.9
    assert eta_config({}, settings).material_change_s == 180
    own = eta_config({"eta_confidence": 0.8, "eta_material_change_s": 300}, settings)
    assert (own.confidence, own.material_change_s) == (0.8, 300)
    assert eta_config({"eta_confidence": "lots"}, settings).confidence == 0.9
    assert eta_config({"eta_confidence": 1.5}, settings).confidence == 0.99


def test_the_window_learns_from_this_merchants_history_only(
    runtime: Runtime,
    clock: FrozenClock,
    merchant: MerchantCtx,
    make_merchant: Callable[..., MerchantCtx],
) -> None:
    """A merchant whose past ETAs 5 minutes out were 10 minutes early, on 20 routes, gets a
    later ETA and a later window; another merchant, with no history, keeps the prior's
    window; the same errors from one route move the window only a little."""
    other = make_merchant("Harbour Grocer")
    third = make_merchant("Port Pharmacy")
    now = clock.now()
    window = (now, now + timedelta(hours=3))

    def history(session: Session, merchant_id: str, routes: int, stops: int) -> None:
        for _ in range(routes):
            past = _route(
                session, merchant_id, now, [MONTE_CARLO] * stops, [window] * stops, status="done"
            )
            for stop_id in past.stop_ids:
                session.add(
                    EtaPrediction(
                        merchant_id=merchant_id,
                        route_id=past.route_id,
                        stop_id=stop_id,
                        horizon="m10/cold",  # made at route start, like the new one
                        predicted_at=now - timedelta(days=1),
                        eta=now - timedelta(days=1),
                        stops_away=0,
                        minutes_away=5.0,
                        arrived_at=now - timedelta(days=1, minutes=-10),
                        error_s=600.0,
                    )
                )

    with transaction(runtime.sessions) as session:
        history(session, merchant.id, routes=20, stops=3)
        history(session, third.id, routes=1, stops=60)
        mine = _route(session, merchant.id, now, [LARVOTTO], [window])
        theirs = _route(session, other.id, now, [LARVOTTO], [window])
        one_route = _route(session, third.id, now, [LARVOTTO], [window])
        learnt = _refresh(session, clock, mine)[0]
        prior = _refresh(session, clock, theirs)[0]
        thin = _refresh(session, clock, one_route)[0]
    assert learnt.eta > prior.eta + timedelta(minutes=8)
    assert learnt.earliest > prior.earliest + timedelta(minutes=8)
    assert prior.earliest < prior.eta < prior.latest
    assert prior.eta < thin.eta < prior.eta + timedelta(minutes=2)
