"""Idempotency-Key on the plan POSTs (plan, publish, re-plan, move a stop) behaves as on
POST /v1/orders: a retry replays the first answer and plans nothing new, another body is a 422,
a retry while the optimiser still runs is a 409, and keys belong to one merchant."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from doorstep.clock import FrozenClock
from doorstep.db.engine import transaction
from doorstep.domain import idempotency
from doorstep.domain.dispatch import planning
from doorstep.domain.dispatch.models import Plan
from doorstep.domain.idempotency import IdempotencyRecord
from doorstep.runtime import Runtime
from doorstep.web.app import create_app
from tests.conftest import MerchantCtx
from tests.factories import Day, monaco_day
from tests.live import send_while_first_is_held

DAY = date(2026, 11, 25)
LIMIT = 0.1  # seconds per solve: the plans' quality is not what these tests are about
PLAN_POSTS = (
    "/v1/plans",
    "/v1/plans/{plan_id}/publish",
    "/v1/plans/{plan_id}/replan",
    "/v1/plans/{plan_id}/moves",
)


def plan_day(runtime: Runtime, merchant: MerchantCtx) -> Day:
    with transaction(runtime.sessions) as s:
        return monaco_day(s, merchant.id, DAY, orders=6)


@pytest.fixture
def day(runtime: Runtime, merchant: MerchantCtx) -> Day:
    return plan_day(runtime, merchant)


def plan_body(day: Day, **changes: Any) -> dict[str, Any]:
    return {"depot_id": day.depot_id, "date": DAY.isoformat(), "time_limit_s": LIMIT, **changes}


def with_key(merchant: MerchantCtx, key: str) -> dict[str, str]:
    return {**merchant.headers, "Idempotency-Key": key}


def listed_plans(client: TestClient, merchant: MerchantCtx) -> list[str]:
    resp = client.get("/v1/plans", params={"date": DAY.isoformat()}, headers=merchant.headers)
    assert resp.status_code == 200, resp.text
    return [p["id"] for p in resp.json()["data"]]


def count_plans(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Plan)) or 0)


def test_a_retried_plan_returns_the_same_plan_and_plans_nothing_new(
    app_client: TestClient, merchant: MerchantCtx, day: Day
) -> None:
    """The same key and body again gets the first plan (same status, same body, flagged as
    replayed) and the day still has one plan."""
    first = app_client.post("/v1/plans", json=plan_body(day), headers=with_key(merchant, "p-1"))
    again = app_client.post("/v1/plans", json=plan_body(day), headers=with_key(merchant, "p-1"))
    assert first.status_code == again.status_code == 201, first.text
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert listed_plans(app_client, merchant) == [first.json()["id"]]


def test_same_key_with_another_body_is_422_and_plans_nothing(
    app_client: TestClient, merchant: MerchantCtx, day: Day, runtime: Runtime
) -> None:
    """Reusing a key for another plan request (another seed) is a 422 problem."""
    app_client.post("/v1/plans", json=plan_body(day), headers=with_key(merchant, "p-2"))
    other = app_client.post(
        "/v1/plans", json=plan_body(day, seed=42), headers=with_key(merchant, "p-2")
    )
    assert other.status_code == 422
    assert other.headers["content-type"].startswith("application/problem+json")
    assert other.json()["type"].endswith("/idempotency-key-reused")
    assert count_plans(runtime) == 1


def test_keys_belong_to_one_merchant(
    app_client: TestClient, make_merchant: Callable[..., MerchantCtx], runtime: Runtime
) -> None:
    """Two merchants planning with the same key each get a plan of their own."""
    shop, grocer = make_merchant("Shop"), make_merchant("Grocer")
    a = app_client.post(
        "/v1/plans", json=plan_body(plan_day(runtime, shop)), headers=with_key(shop, "same")
    )
    b = app_client.post(
        "/v1/plans", json=plan_body(plan_day(runtime, grocer)), headers=with_key(grocer, "same")
    )
    assert a.status_code == b.status_code == 201, b.text
    assert a.json()["id"] != b.json()["id"] and "idempotent-replayed" not in b.headers
    assert listed_plans(app_client, shop) == [a.json()["id"]]
    assert listed_plans(app_client, grocer) == [b.json()["id"]]


def test_without_a_key_each_post_plans_anew(
    app_client: TestClient, merchant: MerchantCtx, day: Day
) -> None:
    """A request without the header still works, and is not deduplicated."""
    first = app_client.post("/v1/plans", json=plan_body(day), headers=merchant.headers)
    second = app_client.post("/v1/plans", json=plan_body(day), headers=merchant.headers)
    assert first.status_code == second.status_code == 201, first.text
    assert first.json()["id"] != second.json()["id"]
    assert len(listed_plans(app_client, merchant)) == 2


def test_a_key_used_for_an_order_is_not_reused_for_a_plan(
    app_client: TestClient, merchant: MerchantCtx, day: Day, runtime: Runtime
) -> None:
    """Keys are the merchant's, not an endpoint's: the order's key on POST /v1/plans is a 422
    naming the first request, never the order's answer replayed."""
    order = {
        "reference": "SO-1",
        "recipient": {"name": "Ada", "phone": "+33612345678"},
        "address": {"line1": "1 Avenue de la Costa", "city": "Monaco", "country": "MC",
                    "lat": 43.7405, "lon": 7.4263},
    }  # fmt: skip
    created = app_client.post("/v1/orders", json=order, headers=with_key(merchant, "k"))
    assert created.status_code == 201, created.text
    plan = app_client.post("/v1/plans", json=plan_body(day), headers=with_key(merchant, "k"))
    assert plan.status_code == 422
    assert plan.json()["type"].endswith("/idempotency-key-reused")
    assert "POST /v1/orders" in plan.json()["detail"]
    assert count_plans(runtime) == 0


