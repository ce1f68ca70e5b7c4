"""Signing in to the console from a TestClient: users, the CSRF token, a client that does not
follow redirects (so each Post/Redirect/Get step can be checked)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Merchant, Role
from doorstep.domain.accounts.users import create_user
from doorstep.runtime import Runtime
from doorstep.web.app import create_app

PASSWORD = "Riviera-Blooms-2026!"


def make_user(runtime: Runtime, merchant_id: str, email: str, role: Role) -> None:
    with transaction(runtime.sessions) as s:
        owner = s.get(Merchant, merchant_id)
        assert owner is not None
        create_user(s, runtime.clock, owner, email, email.split("@")[0].title(), role, PASSWORD)


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    """A client that does not follow redirects, so each Post/Redirect/Get step is checked."""
    with TestClient(create_app(runtime, migrate=False), follow_redirects=False) as test_client:
        yield test_client


def csrf_of(page: Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "no CSRF field in the page"
    return match.group(1)


def sign_in(client: TestClient, email: str) -> str:
    """Sign in and answer the session's CSRF token."""
    token = csrf_of(client.get("/console/login"))
    answer = client.post(
        "/console/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get("/console"))
