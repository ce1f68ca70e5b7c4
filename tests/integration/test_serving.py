"""A real ``doorstep serve`` as a newcomer starts it: tracking links follow the port it was given,
and 64 clients creating orders at once on the embedded SQLite all get their answer."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from doorstep.bench.api import order_body
from doorstep.bench.http_load import loopback_client
from doorstep.bench.local_server import ServerProcess, free_port

DOORSTEP = [sys.executable, "-c", "from doorstep.cli import main; main()"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOORSTEP_")}
    own = {"DOORSTEP_DATA_DIR": str(tmp_path / "data"), "DOORSTEP_LOG_LEVEL": "WARNING"}
    return {**env, **own, **extra}


def _api_key(env: dict[str, str]) -> str:
    made = subprocess.run(
        [*DOORSTEP, "merchant", "create", "Riviera Florist", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    key: str = json.loads(made.stdout)["api_key"]
    return key


def _wait_ready(base_url: str, server: subprocess.Popen[bytes]) -> None:
    with httpx.Client(base_url=base_url, trust_env=False, timeout=2.0) as client:
        for _ in range(300):  # at most about 60 s
            assert server.poll() is None, "the server exited at start-up"
            try:
                if client.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise AssertionError("the server did not get ready")


@pytest.mark.parametrize("how", ["--port", "DOORSTEP_PORT"])
def test_tracking_links_follow_the_port_served(tmp_path: Path, how: str) -> None:
    """Without DOORSTEP_BASE_URL, an order's tracking_url names the port `doorstep serve` was
    given (by option or environment), not 8000."""
    port = free_port()
    env = _env(tmp_path)
    key = _api_key(env)
    args = ["serve", "--host", "127.0.0.1"]
    if how == "--port":
        args += ["--port", str(port)]
    else:
        env["DOORSTEP_PORT"] = str(port)
    base_url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [*DOORSTEP, *args], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path
    )
    try:
        _wait_ready(base_url, server)
        body = order_body("SO-PORT-1", datetime.now(UTC) + timedelta(days=1))
        created = httpx.post(
            f"{base_url}/v1/orders",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            trust_env=False,
            timeout=30,
        )
        assert created.status_code == 201, created.text
        assert created.json()["tracking_url"].startswith(f"{base_url}/t/")
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


CLIENTS = 64
CREATES = 300


async def _create_all(base_url: str, key: str) -> Counter[int]:
    """CREATES order creates from CLIENTS concurrent clients; the count of each status."""
    day = datetime.now(UTC) + timedelta(days=1)
    statuses: Counter[int] = Counter()
    queue = iter(range(CREATES))
    headers = {"Authorization": f"Bearer {key}"}
    async with loopback_client(base_url, CLIENTS, headers=headers, timeout_s=120) as client:

        async def worker() -> None:
            for n in queue:
                try:
                    answer = await client.post("/v1/orders", json=order_body(f"LOAD-{n}", day))
                    statuses[answer.status_code] += 1
                except httpx.TransportError as exc:
                    statuses[-1] += 1
                    print(f"request {n}: {exc!r}")

        await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    return statuses


@pytest.mark.slow
def test_sixty_four_clients_creating_at_once_on_sqlite_all_succeed(tmp_path: Path) -> None:
    """300 creates from 64 concurrent clients on the embedded SQLite: every one is a 201 (the
    request's authentication and work share one pool thread, so the write lock's holder always
    has a thread to commit on)."""
    env = _env(tmp_path, DOORSTEP_DATABASE_URL=f"sqlite:///{tmp_path / 'load.sqlite3'}")
    with ServerProcess(env["DOORSTEP_DATABASE_URL"], tmp_path) as server:
        key = _api_key({**env, "DOORSTEP_DATA_DIR": str(tmp_path / "data")})
        statuses = asyncio.run(_create_all(server.base_url, key))
    assert statuses == Counter({201: CREATES}), server.log_tail()
