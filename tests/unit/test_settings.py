"""The one Settings object: works with no configuration, takes plain database URLs, refuses
placeholder secrets."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from doorstep.settings import Settings


def test_defaults_need_no_configuration(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    assert s.effective_database_url == f"sqlite:///{tmp_path / 'doorstep.sqlite3'}"
    assert s.travel_provider == "straight"


@pytest.mark.parametrize(
    "url",
    ["postgresql://user@db.example/doorstep", "postgres://user@db.example/doorstep"],
)
def test_plain_postgres_urls_get_the_psycopg_driver(url: str, tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, database_url=url)
    assert s.effective_database_url == "postgresql+psycopg://user@db.example/doorstep"


@pytest.mark.parametrize("secret", ["changeme", "secret", "short-but-random-xyz"])
def test_placeholder_or_short_secrets_are_refused(secret: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="at least 32 random characters"):
        Settings(data_dir=tmp_path, secret_key=secret)


def test_generated_secret_is_kept_private_and_stable(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).effective_secret_key
    assert len(first) >= 48
    assert Settings(data_dir=tmp_path).effective_secret_key == first
    mode = stat.S_IMODE(os.stat(tmp_path / "secret_key").st_mode)
    assert mode == 0o600


def test_environment_variables_configure_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOORSTEP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DOORSTEP_PORT", "9001")
    monkeypatch.setenv("DOORSTEP_TRAVEL_PROVIDER", "osrm")
    with pytest.raises(ValidationError, match="DOORSTEP_OSRM_URL"):
        Settings()
    monkeypatch.setenv("DOORSTEP_OSRM_URL", "http://127.0.0.1:5000")
    s = Settings()
    assert s.port == 9001 and s.data_dir == tmp_path