def test_a_planning_request_in_flight_is_409_for_longer_than_its_search(
    app_client: TestClient, merchant: MerchantCtx, day: Day, runtime: Runtime, clock: FrozenClock
) -> None:
    """While a plan with the key is being computed, a retry is a 409; the claim is only taken
    over once the usual lease *and* the request's time limit have passed."""
    body = plan_body(day)
    fp = idempotency.fingerprint("POST", "/v1/plans", json.dumps(body).encode())
    with transaction(runtime.sessions) as session:
        session.add(
            IdempotencyRecord(
                merchant_id=merchant.id,
                key="p-busy",
                method="POST",
                path="/v1/plans",
                fingerprint=fp,
                state="in_flight",
                created_at=clock.now(),
                expires_at=clock.now() + timedelta(hours=24),
            )
        )
    busy = app_client.post("/v1/plans", json=body, headers=with_key(merchant, "p-busy"))
    assert busy.status_code == 409
    assert busy.json()["type"].endswith("/idempotency-key-in-flight")
    clock.advance(idempotency.IN_FLIGHT_LEASE)  # not yet: the search may still be running
    still = app_client.post("/v1/plans", json=body, headers=with_key(merchant, "p-busy"))
    assert still.status_code == 409
    assert count_plans(runtime) == 0
    clock.advance(timedelta(seconds=1))
    taken = app_client.post("/v1/plans", json=body, headers=with_key(merchant, "p-busy"))
    assert taken.status_code == 201, taken.text
    assert count_plans(runtime) == 1


