"""Self-service changes through the API, for merchants' own front ends: the same verbs and
cut-off as the tracking page (``/v1/orders/{id}/reschedule``, ``/redirect``, ``/hold``,
``/instructions``), acting as the API key. Each accepts an ``Idempotency-Key``: a retry with
the same key and body gets the first answer instead of "already in that window"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

from doorstep.domain.idempotency import Answer
from doorstep.domain.orders.models import Order
from doorstep.domain.orders.queries import get_order
from doorstep.domain.slots import choices, selfservice
from doorstep.domain.slots.schemas import (
    ChoiceOut,
    DeliveryOptionsOut,
    HoldIn,
    InstructionsIn,
    RedirectIn,
    RescheduleIn,
)
from doorstep.domain.slots.zones import pickup_point_out
from doorstep.web.calls import (
    ApiCall,
    ApiCallDep,
    Caller,
    IdempotencyKeyDep,
    PendingKey,
    json_response,
)
from doorstep.web.deps import JSONBody
from doorstep.web.idempotency import KEY_IN_FLIGHT, KEY_REUSED
from doorstep.web.problems import PROBLEM_JSON

router = APIRouter(prefix="/v1", tags=["orders"], dependencies=[JSONBody])

CHANGE: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {PROBLEM_JSON: {}}}
    for code, text in {
        401: "Missing or invalid API key",
        404: "No such order for this merchant",
        409: "Too late to change the delivery (self-service-closed), or the window is taken; "
        f"or {KEY_IN_FLIGHT}",
        422: f"Validation failed; `errors` names each field; or {KEY_REUSED}",
    }.items()
}


async def _change(
    api: ApiCall,
    idem: PendingKey | None,
    order_id: str,
    change: Callable[[Session, Caller, Order], None],
) -> Response:
    """``change`` applied to the merchant's order in one write transaction, at most once per
    ``Idempotency-Key``; the answer is the recipient's choice as it now stands."""

    def work(session: Session, caller: Caller) -> Answer:
        order = selfservice.order_for_merchant(session, caller.merchant_id, order_id)
        change(session, caller, order)
        return Answer(200, choices.choice_out(session, order, caller.tz).model_dump(mode="json"))

    return await api.idempotent(idem, work)


@router.get(
    "/orders/{order_id}/delivery-options",
    response_model=DeliveryOptionsOut,
    responses={k: v for k, v in CHANGE.items() if k in (401, 404)},
    summary="What the recipient may still change: windows to move to, pickup points",
)
async def delivery_options(order_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        order = get_order(session, caller.merchant_id, order_id)
        state = selfservice.self_service_state(session, caller.clock, caller.settings, order)
        return json_response(
            DeliveryOptionsOut(
                open=state.open,
                closed_reason=state.closed_reason,
                windows=state.windows,
                pickup_points=[pickup_point_out(p) for p in state.pickup_points],
                choice=state.choice,
            )
        )

    return await api.read(work)


@router.post(
    "/orders/{order_id}/reschedule",
    response_model=ChoiceOut,
    responses=CHANGE,
    summary="Move the delivery to another offered window",
)
async def reschedule(
    order_id: str, body: RescheduleIn, api: ApiCallDep, idem: IdempotencyKeyDep
) -> Response:
    def change(session: Session, caller: Caller, order: Order) -> None:
        selfservice.reschedule(
            session, caller.clock, caller.settings, order, body, actor=caller.actor, by="merchant"
        )

    return await _change(api, idem, order_id, change)


@router.post(
    "/orders/{order_id}/redirect",
    response_model=ChoiceOut,
    responses=CHANGE,
    summary="Leave the parcel with a neighbour, at a safe place or at a pickup point",
)
async def redirect(
    order_id: str, body: RedirectIn, api: ApiCallDep, idem: IdempotencyKeyDep
) -> Response:
    def change(session: Session, caller: Caller, order: Order) -> None:
        selfservice.redirect(
            session, caller.clock, caller.settings, order, body, actor=caller.actor
        )

    return await _change(api, idem, order_id, change)


@router.post(
    "/orders/{order_id}/hold",
    response_model=ChoiceOut,
    responses=CHANGE,
    summary="Hold the delivery while the recipient is away",
)
async def hold(order_id: str, body: HoldIn, api: ApiCallDep, idem: IdempotencyKeyDep) -> Response:
    def change(session: Session, caller: Caller, order: Order) -> None:
        selfservice.hold(session, caller.clock, caller.settings, order, body, actor=caller.actor)

    return await _change(api, idem, order_id, change)


@router.post(
    "/orders/{order_id}/instructions",
    response_model=ChoiceOut,
    responses=CHANGE,
    summary="Replace the delivery instructions",
)
async def instructions(
    order_id: str, body: InstructionsIn, api: ApiCallDep, idem: IdempotencyKeyDep
) -> Response:
    def change(session: Session, caller: Caller, order: Order) -> None:
        selfservice.change_instructions(session, caller.clock, order, body, actor=caller.actor)

    return await _change(api, idem, order_id, change)
