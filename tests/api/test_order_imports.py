"""``/v1/imports``: a CSV file checked without importing it (every error by row, nothing
written), and an import undone as a whole: its orders that have not left are cancelled, those
already out for delivery keep their status, another merchant's import is a 404."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import MerchantCtx

HEADER = "reference,recipient_name,address_line1,city,country,lat,lon,window_start,window_end"
WINDOW = "2026-11-25T14:00:00+01:00,2026-11-25T16:00:00+01:00"


def row(ref: str, name: str = "Ada Marin", lat: str = "43.7384", window: str = WINDOW) -> str:
    return f"{ref},{name},12 Rue Grimaldi,Monaco,MC,{lat},7.4246,{window}"


def csv_of(*rows: str) -> bytes:
    return ("\n".join([HEADER, *rows]) + "\n").encode()


def post_csv(client: TestClient, merchant: MerchantCtx, path: str, body: bytes) -> Any:
    headers = {**merchant.headers, "Content-Type": "text/csv"}
    return client.post(path, content=body, headers=headers)


def order_count(client: TestClient, merchant: MerchantCtx) -> int:
    page = client.get("/v1/orders", params={"limit": 500}, headers=merchant.headers).json()
    return len(page["data"])


def test_check_lists_every_error_by_row_and_writes_nothing(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """The dry run names each bad row (invalid cell, reference already used, window over) and
    creates no order, while the valid rows are counted."""
    post_csv(app_client, merchant, "/v1/orders/import", csv_of(row("R-1")))
    before = order_count(app_client, merchant)
    past = "2026-11-24T09:00:00+01:00,2026-11-24T11:00:00+01:00"
    body = csv_of(row("R-1"), row("R-2", lat="91"), row("R-3", window=past), row("R-4"))

    resp = post_csv(app_client, merchant, "/v1/imports/check", body)

    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["ok"] is False
    assert report["valid_rows"] == 1
    assert report["error_rows"] == 3
    found = {(e["row"], e["field"], e["code"]) for e in report["errors"]}
    assert (2, "reference", "duplicate") in found
    assert (3, "lat", "less_than_equal") in found
    assert (4, "window_end", "window_past") in found
    assert order_count(app_client, merchant) == before


def test_check_of_a_clean_file_says_ok_and_the_import_then_succeeds(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """What the dry run accepts, the import creates: same rules, same answer."""
    body = csv_of(row("C-1"), row("C-2"))
    report = post_csv(app_client, merchant, "/v1/imports/check", body).json()
    assert report == {"ok": True, "valid_rows": 2, "error_rows": 0, "error_count": 0, "errors": []}
    assert order_count(app_client, merchant) == 0
    assert post_csv(app_client, merchant, "/v1/orders/import", body).status_code == 201


def _advance(client: TestClient, merchant: MerchantCtx, order_id: str, *statuses: str) -> None:
    for status in statuses:
        resp = client.post(
            f"/v1/orders/{order_id}/status", json={"status": status}, headers=merchant.headers
        )
        assert resp.status_code == 200, resp.text


def test_undo_cancels_what_has_not_left_and_keeps_the_rest(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """Undo cancels the import's pending and scheduled orders, leaves one out for delivery
    as it is, logs the import on each cancellation, and a second undo cancels nothing."""
    created = post_csv(
        app_client, merchant, "/v1/orders/import", csv_of(row("U-1"), row("U-2"), row("U-3"))
    ).json()
    ids = {o["reference"]: o["id"] for o in created["orders"]}
    _advance(app_client, merchant, ids["U-2"], "scheduled")
    _advance(app_client, merchant, ids["U-3"], "scheduled", "picked_up", "out_for_delivery")
    other = app_client.post(
        "/v1/orders",
        json={
            "reference": "SOLO",
            "recipient": {"name": "Bo"},
            "address": {
                "line1": "1 Quai",
                "city": "Monaco",
                "country": "MC",
                "lat": 43.73,
                "lon": 7.42,
            },
        },
        headers=merchant.headers,
    ).json()

    resp = app_client.post(f"/v1/imports/{created['import_id']}/undo", headers=merchant.headers)

    assert resp.status_code == 200, resp.text
    done = resp.json()
    assert sorted(done["cancelled"]) == sorted([ids["U-1"], ids["U-2"]])
    assert done["kept"] == [{"id": ids["U-3"], "status": "out_for_delivery"}]

    def status(order_id: str) -> str:
        got = app_client.get(f"/v1/orders/{order_id}", headers=merchant.headers).json()
        return str(got["status"])

    assert [status(ids[r]) for r in ("U-1", "U-2", "U-3")] == [
        "cancelled",
        "cancelled",
        "out_for_delivery",
    ]
    assert status(other["id"]) == "pending"  # not part of the import
    events = app_client.get(f"/v1/orders/{ids['U-1']}/events", headers=merchant.headers).json()
    last = events["data"][-1]
    assert last["type"] == "order.cancelled"
    assert last["data"]["import"] == created["import_id"]

    again = app_client.post(f"/v1/imports/{created['import_id']}/undo", headers=merchant.headers)
    assert again.json()["cancelled"] == []


def test_another_merchants_import_cannot_be_undone(
    app_client: TestClient,
    merchant: MerchantCtx,
    make_merchant: Callable[..., MerchantCtx],
) -> None:
    """Another merchant's import id is a 404 like an unknown one, and its orders stay."""
    created = post_csv(app_client, merchant, "/v1/orders/import", csv_of(row("T-1"))).json()
    rival = make_merchant("Rival Roses")

    resp = app_client.post(f"/v1/imports/{created['import_id']}/undo", headers=rival.headers)
    unknown = app_client.post("/v1/imports/imp_NOPE/undo", headers=merchant.headers)

    assert resp.status_code == 404
    assert unknown.status_code == 404
    order = app_client.get(f"/v1/orders/{created['orders'][0]['id']}", headers=merchant.headers)
    assert order.json()["status"] == "pending"
