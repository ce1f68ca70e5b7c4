"""Route exports are standard files other tools open: GeoJSON, GPX 1.1 and a CSV manifest."""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import gpxpy
from fastapi.testclient import TestClient

from doorstep.db.engine import transaction
from doorstep.domain.dispatch.models import Depot, Driver, Plan, Route, Shift, Stop, Vehicle
from doorstep.domain.orders.models import Order
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
STOPS = [
    ("SO-1", "Ada Lovélace", "1 Avenue de la Costa", 43.7405, 7.4263),
    ("SO-2", "Grace Hopper", "2 Boulevard des Moulins", 43.7411, 7.4290),
    ("SO-3", "Édith Piaf", "3 Rue Grimaldi", 43.7335, 7.4180),
]


def _published_route(runtime: Runtime, merchant_id: str, geometry: bool = False) -> tuple[str, str]:
    """A plan with one route of three stops, written straight to the database."""
    with transaction(runtime.sessions) as s:

        def add(obj: object) -> None:
            s.add(obj)
            s.flush()

        depot = Depot(
            id="dep_" + secrets.token_hex(6),
            merchant_id=merchant_id,
            name="Fontvieille",
            address_line1="Quai",
            city="Monaco",
            country="MC",
            lat=43.7285,
            lon=7.4150,
            opening_hours={},
            created_at=T0,
        )
        add(depot)
        vehicle = Vehicle(
            id="veh_" + secrets.token_hex(6),
            merchant_id=merchant_id,
            name="Van 1",
            profile="van",
            capacity_weight_kg=500,
            capacity_parcels=50,
            skills=[],
            created_at=T0,
        )
        driver = Driver(
            id="drv_" + secrets.token_hex(6),
            merchant_id=merchant_id,
            name="Marco Rossi",
            skills=[],
            created_at=T0,
        )
        add(vehicle)
        add(driver)
        shift = Shift(
            id="shf_" + secrets.token_hex(6),
            merchant_id=merchant_id,
            driver_id=driver.id,
            vehicle_id=vehicle.id,
            depot_id=depot.id,
            start_at=T0,
            end_at=T0 + timedelta(hours=8),
            return_to_depot=True,
            created_at=T0,
        )
        add(shift)
        plan = Plan(
            id="pln_" + secrets.token_hex(6),
            merchant_id=merchant_id,
            depot_id=depot.id,
            date=date(2026, 11, 25),
            status="published",
            seed=1,
            time_limit_s=1,
            travel_provider="straight",
            stats={},
            unassigned=[],
            created_at=T0,
        )
        add(plan)
        route = Route(
            id="rte_" + secrets.token_hex(6),
            merchant_id=merchant_id,
            plan_id=plan.id,
            shift_id=shift.id,
            driver_id=driver.id,
            vehicle_id=vehicle.id,
            position=0,
            distance_m=4200,
            driving_s=900,
            violations=[],
            geometry=[[7.4150, 43.7285], [7.42, 43.735], [7.4263, 43.7405]] if geometry else [],
        )
        add(route)
        for i, (ref, name, street, lat, lon) in enumerate(STOPS, start=1):
            order = Order(
                id=f"ord_{secrets.token_hex(8)}",
                merchant_id=merchant_id,
                reference=ref,
                status="scheduled",
                service_level="scheduled",
                recipient_name=name,
                recipient_phone="+37799000000",
                address_line1=street,
                city="Monaco",
                country="MC",
                lat=lat,
                lon=lon,
                window_start=T0 + timedelta(hours=i),
                window_end=T0 + timedelta(hours=i + 2),
                instructions="Ring twice; gate B",
                required_skills=[],
                parcel_count=i,
                weight_kg=1.5 * i,
                tracking_token_hash=secrets.token_hex(32),
                tracking_nonce=secrets.token_hex(8),
                created_at=T0,
                updated_at=T0,
            )
            add(order)
            add(
                Stop(
                    id=f"stp_{secrets.token_hex(8)}",
                    merchant_id=merchant_id,
                    route_id=route.id,
                    order_id=order.id,
                    sequence=i,
                    planned_arrival=T0 + timedelta(hours=i, minutes=10),
                    planned_departure=T0 + timedelta(hours=i, minutes=13),
                )
            )
        return plan.id, route.id


def test_geojson_is_rfc7946_with_lon_lat_order(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    plan_id, _ = _published_route(runtime, merchant.id)
    resp = app_client.get(f"/v1/plans/{plan_id}/geojson", headers=merchant.headers)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/geo+json")
    fc = resp.json()
    assert fc["type"] == "FeatureCollection"
    kinds = [f["properties"]["kind"] for f in fc["features"]]
    assert kinds == ["depot", "route", "stop", "stop", "stop"]
    first_stop = fc["features"][2]
    assert first_stop["geometry"]["coordinates"] == [7.4263, 43.7405]  # lon, lat
    assert first_stop["properties"]["planned_arrival"] == "2026-11-25T10:10+01:00"  # Monaco time
    line = fc["features"][1]["geometry"]["coordinates"]
    assert line[0] == line[-1] == [7.415, 43.7285]  # leaves from and returns to the depot


def test_gpx_opens_in_a_gpx_reader_with_stops_in_order(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    _, route_id = _published_route(runtime, merchant.id)
    resp = app_client.get(f"/v1/routes/{route_id}/gpx", headers=merchant.headers)
    assert resp.status_code == 200
    assert 'xmlns="http://www.topografix.com/GPX/1/1"' in resp.text
    gpx = gpxpy.parse(resp.text)
    assert gpx.version == "1.1"
    assert [w.name for w in gpx.waypoints] == ["Fontvieille", "1. SO-1", "2. SO-2", "3. SO-3"]
    assert [p.name for p in gpx.routes[0].points][1:4] == ["1. SO-1", "2. SO-2", "3. SO-3"]
    assert gpx.waypoints[1].comment == "Ring twice; gate B"


def test_gpx_route_follows_the_road_geometry_when_known(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    _, route_id = _published_route(runtime, merchant.id, geometry=True)
    gpx = gpxpy.parse(app_client.get(f"/v1/routes/{route_id}/gpx", headers=merchant.headers).text)
    assert [(p.longitude, p.latitude) for p in gpx.routes[0].points] == [
        (7.4150, 43.7285),
        (7.42, 43.735),
        (7.4263, 43.7405),
    ]


def test_manifest_csv_has_a_header_and_local_times(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    _, route_id = _published_route(runtime, merchant.id)
    resp = app_client.get(f"/v1/routes/{route_id}/manifest.csv", headers=merchant.headers)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    text = resp.content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["reference"] for r in rows] == ["SO-1", "SO-2", "SO-3"]
    assert rows[0]["planned_arrival"] == "10:10"
    assert rows[0]["window"] == "10:00-12:00"
    assert rows[2]["recipient"] == "Édith Piaf"


def test_exports_of_another_merchant_are_404(
    app_client: TestClient,
    runtime: Runtime,
    merchant: MerchantCtx,
    make_merchant: Callable[..., MerchantCtx],
) -> None:
    plan_id, route_id = _published_route(runtime, merchant.id)
    other = make_merchant("Other Shop")
    for path in (
        f"/v1/plans/{plan_id}/geojson",
        f"/v1/routes/{route_id}/geojson",
        f"/v1/routes/{route_id}/gpx",
        f"/v1/routes/{route_id}/manifest.csv",
    ):
        assert app_client.get(path, headers=other.headers).status_code == 404, path
