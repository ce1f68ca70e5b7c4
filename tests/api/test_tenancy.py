"""Every API endpoint keeps merchants apart: walking the app's own route table, each endpoint
that names an object answers 404 to another merchant's key, and lists show nothing of it."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from tests.conftest import MerchantCtx

ORDER = {
    "reference": "SO-1001",
    "recipient": {"name": "Ada Lovelace", "phone": "+33612345678", "email": "ada@example.com"},
    "address": {
        "line1": "1 Avenue de la Costa",
        "city": "Monaco",
        "postal_code": "98000",
        "country": "MC",
        "lat": 43.7405,
        "lon": 7.4263,
    },
    "window": {"start": "2026-11-25T10:00:00+01:00", "end": "2026-11-25T12:00:00+01:00"},
    "service_level": "scheduled",
    "parcels": [{"weight_kg": 2.5}],
}
DEPOT = {
    "name": "Fontvieille",
    "address": {
        "line1": "6 Quai Antoine Ier",
        "city": "Monaco",
        "country": "MC",
        "lat": 43.7285,
        "lon": 7.4150,
    },
}


ZONE = {
    "name": "Monaco",
    "geometry": {
        "type": "Polygon",
        "coordinates": [
            [[7.405, 43.723], [7.445, 43.723], [7.445, 43.755], [7.405, 43.755], [7.405, 43.723]]
        ],
    },
}
WINDOW = {"days": ["thu"], "start": "10:00", "end": "12:00", "capacity": 5}
SELF_SERVICE = {
    "/reschedule": lambda ids: {"calendar_id": ids["calendar_id"], "start": "2026-11-26T10:00:00Z"},
    "/redirect": lambda ids: {"kind": "neighbour", "neighbour": {"name": "A", "house_number": "1"}},
    "/hold": lambda ids: {"until": "2026-12-01"},
    "/instructions": lambda ids: {"instructions": "Ring twice"},
}


def _create(client: TestClient, who: MerchantCtx, path: str, body: dict[str, Any]) -> str:
    resp = client.post(path, json=body, headers=who.headers)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _world(client: TestClient, a: MerchantCtx) -> dict[str, str]:
    """One of everything for merchant A, by path parameter name."""
    ids = {
        "order_id": _create(client, a, "/v1/orders", ORDER),
        "depot_id": _create(client, a, "/v1/depots", DEPOT),
    }
    ids["vehicle_id"] = _create(
        client,
        a,
        "/v1/vehicles",
        {"name": "Van 1", "capacity_weight_kg": 500, "capacity_parcels": 80},
    )
    ids["driver_id"] = _create(client, a, "/v1/drivers", {"name": "Marco", "device_id": "dev-a"})
    # A public address literal: private and loopback URLs are refused, and no DNS is needed.
    ids["endpoint_id"] = _create(
        client, a, "/v1/webhook-endpoints", {"url": "https://93.184.215.14/hook"}
    )
    ids["shift_id"] = _create(
        client,
        a,
        "/v1/shifts",
        {
            "driver_id": ids["driver_id"],
            "vehicle_id": ids["vehicle_id"],
            "depot_id": ids["depot_id"],
            "start_at": "2026-11-25T08:00:00+01:00",
            "end_at": "2026-11-25T18:00:00+01:00",
        },
    )
    plan = client.post(
        "/v1/plans",
        json={"depot_id": ids["depot_id"], "date": "2026-11-25", "time_limit_s": 0.2},
        headers=a.headers,
    )
    assert plan.status_code == 201, plan.text
    ids["plan_id"] = plan.json()["id"]
    ids["route_id"] = plan.json()["routes"][0]["id"]
    ids["zone_id"] = _create(client, a, "/v1/zones", {**ZONE, "depot_id": ids["depot_id"]})
    ids["calendar_id"] = _create(
        client,
        a,
        "/v1/slot-calendars",
        {"depot_id": ids["depot_id"], "zone_id": ids["zone_id"], "windows": [WINDOW]},
    )
    ids["point_id"] = _create(
        client, a, "/v1/pickup-points", {"name": "Tabac", "kind": "shop", **DEPOT}
    )
    ids["reservation_id"] = _create(client, a, "/v1/slots/reservations", _reservation(ids))
    ids["stop_id"] = plan.json()["routes"][0]["stops"][0]["id"]
    csv = (
        "reference,recipient_name,address_line1,city,country,lat,lon\n"
        "IMP-1,Ada Lovelace,1 Avenue de la Costa,Monaco,MC,43.7405,7.4263\n"
    )
    imported = client.post(
        "/v1/orders/import",
        content=csv.encode(),
        headers={**a.headers, "Content-Type": "text/csv"},
    )
    assert imported.status_code == 201, imported.text
    ids["import_id"] = str(imported.json()["import_id"])
    return ids


def _reservation(ids: dict[str, str]) -> dict[str, Any]:
    return {
        "calendar_id": ids["calendar_id"],
        "start": "2026-11-26T10:00:00+01:00",
        "address": {"lat": 43.7405, "lon": 7.4263},
    }


# Path parameters that name a kind of thing (a template's trigger, channel and language), not
# an object that belongs to a merchant.
NAMES = {"trigger", "channel", "locale"}


# Bodies that pass validation, so that what is tested is the tenancy check, not the schema.
def _body(method: str, path: str, ids: dict[str, str]) -> dict[str, Any] | None:
    if method == "PATCH":
        return {}
    if path.endswith("/moves"):
        return {"order_id": ids["order_id"], "to_route_id": ids["route_id"], "position": 0}
    if path.endswith("/status"):
        return {"status": "on_hold"}
    if path.endswith("/location"):
        return {"lat": 43.7312, "lon": 7.4198}
    for suffix, body in SELF_SERVICE.items():
        if path.endswith(suffix):
            return body(ids)
    return {} if method == "POST" else None


def test_every_endpoint_naming_an_object_is_404_for_another_merchant(
    app_client: TestClient, make_merchant: Callable[..., MerchantCtx]
) -> None:
    a, b = make_merchant("Shop A"), make_merchant("Shop B")
    ids = _world(app_client, a)
    walked = 0
    for ctx in iter_route_contexts(app_client.app.routes):  # type: ignore[attr-defined]
        path = getattr(ctx, "path", "")
        if not path.startswith("/v1/") or "{" not in path:
            continue
        params = re.findall(r"{(\w+)}", path)
        if set(params) <= NAMES:
            continue  # names within the caller's own settings, not another merchant's objects
        missing = [p for p in params if p not in ids]
        assert not missing, f"{path}: add an object for {missing} to this test's world"
        url = path.format(**ids)
        for method in sorted(getattr(ctx, "methods", None) or ()):
            if method == "HEAD":
                continue
            resp = app_client.request(method, url, json=_body(method, path, ids), headers=b.headers)
            assert resp.status_code == 404, f"{method} {url}: {resp.status_code} {resp.text}"
            walked += 1
    assert walked >= 25
    # And A still sees all of it: nothing above changed A's objects.
    order = app_client.get(f"/v1/orders/{ids['order_id']}", headers=a.headers).json()
    assert order["status"] == "pending"
    assert app_client.get(f"/v1/plans/{ids['plan_id']}", headers=a.headers).status_code == 200


def test_lists_show_nothing_of_another_merchant(
    app_client: TestClient, make_merchant: Callable[..., MerchantCtx]
) -> None:
    a, b = make_merchant("Shop A"), make_merchant("Shop B")
    ids = _world(app_client, a)
    for ctx in iter_route_contexts(app_client.app.routes):  # type: ignore[attr-defined]
        path = getattr(ctx, "path", "")
        if not path.startswith("/v1/") or "{" in path or "GET" not in (ctx.methods or ()):
            continue
        resp = app_client.get(path, headers=b.headers, params={"date": "2026-11-25"})
        assert resp.status_code == 200, f"{path}: {resp.text}"
        leaked = [oid for oid in ids.values() if oid in resp.text]
        assert not leaked, f"{path} shows another merchant's {leaked}"
