"""Depots, vehicles, drivers and shifts: CRUD, validation, conflicts and tenancy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import MerchantCtx

DEPOT = {
    "name": "Fontvieille",
    "address": {
        "line1": "6 Quai Antoine Ier",
        "city": "Monaco",
        "postal_code": "98000",
        "country": "mc",
        "lat": 43.7285,
        "lon": 7.4150,
    },
    # Open on Wednesday 2026-11-25, the day the shifts here are on (planning honours the hours).
    "opening_hours": {
        "mon": [["13:00", "20:00"], ["07:00", "12:00"]],
        "wed": [["07:00", "20:00"]],
        "sat": [["08:00", "12:00"]],
    },
}
VEHICLE = {
    "name": "Van 1",
    "capacity_weight_kg": 500,
    "capacity_parcels": 80,
    "skills": ["Fragile"],
}
DRIVER = {"name": "Marco Rossi", "phone": "+33 6 12 34 56 78", "device_id": "osmand-42"}


def _post(client: TestClient, m: MerchantCtx, path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = client.post(f"/v1/{path}", json=body, headers=m.headers)
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


def _fleet(client: TestClient, m: MerchantCtx, device: str = "osmand-42") -> dict[str, str]:
    depot = _post(client, m, "depots", DEPOT)
    vehicle = _post(client, m, "vehicles", VEHICLE)
    driver = _post(client, m, "drivers", {**DRIVER, "device_id": device})
    return {"depot_id": depot["id"], "vehicle_id": vehicle["id"], "driver_id": driver["id"]}


def _shift(
    ids: dict[str, str], start: str = "08:00", end: str = "16:00", **kw: Any
) -> dict[str, Any]:
    return {
        **ids,
        "start_at": f"2026-11-25T{start}:00+01:00",
        "end_at": f"2026-11-25T{end}:00+01:00",
        **kw,
    }


def _errors(resp: Any) -> set[str]:
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    return {e["field"] for e in resp.json()["errors"]}


def test_depot_crud_normalises_hours_and_country(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """A depot round-trips; opening hours come back sorted, the country upper-case."""
    depot = _post(app_client, merchant, "depots", DEPOT)
    assert depot["address"]["country"] == "MC"
    assert depot["opening_hours"]["mon"] == [["07:00", "12:00"], ["13:00", "20:00"]]
    url = f"/v1/depots/{depot['id']}"
    assert app_client.get(url, headers=merchant.headers).json() == depot
    listed = app_client.get("/v1/depots", headers=merchant.headers).json()
    assert [d["id"] for d in listed["items"]] == [depot["id"]] and listed["next_cursor"] is None
    patched = app_client.patch(url, json={"name": "Port Hercule"}, headers=merchant.headers)
    assert patched.status_code == 200 and patched.json()["name"] == "Port Hercule"
    assert app_client.delete(url, headers=merchant.headers).status_code == 204
    assert app_client.get(url, headers=merchant.headers).status_code == 404


@pytest.mark.parametrize(
    "hours",
    [
        {"funday": [["08:00", "12:00"]]},
        {"mon": [["25:00", "26:00"]]},
        {"mon": [["12:00", "08:00"]]},
        {"mon": [["08:00", "12:00"], ["11:00", "14:00"]]},
        {"mon": ["08:00-12:00"]},
    ],
)
def test_depot_refuses_bad_opening_hours(
    app_client: TestClient, merchant: MerchantCtx, hours: dict[str, Any]
) -> None:
    """Unknown days, impossible times, reversed or overlapping ranges are 422 on the field."""
    resp = app_client.post(
        "/v1/depots", json={**DEPOT, "opening_hours": hours}, headers=merchant.headers
    )
    assert _errors(resp) == {"opening_hours"}


def test_depot_refuses_unknown_fields_and_bad_coordinates(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """extra='forbid' and coordinate ranges apply."""
    body = {**DEPOT, "colour": "red", "address": {**DEPOT["address"], "lat": 91}}  # type: ignore[dict-item]
    assert _errors(app_client.post("/v1/depots", json=body, headers=merchant.headers)) == {
        "colour",
        "address.lat",
    }


def test_vehicle_crud_validation_and_deactivation(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """Skills are normalised; bad profile and capacity are refused; a vehicle deactivates."""
    vehicle = _post(app_client, merchant, "vehicles", VEHICLE)
    assert vehicle["skills"] == ["fragile"] and vehicle["profile"] == "van" and vehicle["active"]
    bad = {**VEHICLE, "profile": "rocket", "capacity_weight_kg": 0, "skills": ["two words"]}
    assert _errors(app_client.post("/v1/vehicles", json=bad, headers=merchant.headers)) == {
        "profile",
        "capacity_weight_kg",
        "skills",
    }
    url = f"/v1/vehicles/{vehicle['id']}"
    off = app_client.patch(
        url, json={"active": False, "profile": "cargo_bike"}, headers=merchant.headers
    )
    assert off.status_code == 200 and off.json()["active"] is False
    assert off.json()["profile"] == "cargo_bike"
    assert _errors(app_client.patch(url, json={"name": None}, headers=merchant.headers)) == {"name"}


def test_driver_phone_is_e164_and_device_id_is_unique_across_merchants(
    app_client: TestClient, make_merchant: Callable[..., MerchantCtx]
) -> None:
    """Phones are stored in E.164; a device id already used, by anyone, is 409."""
    a, b = make_merchant("A"), make_merchant("B")
    driver = _post(app_client, a, "drivers", DRIVER)
    assert driver["phone"] == "+33612345678"
    for who in (a, b):
        clash = app_client.post("/v1/drivers", json={**DRIVER, "name": "X"}, headers=who.headers)
        assert clash.status_code == 409, clash.text
    other = _post(app_client, b, "drivers", {**DRIVER, "device_id": "owntracks-b1"})
    patch = app_client.patch(
        f"/v1/drivers/{other['id']}", json={"device_id": "osmand-42"}, headers=b.headers
    )
    assert patch.status_code == 409
    for phone in ("0612345678", "+33 1", "+999 123"):
        bad = app_client.post(
            "/v1/drivers", json={**DRIVER, "phone": phone, "device_id": None}, headers=a.headers
        )
        assert _errors(bad) == {"phone"}
    cleared = app_client.patch(
        f"/v1/drivers/{driver['id']}", json={"phone": None, "active": False}, headers=a.headers
    )
    assert cleared.json()["phone"] is None and cleared.json()["active"] is False


def test_shift_validation_and_overlaps(app_client: TestClient, merchant: MerchantCtx) -> None:
    """End after start, break inside the shift, no overlapping shift for a driver or vehicle."""
    ids = _fleet(app_client, merchant)
    h = merchant.headers
    brk: dict[str, Any] = {
        "earliest_start": "2026-11-25T12:00:00+01:00",
        "latest_start": "2026-11-25T13:00:00+01:00",
        "duration_s": 1800,
    }
    shift = app_client.post("/v1/shifts", json=_shift(ids, **{"break": brk}), headers=h)
    assert shift.status_code == 201, shift.text
    body = shift.json()
    assert body["break"]["duration_s"] == 1800 and body["status"] == "planned"
    assert body["start_at"] == "2026-11-25T08:00:00+01:00"  # answered in the merchant's timezone

    assert _errors(
        app_client.post("/v1/shifts", json=_shift(ids, "16:00", "08:00"), headers=h)
    ) == {"end_at"}
    late_break = {**brk, "latest_start": "2026-11-25T15:50:00+01:00"}
    resp = app_client.post(
        "/v1/shifts", json=_shift(ids, "17:00", "20:00", **{"break": late_break}), headers=h
    )
    assert _errors(resp) >= {"break.earliest_start"}
    naive = {**_shift(ids), "start_at": "2026-11-25T08:00:00"}
    assert _errors(app_client.post("/v1/shifts", json=naive, headers=h)) == {"start_at"}

    overlap = app_client.post("/v1/shifts", json=_shift(ids, "15:00", "20:00"), headers=h)
    assert overlap.status_code == 409 and "driver" in overlap.json()["detail"]
    other_driver = _post(app_client, merchant, "drivers", {"name": "Lucia", "device_id": "lu-1"})
    same_van = _shift({**ids, "driver_id": other_driver["id"]}, "15:00", "20:00")
    clash = app_client.post("/v1/shifts", json=same_van, headers=h)
    assert clash.status_code == 409 and "vehicle" in clash.json()["detail"]
    after = app_client.post("/v1/shifts", json=_shift(ids, "16:00", "20:00"), headers=h)
    assert after.status_code == 201  # touching is not overlapping

    moved = app_client.patch(
        f"/v1/shifts/{after.json()['id']}",
        json={"start_at": "2026-11-25T15:00:00+01:00"},
        headers=h,
    )
    assert moved.status_code == 409
    dropped = app_client.patch(f"/v1/shifts/{body['id']}", json={"status": "dropped"}, headers=h)
    assert dropped.status_code == 200 and dropped.json()["status"] == "dropped"
    listed = app_client.get("/v1/shifts", params={"date": "2026-11-25"}, headers=h).json()["items"]
    assert {s["id"] for s in listed} == {body["id"], after.json()["id"]}
    assert (
        app_client.get("/v1/shifts", params={"date": "2026-11-26"}, headers=h).json()["items"] == []
    )


def test_shift_refuses_inactive_or_foreign_resources(
    app_client: TestClient, make_merchant: Callable[..., MerchantCtx]
) -> None:
    """Another merchant's driver is 'no such driver' (422); a deactivated vehicle too."""
    a, b = make_merchant("A"), make_merchant("B")
    mine, theirs = _fleet(app_client, a, "dev-a"), _fleet(app_client, b, "dev-b")
    foreign = {**mine, "driver_id": theirs["driver_id"]}
    resp = app_client.post("/v1/shifts", json=_shift(foreign), headers=a.headers)
    assert _errors(resp) == {"driver_id"}
    app_client.patch(
        f"/v1/vehicles/{mine['vehicle_id']}", json={"active": False}, headers=a.headers
    )
    resp = app_client.post("/v1/shifts", json=_shift(mine), headers=a.headers)
    assert _errors(resp) == {"vehicle_id"}


