"""The delivery-options API: service zones, slot calendars, pickup points, quotes at checkout
and reservations. Handlers parse, call one domain verb and serialise.

Creating a zone, calendar, pickup point or reservation accepts an ``Idempotency-Key``. A quote
only reads, so it runs in a read-only transaction (it never queues behind writers on SQLite).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.domain import idempotency
from doorstep.domain.dispatch.schemas import Page
from doorstep.domain.idempotency import Answer, IdempotentRequest
from doorstep.domain.slots import calendars, quotes, reservations, zones
from doorstep.domain.slots.schemas import (
    CalendarIn,
    CalendarOut,
    CalendarPatch,
    PickupPointIn,
    PickupPointOut,
    PickupPointPatch,
    QuoteIn,
    QuoteOut,
    ReservationIn,
    ReservationOut,
    ZoneIn,
    ZoneOut,
    ZonePatch,
)
from doorstep.runtime import Runtime
from doorstep.web.deps import (
    ClockDep,
    JSONBody,
    MerchantDep,
    OwnTransactionsMerchantDep,
    RuntimeDep,
    SessionDep,
    SettingsDep,
)
from doorstep.web.idempotency import KEY_IN_FLIGHT, KEY_REUSED, IdempotencyDep, respond
from doorstep.web.problems import PROBLEM_JSON

router = APIRouter(prefix="/v1", tags=["delivery options"], dependencies=[JSONBody])

Responses = dict[int | str, dict[str, Any]]


def _problems(**codes: str) -> Responses:
    return {
        int(code.removeprefix("e")): {"description": text, "content": {PROBLEM_JSON: {}}}
        for code, text in codes.items()
    }


READ = _problems(e401="Missing or invalid API key", e404="No such object for this merchant")
WRITE = {**READ, **_problems(e422="Validation failed; `errors` names each field")}
CREATE = {
    **WRITE,
    **_problems(e409=KEY_IN_FLIGHT, e422=f"Validation failed; or {KEY_REUSED}"),
}
Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
After = Annotated[str | None, Query(description="`next_cursor` of the previous page")]


def _create(
    runtime: Runtime,
    clock: Clock,
    idem: IdempotentRequest | None,
    collection: str,
    make: Callable[[Session], BaseModel],
) -> Response:
    def action(session: Session) -> Answer:
        return Answer(201, make(session).model_dump(mode="json"))

    answer = idempotency.run(runtime.sessions, clock, idem, action)
    location = f"{router.prefix}/{collection}/{answer.body['id']}" if answer.success else None
    return respond(answer, location=location)


# --- Zones ----------------------------------------------------------------------------------


@router.post(
    "/zones",
    status_code=201,
    response_model=ZoneOut,
    responses=CREATE,
    summary="Create a service zone (GeoJSON polygon, [lon, lat])",
)
def create_zone(
    body: ZoneIn,
    merchant: OwnTransactionsMerchantDep,
    runtime: RuntimeDep,
    clock: ClockDep,
    idem: IdempotencyDep,
) -> Response:
    def make(session: Session) -> ZoneOut:
        return zones.zone_out(zones.create_zone(session, clock, merchant.id, body))

    return _create(runtime, clock, idem, "zones", make)


@router.get("/zones", response_model=Page[ZoneOut], responses=READ, summary="List zones")
def list_zones(
    merchant: MerchantDep, session: SessionDep, limit: Limit = 100, after: After = None
) -> Page[ZoneOut]:
    rows, cursor = zones.list_zones(session, merchant.id, after=after, limit=limit)
    return Page[ZoneOut](items=[zones.zone_out(r) for r in rows], next_cursor=cursor)


@router.get("/zones/{zone_id}", response_model=ZoneOut, responses=READ, summary="A zone")
def get_zone(zone_id: str, merchant: MerchantDep, session: SessionDep) -> ZoneOut:
    return zones.zone_out(zones.access_zone(session, merchant.id, zone_id))


@router.patch("/zones/{zone_id}", response_model=ZoneOut, responses=WRITE, summary="Change a zone")
def update_zone(
    zone_id: str, body: ZonePatch, merchant: MerchantDep, session: SessionDep, clock: ClockDep
) -> ZoneOut:
    return zones.zone_out(zones.update_zone(session, clock, merchant.id, zone_id, body))


@router.delete(
    "/zones/{zone_id}",
    status_code=204,
    responses={**READ, **_problems(e409="Calendars use the zone")},
    summary="Delete a zone",
)
def delete_zone(zone_id: str, merchant: MerchantDep, session: SessionDep) -> Response:
    zones.delete_zone(session, merchant.id, zone_id)
    return Response(status_code=204)


# --- Slot calendars -------------------------------------------------------------------------


@router.post(
    "/slot-calendars",
    status_code=201,
    response_model=CalendarOut,
    responses=CREATE,
    summary="Create a slot calendar",
)
def create_calendar(
    body: CalendarIn,
    merchant: OwnTransactionsMerchantDep,
    runtime: RuntimeDep,
    clock: ClockDep,
    idem: IdempotencyDep,
) -> Response:
    def make(session: Session) -> CalendarOut:
        return calendars.calendar_out(calendars.create_calendar(session, clock, merchant.id, body))

    return _create(runtime, clock, idem, "slot-calendars", make)


@router.get(
    "/slot-calendars",
    response_model=Page[CalendarOut],
    responses=READ,
    summary="List slot calendars",
)
def list_calendars(
    merchant: MerchantDep, session: SessionDep, limit: Limit = 100, after: After = None
) -> Page[CalendarOut]:
    rows, cursor = calendars.list_calendars(session, merchant.id, after=after, limit=limit)
    return Page[CalendarOut](items=[calendars.calendar_out(r) for r in rows], next_cursor=cursor)


@router.get(
    "/slot-calendars/{calendar_id}",
    response_model=CalendarOut,
    responses=READ,
    summary="A slot calendar",
)
def get_calendar(calendar_id: str, merchant: MerchantDep, session: SessionDep) -> CalendarOut:
    return calendars.calendar_out(calendars.access_calendar(session, merchant.id, calendar_id))


@router.patch(
    "/slot-calendars/{calendar_id}",
    response_model=CalendarOut,
    responses=WRITE,
    summary="Change a slot calendar (held reservations keep their window)",
)
def update_calendar(
    calendar_id: str,
    body: CalendarPatch,
    merchant: MerchantDep,
    session: SessionDep,
    clock: ClockDep,
) -> CalendarOut:
    cal = calendars.update_calendar(session, clock, merchant.id, calendar_id, body)
    return calendars.calendar_out(cal)


@router.delete(
    "/slot-calendars/{calendar_id}",
    status_code=204,
    responses={**READ, **_problems(e409="The calendar has reservations; deactivate it")},
    summary="Delete a slot calendar",
)
def delete_calendar(calendar_id: str, merchant: MerchantDep, session: SessionDep) -> Response:
    calendars.delete_calendar(session, merchant.id, calendar_id)
    return Response(status_code=204)


# --- Pickup points --------------------------------------------------------------------------


@router.post(
    "/pickup-points",
    status_code=201,
    response_model=PickupPointOut,
    responses=CREATE,
    summary="Create a pickup point (a shop or a locker)",
)
def create_pickup_point(
    body: PickupPointIn,
    merchant: OwnTransactionsMerchantDep,
    runtime: RuntimeDep,
    clock: ClockDep,
    idem: IdempotencyDep,
) -> Response:
    def make(session: Session) -> PickupPointOut:
        point = zones.create_pickup_point(session, clock, merchant.id, body)
        return zones.pickup_point_out(point)

    return _create(runtime, clock, idem, "pickup-points", make)


@router.get(
    "/pickup-points",
    response_model=Page[PickupPointOut],
    responses=READ,
    summary="List pickup points",
)
def list_pickup_points(
    merchant: MerchantDep, session: SessionDep, limit: Limit = 100, after: After = None
) -> Page[PickupPointOut]:
    rows, cursor = zones.list_pickup_points(session, merchant.id, after=after, limit=limit)
    return Page[PickupPointOut](items=[zones.pickup_point_out(r) for r in rows], next_cursor=cursor)


@router.get(
    "/pickup-points/{point_id}",
    response_model=PickupPointOut,
    responses=READ,
    summary="A pickup point",
)
def get_pickup_point(point_id: str, merchant: MerchantDep, session: SessionDep) -> PickupPointOut:
    return zones.pickup_point_out(zones.access_pickup_point(session, merchant.id, point_id))


@router.patch(
    "/pickup-points/{point_id}",
    response_model=PickupPointOut,
    responses=WRITE,
    summary="Change or deactivate a pickup point",
)
def update_pickup_point(
    point_id: str, body: PickupPointPatch, merchant: MerchantDep, session: SessionDep
) -> PickupPointOut:
    point = zones.update_pickup_point(session, merchant.id, point_id, body)
    return zones.pickup_point_out(point)


# --- Quotes and reservations ----------------------------------------------------------------


@router.post(
    "/slots/quote",
    response_model=QuoteOut,
    responses=WRITE,
    summary="The windows Doorstep can keep for an address, and why the others are not offered",
)
def quote(
    body: QuoteIn,
    merchant: OwnTransactionsMerchantDep,
    runtime: RuntimeDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> QuoteOut:
    with runtime.read_sessions() as session, session.begin():
        return quotes.quote(session, clock.now(), settings, merchant, body)


@router.post(
    "/slots/reservations",
    status_code=201,
    response_model=ReservationOut,
    responses={
        **CREATE,
        **_problems(
            e409=f"The window is not available (full, past cut-off...); or {KEY_IN_FLIGHT}"
        ),
    },
    summary="Hold a window while the customer pays (`reserved_until`)",
)
def create_reservation(
    body: ReservationIn,
    merchant: OwnTransactionsMerchantDep,
    runtime: RuntimeDep,
    clock: ClockDep,
    settings: SettingsDep,
    idem: IdempotencyDep,
) -> Response:
    tz = ZoneInfo(merchant.timezone)

    def make(session: Session) -> ReservationOut:
        res = reservations.reserve(session, clock, settings, merchant, body)
        cal = calendars.access_calendar(session, merchant.id, res.calendar_id)
        return reservations.reservation_out(res, cal.currency, tz)

    return _create(runtime, clock, idem, "slots/reservations", make)


@router.get(
    "/slots/reservations/{reservation_id}",
    response_model=ReservationOut,
    responses=READ,
    summary="A reservation",
)
def get_reservation(
    reservation_id: str, merchant: MerchantDep, session: SessionDep
) -> ReservationOut:
    res = reservations.access_reservation(session, merchant.id, reservation_id)
    cal = calendars.access_calendar(session, merchant.id, res.calendar_id)
    return reservations.reservation_out(res, cal.currency, ZoneInfo(merchant.timezone))


@router.delete(
    "/slots/reservations/{reservation_id}",
    status_code=204,
    responses={**READ, **_problems(e409="Confirmed by an order; cancel or reschedule the order")},
    summary="Release a held window",
)
def delete_reservation(
    reservation_id: str, merchant: MerchantDep, session: SessionDep, clock: ClockDep
) -> Response:
    reservations.release(session, clock, merchant.id, reservation_id)
    return Response(status_code=204)
