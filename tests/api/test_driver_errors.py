"""An unexpected error under /driver: a driver's browser gets the app's error page in the
driver's language, with the way back to the route; the app's own fetches (which ask for JSON)
and the API keep RFC 9457 problem JSON."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from doorstep.domain.dispatch import publishing
from doorstep.runtime import Runtime
from doorstep.web.app import create_app
from doorstep.web.pages import driver_view
from tests.conftest import MerchantCtx
from tests.console_session import csrf_of
from tests.driving import Published, publish_day

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
def broken(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """A server whose reading of a driver's routes fails unexpectedly (as a lost database
    would), answering the 500 instead of raising it into the test."""

    def fails(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(driver_view, "driver_routes", fails)
    monkeypatch.setattr(publishing, "driver_routes", fails)
    app = create_app(runtime, migrate=False)
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        yield client


@pytest.fixture
def day(broken: TestClient, runtime: Runtime, merchant: MerchantCtx) -> Published:
    published = publish_day(broken, runtime, merchant)
    issued = broken.post(f"/v1/drivers/{published.driver_id}/login-link", headers=merchant.headers)
    path = issued.json()["url"].removeprefix("http://127.0.0.1:8000")
    page = broken.get(path)
    assert broken.post(path, data={"csrf_token": csrf_of(page)}).status_code == 303
    return published


def test_a_driver_browser_gets_the_error_page_in_the_driver_language(
    broken: TestClient, day: Published
) -> None:
    """A French phone opening the app gets a 500 page in French that leads back to the
    route; after the driver switches to Finnish, the same failure is told in Finnish."""
    page = broken.get("/driver", headers={"Accept": BROWSER, "Accept-Language": "fr-FR"})
    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert '<html lang="fr">' in page.text
    assert "Une erreur est survenue" in page.text
    assert "Retour à la tournée du jour" in page.text and 'href="/driver"' in page.text
    assert "database went away" not in page.text

    switch = broken.post(
        "/driver/language", data={"lang": "fi", "csrf_token": csrf_of(page), "back": "/driver"}
    )
    assert switch.status_code == 303
    again = broken.get("/driver", headers={"Accept": BROWSER, "Accept-Language": "fr-FR"})
    assert again.status_code == 500
    assert '<html lang="fi">' in again.text and "Jokin meni vikaan" in again.text


def test_the_app_fetches_and_the_api_keep_problem_json(broken: TestClient, day: Published) -> None:
    """The app's own requests ask for JSON and get a problem document; the API answers
    problem JSON even to a browser."""
    fetched = broken.get("/driver", headers={"Accept": "application/json"})
    assert fetched.status_code == 500
    assert fetched.headers["content-type"] == "application/problem+json"
    assert fetched.json()["status"] == 500

    api = broken.get(
        f"/v1/drivers/{day.driver_id}/route",
        headers={**day.merchant.headers, "Accept": BROWSER},
    )
    assert api.status_code == 500
    assert api.headers["content-type"] == "application/problem+json"
