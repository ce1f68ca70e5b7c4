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


def test_merchant_list_shows_merchants_and_key_prefixes_without_migration_chatter(
    engine: Engine, tmp_path: Path
) -> None:
    """`doorstep merchant list` names each merchant with its keys' public prefixes (never the
    secret); no command narrates Alembic's set-up."""
    env = {"DOORSTEP_DATABASE_URL": _plain_url(engine), "DOORSTEP_DATA_DIR": str(tmp_path)}
    keys = []
    for name in ("Riviera Florist", "Monaco Grocer"):
        made = _run("merchant", "create", name, "--json", env=env)
        assert made.returncode == 0, made.stderr
        assert "Context impl" not in made.stderr + made.stdout
        keys.append(json.loads(made.stdout)["api_key"])
    listed = _run("merchant", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "Context impl" not in listed.stderr + listed.stdout
    rows = json.loads(listed.stdout)["data"]
    assert [r["name"] for r in rows] == ["Riviera Florist", "Monaco Grocer"]
    for row, key in zip(rows, keys, strict=True):
        assert row["api_keys"] == ["_".join(key.split("_")[:2])]
        assert key not in listed.stdout
    table = _run("merchant", "list", env=env)
    assert table.returncode == 0 and "Monaco Grocer" in table.stdout


def test_help_lists_every_command_without_importing_the_benchmarks() -> None:
    """`doorstep --help` lists the commands, and loads neither the optimiser nor the bench."""
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from doorstep.cli import app\n"
        "out = CliRunner().invoke(app, ['--help']).output\n"
        "commands = ('serve', 'migrate', 'merchant', 'bench', 'user', 'demo')\n"
        "assert all(c in out for c in commands), out\n"
        "heavy = [m for m in ('doorstep.bench.api', 'doorstep.bench.plan', 'pyvrp', 'sqlalchemy',"
        " 'doorstep.simulator.demo', 'uvicorn')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
