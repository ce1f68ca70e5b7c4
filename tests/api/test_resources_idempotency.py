"""Idempotency-Key on the create POSTs for depots, vehicles, drivers and shifts behaves as on
POST /v1/orders and the plan POSTs: a retry replays the first answer and creates nothing new,
another body under the same key is a 422, keys belong to one merchant, and without a key every
POST creates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from doorstep.db.engine import transaction
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.factories import make_depot, make_driver, make_vehicle

DAY = date(2026, 11, 25)
Fleet = dict[str, str]  # depot_id, vehicle_id, driver_id: what a shift needs


def depot(fleet: Fleet, n: int) -> dict[str, Any]:
    return {
        "name": f"Depot {n}",
        "address": {"line1": "6 Quai Antoine Ier", "city": "Monaco", "country": "MC",
                    "lat": 43.7285, "lon": 7.4150},
    }  # fmt: skip


def vehicle(fleet: Fleet, n: int) -> dict[str, Any]:
    return {"name": f"Van {n}", "capacity_weight_kg": 300, "capacity_parcels": 60}


def driver(fleet: Fleet, n: int) -> dict[str, Any]:
    return {"name": f"Driver {n}", "device_id": f"osmand-{n}"}


def shift(fleet: Fleet, n: int) -> dict[str, Any]:
    day = (DAY + timedelta(days=n)).isoformat()
    return {**fleet, "start_at": f"{day}T08:00:00+01:00", "end_at": f"{day}T16:00:00+01:00"}


@dataclass(frozen=True)
class Resource:
    """A create POST: where it lives, its ``n``-th body (bodies with different ``n`` never
    conflict), and what the same body posted again without a key answers."""

    collection: str
    body: Callable[[Fleet, int], dict[str, Any]]
    again_without_key: int  # drivers: device_id taken; shifts: overlapping

    def __str__(self) -> str:
        return self.collection


RESOURCES = [
    Resource("depots", depot, 201),
    Resource("vehicles", vehicle, 201),
    Resource("drivers", driver, 409),
    Resource("shifts", shift, 409),
]
each_resource = pytest.mark.parametrize("resource", RESOURCES, ids=str)


def fleet_of(runtime: Runtime, merchant: MerchantCtx) -> Fleet:
    with transaction(runtime.sessions) as s:
        return {
            "depot_id": make_depot(s, merchant.id).id,
            "vehicle_id": make_vehicle(s, merchant.id).id,
            "driver_id": make_driver(s, merchant.id).id,
        }


@pytest.fixture
def fleet(runtime: Runtime, merchant: MerchantCtx) -> Fleet:
    return fleet_of(runtime, merchant)


def with_key(merchant: MerchantCtx, key: str) -> dict[str, str]:
    return {**merchant.headers, "Idempotency-Key": key}


def listed(client: TestClient, merchant: MerchantCtx, resource: Resource) -> set[str]:
    """Ids of the merchant's objects of this kind (the tests subtract the fleet's own)."""
    resp = client.get(f"/v1/{resource.collection}", headers=merchant.headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["next_cursor"] is None
    return {item["id"] for item in resp.json()["items"]}


@each_resource
def test_a_retried_create_returns_the_same_object_and_makes_one(
    app_client: TestClient, merchant: MerchantCtx, fleet: Fleet, resource: Resource
) -> None:
    """The same key and body again gets the first answer (201, same body and Location, flagged
    as replayed) and one object exists, even where creating it again would be a 409 (a
    driver's device_id, a shift's overlap)."""
    url = f"/v1/{resource.collection}"
    existing = listed(app_client, merchant, resource)
    body = resource.body(fleet, 0)
    first = app_client.post(url, json=body, headers=with_key(merchant, "k-1"))
    again = app_client.post(url, json=body, headers=with_key(merchant, "k-1"))
    assert first.status_code == again.status_code == 201, first.text
    assert again.json() == first.json()
    new_id = first.json()["id"]
    assert first.headers["location"] == again.headers["location"] == f"{url}/{new_id}"
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert listed(app_client, merchant, resource) - existing == {new_id}
    shown = app_client.get(first.headers["location"], headers=merchant.headers)
    assert shown.status_code == 200 and shown.json() == first.json()


@each_resource
def test_same_key_with_another_body_is_422_and_creates_nothing(
    app_client: TestClient, merchant: MerchantCtx, fleet: Fleet, resource: Resource
) -> None:
    """Reusing a key for another body is a 422 problem naming the key; nothing is created."""
    url = f"/v1/{resource.collection}"
    existing = listed(app_client, merchant, resource)
    first = app_client.post(url, json=resource.body(fleet, 0), headers=with_key(merchant, "k-2"))
    assert first.status_code == 201, first.text
    other = app_client.post(url, json=resource.body(fleet, 1), headers=with_key(merchant, "k-2"))
    assert other.status_code == 422
    assert other.headers["content-type"].startswith("application/problem+json")
    assert other.json()["type"].endswith("/idempotency-key-reused")
    assert f"POST {url} with another body" in other.json()["detail"]
    assert listed(app_client, merchant, resource) - existing == {first.json()["id"]}


@each_resource
def test_keys_belong_to_one_merchant(
    app_client: TestClient,
    make_merchant: Callable[..., MerchantCtx],
    runtime: Runtime,
    resource: Resource,
) -> None:
    """Two merchants creating with the same key each get an object of their own."""
    shop, grocer = make_merchant("Shop"), make_merchant("Grocer")
    url = f"/v1/{resource.collection}"
    a_body = resource.body(fleet_of(runtime, shop), 0)
    b_body = resource.body(fleet_of(runtime, grocer), 1)  # device_ids are global
    a = app_client.post(url, json=a_body, headers=with_key(shop, "same"))
    b = app_client.post(url, json=b_body, headers=with_key(grocer, "same"))
    assert a.status_code == b.status_code == 201, b.text
    assert a.json()["id"] != b.json()["id"] and "idempotent-replayed" not in b.headers
    assert a.json()["id"] in listed(app_client, shop, resource)
    assert a.json()["id"] not in listed(app_client, grocer, resource)
    assert b.json()["id"] in listed(app_client, grocer, resource)


@each_resource
def test_without_a_key_each_post_creates(
    app_client: TestClient, merchant: MerchantCtx, fleet: Fleet, resource: Resource
) -> None:
    """Requests without the header still work and are never deduplicated: each creates, and
    the same body again is created anew (or refused as before), never replayed."""
    url = f"/v1/{resource.collection}"
    existing = listed(app_client, merchant, resource)
    first = app_client.post(url, json=resource.body(fleet, 0), headers=merchant.headers)
    second = app_client.post(url, json=resource.body(fleet, 1), headers=merchant.headers)
    assert first.status_code == second.status_code == 201, second.text
    assert first.json()["id"] != second.json()["id"]
    again = app_client.post(url, json=resource.body(fleet, 0), headers=merchant.headers)
    assert again.status_code == resource.again_without_key, again.text
    assert "idempotent-replayed" not in again.headers
    made = {first.json()["id"], second.json()["id"]}
    if again.status_code == 201:
        made.add(again.json()["id"])
    assert listed(app_client, merchant, resource) - existing == made
    assert len(made) == (3 if resource.again_without_key == 201 else 2)


def test_the_create_operations_document_the_key_and_keep_their_models(
    app_client: TestClient,
) -> None:
    """Each create POST lists the optional Idempotency-Key header, names it in its 409 and 422
    problems, and still documents its 201 with the object's schema."""
    paths = app_client.get("/openapi.json").json()["paths"]
    models = {"depots": "DepotOut", "vehicles": "VehicleOut", "drivers": "DriverOut",
              "shifts": "ShiftOut"}  # fmt: skip
    for collection, model in models.items():
        operation = paths[f"/v1/{collection}"]["post"]
        header = next(p for p in operation["parameters"] if p["name"] == "Idempotency-Key")
        assert header["in"] == "header" and not header.get("required", False), collection
        assert "Idempotency-Key" in operation["responses"]["409"]["description"], collection
        assert "Idempotency-Key" in operation["responses"]["422"]["description"], collection
        schema = operation["responses"]["201"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{model}"}, collection
