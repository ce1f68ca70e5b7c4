"""API keys are checked on every request: no cache keeps a revoked key working."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import ApiKey, Merchant
from doorstep.domain.accounts.service import issue_api_key, revoke_api_key
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx


def test_a_revoked_key_stops_working_at_once(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Right after revocation the key gets 401 on reads and writes; the merchant's other key
    still works."""
    with transaction(runtime.sessions) as session:
        owner = session.get(Merchant, merchant.id)
        assert owner is not None
        spare = issue_api_key(session, runtime.clock, owner, "spare").plaintext
    spare_headers = {"Authorization": f"Bearer {spare}"}
    assert app_client.get("/v1/orders", headers=merchant.headers).status_code == 200
    assert app_client.get("/v1/merchant", headers=merchant.headers).status_code == 200
    with transaction(runtime.sessions) as session:
        owner = session.get(Merchant, merchant.id)
        assert owner is not None
        prefix = merchant.api_key.split("_")[1]
        key = session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).one()
        revoke_api_key(session, runtime.clock, owner, key.id)
    for method, url in (("GET", "/v1/orders"), ("GET", "/v1/merchant"), ("GET", "/v1/depots")):
        assert app_client.request(method, url, headers=merchant.headers).status_code == 401
    refused = app_client.patch("/v1/merchant", headers=merchant.headers, json={"name": "X"})
    assert refused.status_code == 401
    still = app_client.get("/v1/merchant", headers=spare_headers)
    assert still.status_code == 200 and still.json()["name"] == "Riviera Florist"


# One request per router converted to the single pool call (ADR 0013), with a body the
# endpoint would refuse: an unknown or revoked key must hear 401, never 404 or 422.
CONVERTED = [
    ("GET", "/v1/zones", None),
    ("POST", "/v1/zones", {}),
    ("PATCH", "/v1/slot-calendars/cal_nope", {"name": ""}),
    ("POST", "/v1/pickup-points", {"name": 1}),
    ("POST", "/v1/slots/quote", {}),
    ("POST", "/v1/slots/reservations", {}),
    ("GET", "/v1/orders/ord_nope/delivery-options", None),
    ("POST", "/v1/orders/ord_nope/reschedule", {}),
    ("GET", "/v1/message-templates", None),
    ("PUT", "/v1/message-templates/order_confirmed/email/en", {}),
    ("PATCH", "/v1/notification-settings", {"quiet_hours": "x"}),
    ("POST", "/v1/webhook-endpoints", {"url": "not a url"}),
    ("DELETE", "/v1/webhook-endpoints/whe_nope", None),
    ("GET", "/v1/routes/rte_nope/track", None),
    ("POST", "/v1/drivers/drv_nope/device/rotate", None),
    ("POST", "/v1/drivers/drv_nope/login-link", None),
]


def test_every_converted_endpoint_refuses_a_revoked_key_before_anything_else(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Zones, calendars, pickup points, quotes, reservations, self-service, templates,
    message settings, webhooks, tracks, devices and driver sign-in: 401 for a revoked key,
    whatever the body (no 404 or 422 tells an outsider anything)."""
    with transaction(runtime.sessions) as session:
        owner = session.get(Merchant, merchant.id)
        assert owner is not None
        prefix = merchant.api_key.split("_")[1]
        key = session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).one()
        revoke_api_key(session, runtime.clock, owner, key.id)
    for method, url, body in CONVERTED:
        resp = app_client.request(method, url, headers=merchant.headers, json=body)
        assert resp.status_code == 401, (method, url, resp.status_code, resp.text)
    # Forms too (the driving API): a stop action with an invalid field.
    resp = app_client.post(
        "/v1/stops/stp_nope/arrive", headers=merchant.headers, data={"lat": "north"}
    )
    assert resp.status_code == 401, resp.text
