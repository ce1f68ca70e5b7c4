"""The driving API for merchants who run their own driver app: start a route, arrive at a stop,
complete it with proof of delivery (multipart), record a failed attempt; and a driver's
sign-in link and code. The driver app at ``/driver`` calls the same verbs through
:func:`run_stop_action` and :func:`run_start`.

Bodies are forms (``multipart/form-data``, or urlencoded when there is no file). Each action
accepts an ``Idempotency-Key``; a form's fingerprint is taken over its fields and the SHA-256
of its files, not the raw bytes (a multipart boundary changes on every send), so a phone that
replays a queued action gets the first answer back and the stop is completed once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, File, Form, Header, Request, Response, UploadFile
from pydantic import AwareDatetime
from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.domain import idempotency
from doorstep.domain.dispatch import execution, signin
from doorstep.domain.dispatch.driving_schemas import (
    LoginLinkOut,
    RouteRunOut,
    StopRunOut,
    login_link_out,
    route_run_out,
    stop_run_out,
)
from doorstep.domain.dispatch.execution import FailureIn, Position, ProofIn
from doorstep.domain.dispatch.recipient_changes import recipient_changes
from doorstep.domain.errors import Actor
from doorstep.domain.idempotency import Answer, IdempotentRequest
from doorstep.domain.orders.models import Order
from doorstep.domain.orders.status import Reason
from doorstep.runtime import Runtime
from doorstep.settings import Settings
from doorstep.web.calls import ApiCallDep, Caller, PendingKey, json_response
from doorstep.web.idempotency import KEY_IN_FLIGHT, KEY_REUSED, respond
from doorstep.web.problems import PROBLEM_JSON

router = APIRouter(prefix="/v1", tags=["driving"])

Responses = dict[int | str, dict[str, Any]]


def _problems(**codes: str) -> Responses:
    return {
        int(code.removeprefix("e")): {"description": text, "content": {PROBLEM_JSON: {}}}
        for code, text in codes.items()
    }


ACTION = _problems(
    e401="Missing or invalid API key",
    e404="No such route or stop for this merchant",
    e409="Not allowed in the current state (route not started, stop already done); "
    f"or {KEY_IN_FLIGHT}",
    e422=f"Validation failed (wrong PIN, not an image, unknown reason); or {KEY_REUSED}",
)
PROOF = {**ACTION, **_problems(e413="A photo or signature over the size limit")}

Lat = Annotated[float | None, Form(ge=-90, le=90, description="Where the driver was")]
Lon = Annotated[float | None, Form(ge=-180, le=180)]
OccurredAt = Annotated[
    AwareDatetime | None,
    Form(description="When it happened on the phone (ISO 8601), for actions sent late"),
]


async def form_fingerprint(request: Request) -> str:
    """What "the same request" means for a form: method, path, fields and files' SHA-256."""
    form = await request.form()
    items: list[tuple[str, str]] = []
    for name, value in form.multi_items():
        if isinstance(value, str):
            items.append((name, "s:" + value))
        else:
            data = await value.read()
            await value.seek(0)
            items.append((name, "f:" + hashlib.sha256(data).hexdigest()))
    body = json.dumps(sorted(items), separators=(",", ":")).encode()
    return idempotency.fingerprint(request.method, request.url.path, body)


async def _api_idem(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", description="Retry-safe key; answers are kept 24 h"),
    ] = None,
) -> PendingKey | None:
    """The form request under its key, before the merchant is known (checked in the pool)."""
    if idempotency_key is None:
        return None
    return PendingKey(
        key=idempotency.parse_key(idempotency_key),
        method=request.method,
        path=request.url.path,
        fingerprint=await form_fingerprint(request),
    )


FormIdempotencyDep = Annotated[PendingKey | None, Depends(_api_idem)]


def _of(key: PendingKey | None, caller: Caller) -> IdempotentRequest | None:
    return key.of(caller.merchant_id) if key is not None else None


def read_upload(upload: UploadFile | None, limit: int) -> bytes | None:
    """An upload's bytes (at most ``limit`` + 1, enough to refuse it), None when absent."""
    if upload is None or (not upload.filename and not upload.size):
        return None
    data = upload.file.read(limit + 1)
    return data or None


