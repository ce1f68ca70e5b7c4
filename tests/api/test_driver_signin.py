"""Driver sign-in (one-time link and code, from the API and the console) and the driver app's
own actions behind its session cookie."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from doorstep.clock import FrozenClock
from doorstep.domain.accounts.models import Role
from doorstep.domain.sign_in_purge import run_purge_sign_ins
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.console_session import csrf_of, make_user, sign_in
from tests.driving import Published, image_bytes, publish_day


@pytest.fixture
def day(client: TestClient, runtime: Runtime, merchant: MerchantCtx) -> Published:
    return publish_day(client, runtime, merchant)


def _issue(client: TestClient, day: Published) -> dict[str, str]:
    resp = client.post(f"/v1/drivers/{day.driver_id}/login-link", headers=day.merchant.headers)
    assert resp.status_code == 201, resp.text
    body: dict[str, str] = resp.json()
    assert re.fullmatch(r"\d{6}", body["code"])
    return body


def _use_link(client: TestClient, url: str) -> int:
    path = url.removeprefix("http://127.0.0.1:8000")
    page = client.get(path)
    if page.status_code != 200:
        return page.status_code
    return client.post(path, data={"csrf_token": csrf_of(page)}).status_code


def _type_code(client: TestClient, code: str) -> int:
    token = csrf_of(client.get("/driver/login"))
    return client.post("/driver/login", data={"code": code, "csrf_token": token}).status_code


def test_link_signs_in_once_and_shows_todays_route(client: TestClient, day: Published) -> None:
    """The link opens a confirmation; its POST signs in to the route; a second use fails."""
    issued = _issue(client, day)
    assert _use_link(client, issued["url"]) == 303
    page = client.get("/driver")
    assert page.status_code == 200
    for stop in day.route["stops"]:
        assert f'id="stop-{stop["id"]}"' in page.text
    assert "geo:" in page.text and "openstreetmap.org/directions" in page.text
    client.cookies.clear()
    assert _use_link(client, issued["url"]) == 400


def test_code_signs_in_once(client: TestClient, day: Published) -> None:
    """The 6-digit code signs in; typed again it is refused."""
    issued = _issue(client, day)
    assert _type_code(client, issued["code"][:3] + " " + issued["code"][3:]) == 303
    assert "Start route" in client.get("/driver").text
    client.cookies.clear()
    assert _type_code(client, issued["code"]) == 400


def test_expired_link_and_code_are_refused(
    client: TestClient, day: Published, clock: FrozenClock
) -> None:
    """After driver_login_ttl_s neither the link nor the code works."""
    issued = _issue(client, day)
    clock.advance(timedelta(minutes=11))
    assert _use_link(client, issued["url"]) == 400
    assert _type_code(client, issued["code"]) == 400


def test_guessing_codes_locks_the_client_and_burns_live_codes(
    client: TestClient, day: Published
) -> None:
    """Five wrong codes lock the client out (429) and retire the live code; the link works."""
    issued = _issue(client, day)
    wrong = f"{(int(issued['code']) + 1) % 1_000_000:06d}"
    assert [_type_code(client, wrong) for _ in range(5)] == [400] * 5
    assert _type_code(client, issued["code"]) == 429
    client.cookies.clear()
    other = TestClient(client.app, follow_redirects=False, client=("10.0.0.9", 50000))
    with other:
        assert _type_code(other, issued["code"]) == 400
        assert _use_link(other, issued["url"]) == 303


def test_a_new_link_retires_the_previous_one(client: TestClient, day: Published) -> None:
    """Issuing again makes the earlier link and code useless."""
    first = _issue(client, day)
    _issue(client, day)
    assert _use_link(client, first["url"]) == 400
    assert _type_code(client, first["code"]) == 400


def test_console_shows_link_and_code_for_a_driver(
    client: TestClient, runtime: Runtime, day: Published
) -> None:
    """A dispatcher's button on the driver's page shows a working link and code."""
    make_user(runtime, day.merchant.id, "dispatch@example.com", Role.DISPATCHER)
    sign_in(client, "dispatch@example.com")
    page = client.get(f"/console/drivers/drivers/{day.driver_id}")
    assert "Driver app sign-in link" in page.text
    shown = client.post(
        f"/console/drivers/drivers/{day.driver_id}/login-link",
        data={"csrf_token": csrf_of(page)},
    )
    assert shown.status_code == 200
    code = re.search(r'id="signin-code">(\d{3}) (\d{3})<', shown.text)
    url = re.search(r'id="signin-link" class="signin-link" readonly value="([^"]+)"', shown.text)
    assert code and url
    phone = TestClient(client.app, follow_redirects=False)
    with phone:
        assert _type_code(phone, code.group(1) + code.group(2)) == 303


def test_driver_app_actions_are_scoped_to_the_signed_in_driver(
    client: TestClient, runtime: Runtime, day: Published
) -> None:
    """The app starts and completes its own route's stops; another driver's stop is a 404."""
    assert _use_link(client, _issue(client, day)["url"]) == 303
    page = client.get("/driver")
    token = re.search(r'data-csrf="([^"]+)"', page.text)
    assert token
    headers = {"X-CSRF-Token": token.group(1)}
    assert client.post(f"/driver/routes/{day.route['id']}/start").status_code == 403
    started = client.post(f"/driver/routes/{day.route['id']}/start", headers=headers)
    assert started.status_code == 200, started.text
    stop = next(s for s in day.route["stops"] if s["order_id"] != day.pin_order_id)
    done = client.post(
        f"/driver/stops/{stop['id']}/complete",
        files={"signature": ("s.png", image_bytes("PNG"), "image/png")},
        data={"received_by": "Neighbour"},
        headers={**headers, "Idempotency-Key": "drv-1"},
    )
    assert done.status_code == 200, done.text
    assert done.json()["order"]["status"] == "delivered"
    other_route = next(r for r in day.plan["routes"] if r["id"] != day.route["id"] and r["stops"])
    foreign = client.post(f"/driver/stops/{other_route['stops'][0]['id']}/arrive", headers=headers)
    assert foreign.status_code == 404
    client.cookies.clear()
    assert client.post(f"/driver/stops/{stop['id']}/arrive", headers=headers).status_code == 401


def test_other_merchant_cannot_issue_a_link(
    client: TestClient, day: Published, make_merchant: Callable[..., MerchantCtx]
) -> None:
    """A driver of another merchant is a 404 for the login-link endpoint."""
    other = make_merchant("Elsewhere")
    resp = client.post(f"/v1/drivers/{day.driver_id}/login-link", headers=other.headers)
    assert resp.status_code == 404


def test_purge_job_deletes_long_expired_sign_ins(
    client: TestClient, runtime: Runtime, day: Published, clock: FrozenClock
) -> None:
    """The periodic job removes sign-ins expired over a day ago, and only those."""
    _issue(client, day)
    assert run_purge_sign_ins(runtime) == 0
    clock.advance(timedelta(days=2))
    assert run_purge_sign_ins(runtime) == 1
