"""The worker as users run it: in-process under the web app (unless turned off), and
``doorstep worker --once`` as its own process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from doorstep.clock import FrozenClock
from doorstep.db.engine import make_engine
from doorstep.db.migrate import upgrade
from doorstep.runtime import Runtime
from doorstep.settings import Settings
from doorstep.web.app import create_app
from tests.api.test_orders import create
from tests.conftest import NOW, TEST_SECRET, MerchantCtx
from tests.integration.messages.test_delivery_guarantees import seed
from tests.peers import http_receiver


def test_the_app_runs_the_worker_in_process_unless_told_not_to(
    runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Under the app's lifespan a webhook goes out with nobody calling the relay; with
    run_worker off (``serve --no-worker``) the app starts no worker."""
    settings = runtime.settings.model_copy(
        update={"run_worker": True, "webhook_allow_private": True, "worker_poll_s": 0.05}
    )
    rt = Runtime(settings=settings, clock=runtime.clock, engine=runtime.engine)
    with http_receiver() as peer, TestClient(create_app(rt, migrate=False)) as client:
        assert client.app.state.worker is not None  # type: ignore[attr-defined]
        resp = client.post(
            "/v1/webhook-endpoints", json={"url": peer.url}, headers=merchant.headers
        )
        assert resp.status_code == 201
        create(client, merchant)
        for _ in range(300):  # bounded: up to 30 s on a busy machine
            if peer.received:
                break
            time.sleep(0.1)
        assert [r.json()["type"] for r in peer.received] == ["order.created"]
    off = runtime.settings.model_copy(update={"run_worker": False})
    with TestClient(
        create_app(Runtime(off, runtime.clock, runtime.engine), migrate=False)
    ) as client:
        assert client.app.state.worker is None  # type: ignore[attr-defined]


def test_doorstep_worker_once_sends_what_is_due(tmp_path: Path) -> None:
    """``doorstep worker --once`` in its own process sends the due webhooks and says so."""
    db = tmp_path / "w.sqlite3"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    settings = Settings(data_dir=tmp_path, secret_key=TEST_SECRET, run_worker=False)
    with http_receiver() as peer:
        seed(Runtime(settings, FrozenClock(NOW), engine), peer.url, 5)
        engine.dispose()
        env = {
            **os.environ,
            "DOORSTEP_DATABASE_URL": f"sqlite:///{db}",
            "DOORSTEP_DATA_DIR": str(tmp_path),
            "DOORSTEP_SECRET_KEY": TEST_SECRET,
            "DOORSTEP_WEBHOOK_ALLOW_PRIVATE": "true",
        }
        doorstep = Path(sys.executable).parent / "doorstep"
        out = subprocess.run(
            [str(doorstep), "worker", "--once", "--jobs", "outbox"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert "worker: 5 units of work" in out.stdout
        assert len(peer.received) == 5
        bad = subprocess.run(
            [str(doorstep), "worker", "--once", "--jobs", "nope"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert bad.returncode == 2 and "no job named nope" in bad.stdout


def test_serve_no_worker_tells_its_server_processes_to_run_no_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``doorstep serve --no-worker`` hands DOORSTEP_RUN_WORKER=false to the server it starts
    (and plain ``serve`` does not), so the app's lifespan starts no worker there."""
    import uvicorn
    from typer.testing import CliRunner

    from doorstep.cli import app

    seen: list[str | None] = []
    # serve writes DOORSTEP_RUN_WORKER, _HOST and _PORT for the server it starts: give it a copy
    # of the environment, so later tests in this process never see them (a run_worker=false
    # left behind stopped the in-process worker of every app built after this test)
    monkeypatch.setattr(os, "environ", dict(os.environ))
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: seen.append(os.environ.get(FLAG)))
    monkeypatch.setenv("DOORSTEP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DOORSTEP_SECRET_KEY", TEST_SECRET)
    monkeypatch.delenv(FLAG, raising=False)
    runner = CliRunner()
    assert runner.invoke(app, ["serve"]).exit_code == 0
    assert runner.invoke(app, ["serve", "--no-worker"]).exit_code == 0
    assert seen == [None, "false"]
    assert Settings(data_dir=tmp_path).run_worker is False  # what the server process reads


FLAG = "DOORSTEP_RUN_WORKER"


def test_doorstep_worker_with_two_processes_shares_the_work_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    """``doorstep worker --processes 2`` sends every message once and its children end with
    the parent on SIGTERM."""
    db = tmp_path / "w2.sqlite3"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    settings = Settings(data_dir=tmp_path, secret_key=TEST_SECRET, run_worker=False)
    with http_receiver(delay_s=0.005) as peer:
        seed(Runtime(settings, FrozenClock(NOW), engine), peer.url, 40)
        engine.dispose()
        env = {
            **os.environ,
            "DOORSTEP_DATABASE_URL": f"sqlite:///{db}",
            "DOORSTEP_DATA_DIR": str(tmp_path),
            "DOORSTEP_SECRET_KEY": TEST_SECRET,
            "DOORSTEP_WEBHOOK_ALLOW_PRIVATE": "true",
            "DOORSTEP_OUTBOX_BATCH": "5",
        }
        doorstep = Path(sys.executable).parent / "doorstep"
        proc = subprocess.Popen(
            [str(doorstep), "worker", "--processes", "2", "--jobs", "outbox"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(600):  # bounded: up to a minute
                if len(peer.received) >= 40:
                    break
                time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
        ids = [r.headers["webhook-id"] for r in peer.received]
    assert code == 0
    assert len(ids) == 40 and len(set(ids)) == 40