def test_delete_refused_while_in_use(app_client: TestClient, merchant: MerchantCtx) -> None:
    """A depot, vehicle or driver with shifts cannot be deleted; a shift can, then they can."""
    ids = _fleet(app_client, merchant)
    h = merchant.headers
    shift = _post(app_client, merchant, "shifts", _shift(ids))
    for path in (
        f"depots/{ids['depot_id']}",
        f"vehicles/{ids['vehicle_id']}",
        f"drivers/{ids['driver_id']}",
    ):
        resp = app_client.delete(f"/v1/{path}", headers=h)
        assert resp.status_code == 409, path
    assert app_client.delete(f"/v1/shifts/{shift['id']}", headers=h).status_code == 204
    for path in (
        f"depots/{ids['depot_id']}",
        f"vehicles/{ids['vehicle_id']}",
        f"drivers/{ids['driver_id']}",
    ):
        assert app_client.delete(f"/v1/{path}", headers=h).status_code == 204, path


def test_lists_are_paginated_and_scoped(
    app_client: TestClient, make_merchant: Callable[..., MerchantCtx]
) -> None:
    """Cursor pagination walks every vehicle once; another merchant's list is empty."""
    a, b = make_merchant("A"), make_merchant("B")
    made = [
        _post(app_client, a, "vehicles", {**VEHICLE, "name": f"Van {i}"})["id"] for i in range(5)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"after": cursor} if cursor else {})
        page = app_client.get("/v1/vehicles", params=params, headers=a.headers).json()
        seen += [v["id"] for v in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made) and len(seen) == 5
    assert app_client.get("/v1/vehicles", headers=b.headers).json()["items"] == []


