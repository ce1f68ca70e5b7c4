"""The driven track of a route (GeoJSON, GPX 1.1) and a driver's GPS-app pairing (show it,
rotate the device id)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from doorstep.domain.dispatch.resources import access_driver
from doorstep.domain.tracking.devices import rotate_device_id
from doorstep.domain.tracking.pairing import Pairing, pairing_for
from doorstep.domain.tracking.track import load_track, track_geojson, track_gpx
from doorstep.web.calls import ApiCallDep, Caller, json_response

router = APIRouter(prefix="/v1", tags=["tracking"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such route or driver for this merchant"}
}


class PairingOut(BaseModel):
    """What a driver's GPS app needs: the server URL to enter and the device id to send."""

    driver_id: str
    device_id: str | None = Field(description="The id the app sends; null until one is issued")
    osmand_url: str = Field(description="Server URL for Traccar Client")
    owntracks_url: str = Field(description="URL for OwnTracks in HTTP mode")
    setup_url: str | None = Field(
        description="Traccar Client's settings link (server URL, id, intervals): what the "
        "console's QR code holds"
    )
    osmand_app_url: str | None = Field(
        description="OsmAnd's online tracking web address, with OsmAnd's placeholders"
    )


def _out(pairing: Pairing) -> PairingOut:
    return PairingOut(
        driver_id=pairing.driver_id,
        device_id=pairing.device_id,
        osmand_url=pairing.osmand_url,
        owntracks_url=pairing.owntracks_url,
        setup_url=pairing.setup_url,
        osmand_app_url=pairing.osmand_app_url,
    )


@router.get(
    "/routes/{route_id}/track",
    summary="The route's driven track as GeoJSON (RFC 7946 Feature, lon/lat, with times)",
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}}, **_NOT_FOUND},
)
async def route_track(route_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        track = load_track(session, caller.merchant_id, route_id)
        return Response(json.dumps(track_geojson(track)), media_type="application/geo+json")

    return await api.read(work)


@router.get(
    "/routes/{route_id}/track.gpx",
    summary="The route's driven track as GPX 1.1 (one track, each point with its time)",
    response_class=Response,
    responses={200: {"content": {"application/gpx+xml": {}}}, **_NOT_FOUND},
)
async def route_track_gpx(route_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        track = load_track(session, caller.merchant_id, route_id)
        return Response(
            track_gpx(track),
            media_type="application/gpx+xml",
            headers={"Content-Disposition": f'attachment; filename="track-{route_id}.gpx"'},
        )

    return await api.read(work)


@router.get(
    "/drivers/{driver_id}/device",
    response_model=PairingOut,
    responses=_NOT_FOUND,
    summary="The driver's GPS-app settings: device id and server URLs",
)
async def driver_device(driver_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        driver = access_driver(session, caller.merchant_id, driver_id)
        return json_response(_out(pairing_for(driver, caller.settings.base_url)))

    return await api.read(work)


@router.post(
    "/drivers/{driver_id}/device/rotate",
    response_model=PairingOut,
    responses=_NOT_FOUND,
    summary="Issue the driver a new random device id; the old one stops working at once",
)
async def rotate_driver_device(request: Request, driver_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> tuple[str, Response]:
        driver = rotate_device_id(session, caller.merchant_id, driver_id)
        return driver.id, json_response(_out(pairing_for(driver, caller.settings.base_url)))

    # Forget the old id only once the new one is committed, so no request can re-cache it.
    rotated, answer = await api.write(work)
    request.app.state.position_ingest.forget_driver(rotated)
    return answer
