"""The "Change delivery" forms share the tracking links' per-client rate limit: posting them
counts like opening the page, and over the limit a form gets 429 without changing anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from doorstep.settings import Settings
from tests.api.test_tracking_selfservice import WINDOWS, form_token_of, new_order, path_of
from tests.conftest import TEST_SECRET, MerchantCtx
from tests.slots_setup import monaco_setup


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A small rate limit (4 a minute), to reach it in a few requests."""
    return Settings(
        data_dir=tmp_path / "data", secret_key=TEST_SECRET, tracking_rate_limit_per_minute=4
    )


def test_form_posts_count_against_the_rate_limit(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """One page view and three instruction posts use the minute's four requests; the next
    post is a 429 with Retry-After, and the instructions keep the last accepted text."""
    monaco_setup(app_client, merchant, windows=WINDOWS)
    order = new_order(app_client, merchant)
    path = path_of(order)
    token = form_token_of(app_client.get(path).text)
    codes = []
    for n in range(4):
        r = app_client.post(
            f"{path}/instructions",
            data={"form_token": token, "instructions": f"Note {n}"},
            headers={"Origin": "http://testserver"},
            follow_redirects=False,
        )
        codes.append(r.status_code)
    assert codes == [303, 303, 303, 429]
    assert int(r.headers["retry-after"]) >= 1
    got = app_client.get(f"/v1/orders/{order['id']}", headers=merchant.headers).json()
    assert got["instructions"] == "Note 2"
