"""The orders API (``/v1/orders``): create, read, list, edit, cancel, change status, timeline
and CSV import. Handlers parse, call one domain verb or query, and serialise, all in one pool
thread call (:mod:`doorstep.web.calls`).

Creating requests (``POST /v1/orders``, ``POST /v1/orders/import``) accept an
``Idempotency-Key``: the key is claimed in a transaction of its own, then the work and the
stored answer commit together.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel
from sqlalchemy.orm import Session

from doorstep.domain.idempotency import Answer
from doorstep.domain.orders import queries, service
from doorstep.domain.orders.csv_import import COLUMNS, ImportRejected
from doorstep.domain.orders.location import SetLocationIn, set_location
from doorstep.domain.orders.schemas import (
    CancelIn,
    EventOut,
    ImportResult,
    LinkKeys,
    OrderCreate,
    OrderOut,
    OrderPage,
    OrderPatch,
    StatusChangeIn,
    TimelineOut,
)
from doorstep.domain.orders.status import Status
from doorstep.domain.slots import live
from doorstep.domain.tracking import view as tracking_view
from doorstep.domain.tracking.links import tracking_token_for, tracking_url
from doorstep.domain.tracking.schemas import TrackingOut
from doorstep.geocoding import Geocoder, geocoder_from_settings
from doorstep.settings import Settings
from doorstep.web.calls import ApiCallDep, Caller, IdempotencyKeyDep, json_response
from doorstep.web.deps import JSONBody, UnsupportedMediaType
from doorstep.web.problems import PROBLEM_JSON, TYPE_BASE

router = APIRouter(prefix="/v1", tags=["orders"])

CSV_TYPES = frozenset({"text/csv", "application/csv", "application/vnd.ms-excel", "text/plain"})


class FieldProblem(BaseModel):
    field: str
    message: str
    code: str
    row: int | None = None


class Problem(BaseModel):
    """An RFC 9457 problem document (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldProblem] | None = None


