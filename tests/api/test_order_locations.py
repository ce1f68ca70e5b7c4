"""Orders and depots sent without coordinates: geocoded from the Monaco extract, kept with
``needs_location`` when not found or ambiguous (and left out of planning with that reason until
a dispatcher places them), and coordinates that contradict the address refused with a 422."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from doorstep.db.engine import transaction
from doorstep.geocoding.osm_index import distance_m
from doorstep.runtime import Runtime
from doorstep.settings import Settings
from tests.conftest import TEST_SECRET, MerchantCtx, shared_data
from tests.factories import monaco_day

DAY = date(2026, 11, 25)
ORDER: dict[str, Any] = {
    "reference": "GEO-1",
    "recipient": {"name": "Ada Lovelace", "phone": "+33612345678"},
    "address": {
        "line1": "6 Quai Antoine Ier",
        "city": "Monaco",
        "postal_code": "98000",
        "country": "MC",
    },
    "window": {"start": "2026-11-25T14:00:00+01:00", "end": "2026-11-25T16:00:00+01:00"},
}
QUAI_ANTOINE_6 = (43.7329221, 7.4257905)  # the address node in the extract


@pytest.fixture(scope="module")
def geo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data directory per module, so the address index is built once."""
    return tmp_path_factory.mktemp("geo-data")


@pytest.fixture
def settings(geo_data: Path) -> Settings:
    return Settings(
        data_dir=geo_data,
        secret_key=TEST_SECRET,
        geocoder="osm",
        geocoder_source=str(shared_data("osm", "monaco.osm.pbf")),
    )


def order(reference: str = "GEO-1", **address: Any) -> dict[str, Any]:
    body = copy.deepcopy(ORDER)
    body["reference"] = reference
    body["address"].update(address)
    return body


def post(client: TestClient, m: MerchantCtx, body: dict[str, Any]) -> Any:
    return client.post("/v1/orders", json=body, headers=m.headers)


