"""The console's driver page pairs a GPS app: it shows the server URL, the device id and a QR
code of both, and issues a new random id on request (the old one is refused at once), also to a
driver who has none yet."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import segno
from fastapi.testclient import TestClient

from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Role
from doorstep.domain.dispatch.models import Driver
from doorstep.runtime import Runtime
from tests.api.ingest_support import published_route
from tests.conftest import MerchantCtx
from tests.console_session import make_user, sign_in

DISPATCHER = "disp@example.com"


def _device_of(runtime: Runtime, driver_id: str) -> str | None:
    with transaction(runtime.read_sessions) as s:
        driver = s.get(Driver, driver_id)
        assert driver is not None
        return driver.device_id


def _qr_path(svg: str) -> str:
    match = re.search(r'class="qrline"[^>]* d="([^"]+)"', svg)
    assert match, "no QR modules in the page"
    return match.group(1)


def test_driver_page_shows_the_gps_app_settings_and_rotates_the_id(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """The page shows URL, id and a QR code of the setup link; "Issue a new device id" changes
    the id, says so, and the old id is refused by /ingest/osmand."""
    fleet = published_route(runtime, merchant.id)
    make_user(runtime, merchant.id, DISPATCHER, Role.DISPATCHER)
    token = sign_in(client, DISPATCHER)
    page = client.get(f"/console/drivers/drivers/{fleet.driver_id}")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "http://127.0.0.1:8000/ingest/osmand" in text
    assert f"<code>{fleet.device_id}</code>" in text
    setup = client.get(f"/v1/drivers/{fleet.driver_id}/device", headers=merchant.headers).json()[
        "setup_url"
    ]
    # What Traccar Client's scanner reads: origin and path as the server, the id, settings.
    parts = urlsplit(setup)
    query = dict(parse_qsl(parts.query))
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "http://127.0.0.1:8000/ingest/osmand"
    assert (query["id"], query["interval"], query["buffer"]) == (fleet.device_id, "15", "true")
    expected = segno.make(setup, error="m", micro=False).svg_inline(scale=4, border=2)
    assert _qr_path(page.text) == _qr_path(expected), "the QR code does not hold the setup link"
    assert 'role="img"' in page.text and "<title>Settings for Marco Rossi" in page.text

    answer = client.post(
        f"/console/drivers/drivers/{fleet.driver_id}/device", data={"csrf_token": token}
    )
    assert answer.status_code == 303
    new_id = _device_of(runtime, fleet.driver_id)
    assert new_id and new_id != fleet.device_id and len(new_id) >= 24
    shown = client.get(answer.headers["location"].partition("#")[0])
    assert "has a new device id" in shown.text and new_id in shown.text
    refused = client.get(
        "/ingest/osmand", params={"id": fleet.device_id, "lat": "43.73", "lon": "7.42"}
    )
    assert refused.status_code == 403


def test_rotation_needs_the_form_token_and_the_merchants_own_driver(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx, make_merchant: Any
) -> None:
    """Without the CSRF token the id is not changed (403); another merchant's driver is a 404."""
    fleet = published_route(runtime, merchant.id)
    make_user(runtime, merchant.id, DISPATCHER, Role.DISPATCHER)
    token = sign_in(client, DISPATCHER)
    forged = client.post(f"/console/drivers/drivers/{fleet.driver_id}/device", data={})
    assert forged.status_code == 403
    assert _device_of(runtime, fleet.driver_id) == fleet.device_id
    other = make_merchant("Other Shop")
    theirs = published_route(runtime, other.id, name="Zoe Lang")
    answer = client.post(
        f"/console/drivers/drivers/{theirs.driver_id}/device", data={"csrf_token": token}
    )
    assert answer.status_code == 404
    assert _device_of(runtime, theirs.driver_id) == theirs.device_id
    assert client.get(f"/console/drivers/drivers/{theirs.driver_id}").status_code == 404


def test_a_driver_without_a_device_id_is_issued_a_long_random_one(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """A driver added without a device id has a page that says so and offers one; issuing it
    gives a 24-character random id that the ingest endpoint then takes."""
    fleet = published_route(runtime, merchant.id)
    with transaction(runtime.sessions) as s:
        driver = s.get(Driver, fleet.driver_id)
        assert driver is not None
        driver.device_id = None
    make_user(runtime, merchant.id, DISPATCHER, Role.DISPATCHER)
    token = sign_in(client, DISPATCHER)
    page = client.get(f"/console/drivers/drivers/{fleet.driver_id}")
    assert "has no device id yet" in page.text and "Issue a device id" in page.text
    answer = client.post(
        f"/console/drivers/drivers/{fleet.driver_id}/device", data={"csrf_token": token}
    )
    assert answer.status_code == 303
    issued = _device_of(runtime, fleet.driver_id)
    assert issued is not None and len(issued) == 24
    taken = client.get("/ingest/osmand", params={"id": issued, "lat": "43.73", "lon": "7.42"})
    assert taken.json() == {"accepted": 1, "dropped": {}}
