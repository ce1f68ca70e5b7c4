"""``GET /v1/plans`` pages like ``/v1/orders``: newest first, a cursor to the next page, every
plan once, and only the caller's plans."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from fastapi.testclient import TestClient

from doorstep.db.engine import transaction
from doorstep.domain.dispatch.models import Plan
from doorstep.ids import new_id
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.factories import T0, make_depot


def _plans(runtime: Runtime, merchant_id: str, count: int) -> list[str]:
    """``count`` draft plans, created a minute apart (oldest first); their ids."""
    ids = []
    with transaction(runtime.sessions) as session:
        depot = make_depot(session, merchant_id)
        for n in range(count):
            at = T0 + timedelta(minutes=n)
            plan = Plan(
                id=new_id("pln", at),
                merchant_id=merchant_id,
                depot_id=depot.id,
                date=date(2026, 11, 25),
                status="draft",
                seed=42,
                time_limit_s=1.0,
                travel_provider="straight",
                stats={},
                unassigned=[],
                created_at=at,
            )
            session.add(plan)
            ids.append(plan.id)
    return ids


def test_plans_page_with_a_cursor_newest_first(
    app_client: TestClient, runtime: Runtime, make_merchant: Callable[..., MerchantCtx]
) -> None:
    """Five plans in pages of two: 2 + 2 + 1, newest first, none twice; another merchant's plans
    never appear; a made-up cursor is a 400."""
    mine, other = make_merchant("A"), make_merchant("B")
    ids = _plans(runtime, mine.id, 5)
    _plans(runtime, other.id, 2)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = app_client.get("/v1/plans", params=params, headers=mine.headers)
        assert page.status_code == 200, page.text
        body = page.json()
        seen += [p["id"] for p in body["data"]]
        pages += 1
        assert body["has_more"] == (body["next_cursor"] is not None)
        cursor = body["next_cursor"]
        if cursor is None or pages > 5:
            break
    assert seen == list(reversed(ids)) and pages == 3
    bad = app_client.get("/v1/plans", params={"cursor": "nonsense"}, headers=mine.headers)
    assert bad.status_code == 400
