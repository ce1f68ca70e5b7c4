"""One-time console sign-in links (``/console/login/<token>``): one click signs the link's user
in to their own merchant's console, once; a used, expired, retired or made-up link, or one for
a deactivated user, gets the same sign-in form and message and signs nobody in."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from doorstep.clock import FrozenClock
from doorstep.db.engine import transaction
from doorstep.domain.accounts.login_links import (
    ConsoleLoginLink,
    IssuedLink,
    LinkInvalid,
    issue_login_link,
)
from doorstep.domain.accounts.models import Role, User
from doorstep.domain.accounts.users import deactivate_user
from doorstep.domain.sign_in_purge import run_purge_sign_ins
from doorstep.runtime import Runtime
from tests.conftest import TEST_SECRET, MerchantCtx
from tests.console_session import client, make_user  # noqa: F401 - the client fixture

LINK_INVALID = "This sign-in link is not valid or has expired."
TTL = timedelta(minutes=15)


def _issue(runtime: Runtime, email: str, ttl: timedelta = TTL) -> IssuedLink:
    with transaction(runtime.sessions) as session:
        user = session.scalar(select(User).where(User.email == email))
        assert user is not None
        return issue_login_link(
            session, runtime.clock, user, base_url=runtime.settings.base_url, ttl=ttl
        )


def _path(link: IssuedLink) -> str:
    return link.url.removeprefix("http://127.0.0.1:8000")


def _shows_console_of(browser: TestClient, merchant_name: str) -> None:
    home = browser.get("/console")
    assert home.status_code == 200, home.headers.get("location")
    assert merchant_name in home.text


def _refused(browser: TestClient, path: str) -> str:
    answer = browser.get(path)
    assert answer.status_code == 400
    assert LINK_INVALID in answer.text and 'action="/console/login"' in answer.text
    assert browser.get("/console").status_code == 303  # still signed out
    return answer.text


def test_the_link_signs_its_user_in_with_one_click(
    client: TestClient,  # noqa: F811
    runtime: Runtime,
    merchant: MerchantCtx,
) -> None:
    """Opening the link starts a console session for its user and lands on the console."""
    make_user(runtime, merchant.id, "ada@example.com", Role.OWNER)
    link = _issue(runtime, "ada@example.com")
    assert link.url.startswith("http://127.0.0.1:8000/console/login/")
    answer = client.get(_path(link))
    assert answer.status_code == 303 and answer.headers["location"] == "/console"
    _shows_console_of(client, merchant.name)


def test_a_link_works_once(
    client: TestClient,  # noqa: F811
    runtime: Runtime,
    merchant: MerchantCtx,
) -> None:
    """A second use of the same link, even from another browser, signs nobody in."""
    make_user(runtime, merchant.id, "ada@example.com", Role.DISPATCHER)
    link = _issue(runtime, "ada@example.com")
    assert client.get(_path(link)).status_code == 303
    client.cookies.clear()
    _refused(client, _path(link))


def test_expired_wrong_and_retired_links_get_one_answer(
    client: TestClient,  # noqa: F811
    runtime: Runtime,
    clock: FrozenClock,
    merchant: MerchantCtx,
) -> None:
    """An expired link, a made-up token and a link retired by a newer one are refused with the
    very same page; the newer link still works."""
    make_user(runtime, merchant.id, "ada@example.com", Role.DISPATCHER)
    make_user(runtime, merchant.id, "bob@example.com", Role.DISPATCHER)
    expiring = _issue(runtime, "ada@example.com", ttl=timedelta(minutes=5))
    clock.advance(timedelta(minutes=5))
    expired_page = _refused(client, _path(expiring))
    made_up_page = _refused(client, "/console/login/" + "A" * 43)
    assert _refused(client, "/console/login/x").count(LINK_INVALID) == 1

    def without_csrf(page: str) -> str:  # each render carries the session's own CSRF token
        return "".join(line for line in page.splitlines() if "csrf_token" not in line)

    assert without_csrf(expired_page) == without_csrf(made_up_page)
    retired = _issue(runtime, "bob@example.com")
    newer = _issue(runtime, "bob@example.com")
    _refused(client, _path(retired))
    assert client.get(_path(newer)).status_code == 303


def test_a_deactivated_user_cannot_use_a_link(
    client: TestClient,  # noqa: F811
    runtime: Runtime,
    merchant: MerchantCtx,
) -> None:
    """Deactivating a user makes their unused link worthless; no new link can be issued."""
    make_user(runtime, merchant.id, "eve@example.com", Role.DISPATCHER)
    link = _issue(runtime, "eve@example.com")
    with transaction(runtime.sessions) as session:
        eve = session.scalar(select(User).where(User.email == "eve@example.com"))
        assert eve is not None
        deactivate_user(session, runtime.clock, eve)
    _refused(client, _path(link))
    with pytest.raises(LinkInvalid):
        _issue(runtime, "eve@example.com")


def test_the_link_opens_its_own_merchants_console(
    client: TestClient,  # noqa: F811
    runtime: Runtime,
    make_merchant: Callable[..., MerchantCtx],
) -> None:
    """Two merchants' links each open their own merchant's console, never the other's."""
    florist = make_merchant("Riviera Florist")
    grocer = make_merchant("Port Hercule Grocer")
    make_user(runtime, florist.id, "flo@example.com", Role.OWNER)
    make_user(runtime, grocer.id, "gus@example.com", Role.OWNER)
    assert client.get(_path(_issue(runtime, "gus@example.com"))).status_code == 303
    home = client.get("/console")
    assert grocer.name in home.text and florist.name not in home.text


