"""Self-service changes through the API, for merchants' own front ends: the same verbs and
cut-off as the tracking page (``/v1/orders/{id}/reschedule``, ``/redirect``, ``/hold``,
``/instructions``), acting as the API key."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter

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
from doorstep.web.deps import ApiActorDep, ClockDep, JSONBody, MerchantDep, SessionDep, SettingsDep
from doorstep.web.problems import PROBLEM_JSON

router = APIRouter(prefix="/v1", tags=["orders"], dependencies=[JSONBody])

CHANGE: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {PROBLEM_JSON: {}}}
    for code, text in {
        401: "Missing or invalid API key",
        404: "No such order for this merchant",
        409: "Too late to change the delivery (self-service-closed), or the window is taken",
        422: "Validation failed; `errors` names each field",
    }.items()
}


@router.get(
    "/orders/{order_id}/delivery-options",
    response_model=DeliveryOptionsOut,
    responses={k: v for k, v in CHANGE.items() if k in (401, 404)},
    summary="What the recipient may still change: windows to move to, pickup points",
)
def delivery_options(
    order_id: str,
    merchant: MerchantDep,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> DeliveryOptionsOut:
    order = get_order(session, merchant.id, order_id)
    state = selfservice.self_service_state(session, clock, settings, order)
    return DeliveryOptionsOut(
        open=state.open,
        closed_reason=state.closed_reason,
        windows=state.windows,
        pickup_points=[pickup_point_out(p) for p in state.pickup_points],
        choice=state.choice,
    )


@router.post(
    "/orders/{order_id}/reschedule",
    response_model=ChoiceOut,
    responses=CHANGE,
    summary="Move the delivery to another offered window",
)
def reschedule(
    order_id: str,
    body: RescheduleIn,
    merchant: MerchantDep,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    actor: ApiActorDep,
) -> ChoiceOut:
    order = selfservice.order_for_merchant(session, merchant.id, order_id)
    selfservice.reschedule(session, clock, settings, order, body, actor=actor, by="merchant")
    return choices.choice_out(session, order, ZoneInfo(merchant.timezone))


@router.post(
    "/orders/{order_id}/redirect",
    response_model=ChoiceOut,
    responses=CHANGE,
    summary="Leave the parcel with a neighbour, at a safe place or at a pickup point",
)
def redirect(
    order_id: str,
    body: RedirectIn,
    merchant: MerchantDep,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    actor: ApiActorDep,
) -> ChoiceOut:
    order = selfservice.order_for_merchant(session, merchant.id, order_id)
    selfservice.redirect(session, clock, settings, order, body, actor=actor)
    return choices.choice_out(session, order, ZoneInfo(merchant.timezone))


@router.post(
    "/orders/{order_id}/hold",
    response_model=ChoiceOut,
    responses=CHANGE,
    summary="Hold the delivery while the recipient is away",
)
def hold(
    order_id: str,
    body: HoldIn,
    merchant: MerchantDep,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    actor: ApiActorDep,
) -> ChoiceOut:
    order = selfservice.order_for_merchant(session, merchant.id, order_id)
    selfservice.hold(session, clock, settings, order, body, actor=actor)
    return choices.choice_out(session, order, ZoneInfo(merchant.timezone))


@router.post(
    "/orders/{order_id}/instructions",
    response_model=ChoiceOut,
    responses=CHANGE,
    summary="Replace the delivery instructions",
)
def instructions(
    order_id: str,
    body: InstructionsIn,
    merchant: MerchantDep,
    session: SessionDep,
    clock: ClockDep,
    actor: ApiActorDep,
) -> ChoiceOut:
    order = selfservice.order_for_merchant(session, merchant.id, order_id)
    selfservice.change_instructions(session, clock, order, body, actor=actor)
    return choices.choice_out(session, order, ZoneInfo(merchant.timezone))
