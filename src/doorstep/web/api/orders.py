"""The orders API (``/v1/orders``): create, read, list, edit, cancel, change status, timeline
and CSV import. Handlers parse, call one domain verb or query, and serialise.

Creating requests (``POST /v1/orders``, ``POST /v1/orders/import``) accept an
``Idempotency-Key``; they run their own transactions (claim the key, then do the work and store
the answer together), so their merchant dependency ends the authentication transaction first.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel
from sqlalchemy.orm import Session

from doorstep.domain import idempotency
from doorstep.domain.accounts.models import Merchant
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
from doorstep.geocoding import Geocoder, geocoder_from_settings
from doorstep.settings import Settings
from doorstep.web.deps import (
    ApiActorDep,
    ClockDep,
    JSONBody,
    MerchantDep,
    OwnTransactionsMerchantDep,
    RuntimeDep,
    SessionDep,
    SettingsDep,
    UnsupportedMediaType,
)
from doorstep.web.idempotency import IdempotencyDep, respond
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


async def _csv_body(request: Request) -> bytes:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in CSV_TYPES:
        raise UnsupportedMediaType(f"expected text/csv, got {ctype or 'no content type'!r}")
    return await request.body()


CsvBody = Annotated[bytes, Depends(_csv_body)]


def _keys(merchant: Merchant, settings: SettingsDep) -> LinkKeys:
    return LinkKeys(
        secret_key=settings.effective_secret_key,
        base_url=settings.base_url,
        timezone=merchant.timezone,
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
        + ". `weight_kg` is the order's total weight. Any invalid row rejects the whole file "
        "with a 422 problem whose `errors` name the spreadsheet `row` (header = 1) and `field`."
    ),
    responses={**AUTH, **IDEMPOTENT, 413: _problem("File too large"), 415: _problem("Not CSV")},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
)
def import_orders(
    merchant: OwnTransactionsMerchantDep,
    content: CsvBody,
    runtime: RuntimeDep,
    clock: ClockDep,
    settings: SettingsDep,
    actor: ApiActorDep,
    idem: IdempotencyDep,
    request: Request,
) -> Response:
    keys = _keys(merchant, settings)

    def action(session: Session) -> Answer:
        imported = service.import_orders(
            session,
            clock,
            merchant.id,
            content,
            actor=actor,
            secret_key=keys.secret_key,
            max_rows=settings.max_import_rows,
            geocoder=_geocoder(settings),
        )
        result = ImportResult.of(imported.import_id, imported.orders, keys)
        return Answer(201, result.model_dump(mode="json"))

    try:
        return respond(idempotency.run(runtime.sessions, clock, idem, action))
    except ImportRejected as exc:
        return JSONResponse(
            {
                "type": TYPE_BASE + exc.type_slug,
                "title": exc.title,
                "status": exc.status_code,
                "detail": exc.detail,
                "instance": request.url.path,
                "error_count": len(exc.row_errors),
                "errors": [
                    {"row": e.row, "field": e.field, "message": e.message, "code": e.code}
                    for e in exc.row_errors[: len(exc.errors)]
                ],
            },
            status_code=exc.status_code,
            media_type=PROBLEM_JSON,
        )


@router.post(
    "/orders",
    status_code=201,
    response_model=OrderOut,
    summary="Create an order",
    dependencies=[JSONBody],
    responses={**AUTH, **BAD_BODY, **IDEMPOTENT, 409: _problem("Reference in use, or key busy")},
)
def create_order(
    payload: OrderCreate,
    merchant: OwnTransactionsMerchantDep,
    runtime: RuntimeDep,
    clock: ClockDep,
    settings: SettingsDep,
    actor: ApiActorDep,
    idem: IdempotencyDep,
) -> Response:
    keys = _keys(merchant, settings)

    def action(session: Session) -> Answer:
        order = service.create_order(
            session,
            clock,
            merchant.id,
            payload,
            actor=actor,
            secret_key=keys.secret_key,
            geocoder=_geocoder(settings),
        )
        return Answer(201, OrderOut.of(order, keys).model_dump(mode="json"))

    answer = idempotency.run(runtime.sessions, clock, idem, action)
    location = f"{router.prefix}/orders/{answer.body['id']}" if answer.success else None
    return respond(answer, location=location)


@router.get(
    "/orders",
    response_model=OrderPage,
    summary="List orders, newest first",
    responses={**AUTH, 400: _problem("Invalid cursor"), **INVALID},
)
def list_orders(
    session: SessionDep,
    merchant: MerchantDep,
    settings: SettingsDep,
    status: Annotated[list[Status] | None, Query(description="Repeat for several")] = None,
    window_date: Annotated[
        date | None, Query(description="Window starts on this day (merchant's timezone)")
    ] = None,
    reference: Annotated[str | None, Query(max_length=100)] = None,
    created_after: AwareDatetime | None = None,
    created_before: AwareDatetime | None = None,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> OrderPage:
    filters = queries.OrderFilters(
        statuses=tuple(status or ()),
        window_date=window_date,
        reference=reference,
        created_after=created_after,
        created_before=created_before,
    )
    page = queries.list_orders(
        session, merchant.id, merchant.timezone, filters, limit=limit, cursor=cursor
    )
    keys = _keys(merchant, settings)
    return OrderPage(
        data=[OrderOut.of(o, keys) for o in page.orders],
        next_cursor=page.next_cursor,
        has_more=page.next_cursor is not None,
    )


@router.get(
    "/orders/{order_id}",
    response_model=OrderOut,
    summary="Read an order",
    responses={**AUTH, **NOT_FOUND},
)
def get_order(
    order_id: str, session: SessionDep, merchant: MerchantDep, settings: SettingsDep
) -> OrderOut:
    return OrderOut.of(queries.get_order(session, merchant.id, order_id), _keys(merchant, settings))


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
def update_order(
    order_id: str,
    patch: OrderPatch,
    session: SessionDep,
    merchant: MerchantDep,
    clock: ClockDep,
    settings: SettingsDep,
    actor: ApiActorDep,
) -> OrderOut:
    order = service.update_order(
        session, clock, merchant.id, order_id, patch, actor=actor, geocoder=_geocoder(settings)
    )
    return OrderOut.of(order, _keys(merchant, settings))


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
def place_order(
    order_id: str,
    body: SetLocationIn,
    session: SessionDep,
    merchant: MerchantDep,
    clock: ClockDep,
    settings: SettingsDep,
    actor: ApiActorDep,
) -> OrderOut:
    order = set_location(
        session, clock, merchant.id, order_id, lat=body.lat, lon=body.lon, actor=actor
    )
    return OrderOut.of(order, _keys(merchant, settings))


@router.post(
    "/orders/{order_id}/cancel",
    response_model=OrderOut,
    summary="Cancel an order",
    dependencies=[JSONBody],
    responses={**AUTH, **BAD_BODY, **NOT_FOUND, 409: _problem("Cannot be cancelled"), **INVALID},
)
def cancel_order(
    order_id: str,
    session: SessionDep,
    merchant: MerchantDep,
    clock: ClockDep,
    settings: SettingsDep,
    actor: ApiActorDep,
    body: Annotated[CancelIn | None, Body()] = None,
) -> OrderOut:
    cancel = body or CancelIn()
    order = service.cancel_order(
        session, clock, merchant.id, order_id, actor=actor, reason=cancel.reason, note=cancel.note
    )
    return OrderOut.of(order, _keys(merchant, settings))


@router.post(
    "/orders/{order_id}/status",
    response_model=OrderOut,
    summary="Change the status (integrators and delivery partners)",
    description="Goes through the transition table: an illegal change is a 409 problem.",
    dependencies=[JSONBody],
    responses={**AUTH, **BAD_BODY, **NOT_FOUND, 409: _problem("Transition not allowed"), **INVALID},
)
def set_status(
    order_id: str,
    change: StatusChangeIn,
    session: SessionDep,
    merchant: MerchantDep,
    clock: ClockDep,
    settings: SettingsDep,
    actor: ApiActorDep,
) -> OrderOut:
    order = service.set_status(session, clock, merchant.id, order_id, change, actor=actor)
    return OrderOut.of(order, _keys(merchant, settings))


@router.get(
    "/orders/{order_id}/events",
    response_model=TimelineOut,
    summary="The order's timeline, oldest first",
    responses={**AUTH, **NOT_FOUND},
)
def order_events(order_id: str, session: SessionDep, merchant: MerchantDep) -> TimelineOut:
    events = queries.order_timeline(session, merchant.id, order_id)
    return TimelineOut(order_id=order_id, data=[EventOut.of(e) for e in events])
