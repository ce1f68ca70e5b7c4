"""Helpers for the delivery-options tests: a Monaco zone and a calendar through the API."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import MerchantCtx

# A rectangle over Monaco, [lon, lat] as GeoJSON wants.
MONACO_RING = [
    [7.405, 43.723],
    [7.445, 43.723],
    [7.445, 43.755],
    [7.405, 43.755],
    [7.405, 43.723],
]
IN_MONACO = {"lat": 43.7405, "lon": 7.4263}
IN_NICE = {"lat": 43.7009, "lon": 7.2683}
EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def create_depot(client: TestClient, merchant: MerchantCtx) -> str:
    r = client.post(
        "/v1/depots",
        headers=merchant.headers,
        json={
            "name": "Fontvieille",
            "address": {
                "line1": "6 Quai Antoine Ier",
                "city": "Monaco",
                "country": "MC",
                "lat": 43.7285,
                "lon": 7.4150,
            },
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def create_zone(client: TestClient, merchant: MerchantCtx, depot_id: str) -> str:
    r = client.post(
        "/v1/zones",
        headers=merchant.headers,
        json={
            "depot_id": depot_id,
            "name": "Monaco",
            "geometry": {"type": "Polygon", "coordinates": [MONACO_RING]},
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def create_calendar(
    client: TestClient, merchant: MerchantCtx, depot_id: str, zone_id: str | None, **kw: Any
) -> dict[str, Any]:
    body = {
        "depot_id": depot_id,
        "zone_id": zone_id,
        "name": "Monaco windows",
        "windows": kw.pop(
            "windows",
            [
                {
                    "days": EVERY_DAY,
                    "start": "10:00",
                    "end": "12:00",
                    "capacity": 2,
                    "fee_cents": 490,
                },
                {"days": EVERY_DAY, "start": "14:00", "end": "16:00", "capacity": 1},
            ],
        ),
        "same_day_cutoff": kw.pop("same_day_cutoff", "07:00"),
        "next_day_cutoff": kw.pop("next_day_cutoff", "22:00"),
        "lead_time_minutes": kw.pop("lead_time_minutes", 60),
        **kw,
    }
    r = client.post("/v1/slot-calendars", headers=merchant.headers, json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def monaco_setup(client: TestClient, merchant: MerchantCtx, **kw: Any) -> dict[str, Any]:
    depot_id = create_depot(client, merchant)
    zone_id = create_zone(client, merchant, depot_id)
    cal = create_calendar(client, merchant, depot_id, zone_id, **kw)
    return {"depot_id": depot_id, "zone_id": zone_id, "calendar": cal}
