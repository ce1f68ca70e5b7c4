"""Every page request hands its synchronous work to the threadpool once (issue 18 §6, ADR 0013):
the console's sign-in check, work, commit and render; the driver app's; the tracking and
preference pages'. Several hand-offs per request are what let a write transaction opened in
one wait for a thread to commit in the next, and SQLite lock up under load."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from typing import Any

import anyio.to_thread
import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from httpx import Response

from doorstep.domain.accounts.models import Role
from doorstep.domain.notifications.preferences import preferences_token
from doorstep.runtime import Runtime
from doorstep.web.app import create_app
from tests.api.test_orders import create
from tests.conftest import TEST_SECRET, MerchantCtx
from tests.console_session import csrf_of, make_user, sign_in
from tests.driving import Published, publish_day


@pytest.fixture
def handoffs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The functions handed to the threadpool (Starlette and FastAPI both go through
    ``anyio.to_thread.run_sync``), in order."""
    seen: list[str] = []
    real = anyio.to_thread.run_sync

    async def counting(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(func, "__qualname__", repr(func)))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    yield seen


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime, migrate=False), follow_redirects=False) as test_client:
        yield test_client


def _one_call(handoffs: list[str], send: Callable[[], Response], status: int) -> Response:
    handoffs.clear()
    answer = send()
    assert answer.status_code == status, answer.text[:500]
    assert len(handoffs) == 1, handoffs
    return answer


def test_console_driver_tracking_and_preference_pages_are_one_pool_call_each(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx, handoffs: list[str]
) -> None:
    """Pages and forms, read and write, each cost exactly one pool hand-off."""
    day: Published = publish_day(client, runtime, merchant)
    make_user(runtime, merchant.id, "dispatch@example.com", Role.DISPATCHER)
    token = sign_in(client, "dispatch@example.com")
    order_id = day.route["stops"][0]["order_id"]
    order_path = f"/console/orders/{order_id}"

    _one_call(handoffs, lambda: client.get("/console"), 200)
    _one_call(handoffs, lambda: client.get("/console/orders?q=Recipient"), 200)
    _one_call(handoffs, lambda: client.get(order_path), 200)
    _one_call(handoffs, lambda: client.get("/console/dispatch"), 200)
    edit = {
        "recipient_name": "Ada Lovelace",
        "recipient_phone": "+33612345678",
        "address_line1": "1 Avenue de la Costa",
        "city": "Monaco",
        "postal_code": "98000",
        "csrf_token": token,
    }
    _one_call(handoffs, lambda: client.post(f"{order_path}/edit", data=edit), 303)
    _one_call(
        handoffs, lambda: client.post(f"{order_path}/edit", data={**edit, "csrf_token": ""}), 403
    )

    # A recipient's pages: the tracking link of an order created through the API, the
    # preferences link of its messages.
    created = create(client, merchant)
    tracking = created["tracking_url"].removeprefix("http://127.0.0.1:8000")
    _one_call(handoffs, lambda: client.get(tracking), 200)
    prefs = f"/p/{preferences_token(TEST_SECRET, created['id'])}"
    form = _one_call(handoffs, lambda: client.get(prefs), 200)
    saved = {"channels": ["email"], "csrf_token": csrf_of(form)}
    _one_call(handoffs, lambda: client.post(prefs, data=saved), 200)

    # The driver app: signed out, signing in, the route, an action.
    client.cookies.clear()
    _one_call(handoffs, lambda: client.get("/driver"), 200)
    issued = client.post(f"/v1/drivers/{day.driver_id}/login-link", headers=merchant.headers)
    link = issued.json()["url"].removeprefix("http://127.0.0.1:8000")
    confirm = _one_call(handoffs, lambda: client.get(link), 200)
    used = {"csrf_token": csrf_of(confirm)}
    _one_call(handoffs, lambda: client.post(link, data=used), 303)
    app = _one_call(handoffs, lambda: client.get("/driver"), 200)
    csrf = re.search(r'data-csrf="([^"]+)"', app.text)
    assert csrf is not None
    headers = {"X-CSRF-Token": csrf.group(1), "Idempotency-Key": "start-1"}
    start = f"/driver/routes/{day.route['id']}/start"
    _one_call(handoffs, lambda: client.post(start, headers=headers), 200)
    _one_call(handoffs, lambda: client.get("/driver/state"), 200)


def test_no_route_has_a_synchronous_dependency(client: TestClient) -> None:
    """Every dependency of every route is ``async`` (each sync one would be a pool hand-off
    of its own): the database work of a request is its handler's one pool call."""

    def sync_dependencies(dependant: Any) -> Iterator[str]:
        for sub in dependant.dependencies:
            call = sub.call
            if call is not None and not (
                inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)
            ):
                yield getattr(call, "__qualname__", repr(call))
            yield from sync_dependencies(sub)

    # Included routers nest in app.routes; iter_route_contexts flattens them, with the
    # dependencies their routers add (the tracking pages' rate limit).
    found = {
        f"{sorted(ctx.methods or ())} {ctx.path}": list(sync_dependencies(ctx.dependant))
        for ctx in iter_route_contexts(client.app.routes)  # type: ignore[attr-defined]
        if getattr(ctx, "dependant", None) is not None
    }
    assert {path: deps for path, deps in found.items() if deps} == {}
    assert len(found) > 150  # the API's and the pages' routes were all looked at
