"""The tracking links' limits on their settings: the per-client rate limit (429) and the
lifetime after delivery (``tracking_link_ttl_hours``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from doorstep.clock import FrozenClock
from doorstep.runtime import Runtime
from doorstep.settings import Settings
from tests.conftest import TEST_SECRET, MerchantCtx
from tests.tracking_scene import build_scene, set_status


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A short link lifetime and a small rate limit, to test both on the settings."""
    return Settings(
        data_dir=tmp_path / "data",
        secret_key=TEST_SECRET,
        tracking_link_ttl_hours=2,
        tracking_rate_limit_per_minute=5,
    )


def test_requests_over_the_rate_limit_get_429_with_retry_after(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """The sixth /t/ request within a minute from one client is refused with 429 and a
    Retry-After, whether the tokens were good or not."""
    scene = build_scene(app_client, runtime, merchant)
    codes = [app_client.get(scene.path(0)).status_code for _ in range(3)]
    codes += [app_client.get("/t/nothing-here").status_code for _ in range(2)]
    assert codes == [200, 200, 200, 404, 404]
    refused = app_client.get(scene.path(0))
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1


def test_the_link_lifetime_follows_the_setting(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx, clock: FrozenClock
) -> None:
    """With DOORSTEP_TRACKING_LINK_TTL_HOURS=2 a delivered order's page closes after 2 hours."""
    scene = build_scene(app_client, runtime, merchant)
    set_status(app_client, scene, 1, "scheduled", "picked_up", "out_for_delivery", "delivered")
    clock.advance(timedelta(hours=2))
    assert app_client.get(scene.path(1)).status_code == 200
    clock.advance(timedelta(minutes=1))
    assert app_client.get(scene.path(1)).status_code == 404
