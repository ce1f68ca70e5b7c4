"""The one Settings object. Everything configurable is a ``DOORSTEP_*`` environment variable.

Defaults need no configuration at all: an embedded SQLite database in the data directory,
in-process background work, straight-line travel times.
"""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "password", "dev", "test", "example"}


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "doorstep"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOORSTEP_", extra="ignore", frozen=True)

    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str | None = None
    redis_url: str | None = None
    base_url: str = "http://127.0.0.1:8000"
    secret_key: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"
    log_json: bool = False

    # Request limits: anything larger is refused with 413 before it is parsed.
    max_body_bytes: int = 1_000_000
    max_import_bytes: int = 25_000_000
    max_import_rows: int = 50_000

    # Console sessions.
    session_max_age_s: int = 12 * 3600
    session_cookie_secure: bool = False

    # Tracking links stop working this long after the delivery ends.
    tracking_link_ttl_hours: int = Field(default=72, ge=1)

    # Maps on the console and tracking pages (tiles are the only thing fetched from outside).
    tiles_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    tiles_attribution: str = "&copy; OpenStreetMap contributors"

    # Planning.
    travel_provider: Literal["straight", "osm", "osrm"] = "straight"
    osm_source: str = "helsinki"
    osrm_url: str | None = None
    vehicle_profile: Literal["van", "cargo_bike", "walking"] = "van"
    straight_detour_factor: float = Field(default=1.3, ge=1.0, le=5.0)
    default_service_time_s: int = Field(default=180, ge=0)
    plan_time_limit_s: float = Field(default=5.0, gt=0, le=3600)
    plan_seed: int = 42

    # Background work (the outbox relay and other jobs). ``doorstep serve --no-worker`` sets
    # DOORSTEP_RUN_WORKER=false for its server processes.
    run_worker: bool = True
    worker_poll_s: float = Field(default=1.0, gt=0, le=60)
    # A few times the concurrency: rows claimed but unsent when a worker dies wait for their
    # lease, so a small batch means less to wait for.
    outbox_batch: int = Field(default=32, ge=1, le=5000)
    outbox_lease_s: int = Field(default=120, ge=5)
    outbox_concurrency: int = Field(default=8, ge=1, le=256)

    # Messages. SMTP as ``smtp://user:pass@host:port`` (``smtps://`` for implicit TLS,
    # ``?starttls=true`` for STARTTLS); no URL means e-mails wait in the outbox.
    smtp_url: str | None = None
    mail_from: str = "Doorstep <no-reply@localhost>"
    webhook_allow_private: bool = False
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=60)
    # An endpoint that has failed every attempt for this long is disabled.
    webhook_disable_after_hours: int = Field(default=72, ge=1)

    @field_validator("secret_key")
    @classmethod
    def _refuse_placeholders(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.lower() in _PLACEHOLDER_SECRETS or len(value) < 32:
            raise ValueError(
                "DOORSTEP_SECRET_KEY must be at least 32 random characters "
                "(python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return value

    @model_validator(mode="after")
    def _check_osrm(self) -> Settings:
        if self.travel_provider == "osrm" and not self.osrm_url:
            raise ValueError("DOORSTEP_TRAVEL_PROVIDER=osrm needs DOORSTEP_OSRM_URL")
        return self

    @cached_property
    def effective_database_url(self) -> str:
        """The SQLAlchemy URL: users paste plain ``postgresql://`` URLs; we pick the driver."""
        url = self.database_url or f"sqlite:///{self.data_dir / 'doorstep.sqlite3'}"
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @cached_property
    def effective_secret_key(self) -> str:
        """The configured secret, or one generated once and kept in the data directory."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key
