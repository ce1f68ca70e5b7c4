"""Statement budgets of the busiest API requests (ADR 0013): each statement is a round trip to
the database and most of a request's CPU, so the ones a request needs are counted here."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.orm import Session

from doorstep.runtime import Runtime
from tests.api.test_orders import create, payload
from tests.conftest import MerchantCtx


@contextmanager
def statements(runtime: Runtime) -> Iterator[list[str]]:
    """The SQL statements sent on the runtime's engine inside the block, first words only."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()[:4]))

    def collect(*_args: Any) -> None:
        # The cycle collector runs whenever it likes; here it runs before every flush, so an
        # object the request still needs but holds only weakly is gone and costs a query.
        gc.collect()

    event.listen(runtime.engine, "before_cursor_execute", record)
    event.listen(Session, "before_flush", collect, insert=True)
    try:
        yield seen
    finally:
        event.remove(Session, "before_flush", collect)
        event.remove(runtime.engine, "before_cursor_execute", record)


def selects(seen: list[str]) -> list[str]:
    return [s for s in seen if s.upper().startswith("SELECT")]


def test_a_read_is_two_queries_key_with_merchant_and_order_with_parcels(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """GET /v1/orders/{id}: one query for the key and its merchant, one for the order and its
    parcels; nothing else (the key's use was recorded by the create, within the minute)."""
    order = create(app_client, merchant)
    with statements(runtime) as seen:
        resp = app_client.get(f"/v1/orders/{order['id']}", headers=merchant.headers)
    assert resp.status_code == 200, resp.text
    assert len(selects(seen)) == 2, seen
    assert not [s for s in seen if s.upper().startswith(("INSERT", "UPDATE", "DELETE"))], seen


def test_a_create_reads_only_the_key_the_webhook_endpoints_and_the_preferences(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """POST /v1/orders reads the key with its merchant, then the merchant's webhook endpoints
    and the recipient's preferences for its messages: the merchant is not read a second time,
    no reference look-up precedes the insert, and a new order is looked up on no plan."""
    create(app_client, merchant, reference="WARM-UP")  # records the key's use
    with statements(runtime) as seen:
        resp = app_client.post(
            "/v1/orders", json=payload(reference="SO-2"), headers=merchant.headers
        )
    assert resp.status_code == 201, resp.text
    read = selects(seen)
    assert len(read) == 3, seen
    assert not [s for s in read if s.startswith(("SELECT merchants.", "SELECT stops."))], seen
    inserts = [s.split()[2] for s in seen if s.upper().startswith("INSERT")]
    # The order, its parcels, order.created, the e-mail and its message.queued: at most one
    # statement each (PostgreSQL's driver sends the two events as one).
    assert set(inserts) == {"orders", "parcels", "delivery_events", "outbox_messages"}, seen
    assert len(inserts) <= 5, seen
    assert not [s for s in seen if s.upper().startswith(("UPDATE", "DELETE"))], seen
