"""A published day for the driving tests: a few orders over Monaco planned and published
through the API, and helpers to find a driver's route and build images."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image

from doorstep.db.engine import transaction
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.factories import local, make_order, monaco_day

DAY = date(2026, 11, 25)


@dataclass
class Published:
    merchant: MerchantCtx
    plan: dict[str, Any]
    route: dict[str, Any]  # the first route with stops
    driver_id: str
    pin_order_id: str | None


def publish_day(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx, *, orders: int = 4
) -> Published:
    """Plan and publish a small day; one extra order needs a delivery PIN."""
    with transaction(runtime.sessions) as s:
        day = monaco_day(s, merchant.id, DAY, orders=orders)
        pin = make_order(
            s,
            merchant.id,
            reference="PIN-1",
            lat=43.7395,
            lon=7.4255,
            window=(local(DAY, 9), local(DAY, 17)),
            requires_pin=True,
            delivery_pin="246810",
        )
    body = {"depot_id": day.depot_id, "date": DAY.isoformat(), "time_limit_s": 0.2}
    plan = client.post("/v1/plans", json=body, headers=merchant.headers)
    assert plan.status_code == 201, plan.text
    published = client.post(f"/v1/plans/{plan.json()['id']}/publish", headers=merchant.headers)
    assert published.status_code == 200, published.text
    view = published.json()
    route = next(r for r in view["routes"] if any(s["order_id"] == pin.id for s in r["stops"]))
    return Published(merchant, view, route, route["driver"]["id"], pin.id)


def image_bytes(fmt: str = "JPEG", *, size: tuple[int, int] = (64, 48), gps: bool = False) -> bytes:
    """A small image; with ``gps``, EXIF carrying a GPS position and a camera make."""
    img = Image.new("RGB", size, (200, 120, 40))
    out = io.BytesIO()
    if gps:
        exif = Image.Exif()
        exif[0x010F] = "PhoneMaker"  # Make
        exif[0x8825] = {1: "N", 2: (43.0, 44.0, 10.0), 3: "E", 4: (7.0, 25.0, 30.0)}
        img.save(out, format=fmt, exif=exif)
    else:
        img.save(out, format=fmt)
    return out.getvalue()
