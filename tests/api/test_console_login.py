"""Console sign-in over HTTP: the page, CSRF, sessions, sign-out, the lock-out, role checks,
and the offline static files the pages use."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from httpx import Response

from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Merchant, Role, User
from doorstep.domain.accounts.users import create_user, deactivate_user, set_password
from doorstep.runtime import Runtime
from doorstep.web.app import create_app
from doorstep.web.pages.auth import ConsoleUser
from doorstep.web.pages.calls import console_page
from tests.conftest import MerchantCtx

PASSWORD = "Riviera-Blooms-2026!"
EMAIL = "ada@example.com"
BAD_CREDENTIALS = "The e-mail or password is incorrect."


def _csrf(page: Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "no CSRF field in the page"
    return match.group(1)


def _make_user(runtime: Runtime, merchant: MerchantCtx, role: Role = Role.DISPATCHER) -> str:
    with transaction(runtime.sessions) as session:
        owner = session.get(Merchant, merchant.id)
        assert owner is not None
        return create_user(session, runtime.clock, owner, EMAIL, "Ada Lovelace", role, PASSWORD).id


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    """A client that does not follow redirects, so each answer can be checked."""
    app = create_app(runtime, migrate=False)

    @app.get("/console/owners-only")
    @console_page(roles=(Role.OWNER,))
    def owners_only(me: ConsoleUser) -> JSONResponse:
        return JSONResponse({"hello": me.user.name})

    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


def _sign_in(
    client: TestClient, email: str = EMAIL, password: str = PASSWORD, next_path: str = ""
) -> Response:
    token = _csrf(client.get("/console/login"))
    form = {"email": email, "password": password, "csrf_token": token, "next": next_path}
    answer: Response = client.post("/console/login", data=form)
    return answer


def test_login_page_renders_with_csrf_field_and_security_headers(client: TestClient) -> None:
    """The sign-in page is HTML with a CSRF token, a strict CSP and no framing allowed."""
    page = client.get("/console/login")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'autocomplete="current-password"' in page.text and _csrf(page)
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert "httponly" in page.headers["set-cookie"].lower()
    assert "samesite=lax" in page.headers["set-cookie"].lower()


def test_login_without_or_with_a_wrong_csrf_token_is_refused(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """A POST missing the CSRF token, or with another one, is 403 and signs nobody in."""
    _make_user(runtime, merchant)
    client.get("/console/login")
    missing = client.post("/console/login", data={"email": EMAIL, "password": PASSWORD})
    wrong = client.post(
        "/console/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": "x" * 43}
    )
    for answer in (missing, wrong):
        assert answer.status_code == 403
        assert "form expired" in answer.text
    assert client.get("/console").status_code == 303


def test_login_redirects_to_a_console_showing_the_merchant(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Right credentials redirect to /console, which shows the merchant, user and role."""
    _make_user(runtime, merchant)
    answer = _sign_in(client, email="ADA@example.com ")
    assert answer.status_code == 303 and answer.headers["location"] == "/console"
    home = client.get("/console")
    assert home.status_code == 200
    assert merchant.name in home.text and "Ada Lovelace" in home.text
    assert "Dispatcher" in home.text and "Sign out" in home.text
    assert "Users" not in home.text  # a dispatcher does not manage users


def test_wrong_password_and_unknown_email_get_the_same_page(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Both mistakes answer the same page and message, and the e-mail stays in the form."""
    _make_user(runtime, merchant)
    wrong_password = _sign_in(client, password="Not-The-Password-1")
    unknown_email = _sign_in(client, email="nobody@example.com")
    for answer, email in ((wrong_password, EMAIL), (unknown_email, "nobody@example.com")):
        assert answer.status_code == 200
        assert BAD_CREDENTIALS in answer.text
        assert f'value="{email}"' in answer.text
        assert 'role="alert"' in answer.text


def test_logout_clears_the_session(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Signing out needs the CSRF token, then the console asks to sign in again."""
    _make_user(runtime, merchant)
    _sign_in(client)
    home = client.get("/console")
    assert client.post("/console/logout", data={"csrf_token": "forged"}).status_code == 403
    assert client.get("/console").status_code == 200
    answer = client.post("/console/logout", data={"csrf_token": _csrf(home)})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login?signed_out=1"
    assert client.get("/console").status_code == 303
    assert "You have signed out." in client.get(answer.headers["location"]).text


def test_console_without_a_session_redirects_to_login(client: TestClient) -> None:
    """Anonymous visitors are sent to the sign-in page, remembering where they were going."""
    home = client.get("/console")
    assert home.status_code == 303 and home.headers["location"] == "/console/login"
    deep = client.get("/console/owners-only?x=1")
    assert deep.headers["location"] == "/console/login?next=/console/owners-only%3Fx%3D1"


def test_next_is_followed_only_within_the_console(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """After sign-in the user lands on ``next`` if it is a console path, never off-site."""
    _make_user(runtime, merchant)
    assert _sign_in(client, next_path="/console/orders").headers["location"] == "/console/orders"
    client.cookies.clear()
    for evil in ("https://evil.example/console", "//evil.example/console", "/elsewhere"):
        assert _sign_in(client, next_path=evil).headers["location"] == "/console"
        client.cookies.clear()


def test_deactivation_and_password_change_end_open_sessions(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """The session is re-checked on each request: a changed password or deactivation ends it."""
    user_id = _make_user(runtime, merchant)
    _sign_in(client)
    with transaction(runtime.sessions) as session:
        user = session.get(User, user_id)
        assert user is not None
        set_password(session, runtime.clock, user, "Monaco-Tulips-Spring-7")
    assert client.get("/console").status_code == 303
    _sign_in(client, password="Monaco-Tulips-Spring-7")
    assert client.get("/console").status_code == 200
    with transaction(runtime.sessions) as session:
        user = session.get(User, user_id)
        assert user is not None
        deactivate_user(session, runtime.clock, user)
    assert client.get("/console").status_code == 303


def test_five_failures_lock_the_email_on_the_login_page(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """The sixth attempt within 15 minutes gets 429 and a clear message, even if correct."""
    _make_user(runtime, merchant)
    for _ in range(5):
        assert BAD_CREDENTIALS in _sign_in(client, password="Not-The-Password-1").text
    locked = _sign_in(client)
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.text
    assert int(locked.headers["retry-after"]) == 15 * 60


def test_require_role_answers_403_to_other_roles(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """A page limited to owners refuses a signed-in dispatcher with an HTML 403."""
    _make_user(runtime, merchant, Role.DISPATCHER)
    _sign_in(client)
    answer = client.get("/console/owners-only")
    assert answer.status_code == 403 and "Not allowed" in answer.text


def test_owner_sees_every_section(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """An owner's dashboard lists every section, linking the ones already served."""
    _make_user(runtime, merchant, Role.OWNER)
    _sign_in(client)
    home = client.get("/console")
    for label in ("Dispatch", "Orders", "Users", "Settings", "API reference"):
        assert label in home.text
    assert 'href="/docs"' in home.text
    assert client.get("/console/owners-only").json() == {"hello": "Ada Lovelace"}


def test_static_files_and_leaflet_are_served_locally(client: TestClient) -> None:
    """The stylesheet and Leaflet (JS, CSS, marker images) come from this server."""
    assert client.get("/static/doorstep.css").status_code == 200
    assert client.get("/static/favicon.svg").status_code == 200
    for path in ("leaflet.js", "leaflet.css", "images/marker-icon.png"):
        answer = client.get(f"/static/leaflet/{path}")
        assert answer.status_code == 200, path
    assert "Leaflet" in client.get("/static/leaflet/leaflet.js").text[:500]
