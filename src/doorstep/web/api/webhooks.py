"""Merchant webhook endpoints (Standard Webhooks): CRUD, secret rotation, attempts, replay."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

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
from doorstep.web.calls import ApiCallDep, Caller, json_response
from doorstep.web.deps import JSONBody
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
async def create_endpoint(payload: EndpointIn, api: ApiCallDep) -> Response:
    """The answer carries the endpoint's `whsec_` signing secret: it is shown only here."""

    def work(session: Session, caller: Caller) -> Response:
        row = webhooks.create_endpoint(
            session,
            caller.clock,
            caller.merchant_id,
            url=payload.url,
            events=payload.events,
            description=payload.description,
            allow_private=caller.settings.webhook_allow_private,
        )
        return json_response(
            EndpointCreated(**EndpointOut.of(row).model_dump(), secret=row.secret),
            status_code=201,
            headers={"location": f"{router.prefix}/{row.id}"},
        )

    return await api.write(work)


@router.get("", response_model=EndpointList, summary="List endpoints")
async def list_endpoints(api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        rows = webhooks.list_endpoints(session, caller.merchant_id)
        return json_response(EndpointList(items=[EndpointOut.of(r) for r in rows]))

    return await api.read(work)


@router.get("/{endpoint_id}", response_model=EndpointOut, summary="Read an endpoint")
async def get_endpoint(endpoint_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        row = webhooks.get_endpoint(session, caller.merchant_id, endpoint_id)
        return json_response(EndpointOut.of(row))

    return await api.read(work)


@router.patch("/{endpoint_id}", response_model=EndpointOut, summary="Change an endpoint")
async def update_endpoint(endpoint_id: str, payload: EndpointPatch, api: ApiCallDep) -> Response:
    """`{"active": true}` re-enables a disabled endpoint."""

    def work(session: Session, caller: Caller) -> Response:
        row = webhooks.update_endpoint(
            session,
            caller.clock,
            caller.merchant_id,
            endpoint_id,
            url=payload.url,
            events=payload.events,
            description=payload.description,
            active=payload.active,
            allow_private=caller.settings.webhook_allow_private,
        )
        return json_response(EndpointOut.of(row))

    return await api.write(work)


@router.delete("/{endpoint_id}", status_code=204, summary="Delete an endpoint")
async def delete_endpoint(endpoint_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        webhooks.delete_endpoint(session, caller.merchant_id, endpoint_id)
        return Response(status_code=204)

    return await api.write(work)


@router.post(
    "/{endpoint_id}/rotate-secret", response_model=EndpointCreated, summary="Rotate the secret"
)
async def rotate_secret(endpoint_id: str, api: ApiCallDep) -> Response:
    """A new secret, shown once; for 24 hours deliveries carry signatures by both secrets."""

    def work(session: Session, caller: Caller) -> Response:
        row = webhooks.rotate_secret(session, caller.clock, caller.merchant_id, endpoint_id)
        return json_response(EndpointCreated(**EndpointOut.of(row).model_dump(), secret=row.secret))

    return await api.write(work)


@router.get("/{endpoint_id}/attempts", response_model=AttemptList, summary="Delivery attempts")
async def list_attempts(endpoint_id: str, api: ApiCallDep) -> Response:
    """The latest 100 attempts: HTTP status, duration and the start of the answer."""

    def work(session: Session, caller: Caller) -> Response:
        rows = webhooks.list_attempts(session, caller.merchant_id, endpoint_id)
        return json_response(AttemptList(items=[AttemptOut.of(r) for r in rows]))

    return await api.read(work)


@router.post(
    "/{endpoint_id}/replay", status_code=202, response_model=ReplayOut, summary="Send again"
)
async def replay(endpoint_id: str, payload: ReplayIn, api: ApiCallDep) -> Response:
    """One message again (`message_id`, the same `webhook-id`), or every event since a time."""

    def work(session: Session, caller: Caller) -> Response:
        count = webhooks.replay(
            session,
            caller.clock,
            caller.merchant_id,
            endpoint_id,
            message_id=payload.message_id,
            since=payload.since,
        )
        return json_response(ReplayOut(queued=count), status_code=202)

    return await api.write(work)
