"""Live updates across processes: two ``doorstep serve`` processes on one PostgreSQL database
and one Redis. A status change posted to the first, and a position written by a third process
through the domain, both reach a tracking page's stream connected to the second."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import Engine

from doorstep.clock import SystemClock
from doorstep.db.engine import transaction
from doorstep.domain.accounts.service import create_merchant, issue_api_key
from doorstep.runtime import Runtime
from doorstep.settings import Settings
from tests.conftest import TEST_SECRET, MerchantCtx, require_service
from tests.sse_client import messages, next_of
from tests.tracking_scene import build_scene, finish_stop, set_status, write_position

REDIS_URL = os.environ.get("DOORSTEP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DOORSTEP = Path(sys.executable).parent / "doorstep"


def _redis_or_skip() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        require_service("Redis", f"{REDIS_URL}: {exc}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _server(env: dict[str, str], log: Path) -> Iterator[str]:
    """A ``doorstep serve`` subprocess on a free port; its base URL once /healthz answers."""
    port = _free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(DOORSTEP), "serve", "--port", str(port), "--no-worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, log.read_text()
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "server did not start: " + log.read_text()
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def test_an_event_and_a_position_reach_a_stream_on_the_other_server(
    pg_engine: Engine, tmp_path: Path
) -> None:
    """Server A takes the status change, a third process writes the GPS fix; the tracking
    stream open on server B gets the new snapshot and the rounded position."""
    _redis_or_skip()
    url = pg_engine.url.render_as_string(hide_password=False)
    env = {
        **os.environ,
        "DOORSTEP_DATABASE_URL": url,
        "DOORSTEP_REDIS_URL": REDIS_URL,
        "DOORSTEP_SECRET_KEY": TEST_SECRET,
        "DOORSTEP_DATA_DIR": str(tmp_path / "data"),
        "DOORSTEP_LOG_LEVEL": "WARNING",
    }
    settings = Settings(
        data_dir=tmp_path / "data", secret_key=TEST_SECRET, redis_url=REDIS_URL, database_url=url
    )
    writer = Runtime(settings=settings, clock=SystemClock(), engine=pg_engine)
    with transaction(writer.sessions) as s:
        merchant = create_merchant(s, writer.clock, name="Fan-out Florist", timezone="UTC")
        key = issue_api_key(s, writer.clock, merchant, "test")
    ctx = MerchantCtx(merchant.id, merchant.name, key.plaintext)
    with (
        _server(env, tmp_path / "a.log") as a,
        _server(env, tmp_path / "b.log") as b,
        httpx.Client(base_url=a, timeout=10) as api,
        httpx.Client(base_url=b, timeout=httpx.Timeout(15.0)) as page,
    ):
        tomorrow = (writer.clock.now() + timedelta(days=1)).date().isoformat()
        window = {"start": f"{tomorrow}T09:00:00+00:00", "end": f"{tomorrow}T11:00:00+00:00"}
        scene = build_scene(api, writer, ctx, window=window)
        set_status(api, scene, 1, "scheduled", "picked_up")
        finish_stop(writer, scene, 0)
        with page.stream("GET", f"{scene.path(1)}/events") as resp:
            assert resp.status_code == 200
            stream = messages(resp)
            first = next_of(stream, "snapshot").json()
            assert first["status"] == "picked_up"
            set_status(api, scene, 1, "out_for_delivery")
            second = next_of(stream, "snapshot").json()
            assert second["status"] == "out_for_delivery"
            assert second["driver_visible"] is True
            write_position(writer, scene, 43.7361111, 7.4222222)
            position = next_of(stream, "position").json()
            assert (position["lat"], position["lon"]) == (43.736, 7.422)
    writer.live.close()
