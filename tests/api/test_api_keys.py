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