# --- shared with the driver app -------------------------------------------------------------


def proof_form(
    settings: Settings,
    *,
    photo: UploadFile | None,
    signature: UploadFile | None,
    received_by: str | None,
    pin: str | None,
    lat: float | None,
    lon: float | None,
    occurred_at: datetime | None,
) -> ProofIn:
    """The proof of delivery as the completion form sends it (API and driver app alike)."""
    return ProofIn(
        photo=read_upload(photo, settings.proof_max_bytes),
        signature=read_upload(signature, settings.proof_max_bytes),
        received_by=received_by,
        pin=pin,
        at=Position(lat, lon),
        occurred_at=occurred_at,
    )


def failure_form(
    settings: Settings,
    *,
    reason: Reason | None,
    note: str | None,
    photo: UploadFile | None,
    lat: float | None,
    lon: float | None,
    occurred_at: datetime | None,
) -> FailureIn:
    """A failed attempt as the failure form sends it (API and driver app alike)."""
    return FailureIn(
        reason=reason,
        note=note,
        photo=read_upload(photo, settings.proof_max_bytes),
        at=Position(lat, lon),
        occurred_at=occurred_at,
    )


def run_stop_action(
    runtime: Runtime,
    tz: ZoneInfo,
    idem: IdempotentRequest | None,
    verb: Callable[[Session], execution.StopResult],
) -> Response:
    """Run a stop verb at most once per key and answer with the stop."""

    def action(session: Session) -> Answer:
        result = verb(session)
        change = recipient_changes(session, result.order.merchant_id, [result.order], tz)
        out = stop_run_out(result.stop, result.order, tz, change.get(result.order.id))
        return Answer(200, out.model_dump(mode="json"))

    return respond(idempotency.run(runtime.sessions, runtime.clock, idem, action))


def run_start(
    runtime: Runtime,
    merchant_id: str,
    route_id: str,
    tz: ZoneInfo,
    idem: IdempotentRequest | None,
    *,
    actor: Actor,
    driver_id: str | None = None,
    occurred_at: datetime | None = None,
) -> Response:
    """Start a route at most once per key and answer with it."""

    def action(session: Session) -> Answer:
        route = execution.start_route(
            session,
            runtime.clock,
            merchant_id,
            route_id,
            actor=actor,
            driver_id=driver_id,
            occurred_at=occurred_at,
            settings=runtime.settings,
        )
        ids = [s.order_id for s in route.stops]
        orders = {
            o.id: o
            for o in session.scalars(
                select(Order).where(Order.merchant_id == merchant_id, Order.id.in_(ids))
            )
        }
        changes = recipient_changes(session, merchant_id, orders.values(), tz)
        return Answer(200, route_run_out(route, orders, tz, changes).model_dump(mode="json"))

    return respond(idempotency.run(runtime.sessions, runtime.clock, idem, action))


# --- endpoints ------------------------------------------------------------------------------


@router.post(
    "/routes/{route_id}/start",
    response_model=RouteRunOut,
    responses=ACTION,
    summary="Start a published route: its orders go out for delivery",
)
async def start_route(
    route_id: str, api: ApiCallDep, idem: FormIdempotencyDep, occurred_at: OccurredAt = None
) -> Response:
    # In one pool call: the key is checked, then the verb runs in its own transactions
    # through the function the driver app shares.
    def work(caller: Caller) -> Response:
        return run_start(
            caller.runtime,
            caller.merchant_id,
            route_id,
            caller.tz,
            _of(idem, caller),
            actor=caller.actor,
            occurred_at=occurred_at,
        )

    return await api.run(work)