def test_an_address_without_coordinates_is_placed_with_precision_and_source(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """The order's house is found in the extract: coordinates within metres of it, location
    precision house, source osm_extract, state located."""
    resp = post(app_client, merchant, order())
    assert resp.status_code == 201, resp.text
    body = resp.json()
    point = (body["address"]["lat"], body["address"]["lon"])
    assert distance_m(point, QUAI_ANTOINE_6) < 5
    location = body["location"]
    assert location["state"] == "located"
    assert (location["precision"], location["source"]) == ("house", "osm_extract")
    given = post(app_client, merchant, order("GEO-2", lat=43.7405, lon=7.4263)).json()
    assert given["location"]["precision"] == "point"
    assert given["location"]["source"] == "merchant"


def test_an_unknown_address_keeps_the_order_until_a_dispatcher_places_it(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """A street the map lacks: 201 with status pending, state needs_location, a reason and
    the postcode as a candidate; setting coordinates locates it (precision point, source
    dispatcher) and logs order.updated."""
    resp = post(app_client, merchant, order(line1="12 Rue Inconnue"))
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["status"] == "pending"
    assert body["address"]["lat"] is None and body["address"]["lon"] is None
    location = body["location"]
    assert location["state"] == "needs_location"
    assert location["reason"] == "address_not_found"
    assert "Rue Inconnue" in location["note"]
    assert [c["precision"] for c in location["candidates"]] == ["postcode"]
    h = merchant.headers
    events = app_client.get(f"/v1/orders/{body['id']}/events", headers=h).json()["data"]
    assert events[0]["data"]["location"] == {
        "state": "needs_location",
        "reason": "address_not_found",
    }

    fixed = app_client.post(
        f"/v1/orders/{body['id']}/location", json={"lat": 43.7312, "lon": 7.4198}, headers=h
    )
    assert fixed.status_code == 200, fixed.text
    placed = fixed.json()
    assert (placed["address"]["lat"], placed["address"]["lon"]) == (43.7312, 7.4198)
    assert placed["location"]["state"] == "located"
    assert placed["location"]["reason"] is None and placed["location"]["candidates"] == []
    assert (placed["location"]["precision"], placed["location"]["source"]) == (
        "point",
        "dispatcher",
    )
    events = app_client.get(f"/v1/orders/{body['id']}/events", headers=h).json()["data"]
    assert events[-1]["type"] == "order.updated"
    assert events[-1]["data"]["changes"]["location.state"] == {
        "from": "needs_location",
        "to": "located",
    }


def test_a_changed_address_with_null_coordinates_is_geocoded_again(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """A merge patch that moves the address and clears lat/lon places the order at the new
    house; one whose new address is not found keeps its place and is refused (422)."""
    created = post(app_client, merchant, order(lat=43.7405, lon=7.4263)).json()
    url, h = f"/v1/orders/{created['id']}", merchant.headers
    moved = app_client.patch(
        url, json={"address": {"line1": "22 Av. de Grande-Bretagne", "lat": None, "lon": None}},
        headers=h,
    )  # fmt: skip
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert distance_m((body["address"]["lat"], body["address"]["lon"]), (43.74326, 7.42913)) < 5
    assert (body["location"]["precision"], body["location"]["source"]) == ("house", "osm_extract")
    lost = app_client.patch(
        url, json={"address": {"line1": "1 Rue Inconnue", "lat": None, "lon": None}}, headers=h
    )
    assert lost.status_code == 422
    assert app_client.get(url, headers=h).json()["address"] == body["address"]


def test_an_ambiguous_address_lists_its_candidates(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """'Rue du Château' is in two communes of the extract: needs_location, reason ambiguous,
    both places offered."""
    body = order(line1="Rue du Château", city="Alpes-Maritimes", country="FR", postal_code=None)
    body["recipient"]["phone"] = "+33612345678"
    resp = post(app_client, merchant, body)
    assert resp.status_code == 201, resp.text
    location = resp.json()["location"]
    assert location["state"] == "needs_location"
    assert location["reason"] == "address_ambiguous"
    assert len(location["candidates"]) == 2
    assert {c["precision"] for c in location["candidates"]} == {"street"}


@pytest.mark.parametrize(
    ("lat", "lon", "code"),
    [
        (0.0, 0.0, "null_island"),
        (7.4263, 43.7405, "swapped"),
        (48.8566, 2.3522, "outside_country"),
    ],
)
def test_coordinates_that_contradict_the_address_are_refused(
    app_client: TestClient, merchant: MerchantCtx, lat: float, lon: float, code: str
) -> None:
    """0,0, swapped latitude/longitude and a point in Paris for a Monaco address are 422s
    that say which, on create and when a dispatcher sets the location."""
    resp = post(app_client, merchant, order(lat=lat, lon=lon))
    assert resp.status_code == 422, resp.text
    errors = resp.json()["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [("address.lat", code)]
    created = post(app_client, merchant, order("GEO-OK", lat=43.7405, lon=7.4263)).json()
    placed = app_client.post(
        f"/v1/orders/{created['id']}/location",
        json={"lat": lat, "lon": lon},
        headers=merchant.headers,
    )
    assert placed.status_code == 422
    assert placed.json()["errors"][0]["code"] == code


def test_csv_rows_without_coordinates_are_geocoded_or_kept(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """A file without lat/lon columns imports every row: the found one placed, the unknown
    one kept as needs_location; a row with swapped coordinates rejects the file at its row."""
    header = "reference,recipient_name,address_line1,city,postal_code,country"
    rows = ["C-1,Ada,6 Quai Antoine Ier,Monaco,98000,MC", "C-2,Bob,7 Rue Inconnue,Monaco,98000,MC"]
    resp = app_client.post(
        "/v1/orders/import",
        content="\n".join([header, *rows, ""]).encode(),
        headers={**merchant.headers, "Content-Type": "text/csv"},
    )
    assert resp.status_code == 201, resp.text
    states = {o["reference"]: o["location_state"] for o in resp.json()["orders"]}
    assert states == {"C-1": "located", "C-2": "needs_location"}
    listed = app_client.get("/v1/orders", headers=merchant.headers).json()["data"]
    one = next(o for o in listed if o["reference"] == "C-1")
    assert distance_m((one["address"]["lat"], one["address"]["lon"]), QUAI_ANTOINE_6) < 5

    bad = "reference,recipient_name,address_line1,city,country,lat,lon\n"
    bad += "C-3,Cy,x,Monaco,MC,7.42,43.74\n"
    resp = app_client.post(
        "/v1/orders/import",
        content=bad.encode(),
        headers={**merchant.headers, "Content-Type": "text/csv"},
    )
    assert resp.status_code == 422
    assert [(e["row"], e["code"]) for e in resp.json()["errors"]] == [(2, "swapped")]


def test_an_order_without_a_place_is_left_out_of_planning_until_placed(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Planned while it needs a location, the order is unassigned with reason needs_location
    and a sentence saying what to do; once a dispatcher sets its coordinates, the next plan
    serves it."""
    with transaction(runtime.sessions) as s:
        day = monaco_day(s, merchant.id, DAY, orders=4)
    lost = post(app_client, merchant, order("LOST", line1="3 Chemin Perdu")).json()
    assert lost["location"]["state"] == "needs_location"
    request = {"depot_id": day.depot_id, "date": DAY.isoformat(), "time_limit_s": 0.3}
    plan = app_client.post("/v1/plans", json=request, headers=merchant.headers).json()
    unassigned = {u["order_id"]: u for u in plan["unassigned"]}
    assert unassigned[lost["id"]]["reason"] == "needs_location"
    assert "not found" in unassigned[lost["id"]]["detail"]
    assert "map" in unassigned[lost["id"]]["detail"]

    app_client.post(
        f"/v1/orders/{lost['id']}/location",
        json={"lat": 43.7312, "lon": 7.4198},
        headers=merchant.headers,
    )
    plan = app_client.post("/v1/plans", json=request, headers=merchant.headers).json()
    planned = {s["order_id"] for r in plan["routes"] for s in r["stops"]}
    assert lost["id"] in planned
    assert lost["id"] not in {u["order_id"] for u in plan["unassigned"]}


def test_a_depot_without_coordinates_is_geocoded_or_refused(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """A depot's address is geocoded; one that cannot be placed is a 422 naming why."""
    depot = {"name": "Port", "address": {k: v for k, v in ORDER["address"].items()}}
    resp = app_client.post("/v1/depots", json=depot, headers=merchant.headers)
    assert resp.status_code == 201, resp.text
    placed = resp.json()["address"]
    assert distance_m((placed["lat"], placed["lon"]), QUAI_ANTOINE_6) < 5
    depot["address"]["line1"] = "1 Rue Inconnue"
    resp = app_client.post("/v1/depots", json=depot, headers=merchant.headers)
    assert resp.status_code == 422
    assert "Rue Inconnue" in resp.json()["errors"][0]["message"]
