"""With a rate-limited geocoding server, a CSV import does not wait for it: rows without
coordinates are queued (needs_location, geocoding_pending) and the worker job places them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from doorstep.domain.orders.geocoding_jobs import run_geocode_pending
from doorstep.runtime import Runtime
from doorstep.settings import Settings
from tests.conftest import TEST_SECRET, MerchantCtx
from tests.unit.geocoding.test_http import HOUSE, Nominatim


@pytest.fixture
def nominatim() -> Iterator[str]:
    Nominatim.answers = {"6 Quai Antoine Ier": [HOUSE]}
    Nominatim.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Nominatim)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def settings(tmp_path: Path, nominatim: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        secret_key=TEST_SECRET,
        geocoder="nominatim",
        geocoder_url=nominatim,
        geocoder_min_delay_s=0,
    )


def test_an_import_queues_addresses_and_the_worker_job_places_them(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """The import answers at once without asking the server; run_geocode_pending then asks
    it once per address: the known one located (house, nominatim), the unknown one kept as
    needs_location with reason address_not_found; a second run has nothing to do."""
    content = (
        "reference,recipient_name,address_line1,city,postal_code,country\n"
        "Q-1,Ada,6 Quai Antoine Ier,Monaco,98000,MC\n"
        "Q-2,Bob,7 Rue Inconnue,Monaco,98000,MC\n"
    )
    resp = app_client.post(
        "/v1/orders/import",
        content=content.encode(),
        headers={**merchant.headers, "Content-Type": "text/csv"},
    )
    assert resp.status_code == 201, resp.text
    assert Nominatim.seen == []
    ids = {o["reference"]: o["id"] for o in resp.json()["orders"]}
    h = merchant.headers
    queued = app_client.get(f"/v1/orders/{ids['Q-1']}", headers=h).json()["location"]
    assert (queued["state"], queued["reason"]) == ("needs_location", "geocoding_pending")

    assert run_geocode_pending(runtime) == 2
    assert len(Nominatim.seen) == 2
    one = app_client.get(f"/v1/orders/{ids['Q-1']}", headers=h).json()
    assert (one["address"]["lat"], one["address"]["lon"]) == (43.7329221, 7.4257905)
    assert (one["location"]["precision"], one["location"]["source"]) == ("house", "nominatim")
    two = app_client.get(f"/v1/orders/{ids['Q-2']}", headers=h).json()["location"]
    assert (two["state"], two["reason"]) == ("needs_location", "address_not_found")
    events = app_client.get(f"/v1/orders/{ids['Q-1']}/events", headers=h).json()["data"]
    assert events[-1]["type"] == "order.updated"
    assert events[-1]["data"]["location"]["state"] == "located"
    assert run_geocode_pending(runtime) == 0
