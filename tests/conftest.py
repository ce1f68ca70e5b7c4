"""Shared fixtures. Tests that touch the database run once on SQLite and once on PostgreSQL;
the schema is always built by running the migrations, never by ``create_all``.

PostgreSQL and other local services are required when ``CI=true`` and skipped, with the reason
shown, elsewhere."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from doorstep.clock import FrozenClock
from doorstep.db.engine import make_engine, transaction
from doorstep.db.migrate import upgrade
from doorstep.db.registry import metadata
from doorstep.domain.accounts.service import create_merchant, issue_api_key
from doorstep.runtime import Runtime
from doorstep.settings import Settings
from doorstep.web.app import create_app

# The console sign-in helpers and their non-redirecting ``client`` fixture.
pytest_plugins = ["tests.console_session"]

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_URL = os.environ.get(
    "DOORSTEP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SHARED_DATA = Path(
    os.environ.get(
        "DOORSTEP_TEST_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
)
TEST_SECRET = "test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"
NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)


def require_service(name: str, reason: str) -> None:
    """Fail in CI, skip with a visible reason elsewhere."""
    if IN_CI:
        pytest.fail(f"{name} is required in CI: {reason}")
    pytest.skip(f"{name} not available: {reason}")


def shared_data(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        require_service("shared data", f"{path} missing")
    return path


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_engine() -> Iterator[Engine]:
    """A database of this test worker's own, migrated once."""
    admin = make_engine(PG_URL, isolation_level="AUTOCOMMIT")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"doorstep_test_{worker}_{os.getpid()}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        require_service("PostgreSQL", f"{make_url(PG_URL).render_as_string()}: {exc}")
    url = make_url(PG_URL).set(database=name)
    engine = make_engine(url.render_as_string(hide_password=False))
    upgrade(engine)
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_all(engine: Engine) -> None:
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty database: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "doorstep.sqlite3"
        shutil.copy(template, path)
        eng = make_engine(f"sqlite:///{path}")
        yield eng
        eng.dispose()
    else:
        eng = request.getfixturevalue("pg_engine")
        _truncate_all(eng)
        yield eng


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # No background worker in API tests: tests that send messages run the relay themselves.
    return Settings(data_dir=tmp_path / "data", secret_key=TEST_SECRET, run_worker=False)


@pytest.fixture
def runtime(settings: Settings, clock: FrozenClock, engine: Engine) -> Runtime:
    return Runtime(settings=settings, clock=clock, engine=engine)


@pytest.fixture
def app_client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime, migrate=False)) as client:
        yield client


@dataclass
class MerchantCtx:
    id: str
    name: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@pytest.fixture
def make_merchant(runtime: Runtime) -> Callable[..., MerchantCtx]:
    def factory(name: str = "Riviera Florist", timezone: str = "Europe/Monaco") -> MerchantCtx:
        with transaction(runtime.sessions) as session:
            merchant = create_merchant(session, runtime.clock, name=name, timezone=timezone)
            issued = issue_api_key(session, runtime.clock, merchant, "test")
        return MerchantCtx(merchant.id, merchant.name, issued.plaintext)

    return factory


@pytest.fixture
def merchant(make_merchant: Callable[..., MerchantCtx]) -> MerchantCtx:
    return make_merchant()
