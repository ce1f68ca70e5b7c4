"""A checkout that gives a window back, and one that retries: ``DELETE`` on a held reservation
frees its place at once (twice is harmless), and ``POST /v1/orders`` with the reservation and
an ``Idempotency-Key`` sent twice creates one order and takes one place. The window is
Saturday 14:00-16:00 with one place; the clock stands at Wednesday 08:00 in Monaco."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.test_slots import order_body, quote, reserve
from tests.conftest import MerchantCtx
from tests.slots_setup import monaco_setup

START = "2026-11-28T14:00:00+01:00"


def fill(client: TestClient, merchant: MerchantCtx) -> int:
    """How many places of the Saturday window the quote says are taken (-1: not offered)."""
    body = quote(client, merchant, **{"from": "2026-11-28", "to": "2026-11-28"})
    window = next((w for w in body["windows"] if w["start"] == START), None)
    return int(window["fill"]["taken"]) if window is not None else -1


def test_deleting_a_held_reservation_gives_its_place_back_at_once(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """The one place is held (the window is no longer offered, a second hold is a 409);
    after DELETE (204) the reservation reads as released, the window is offered again with
    nothing taken, a second DELETE changes nothing, and another customer can hold it."""
    cal_id = monaco_setup(app_client, merchant)["calendar"]["id"]
    held = reserve(app_client, merchant, cal_id, START)
    assert held.status_code == 201, held.text
    assert fill(app_client, merchant) == -1
    assert reserve(app_client, merchant, cal_id, START).status_code == 409
    url = f"/v1/slots/reservations/{held.json()['id']}"
    gone = app_client.delete(url, headers=merchant.headers)
    assert gone.status_code == 204, gone.text
    assert app_client.get(url, headers=merchant.headers).json()["status"] == "released"
    assert fill(app_client, merchant) == 0
    again = app_client.delete(url, headers=merchant.headers)
    assert again.status_code == 204, again.text
    assert app_client.get(url, headers=merchant.headers).json()["status"] == "released"
    assert fill(app_client, merchant) == 0
    other = reserve(app_client, merchant, cal_id, START)
    assert other.status_code == 201, other.text
    assert fill(app_client, merchant) == -1


def test_an_order_retried_with_its_key_confirms_its_reservation_once(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """The retry replays the first 201 (same order, Idempotent-Replayed), the reservation is
    confirmed for that order, and the window's one place is taken once."""
    cal_id = monaco_setup(app_client, merchant)["calendar"]["id"]
    res = reserve(app_client, merchant, cal_id, START)
    assert res.status_code == 201, res.text
    body = {**order_body("SO-PAID"), "reservation_id": res.json()["id"]}
    headers = {**merchant.headers, "Idempotency-Key": "checkout-1"}
    first = app_client.post("/v1/orders", headers=headers, json=body)
    assert first.status_code == 201, first.text
    retry = app_client.post("/v1/orders", headers=headers, json=body)
    assert retry.status_code == 201, retry.text
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert retry.json()["id"] == first.json()["id"]
    assert first.json()["window"]["start"] == START
    got = app_client.get(
        f"/v1/slots/reservations/{res.json()['id']}", headers=merchant.headers
    ).json()
    assert got["status"] == "confirmed" and got["order_id"] == first.json()["id"]
    listed = app_client.get("/v1/orders", headers=merchant.headers).json()
    assert [o["reference"] for o in listed["data"]] == ["SO-PAID"]
    assert reserve(app_client, merchant, cal_id, START).status_code == 409