def test_every_dispatch_endpoint_is_404_for_another_merchant(
    app_client: TestClient, make_merchant: Callable[..., MerchantCtx]
) -> None:
    """B sees none of A's depots, vehicles, drivers, shifts, plans or routes."""
    a, b = make_merchant("A"), make_merchant("B")
    ids = _fleet(app_client, a)
    shift = _post(app_client, a, "shifts", _shift(ids))
    plan = app_client.post(
        "/v1/plans",
        json={"depot_id": ids["depot_id"], "date": "2026-11-25", "time_limit_s": 0.2},
        headers=a.headers,
    )
    assert plan.status_code == 201, plan.text
    plan_id, route_id = plan.json()["id"], plan.json()["routes"][0]["id"]
    objects = {
        "depots": ids["depot_id"],
        "vehicles": ids["vehicle_id"],
        "drivers": ids["driver_id"],
        "shifts": shift["id"],
    }
    for kind, oid in objects.items():
        url = f"/v1/{kind}/{oid}"
        assert app_client.get(url, headers=b.headers).status_code == 404, url
        assert app_client.patch(url, json={}, headers=b.headers).status_code == 404, url
        assert app_client.delete(url, headers=b.headers).status_code == 404, url
    h = b.headers
    assert app_client.get(f"/v1/drivers/{ids['driver_id']}/route", headers=h).status_code == 404
    assert app_client.get(f"/v1/plans/{plan_id}", headers=h).status_code == 404
    assert app_client.get("/v1/plans", headers=h).json()["data"] == []
    assert app_client.post(f"/v1/plans/{plan_id}/publish", headers=h).status_code == 404
    assert app_client.post(f"/v1/plans/{plan_id}/replan", json={}, headers=h).status_code == 404
    move = {"order_id": "ord_x", "to_route_id": route_id, "position": 0}
    assert app_client.post(f"/v1/plans/{plan_id}/moves", json=move, headers=h).status_code == 404
    foreign_plan = app_client.post(
        "/v1/plans", json={"depot_id": ids["depot_id"], "date": "2026-11-25"}, headers=h
    )
    assert _errors(foreign_plan) == {"depot_id"}
    assert app_client.get(f"/v1/plans/{plan_id}", headers=a.headers).status_code == 200


