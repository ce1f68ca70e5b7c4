"""The delivery-options API: service zones, slot calendars, pickup points, quotes at checkout
and reservations. Handlers parse, call one domain verb and serialise.

Creating a zone, calendar, pickup point or reservation accepts an ``Idempotency-Key``. A quote
only reads, so it runs in a read-only transaction (it never queues behind writers on SQLite).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from doorstep.domain.dispatch.schemas import Page
from doorstep.domain.idempotency import Answer
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
from doorstep.web.calls import ApiCallDep, Caller, IdempotencyKeyDep, json_response
from doorstep.web.deps import JSONBody
from doorstep.web.idempotency import KEY_IN_FLIGHT, KEY_REUSED
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


def _location(collection: str) -> Callable[[Answer], str]:
    return lambda answer: f"{router.prefix}/{collection}/{answer.body['id']}"


def _created(make: Callable[[Session, Caller], BaseModel]) -> Callable[[Session, Caller], Answer]:
    def action(session: Session, caller: Caller) -> Answer:
        return Answer(201, make(session, caller).model_dump(mode="json"))

    return action


# --- Zones ----------------------------------------------------------------------------------


@router.post(
    "/zones",
    status_code=201,
    response_model=ZoneOut,
    responses=CREATE,
    summary="Create a service zone (GeoJSON polygon, [lon, lat])",
)
async def create_zone(body: ZoneIn, api: ApiCallDep, idem: IdempotencyKeyDep) -> Response:
    def make(session: Session, caller: Caller) -> ZoneOut:
        return zones.zone_out(zones.create_zone(session, caller.clock, caller.merchant_id, body))

    return await api.idempotent(idem, _created(make), location=_location("zones"))


@router.get("/zones", response_model=Page[ZoneOut], responses=READ, summary="List zones")
async def list_zones(api: ApiCallDep, limit: Limit = 100, after: After = None) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        rows, cursor = zones.list_zones(session, caller.merchant_id, after=after, limit=limit)
        return json_response(
            Page[ZoneOut](items=[zones.zone_out(r) for r in rows], next_cursor=cursor)
        )

    return await api.read(work)


@router.get("/zones/{zone_id}", response_model=ZoneOut, responses=READ, summary="A zone")
async def get_zone(zone_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        return json_response(
            zones.zone_out(zones.access_zone(session, caller.merchant_id, zone_id))
        )

    return await api.read(work)


@router.patch("/zones/{zone_id}", response_model=ZoneOut, responses=WRITE, summary="Change a zone")
async def update_zone(zone_id: str, body: ZonePatch, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        zone = zones.update_zone(session, caller.clock, caller.merchant_id, zone_id, body)
        return json_response(zones.zone_out(zone))

    return await api.write(work)


@router.delete(
    "/zones/{zone_id}",
    status_code=204,
    responses={**READ, **_problems(e409="Calendars use the zone")},
    summary="Delete a zone",
)
async def delete_zone(zone_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        zones.delete_zone(session, caller.merchant_id, zone_id)
        return Response(status_code=204)

    return await api.write(work)


# --- Slot calendars -------------------------------------------------------------------------


@router.post(
    "/slot-calendars",
    status_code=201,
    response_model=CalendarOut,
    responses=CREATE,
    summary="Create a slot calendar",
)
async def create_calendar(body: CalendarIn, api: ApiCallDep, idem: IdempotencyKeyDep) -> Response:
    def make(session: Session, caller: Caller) -> CalendarOut:
        cal = calendars.create_calendar(session, caller.clock, caller.merchant_id, body)
        return calendars.calendar_out(cal)

    return await api.idempotent(idem, _created(make), location=_location("slot-calendars"))


@router.get(
    "/slot-calendars",
    response_model=Page[CalendarOut],
    responses=READ,
    summary="List slot calendars",
)
async def list_calendars(api: ApiCallDep, limit: Limit = 100, after: After = None) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        rows, cursor = calendars.list_calendars(
            session, caller.merchant_id, after=after, limit=limit
        )
        return json_response(
            Page[CalendarOut](items=[calendars.calendar_out(r) for r in rows], next_cursor=cursor)
        )

    return await api.read(work)


@router.get(
    "/slot-calendars/{calendar_id}",
    response_model=CalendarOut,
    responses=READ,
    summary="A slot calendar",
)
async def get_calendar(calendar_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        cal = calendars.access_calendar(session, caller.merchant_id, calendar_id)
        return json_response(calendars.calendar_out(cal))

    return await api.read(work)


@router.patch(
    "/slot-calendars/{calendar_id}",
    response_model=CalendarOut,
    responses=WRITE,
    summary="Change a slot calendar (held reservations keep their window)",
)
async def update_calendar(calendar_id: str, body: CalendarPatch, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        cal = calendars.update_calendar(
            session, caller.clock, caller.merchant_id, calendar_id, body
        )
        return json_response(calendars.calendar_out(cal))

    return await api.write(work)


@router.delete(
    "/slot-calendars/{calendar_id}",
    status_code=204,
    responses={**READ, **_problems(e409="The calendar has reservations; deactivate it")},
    summary="Delete a slot calendar",
)
async def delete_calendar(calendar_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        calendars.delete_calendar(session, caller.merchant_id, calendar_id)
        return Response(status_code=204)

    return await api.write(work)


# --- Pickup points --------------------------------------------------------------------------


@router.post(
    "/pickup-points",
    status_code=201,
    response_model=PickupPointOut,
    responses=CREATE,
    summary="Create a pickup point (a shop or a locker)",
)
async def create_pickup_point(
    body: PickupPointIn, api: ApiCallDep, idem: IdempotencyKeyDep
) -> Response:
    def make(session: Session, caller: Caller) -> PickupPointOut:
        point = zones.create_pickup_point(session, caller.clock, caller.merchant_id, body)
        return zones.pickup_point_out(point)

    return await api.idempotent(idem, _created(make), location=_location("pickup-points"))


@router.get(
    "/pickup-points",
    response_model=Page[PickupPointOut],
    responses=READ,
    summary="List pickup points",
)
async def list_pickup_points(api: ApiCallDep, limit: Limit = 100, after: After = None) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        rows, cursor = zones.list_pickup_points(
            session, caller.merchant_id, after=after, limit=limit
        )
        return json_response(
            Page[PickupPointOut](
                items=[zones.pickup_point_out(r) for r in rows], next_cursor=cursor
            )
        )

    return await api.read(work)


@router.get(
    "/pickup-points/{point_id}",
    response_model=PickupPointOut,
    responses=READ,
    summary="A pickup point",
)
async def get_pickup_point(point_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        point = zones.access_pickup_point(session, caller.merchant_id, point_id)
        return json_response(zones.pickup_point_out(point))

    return await api.read(work)


@router.patch(
    "/pickup-points/{point_id}",
    response_model=PickupPointOut,
    responses=WRITE,
    summary="Change or deactivate a pickup point",
)
async def update_pickup_point(point_id: str, body: PickupPointPatch, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        point = zones.update_pickup_point(session, caller.merchant_id, point_id, body)
        return json_response(zones.pickup_point_out(point))

    return await api.write(work)


# --- Quotes and reservations ----------------------------------------------------------------


@router.post(
    "/slots/quote",
    response_model=QuoteOut,
    responses=WRITE,
    summary="The windows Doorstep can keep for an address, and why the others are not offered",
)
async def quote(body: QuoteIn, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        return json_response(
            quotes.quote(session, caller.clock.now(), caller.settings, caller.merchant, body)
        )

    return await api.read(work)


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
async def create_reservation(
    body: ReservationIn, api: ApiCallDep, idem: IdempotencyKeyDep
) -> Response:
    def make(session: Session, caller: Caller) -> ReservationOut:
        res = reservations.reserve(session, caller.clock, caller.settings, caller.merchant, body)
        cal = calendars.access_calendar(session, caller.merchant_id, res.calendar_id)
        return reservations.reservation_out(res, cal.currency, caller.tz)

    return await api.idempotent(idem, _created(make), location=_location("slots/reservations"))


@router.get(
    "/slots/reservations/{reservation_id}",
    response_model=ReservationOut,
    responses=READ,
    summary="A reservation",
)
async def get_reservation(reservation_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        res = reservations.access_reservation(session, caller.merchant_id, reservation_id)
        cal = calendars.access_calendar(session, caller.merchant_id, res.calendar_id)
        return json_response(reservations.reservation_out(res, cal.currency, caller.tz))

    return await api.read(work)


@router.delete(
    "/slots/reservations/{reservation_id}",
    status_code=204,
    responses={**READ, **_problems(e409="Confirmed by an order; cancel or reschedule the order")},
    summary="Release a held window",
)
async def delete_reservation(reservation_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        reservations.release(session, caller.clock, caller.merchant_id, reservation_id)
        return Response(status_code=204)

    return await api.write(work)
