"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from doorstep.db.migrate import current_revision, heads
from doorstep.runtime import Runtime
from doorstep.web.deps import RuntimeDep
from doorstep.web.problems import problem

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: the database answers and is migrated (and Redis answers, if configured)",
    response_model=None,
)
async def readyz(runtime: RuntimeDep) -> dict[str, str] | Response:
    return await run_in_threadpool(_readiness, runtime)


def _readiness(runtime: Runtime) -> dict[str, str] | Response:
    try:
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        revision = current_revision(runtime.engine)
    except Exception as exc:  # any driver error means "not ready"
        return problem(503, f"database unavailable: {type(exc).__name__}", title="Not ready")
    if revision not in heads():
        return problem(
            503, f"database at migration {revision}, expected {heads()}", title="Not ready"
        )
    ready = {"status": "ready", "database": runtime.engine.dialect.name, "migration": revision}
    if runtime.settings.redis_url:
        import redis  # only when configured

        try:
            client = redis.Redis.from_url(runtime.settings.redis_url, socket_timeout=2)
            try:
                client.ping()
            finally:
                client.close()
        except redis.RedisError as exc:
            return problem(503, f"Redis unavailable: {type(exc).__name__}", title="Not ready")
        ready["redis"] = "ok"
    return ready


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
