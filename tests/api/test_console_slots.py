"""The console's delivery-options pages: a dispatcher adds a zone, a calendar with a Saturday
window and a pickup point, sees each window of a day with how full it is, and gets the
problems of a bad form beside its fields."""

from __future__ import annotations

import html
import json
import re

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Role
from doorstep.runtime import Runtime
from doorstep.web.pages.slots_forms import format_windows, parse_windows
from tests.conftest import MerchantCtx
from tests.console_session import make_user, sign_in
from tests.factories import make_depot
from tests.slots_setup import IN_MONACO, MONACO_RING

DISPATCHER = "dispatch@riviera.example"


@pytest.fixture
def token(client: TestClient, runtime: Runtime, merchant: MerchantCtx) -> str:
    make_user(runtime, merchant.id, DISPATCHER, Role.DISPATCHER)
    return sign_in(client, DISPATCHER)


def text_of(page: Response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page.text)).split())


def post(client: TestClient, url: str, token: str, **data: str) -> Response:
    return client.post(url, data={"csrf_token": token, **data})


def test_window_lines_read_and_write_back() -> None:
    """'mon-fri 18:00-20:00 40 4.90' is five weekdays, 40 places, 490 cents; it reads back."""
    windows = parse_windows("mon-fri 18:00-20:00 40 4.90\nsat,sun 9:00-12:00 25 minutes=600")
    assert windows[0] == {
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "start": "18:00",
        "end": "20:00",
        "capacity": 40,
        "fee_cents": 490,
    }
    assert windows[1]["days"] == ["sat", "sun"] and windows[1]["vehicle_minutes"] == 600
    assert (
        format_windows(windows) == "mon-fri 18:00-20:00 40 4.90\nsat,sun 09:00-12:00 25 minutes=600"
    )


def test_a_dispatcher_sets_up_delivery_options_and_sees_a_days_fill(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx, token: str
) -> None:
    """Zone, calendar and pickup point are added from their forms; Saturday's page shows the
    09:00-12:00 window with the one place a reservation holds."""
    with transaction(runtime.sessions) as s:
        depot = make_depot(s, merchant.id)
    geometry = json.dumps({"type": "Polygon", "coordinates": [MONACO_RING]})
    r = post(
        client,
        "/console/slots/zones/new",
        token,
        name="Monaco",
        depot_id=depot.id,
        geometry=geometry,
        active="1",
    )
    assert r.status_code == 303, r.text
    zone_id = re.search(r'href="/console/slots/zones/(zon_\w+)"', client.get("/console/slots").text)
    assert zone_id
    r = post(
        client,
        "/console/slots/calendars/new",
        token,
        name="Weekends",
        depot_id=depot.id,
        zone_id=zone_id.group(1),
        windows="sat 09:00-12:00 4 7.90",
        same_day_cutoff="",
        next_day_cutoff="22:00",
        lead_time_minutes="60",
        horizon_days="14",
        blackout_dates="",
        currency="EUR",
        active="1",
    )
    assert r.status_code == 303, r.text
    r = post(
        client,
        "/console/slots/pickup-points/new",
        token,
        name="Tabac du Port",
        kind="shop",
        line1="4 Quai Albert Ier",
        city="Monaco",
        country="MC",
        lat="43.735",
        lon="7.4215",
        active="1",
    )
    assert r.status_code == 303, r.text
    page = client.get("/console/slots")
    assert "Added Tabac du Port." in text_of(page)
    cal_id = re.search(r'href="/console/slots/calendars/(cal_\w+)"', page.text)
    assert cal_id
    held = client.post(
        "/v1/slots/reservations",
        headers=merchant.headers,
        json={
            "calendar_id": cal_id.group(1),
            "start": "2026-11-28T09:00:00+01:00",
            "address": IN_MONACO,
        },
    )
    assert held.status_code == 201, held.text
    saturday = text_of(client.get("/console/slots?date=2026-11-28"))
    assert "09:00\u201312:00 Weekends Monaco 7.90 EUR" in saturday
    assert "1 / 4 (25 %) Open" in saturday


def test_a_bad_calendar_form_is_shown_again_with_its_problems(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx, token: str
) -> None:
    """A window line that cannot be read is a 422 naming the line; the typed text stays."""
    with transaction(runtime.sessions) as s:
        depot = make_depot(s, merchant.id)
    r = post(
        client,
        "/console/slots/calendars/new",
        token,
        depot_id=depot.id,
        windows="mon-fri 18:00-20:00 40\nsometimes 9-10 3",
        lead_time_minutes="60",
        horizon_days="14",
    )
    assert r.status_code == 422
    error = re.search(r'id="f-calendars-windows-error">([^<]*)<', r.text)
    assert error and "Line 2" in html.unescape(error.group(1))
    assert "sometimes 9-10 3" in html.unescape(r.text)
