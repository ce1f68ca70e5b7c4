"""Orders imported from a spreadsheet are announced like orders created one by one."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.test_orders_import import ROW, csv_of, post_csv
from tests.conftest import MerchantCtx
from tests.integration.messages.test_email import events


def test_every_imported_order_queues_its_confirmation(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """A 30-row import queues one confirmation per order, each in that order's timeline."""
    resp = post_csv(app_client, merchant, csv_of(*(ROW.format(n=i) for i in range(30))))
    assert resp.status_code == 201, resp.text
    for order in resp.json()["orders"][::10]:
        kinds = [
            (e["type"], e["data"].get("trigger")) for e in events(app_client, merchant, order["id"])
        ]
        assert kinds == [("order.created", None), ("message.queued", "order_confirmed")]
