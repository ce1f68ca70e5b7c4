"""Route and plan exports: GeoJSON, GPX 1.1, CSV manifest."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

from doorstep.domain.dispatch.exports import (
    load_plan_sheets,
    load_route_sheet,
    to_geojson,
    to_gpx,
    to_manifest_csv,
)
from doorstep.web.calls import ApiCallDep, Caller

router = APIRouter(prefix="/v1", tags=["exports"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such plan or route for this merchant"}
}


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@router.get(
    "/plans/{plan_id}/geojson",
    summary="A plan as GeoJSON (RFC 7946): depot, route lines, stops",
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}}, **_NOT_FOUND},
)
async def plan_geojson(plan_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, c: Caller) -> Response:
        sheets = load_plan_sheets(session, c.merchant_id, plan_id)
        return Response(json.dumps(to_geojson(sheets)), media_type="application/geo+json")

    return await api.read(work)


@router.get(
    "/routes/{route_id}/geojson",
    summary="One route as GeoJSON (RFC 7946)",
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}}, **_NOT_FOUND},
)
async def route_geojson(route_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, c: Caller) -> Response:
        sheet = load_route_sheet(session, c.merchant_id, route_id)
        return Response(
            json.dumps(to_geojson([sheet])),
            media_type="application/geo+json",
            headers=_attachment(f"route-{route_id}.geojson"),
        )

    return await api.read(work)


@router.get(
    "/routes/{route_id}/gpx",
    summary="One route as GPX 1.1: stop waypoints and a route (along roads when known)",
    response_class=Response,
    responses={200: {"content": {"application/gpx+xml": {}}}, **_NOT_FOUND},
)
async def route_gpx(route_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, c: Caller) -> Response:
        sheet = load_route_sheet(session, c.merchant_id, route_id)
        return Response(
            to_gpx(sheet),
            media_type="application/gpx+xml",
            headers=_attachment(f"route-{route_id}.gpx"),
        )

    return await api.read(work)


@router.get(
    "/routes/{route_id}/manifest.csv",
    summary="One route's printable manifest (CSV with a header row, local times)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **_NOT_FOUND},
)
async def route_manifest(route_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, c: Caller) -> Response:
        sheet = load_route_sheet(session, c.merchant_id, route_id)
        # A BOM so spreadsheet programs read accents in names and addresses correctly.
        body = "\ufeff" + to_manifest_csv(sheet)
        return Response(
            body.encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers=_attachment(f"manifest-{route_id}.csv"),
        )

    return await api.read(work)
