"""A driver who is early and waits at the door for the window to open is not slow: the ETA
engine leaves that leg out of the driver's pace, so the next stops are not estimated twice as
far away and announced as late (the day simulator found dozens of such false delay alerts)."""

from __future__ import annotations

from datetime import timedelta

from doorstep.clock import FrozenClock
from doorstep.db.engine import transaction
from doorstep.domain.dispatch.models import Route, Stop
from doorstep.domain.orders.models import Order
from doorstep.domain.orders.status import Status
from doorstep.routing.travel.base import LatLon, Profile
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.integration.test_eta_engine import LARVOTTO, ROQUEBRUNE, TRAVEL, _refresh, _route


def test_waiting_for_a_window_does_not_slow_the_next_etas(
    runtime: Runtime, clock: FrozenClock, merchant: MerchantCtx
) -> None:
    now = clock.now()
    opened = now - timedelta(minutes=5)
    with transaction(runtime.sessions) as session:
        built = _route(
            session,
            merchant.id,
            now,
            [LARVOTTO, ROQUEBRUNE],
            [(opened, opened + timedelta(hours=2)), (now, now + timedelta(minutes=30))],
        )
        route = session.get(Route, built.route_id)
        assert route is not None
        route.start_at = now - timedelta(hours=1)  # left at once; the door opened 55 min later
        first = session.get(Stop, built.stop_ids[0])
        assert first is not None
        first.status, first.actual_arrival = "done", opened
        first.actual_departure = opened + timedelta(minutes=3)
        delivered = session.get(Order, built.order_ids[0])
        assert delivered is not None
        delivered.status = Status.DELIVERED.value
        session.flush()
        forecasts = _refresh(session, clock, built)
    leg = TRAVEL.matrix([LatLon(*LARVOTTO), LatLon(*ROQUEBRUNE)], Profile.VAN).durations_s[0, 1]
    [next_stop] = forecasts
    away_s = (next_stop.eta - now).total_seconds()
    # Left 2 minutes ago: at the driver's ordinary pace, about one leg from the last door.
    assert away_s < float(leg) * 1.25, (away_s, float(leg))
    assert not next_stop.delayed
