"""The ``doorstep`` command as a user runs it: a merchant and its key from the shell, on
SQLite and on PostgreSQL given a plain URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from doorstep.domain.accounts.models import ApiKey
from doorstep.runtime import Runtime

DOORSTEP = str(Path(sys.executable).parent / "doorstep")


def _plain_url(engine: Engine) -> str:
    """The URL as a user copies it from a provider: no SQLAlchemy driver name."""
    return engine.url.set(drivername=engine.url.get_backend_name()).render_as_string(
        hide_password=False
    )


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DOORSTEP, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_merchant_create_prints_a_working_key_once(
    engine: Engine, runtime: Runtime, app_client: TestClient, tmp_path: Path
) -> None:
    env = {"DOORSTEP_DATABASE_URL": _plain_url(engine), "DOORSTEP_DATA_DIR": str(tmp_path)}
    result = _run(
        "merchant", "create", "Riviera Florist", "--timezone", "Europe/Monaco", "--json", env=env
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["name"] == "Riviera Florist" and out["id"].startswith("mer_")
    key = out["api_key"]
    # Only a hash is stored: the key itself appears nowhere in the database.
    with runtime.sessions() as session:
        stored = session.scalars(select(ApiKey)).one()
        assert key not in (stored.prefix, stored.secret_hash)
        assert key.split("_")[1] == stored.prefix
    resp = app_client.get("/v1/orders", headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 200
    assert (
        app_client.get("/v1/orders", headers={"Authorization": "Bearer dsk_x_y"}).status_code == 401
    )


def test_bad_merchant_input_is_a_clear_error(engine: Engine, tmp_path: Path) -> None:
    env = {"DOORSTEP_DATABASE_URL": _plain_url(engine), "DOORSTEP_DATA_DIR": str(tmp_path)}
    result = _run("merchant", "create", "Shop", "--timezone", "Mars/Olympus", env=env)
    assert result.returncode == 2
    assert "unknown IANA timezone" in result.stderr


def test_migrate_reports_the_head(engine: Engine, tmp_path: Path) -> None:
    env = {"DOORSTEP_DATABASE_URL": _plain_url(engine), "DOORSTEP_DATA_DIR": str(tmp_path)}
    result = _run("migrate", env=env)
    assert result.returncode == 0, result.stderr
    assert "Database at migration" in result.stdout