def test_only_the_tokens_hash_is_stored_and_old_links_are_purged(
    runtime: Runtime, clock: FrozenClock, merchant: MerchantCtx
) -> None:
    """The table holds the SHA-256 of the token, never the token; the purge job deletes links
    a day after they expired."""
    make_user(runtime, merchant.id, "ada@example.com", Role.OWNER)
    link = _issue(runtime, "ada@example.com")
    token = link.url.rsplit("/", 1)[1]
    assert len(token) >= 43  # 256 random bits
    with runtime.sessions() as session:
        stored = session.scalars(select(ConsoleLoginLink)).one()
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in (stored.id, stored.token_hash)
    assert run_purge_sign_ins(runtime) == 0
    clock.advance(TTL + timedelta(days=1, seconds=1))
    assert run_purge_sign_ins(runtime) == 1


def test_the_cli_prints_a_link_that_signs_the_user_in(
    client: TestClient,  # noqa: F811
    runtime: Runtime,
    merchant: MerchantCtx,
) -> None:
    """``doorstep user login-link EMAIL`` prints a link (on stdout, alone) that signs that user
    in once; an unknown e-mail is a clear error."""
    from typer.testing import CliRunner

    from doorstep.cli import app

    make_user(runtime, merchant.id, "ada@example.com", Role.DISPATCHER)
    env = {
        "DOORSTEP_DATABASE_URL": runtime.engine.url.render_as_string(hide_password=False),
        "DOORSTEP_DATA_DIR": str(runtime.settings.data_dir),
        "DOORSTEP_SECRET_KEY": TEST_SECRET,
        "DOORSTEP_LOG_LEVEL": "WARNING",
        "DOORSTEP_BASE_URL": "https://doorstep.example.com",
    }
    result = CliRunner().invoke(app, ["user", "login-link", "Ada@Example.com"], env=env)
    assert result.exit_code == 0, result.output
    url = result.stdout.strip()
    assert url.startswith("https://doorstep.example.com/console/login/")
    path = url.removeprefix("https://doorstep.example.com")
    assert client.get(path).status_code == 303
    _shows_console_of(client, merchant.name)
    client.cookies.clear()
    _refused(client, path)
    missing = CliRunner().invoke(app, ["user", "login-link", "nobody@example.com"], env=env)
    assert missing.exit_code == 2 and "no user" in missing.output