def _problem(description: str) -> dict[str, Any]:
    return {
        "model": Problem,
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


Responses = dict[int | str, dict[str, Any]]
AUTH: Responses = {401: _problem("Missing or invalid API key")}
NOT_FOUND: Responses = {404: _problem("No such order for this merchant")}
INVALID: Responses = {422: _problem("Validation failed; `errors` names each field")}
BAD_BODY: Responses = {
    400: _problem("Malformed JSON"),
    413: _problem("Body too large"),
    415: _problem("Not JSON"),
}
IDEMPOTENT: Responses = {
    409: _problem("A request with this Idempotency-Key is still in flight"),
    422: _problem("Validation failed, or the Idempotency-Key was used for another request"),
}


# --- dependencies ---


async def _csv_body(request: Request, api: ApiCallDep) -> bytes:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in CSV_TYPES:
        await api.check()  # an unknown key hears 401 first
        raise UnsupportedMediaType(f"expected text/csv, got {ctype or 'no content type'!r}")
    return await request.body()


CsvBody = Annotated[bytes, Depends(_csv_body)]


def _keys(caller: Caller) -> LinkKeys:
    return LinkKeys(
        secret_key=caller.settings.effective_secret_key,
        base_url=caller.settings.base_url,
        timezone=caller.merchant.timezone,
    )


def _rejected(exc: ImportRejected, path: str) -> JSONResponse:
    return JSONResponse(
        {
            "type": TYPE_BASE + exc.type_slug,
            "title": exc.title,
            "status": exc.status_code,
            "detail": exc.detail,
            "instance": path,
            "error_count": len(exc.row_errors),
            "errors": [
                {"row": e.row, "field": e.field, "message": e.message, "code": e.code}
                for e in exc.row_errors[: len(exc.errors)]
            ],
        },
        status_code=exc.status_code,
        media_type=PROBLEM_JSON,
    )


def _geocoder(settings: Settings) -> Geocoder:
    return geocoder_from_settings(settings)


# --- endpoints ---


@router.post(
    "/orders/import",
    status_code=201,
    response_model=ImportResult,
    summary="Import orders from CSV (all rows or none)",
    description=(
        "Body: `text/csv`, UTF-8 (BOM allowed), comma or semicolon, header row. Columns: "
        + ", ".join(f"`{c}`" for c in COLUMNS)
        + ". `weight_kg` is the order's total weight. Times without an offset are read in the "
        "merchant's timezone; `service_time_s` is the time at the door in seconds. Any invalid "
        "row rejects the whole file with a 422 problem whose `errors` name the spreadsheet "
        "`row` (header = 1) and `field`."
    ),
    responses={**AUTH, **IDEMPOTENT, 413: _problem("File too large"), 415: _problem("Not CSV")},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
)
async def import_orders(
    api: ApiCallDep, content: CsvBody, idem: IdempotencyKeyDep, request: Request
) -> Response:
    def action(session: Session, caller: Caller) -> Answer:
        keys = _keys(caller)
        imported = service.import_orders(
            session,
            caller.clock,
            caller.merchant_id,
            content,
            actor=caller.actor,
            secret_key=keys.secret_key,
            max_rows=caller.settings.max_import_rows,
            timezone=caller.merchant.timezone,
            geocoder=_geocoder(caller.settings),
        )
        result = ImportResult.of(imported.import_id, imported.orders, keys)
        return Answer(201, result.model_dump(mode="json"))

    try:
        return await api.idempotent(idem, action)
    except ImportRejected as exc:
        return _rejected(exc, request.url.path)


@router.post(
    "/orders",
    status_code=201,
    response_model=OrderOut,
    summary="Create an order",
    dependencies=[JSONBody],
    responses={
        **AUTH,
        **BAD_BODY,
        **IDEMPOTENT,
        409: _problem("Reference in use, key busy, or the reservation expired"),
    },
)
async def create_order(payload: OrderCreate, api: ApiCallDep, idem: IdempotencyKeyDep) -> Response:
    def action(session: Session, caller: Caller) -> Answer:
        keys = _keys(caller)
        order = service.create_order(
            session,
            caller.clock,
            caller.merchant_id,
            payload,
            actor=caller.actor,
            secret_key=keys.secret_key,
            geocoder=_geocoder(caller.settings),
        )
        if payload.reservation_id is not None:
            live.join_on_checkout(
                session,
                caller.clock,
                caller.settings,
                order,
                payload.reservation_id,
                actor=caller.actor,
            )
        return Answer(201, OrderOut.of(order, keys).model_dump(mode="json"))

    return await api.idempotent(
        idem, action, location=lambda answer: f"{router.prefix}/orders/{answer.body['id']}"
    )


@router.get(
    "/orders",
    response_model=OrderPage,
    summary="List orders, newest first",
    responses={**AUTH, 400: _problem("Invalid cursor"), **INVALID},
)
async def list_orders(
    api: ApiCallDep,
    status: Annotated[list[Status] | None, Query(description="Repeat for several")] = None,
    window_date: Annotated[
        date | None, Query(description="Window starts on this day (merchant's timezone)")
    ] = None,
    reference: Annotated[str | None, Query(max_length=100)] = None,
    created_after: AwareDatetime | None = None,
    created_before: AwareDatetime | None = None,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    filters = queries.OrderFilters(
        statuses=tuple(status or ()),
        window_date=window_date,
        reference=reference,
        created_after=created_after,
        created_before=created_before,
    )

    def work(session: Session, caller: Caller) -> Response:
        tz = caller.merchant.timezone
        page = queries.list_orders(
            session, caller.merchant_id, tz, filters, limit=limit, cursor=cursor
        )
        keys = _keys(caller)
        return json_response(
            OrderPage(
                data=[OrderOut.of(o, keys) for o in page.orders],
                next_cursor=page.next_cursor,
                has_more=page.next_cursor is not None,
            )
        )

    return await api.read(work)


@router.get(
    "/orders/{order_id}",
    response_model=OrderOut,
    summary="Read an order",
    responses={**AUTH, **NOT_FOUND},
)
async def get_order(order_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        order = queries.get_order(session, caller.merchant_id, order_id)
        return json_response(OrderOut.of(order, _keys(caller)))

    return await api.read(work)


@router.patch(
    "/orders/{order_id}",
    response_model=OrderOut,
    summary="Change recipient, address, window, instructions or service time (merge patch)",
    description=(
        "JSON merge patch (RFC 7396; `application/json` or `application/merge-patch+json`): "
        "absent fields stay, `null` clears, objects merge. Only while the order is `pending`, "
        "`scheduled`, `on_hold`, `delivery_failed` or `delivery_delayed`, else 409. Moving "
        "the window increments `window_sequence`."
    ),
    dependencies=[JSONBody],
    responses={
        **AUTH,
        **BAD_BODY,
        **NOT_FOUND,
        409: _problem("Not editable in its status"),
        **INVALID,
    },
)
async def update_order(order_id: str, patch: OrderPatch, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        order = service.update_order(
            session,
            caller.clock,
            caller.merchant_id,
            order_id,
            patch,
            actor=caller.actor,
            geocoder=_geocoder(caller.settings),
        )
        return json_response(OrderOut.of(order, _keys(caller)))

    return await api.write(work)


@router.post(
    "/orders/{order_id}/location",
    response_model=OrderOut,
    summary="Place the order on the map (clears needs_location)",
    description=(
        "Sets the order's coordinates, e.g. a spot picked on the map or one of "
        "`location.candidates`: precision `point`, source `dispatcher`. Coordinates that "
        "contradict the address's country (0,0, swapped, another country) are a 422."
    ),
    dependencies=[JSONBody],
    responses={
        **AUTH,
        **BAD_BODY,
        **NOT_FOUND,
        409: _problem("Not editable in its status"),
        **INVALID,
    },
)
async def place_order(order_id: str, body: SetLocationIn, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        order = set_location(
            session,
            caller.clock,
            caller.merchant_id,
            order_id,
            lat=body.lat,
            lon=body.lon,
            actor=caller.actor,
        )
        return json_response(OrderOut.of(order, _keys(caller)))

    return await api.write(work)


@router.post(
    "/orders/{order_id}/cancel",
    response_model=OrderOut,
    summary="Cancel an order",
    dependencies=[JSONBody],
    responses={**AUTH, **BAD_BODY, **NOT_FOUND, 409: _problem("Cannot be cancelled"), **INVALID},
)
async def cancel_order(
    order_id: str, api: ApiCallDep, body: Annotated[CancelIn | None, Body()] = None
) -> Response:
    cancel = body or CancelIn()

    def work(session: Session, caller: Caller) -> Response:
        order = service.cancel_order(
            session,
            caller.clock,
            caller.merchant_id,
            order_id,
            actor=caller.actor,
            reason=cancel.reason,
            note=cancel.note,
        )
        return json_response(OrderOut.of(order, _keys(caller)))

    return await api.write(work)


@router.post(
    "/orders/{order_id}/status",
    response_model=OrderOut,
    summary="Change the status (integrators and delivery partners)",
    description="Goes through the transition table: an illegal change is a 409 problem.",
    dependencies=[JSONBody],
    responses={**AUTH, **BAD_BODY, **NOT_FOUND, 409: _problem("Transition not allowed"), **INVALID},
)
async def set_status(order_id: str, change: StatusChangeIn, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        order = service.set_status(
            session, caller.clock, caller.merchant_id, order_id, change, actor=caller.actor
        )
        return json_response(OrderOut.of(order, _keys(caller)))

    return await api.write(work)


@router.get(
    "/orders/{order_id}/events",
    response_model=TimelineOut,
    summary="The order's timeline, oldest first",
    responses={**AUTH, **NOT_FOUND},
)
async def order_events(order_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        events = queries.order_timeline(session, caller.merchant_id, order_id)
        return json_response(TimelineOut(order_id=order_id, data=[EventOut.of(e) for e in events]))

    return await api.read(work)


@router.get(
    "/orders/{order_id}/tracking",
    response_model=TrackingOut,
    summary="What the recipient's tracking page shows, as JSON",
    description=(
        "The same data as the page at `tracking_url`: status, promised window, live ETA "
        "window, stops before this one, the driver's first name and (only while the recipient "
        "may see it) rounded position, the PIN when required, proof of delivery, timeline."
    ),
    responses={**AUTH, **NOT_FOUND},
)
async def order_tracking(order_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        found = tracking_view.order_tracking(session, caller.merchant_id, order_id)
        token = tracking_token_for(caller.settings.effective_secret_key, found.order)
        return json_response(
            TrackingOut.of(found.view, tracking_url(caller.settings.base_url, token))
        )

    return await api.read(work)