@router.post(
    "/stops/{stop_id}/arrive",
    response_model=StopRunOut,
    responses=ACTION,
    summary="The driver is at the stop",
)
async def arrive(
    stop_id: str,
    api: ApiCallDep,
    idem: FormIdempotencyDep,
    lat: Lat = None,
    lon: Lon = None,
    occurred_at: OccurredAt = None,
) -> Response:
    def work(caller: Caller) -> Response:
        runtime, merchant, actor = caller.runtime, caller.merchant, caller.actor
        return run_stop_action(
            runtime,
            caller.tz,
            _of(idem, caller),
            lambda s: execution.arrive(
                s,
                runtime.clock,
                merchant.id,
                stop_id,
                actor=actor,
                at=Position(lat, lon),
                occurred_at=occurred_at,
                settings=runtime.settings,
            ),
        )

    return await api.run(work)


@router.post(
    "/stops/{stop_id}/complete",
    response_model=StopRunOut,
    responses=PROOF,
    summary="Deliver a stop with proof of delivery",
    description=(
        "`multipart/form-data`: `photo` (JPEG, PNG, WebP or HEIC; checked from its bytes, EXIF "
        "removed), `signature` (PNG from a drawing canvas), `received_by`, `pin` (required "
        "when the order `requires_pin`; a wrong one is a 422), `lat`, `lon`, `occurred_at`."
    ),
)
async def complete(
    stop_id: str,
    api: ApiCallDep,
    idem: FormIdempotencyDep,
    photo: Annotated[UploadFile | None, File(description="Photo of the parcel left")] = None,
    signature: Annotated[UploadFile | None, File(description="Signature image")] = None,
    received_by: Annotated[str | None, Form(max_length=200)] = None,
    pin: Annotated[str | None, Form(max_length=12)] = None,
    lat: Lat = None,
    lon: Lon = None,
    occurred_at: OccurredAt = None,
) -> Response:
    def work(caller: Caller) -> Response:
        proof = proof_form(
            caller.settings,
            photo=photo,
            signature=signature,
            received_by=received_by,
            pin=pin,
            lat=lat,
            lon=lon,
            occurred_at=occurred_at,
        )
        return run_stop_action(
            caller.runtime,
            caller.tz,
            _of(idem, caller),
            lambda s: execution.complete_stop(
                s,
                caller.clock,
                caller.settings,
                caller.merchant_id,
                stop_id,
                proof,
                actor=caller.actor,
            ),
        )

    return await api.run(work)


@router.post(
    "/stops/{stop_id}/fail",
    response_model=StopRunOut,
    responses=PROOF,
    summary="Record a failed delivery attempt with its reason",
)
async def fail(
    stop_id: str,
    api: ApiCallDep,
    idem: FormIdempotencyDep,
    reason: Annotated[
        Reason | None, Form(description="Required: why, e.g. consignee_not_home")
    ] = None,
    note: Annotated[str | None, Form(max_length=1000)] = None,
    photo: Annotated[UploadFile | None, File(description="Optional photo")] = None,
    lat: Lat = None,
    lon: Lon = None,
    occurred_at: OccurredAt = None,
) -> Response:
    def work(caller: Caller) -> Response:
        failure = failure_form(
            caller.settings,
            reason=reason,
            note=note,
            photo=photo,
            lat=lat,
            lon=lon,
            occurred_at=occurred_at,
        )
        return run_stop_action(
            caller.runtime,
            caller.tz,
            _of(idem, caller),
            lambda s: execution.fail_stop(
                s,
                caller.clock,
                caller.settings,
                caller.merchant_id,
                stop_id,
                failure,
                actor=caller.actor,
            ),
        )

    return await api.run(work)


@router.post(
    "/drivers/{driver_id}/login-link",
    status_code=201,
    response_model=LoginLinkOut,
    responses={
        **_problems(e401="Missing or invalid API key", e404="No such driver"),
        **_problems(e409="The driver is deactivated"),
    },
    summary="A one-time sign-in link and code for the driver app",
)
async def login_link(driver_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        settings = caller.settings
        issued = signin.issue_login(
            session,
            caller.clock,
            caller.merchant_id,
            driver_id,
            secret_key=settings.effective_secret_key,
            base_url=settings.base_url,
            ttl=timedelta(seconds=settings.driver_login_ttl_s),
        )
        return json_response(login_link_out(issued, caller.tz), status_code=201)

    return await api.write(work)
