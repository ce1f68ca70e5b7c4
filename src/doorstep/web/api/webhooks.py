"""Merchant webhook endpoints (Standard Webhooks): CRUD, secret rotation, attempts, replay."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from doorstep.domain.notifications import webhooks
from doorstep.domain.notifications.schemas import (
    AttemptList,
    AttemptOut,
    EndpointCreated,
    EndpointIn,
    EndpointList,
    EndpointOut,
    EndpointPatch,
    ReplayIn,
    ReplayOut,
)
from doorstep.web.deps import ClockDep, JSONBody, MerchantDep, SessionDep, SettingsDep
from doorstep.web.problems import PROBLEM_JSON


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDocument"}}},
    }


PROBLEMS: dict[int | str, dict[str, Any]] = {
    404: _problem("No such object for this merchant"),
    422: _problem("Validation failed; `errors` names each field (and line, for templates)"),
}


router = APIRouter(
    prefix="/v1/webhook-endpoints", tags=["webhooks"], dependencies=[JSONBody], responses=PROBLEMS
)


@router.post("", status_code=201, response_model=EndpointCreated, summary="Add an endpoint")
def create_endpoint(
    payload: EndpointIn,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    merchant: MerchantDep,
    response: Response,
) -> EndpointCreated:
    """The answer carries the endpoint's `whsec_` signing secret: it is shown only here."""
    row = webhooks.create_endpoint(
        session,
        clock,
        merchant.id,
        url=payload.url,
        events=payload.events,
        description=payload.description,
        allow_private=settings.webhook_allow_private,
    )
    response.headers["location"] = f"{router.prefix}/{row.id}"
    return EndpointCreated(**EndpointOut.of(row).model_dump(), secret=row.secret)


@router.get("", response_model=EndpointList, summary="List endpoints")
def list_endpoints(session: SessionDep, merchant: MerchantDep) -> EndpointList:
    return EndpointList(
        items=[EndpointOut.of(r) for r in webhooks.list_endpoints(session, merchant.id)]
    )


@router.get("/{endpoint_id}", response_model=EndpointOut, summary="Read an endpoint")
def get_endpoint(endpoint_id: str, session: SessionDep, merchant: MerchantDep) -> EndpointOut:
    return EndpointOut.of(webhooks.get_endpoint(session, merchant.id, endpoint_id))


@router.patch("/{endpoint_id}", response_model=EndpointOut, summary="Change an endpoint")
def update_endpoint(
    endpoint_id: str,
    payload: EndpointPatch,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    merchant: MerchantDep,
) -> EndpointOut:
    """`{"active": true}` re-enables a disabled endpoint."""
    row = webhooks.update_endpoint(
        session,
        clock,
        merchant.id,
        endpoint_id,
        url=payload.url,
        events=payload.events,
        description=payload.description,
        active=payload.active,
        allow_private=settings.webhook_allow_private,
    )
    return EndpointOut.of(row)


@router.delete("/{endpoint_id}", status_code=204, summary="Delete an endpoint")
def delete_endpoint(endpoint_id: str, session: SessionDep, merchant: MerchantDep) -> Response:
    webhooks.delete_endpoint(session, merchant.id, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/{endpoint_id}/rotate-secret", response_model=EndpointCreated, summary="Rotate the secret"
)
def rotate_secret(
    endpoint_id: str, session: SessionDep, clock: ClockDep, merchant: MerchantDep
) -> EndpointCreated:
    """A new secret, shown once; for 24 hours deliveries carry signatures by both secrets."""
    row = webhooks.rotate_secret(session, clock, merchant.id, endpoint_id)
    return EndpointCreated(**EndpointOut.of(row).model_dump(), secret=row.secret)


@router.get("/{endpoint_id}/attempts", response_model=AttemptList, summary="Delivery attempts")
def list_attempts(endpoint_id: str, session: SessionDep, merchant: MerchantDep) -> AttemptList:
    """The latest 100 attempts: HTTP status, duration and the start of the answer."""
    rows = webhooks.list_attempts(session, merchant.id, endpoint_id)
    return AttemptList(items=[AttemptOut.of(r) for r in rows])


@router.post(
    "/{endpoint_id}/replay", status_code=202, response_model=ReplayOut, summary="Send again"
)
def replay(
    endpoint_id: str,
    payload: ReplayIn,
    session: SessionDep,
    clock: ClockDep,
    merchant: MerchantDep,
) -> ReplayOut:
    """One message again (`message_id`, the same `webhook-id`), or every event since a time."""
    count = webhooks.replay(
        session,
        clock,
        merchant.id,
        endpoint_id,
        message_id=payload.message_id,
        since=payload.since,
    )
    return ReplayOut(queued=count)
