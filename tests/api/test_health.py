"""Operations endpoints answer as monitoring expects."""

from __future__ import annotations

import socket

import httpx
from fastapi.testclient import TestClient

from doorstep.runtime import Runtime
from doorstep.web.app import create_app
from tests.conftest import require_service


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


def test_nul_characters_are_refused_before_reaching_the_database(app_client: TestClient) -> None:
    """PostgreSQL cannot store NUL in text: such requests get a clear 400, never a 500."""
    body = b'{"reference": "SO-\\u0000-1"}'
    resp = app_client.post("/v1/orders", content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and "NUL" in resp.json()["detail"]
    assert app_client.get("/v1/orders/ord_%00").status_code == 400
    assert app_client.get("/v1/orders", params={"reference": "a\x00b"}).status_code == 400


def _ready_with_redis(runtime: Runtime, url: str) -> httpx.Response:
    settings = runtime.settings.model_copy(update={"redis_url": url})
    with_redis = Runtime(settings=settings, clock=runtime.clock, engine=runtime.engine)
    with TestClient(create_app(with_redis, migrate=False)) as client:
        return client.get("/readyz")


def test_readyz_is_not_ready_when_the_configured_redis_is_down(runtime: Runtime) -> None:
    """DOORSTEP_REDIS_URL is read: a Redis that does not answer makes /readyz a 503."""
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ready = _ready_with_redis(runtime, f"redis://127.0.0.1:{port}/0")
    assert ready.status_code == 503
    assert "Redis" in ready.json()["detail"]


def test_readyz_checks_the_configured_redis(runtime: Runtime) -> None:
    """With the local Redis configured, /readyz says it answered."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            pass
    except OSError:
        require_service("Redis", "nothing listens on 127.0.0.1:6379")
    ready = _ready_with_redis(runtime, "redis://127.0.0.1:6379/0")
    assert ready.status_code == 200 and ready.json()["redis"] == "ok"
