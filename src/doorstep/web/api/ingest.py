"""Positions from GPS apps: ``/ingest/osmand`` (OsmAnd, Traccar Client: query and JSON forms)
and ``/ingest/owntracks`` (OwnTracks over HTTP).

These requests carry no API key: the device id is the credential. They are the busiest
endpoints a server has (every van, every few seconds), so each one costs a single threadpool
hand-off: the handler is ``async``, parses the payload on the event loop (pure, quick) and
runs the domain verb :meth:`~doorstep.domain.tracking.ingest.PositionIngest.take` (device
lookup, screen, buffer) in one ``run_in_threadpool`` call; no per-request session dependency.

Answers: 200 with what was taken and dropped (dropped fixes are answered 200 too, so the app
does not resend them forever); 400 for a payload that is not one; 403, always the same, for a
device that may not post.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from doorstep.domain.tracking.ingest import IngestResult, PositionIngest, Sighting
from doorstep.domain.tracking.payloads import (
    MalformedPayload,
    parse_osmand_json,
    parse_osmand_query,
    parse_owntracks,
)
from doorstep.web.problems import PROBLEM_JSON

router = APIRouter(prefix="/ingest", tags=["ingest"])

_FORM = "application/x-www-form-urlencoded"
_ANSWERS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Not a position payload", "content": {PROBLEM_JSON: {}}},
    403: {
        "description": "The device is not registered to an active driver (always the same)",
        "content": {PROBLEM_JSON: {}},
    },
}


def _service(request: Request) -> PositionIngest:
    service: PositionIngest = request.app.state.position_ingest
    return service


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise MalformedPayload("the body is not valid JSON") from None


async def _osmand_sightings(request: Request) -> list[Sighting]:
    service = _service(request)
    params = dict(request.query_params)
    if request.method == "POST":
        body = await request.body()
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if body.strip() and (ctype == "application/json" or body.lstrip()[:1] in (b"{", b"[")):
            return [Sighting((d,), fix) for d, fix in parse_osmand_json(_json(body))]
        if body.strip() and (ctype == _FORM or not ctype):
            try:
                params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError:
                raise MalformedPayload("the form body is not UTF-8") from None
    device, fix = parse_osmand_query(params, service.clock.now())
    return [Sighting((device,), fix)]


_OSMAND_ROUTE: dict[str, Any] = {
    "summary": "A position from OsmAnd or Traccar Client (query form, form body or JSON form)",
    "response_class": JSONResponse,
    "responses": {
        200: {"description": '{"accepted": n, "dropped": {"teleport": 1, ...}}'},
        **_ANSWERS,
    },
}


@router.get("/osmand", operation_id="ingest_osmand_get", **_OSMAND_ROUTE)
@router.post("/osmand", operation_id="ingest_osmand_post", **_OSMAND_ROUTE)
async def osmand(request: Request) -> JSONResponse:
    """Query form: `id`, `timestamp` (s; ms and ISO 8601 taken too), `lat`, `lon`, `speed`
    (knots), `bearing`, `altitude`, `accuracy` (m), `batt` (%). JSON form: `device_id` and
    `location` {`timestamp`, `coords` {`latitude`, `longitude`, `speed` (m/s), `heading`,
    `accuracy`, `altitude`}, `battery` {`level` 0-1}}; `location` may be a list."""
    sightings = await _osmand_sightings(request)
    result: IngestResult = await run_in_threadpool(_service(request).take, "osmand", sightings)
    return JSONResponse(result.as_dict())


@router.post(
    "/owntracks",
    summary="A message from OwnTracks in HTTP mode (answered with [] as OwnTracks expects)",
    responses=_ANSWERS,
)
async def owntracks(request: Request) -> JSONResponse:
    """`_type: location` with `lat`, `lon`, `tst` (s), `acc` (m), `vel` (km/h), `cog`, `alt`,
    `batt` (%), `tid`. The device is the `X-Limit-D` header (OwnTracks' device id), then
    `X-Limit-U`/`X-Limit-D`, then the payload's `topic`, then `tid`. Other message types are
    accepted and ignored."""
    body = _json(await request.body())
    identity, fix = parse_owntracks(
        body,
        user=request.headers.get("x-limit-u"),
        device=request.headers.get("x-limit-d"),
    )
    devices = tuple(identity.candidates())
    service = _service(request)
    sightings = [Sighting(devices, fix)] if fix is not None else []
    await run_in_threadpool(_take_or_check, service, devices, sightings)
    return JSONResponse([])


def _take_or_check(
    service: PositionIngest, devices: tuple[str, ...], sightings: list[Sighting]
) -> None:
    """Positions are taken; a message without one still must come from a known device."""
    if sightings:
        service.take("owntracks", sightings)
    else:
        service.check_device("owntracks", devices)
