"""Property: whatever customers and merchants do to a window, in whatever order (hold,
release, let holds run out, run the expiry job, change the capacity), its counter equals the
reservations that hold a place, and a new hold is only ever granted below the capacity."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from doorstep.clock import FrozenClock
from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Merchant
from doorstep.domain.accounts.service import create_merchant
from doorstep.domain.errors import Conflict
from doorstep.domain.slots.calendars import create_calendar, update_calendar
from doorstep.domain.slots.models import Reservation, SlotCounter
from doorstep.domain.slots.reservations import expire_reservations, release, reserve
from doorstep.domain.slots.schemas import CalendarIn, CalendarPatch, ReservationIn, ZoneIn
from doorstep.domain.slots.zones import create_zone
from doorstep.runtime import Runtime
from tests.factories import make_depot
from tests.slots_setup import IN_MONACO, MONACO_RING

START = "2026-11-26T10:00:00+01:00"
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.integers(0, 0)),
        st.tuples(st.just("release"), st.integers(0, 9)),
        st.tuples(st.just("wait"), st.integers(1, 12)),
        st.tuples(st.just("expire"), st.integers(0, 0)),
        st.tuples(st.just("capacity"), st.integers(0, 4)),
    ),
    max_size=25,
)


def _setup(runtime: Runtime) -> tuple[str, str]:
    with transaction(runtime.sessions) as s:
        merchant = create_merchant(s, runtime.clock, name="Prop Shop", timezone="Europe/Monaco")
        depot = make_depot(s, merchant.id)
        zone = create_zone(
            s,
            runtime.clock,
            merchant.id,
            ZoneIn(
                depot_id=depot.id,
                name="Monaco",
                geometry={"type": "Polygon", "coordinates": [MONACO_RING]},
            ),
        )
        cal = create_calendar(
            s,
            runtime.clock,
            merchant.id,
            CalendarIn.model_validate(
                {
                    "depot_id": depot.id,
                    "zone_id": zone.id,
                    "windows": [window(2)],
                    "next_day_cutoff": "22:00",
                }
            ),
        )
        return merchant.id, cal.id


def window(capacity: int) -> dict[str, Any]:
    return {"days": ["thu"], "start": "10:00", "end": "12:00", "capacity": capacity}


def _check(runtime: Runtime, calendar_id: str) -> int:
    with runtime.sessions() as s:
        taken = s.scalar(select(SlotCounter.taken).where(SlotCounter.calendar_id == calendar_id))
        holding = s.scalar(
            select(func.count())
            .select_from(Reservation)
            .where(
                Reservation.calendar_id == calendar_id,
                Reservation.status.in_(("held", "confirmed")),
            )
        )
    assert (taken or 0) == holding
    return int(holding or 0)


@settings(
    max_examples=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=OPS)
def test_a_windows_counter_always_equals_the_places_held(
    runtime: Runtime, clock: FrozenClock, ops: list[tuple[str, int]]
) -> None:
    """Random sequences of holds, releases, waits, expiry runs and capacity changes keep the
    counter equal to the live reservations, and never grant a hold at or above capacity."""
    clock.set(datetime.fromisoformat("2026-11-25T08:00:00+01:00"))
    merchant_id, calendar_id = _setup(runtime)
    capacity, ids = 2, []
    for op, arg in ops:
        before = _check(runtime, calendar_id)
        with transaction(runtime.sessions) as s:
            merchant = s.get(Merchant, merchant_id)
            assert merchant is not None
            if op == "reserve":
                try:
                    res = reserve(
                        s,
                        clock,
                        runtime.settings,
                        merchant,
                        ReservationIn.model_validate(
                            {"calendar_id": calendar_id, "start": START, "address": IN_MONACO}
                        ),
                    )
                except Conflict:
                    res = None
                if res is not None:
                    ids.append(res.id)
            elif op == "release" and arg < len(ids):
                release(s, clock, merchant_id, ids[arg])
            elif op == "wait":
                clock.advance(timedelta(minutes=arg))
            elif op == "expire":
                expire_reservations(s, clock)
            elif op == "capacity":
                capacity = arg
                update_calendar(
                    s, clock, merchant_id, calendar_id, CalendarPatch(windows=[window(arg)])
                )
        after = _check(runtime, calendar_id)
        if op == "reserve" and after > before:
            # Granted: the places held before (expired holds given back first) were below it.
            assert after <= max(capacity, 0)
