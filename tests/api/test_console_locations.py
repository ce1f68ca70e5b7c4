"""The dispatcher places an order whose address was not found from the console: a candidate
in one click, or a spot by its coordinates; the next plan serves it."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi.testclient import TestClient

from doorstep.db.engine import transaction
from doorstep.domain.accounts.users import Role
from doorstep.domain.orders.models import Order
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.console_session import client, make_user, sign_in  # noqa: F401
from tests.factories import local, make_order, monaco_day

DAY = date(2026, 11, 25)
DISPATCHER = "dispatch@example.com"


def _lost(
    runtime: Runtime, merchant_id: str, reference: str, candidates: list[dict[str, Any]]
) -> str:
    """An order kept without a place, as an import of an ambiguous address leaves it."""
    with transaction(runtime.sessions) as s:
        order = make_order(
            s, merchant_id, reference=reference, lat=0.0, lon=0.0,
            window=(local(DAY, 10), local(DAY, 12)),
        )  # fmt: skip
        order.lat = order.lon = None
        order.location_state = "needs_location"
        order.location_reason = "address_ambiguous"
        order.location_candidates = candidates
        return order.id


def test_a_needs_location_order_is_placed_from_the_console_and_then_planned(
    client: TestClient,  # noqa: F811
    runtime: Runtime,
    merchant: MerchantCtx,
) -> None:
    """The plan lists the order as not placed with a button per candidate and a spot form;
    the candidate button places it (flash names it) and the next plan serves it; a spot
    that contradicts the country is refused with the reason on the page."""
    with transaction(runtime.sessions) as s:
        day = monaco_day(s, merchant.id, DAY, orders=3)
    candidate = {"lat": 43.7348, "lon": 7.4190, "precision": "street", "label": "Rue Grimaldi",
                 "source": "osm_extract"}  # fmt: skip
    lost = _lost(runtime, merchant.id, "LOST-1", [candidate])
    make_user(runtime, merchant.id, DISPATCHER, Role.DISPATCHER)
    token = sign_in(client, DISPATCHER)
    back = {"depot": day.depot_id, "date": DAY.isoformat()}

    def post(path: str, **form: str) -> str:
        answer = client.post(path, data={"csrf_token": token, **back, **form})
        assert answer.status_code == 303, answer.text
        page = client.get(answer.headers["location"])
        assert page.status_code == 200
        return page.text

    page = post("/console/dispatch/plan")
    assert "Address not placed on the map yet" in page
    assert "Place at Rue Grimaldi (street)" in page
    assert f'action="/console/dispatch/orders/{lost}/location"' in page

    refused = post(f"/console/dispatch/orders/{lost}/location", lat="7.4190", lon="43.7348")
    assert "swapped" in refused
    placed = post(f"/console/dispatch/orders/{lost}/location", lat="43.7348", lon="7.4190")
    assert "Placed LOST-1 at 43.73480, 7.41900" in placed
    with transaction(runtime.read_sessions) as s:
        order = s.get(Order, lost)
        assert order is not None and order.location_state == "located"
        assert (order.location_precision, order.location_source) == ("point", "dispatcher")
    page = post("/console/dispatch/plan")
    assert "Place at Rue Grimaldi" not in page
    assert "LOST-1" in page