def test_a_plan_stored_before_the_process_fails_is_replayed_not_planned_again(
    runtime: Runtime, merchant: MerchantCtx, day: Day, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan and its key's answer commit together: when the request fails after the plan
    is stored (here, anything after the planning call raises), a retry with the key gets that
    plan back instead of planning the day a second time."""
    create_plan = planning.create_plan

    def then_fail(*args: Any, **kwargs: Any) -> Any:
        create_plan(*args, **kwargs)
        raise RuntimeError("the process died after saving the plan")

    monkeypatch.setattr(planning, "create_plan", then_fail)
    with TestClient(create_app(runtime, migrate=False), raise_server_exceptions=False) as client:
        failed = client.post("/v1/plans", json=plan_body(day), headers=with_key(merchant, "p-d"))
        assert failed.status_code == 500
        monkeypatch.setattr(planning, "create_plan", create_plan)
        retry = client.post("/v1/plans", json=plan_body(day), headers=with_key(merchant, "p-d"))
        assert retry.status_code == 201, retry.text
        assert retry.headers["idempotent-replayed"] == "true"
        assert listed_plans(client, merchant) == [retry.json()["id"]]
    assert count_plans(runtime) == 1


def test_a_plan_whose_key_was_taken_over_meanwhile_is_not_stored(
    app_client: TestClient,
    merchant: MerchantCtx,
    day: Day,
    runtime: Runtime,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If the search outlasts the key's lease and a retry takes the key over, the first
    request's plan is rolled back with its answer (409): the day gets one plan, the retry's."""
    body = plan_body(day)
    compute_plan = planning.compute_plan

    def overtaken(*args: Any, **kwargs: Any) -> Any:
        draft = compute_plan(*args, **kwargs)
        clock.advance(idempotency.IN_FLIGHT_LEASE + timedelta(minutes=1))
        request = idempotency.IdempotentRequest(
            merchant_id=merchant.id,
            key="p-slow",
            method="POST",
            path="/v1/plans",
            fingerprint=idempotency.fingerprint("POST", "/v1/plans", json.dumps(body).encode()),
        )
        assert isinstance(idempotency.claim(runtime.sessions, clock, request), idempotency.Claim)
        return draft

    monkeypatch.setattr(planning, "compute_plan", overtaken)
    late = app_client.post("/v1/plans", json=body, headers=with_key(merchant, "p-slow"))
    assert late.status_code == 409, late.text
    assert late.json()["type"].endswith("/idempotency-key-in-flight")
    assert count_plans(runtime) == 0


def test_a_failed_plan_releases_its_key(
    app_client: TestClient, merchant: MerchantCtx, day: Day
) -> None:
    """A plan refused (no shifts that day) is not stored: the fixed request may use the key."""
    empty = app_client.post(
        "/v1/plans",
        json=plan_body(day, date=(DAY + timedelta(days=1)).isoformat()),
        headers=with_key(merchant, "p-3"),
    )
    assert empty.status_code == 422 and empty.json()["type"].endswith("/validation-error")
    # Another body under the same key is allowed now, since nothing was stored for it.
    fixed = app_client.post("/v1/plans", json=plan_body(day), headers=with_key(merchant, "p-3"))
    assert fixed.status_code == 201 and "idempotent-replayed" not in fixed.headers


def test_a_concurrent_retry_is_409_on_a_live_server(
    runtime: Runtime, merchant: MerchantCtx, day: Day, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two real HTTP requests with one key: while the first is still planning, the second gets
    409; afterwards a retry returns the first plan. One plan exists."""
    results = send_while_first_is_held(
        create_app(runtime, migrate=False),
        monkeypatch,
        planning,
        "create_plan",
        "/v1/plans",
        plan_body(day),
        with_key(merchant, "p-live"),
    )

    assert results["second"].status_code == 409, results["second"].text
    assert results["second"].json()["type"].endswith("/idempotency-key-in-flight")
    assert results["first"].status_code == 201, results["first"].text
    assert results["retry"].status_code == 201
    assert results["retry"].json() == results["first"].json()
    assert results["retry"].headers["idempotent-replayed"] == "true"
    assert count_plans(runtime) == 1


def test_a_retried_publish_replays_instead_of_409(
    app_client: TestClient, merchant: MerchantCtx, day: Day
) -> None:
    """Publishing twice with one key answers 200 with the published plan both times; without
    a key the second publish is refused as before."""
    draft = app_client.post("/v1/plans", json=plan_body(day), headers=merchant.headers).json()
    url = f"/v1/plans/{draft['id']}/publish"
    first = app_client.post(url, headers=with_key(merchant, "pub-1"))
    again = app_client.post(url, headers=with_key(merchant, "pub-1"))
    assert first.status_code == again.status_code == 200, first.text
    assert first.json()["status"] == "published" and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert app_client.post(url, headers=merchant.headers).status_code == 409


def test_a_retried_replan_makes_one_draft(
    app_client: TestClient, merchant: MerchantCtx, day: Day
) -> None:
    """Re-planning twice with one key returns the same new draft; only one is made."""
    draft = app_client.post("/v1/plans", json=plan_body(day), headers=merchant.headers).json()
    published = app_client.post(f"/v1/plans/{draft['id']}/publish", headers=merchant.headers)
    assert published.status_code == 200, published.text
    url = f"/v1/plans/{draft['id']}/replan"
    body = {"time_limit_s": LIMIT}
    first = app_client.post(url, json=body, headers=with_key(merchant, "re-1"))
    again = app_client.post(url, json=body, headers=with_key(merchant, "re-1"))
    assert first.status_code == again.status_code == 201, first.text
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert sorted(listed_plans(app_client, merchant)) == sorted([draft["id"], first.json()["id"]])


def test_a_retried_move_moves_once(app_client: TestClient, merchant: MerchantCtx, day: Day) -> None:
    """A stop moved by hand and retried with its key is moved once: the route's version went
    up by one, and the retry answers as the first did."""
    plan = app_client.post("/v1/plans", json=plan_body(day), headers=merchant.headers).json()
    source = next(r for r in plan["routes"] if r["stops"])
    dest = next(r for r in plan["routes"] if r["id"] != source["id"])
    url = f"/v1/plans/{plan['id']}/moves"
    body = {"order_id": source["stops"][0]["order_id"], "to_route_id": dest["id"], "position": 0}
    first = app_client.post(url, json=body, headers=with_key(merchant, "mv-1"))
    again = app_client.post(url, json=body, headers=with_key(merchant, "mv-1"))
    assert first.status_code == again.status_code == 200, first.text
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    now = app_client.get(f"/v1/plans/{plan['id']}", headers=merchant.headers).json()
    moved = next(r for r in now["routes"] if r["id"] == dest["id"])
    assert moved["version"] == dest["version"] + 1
    assert moved["stops"][0]["order_id"] == body["order_id"]


def test_the_plan_operations_document_the_key_and_its_problems(app_client: TestClient) -> None:
    """Each plan POST lists the optional Idempotency-Key header and its 409 and 422 problems."""
    paths = app_client.get("/openapi.json").json()["paths"]
    for path in PLAN_POSTS:
        operation = paths[path]["post"]
        header = next(p for p in operation["parameters"] if p["name"] == "Idempotency-Key")
        assert header["in"] == "header" and not header.get("required", False), path
        assert "Idempotency-Key" in operation["responses"]["409"]["description"], path
        assert "Idempotency-Key" in operation["responses"]["422"]["description"], path