def test_a_shift_the_depot_cannot_serve_or_already_over_is_refused_at_creation(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """A shift on the depot's closed day, at hours it is closed, or already ended is a 422 when
    created (not only a skipped shift at planning); an open-hours shift is accepted."""
    ids = _fleet(app_client, merchant)
    h = merchant.headers
    thursday = {
        **ids,
        "start_at": "2026-11-26T08:00:00+01:00",  # the depot has no Thursday hours
        "end_at": "2026-11-26T16:00:00+01:00",
    }
    closed_day = app_client.post("/v1/shifts", json=thursday, headers=h)
    assert _errors(closed_day) == {"start_at"}
    assert "closed all day on Thursday" in closed_day.json()["errors"][0]["message"]
    night = app_client.post("/v1/shifts", json=_shift(ids, "20:30", "23:30"), headers=h)
    assert _errors(night) == {"start_at"}
    assert "closed" in night.json()["errors"][0]["message"]
    # The tests' clock stands at 2026-11-25 08:00 in Monaco: a shift that ended at 07:30 is over.
    over = app_client.post("/v1/shifts", json=_shift(ids, "05:00", "07:30"), headers=h)
    assert _errors(over) == {"end_at"}
    assert app_client.get("/v1/shifts", headers=h).json()["items"] == []
    fine = app_client.post("/v1/shifts", json=_shift(ids, "09:00", "17:00"), headers=h)
    assert fine.status_code == 201, fine.text
