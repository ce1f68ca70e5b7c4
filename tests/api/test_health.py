"""Operations endpoints answer as monitoring expects."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_healthz_readyz_and_metrics(app_client: TestClient) -> None:
    assert app_client.get("/healthz").json() == {"status": "ok"}
    ready = app_client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    metrics = app_client.get("/metrics")
    assert metrics.status_code == 200
    assert "doorstep_http_requests_total" in metrics.text


def test_unknown_path_is_a_problem_document(app_client: TestClient) -> None:
    resp = app_client.get("/v1/nothing-here")
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["status"] == 404


def test_openapi_and_docs_are_served(app_client: TestClient) -> None:
    assert app_client.get("/openapi.json").json()["info"]["title"] == "Doorstep"
    assert app_client.get("/docs").status_code == 200
