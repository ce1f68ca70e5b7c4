"""The one Settings object. Everything configurable is a ``DOORSTEP_*`` environment variable.

Defaults need no configuration at all: an embedded SQLite database in the data directory,
in-process background work, straight-line travel times.
"""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

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
    # Checked by /readyz when set; the live and worker parts use it to scale out.
    redis_url: str | None = None
    # Used in tracking links; when not set, the address ``doorstep serve`` listens on.
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
    # Requests per minute one client IP may make to the tracking pages (/t/...), then 429.
    tracking_rate_limit_per_minute: int = Field(default=120, ge=1)
    # A live stream (SSE) is closed after this long; browsers reconnect by themselves.
    live_stream_max_s: int = Field(default=3600, ge=1)
    live_ping_s: int = Field(default=15, ge=1)

    # Positions from GPS apps (domain/tracking/ingest.py). An MQTT broker URL (mqtt://host:1883,
    # mqtts://user:password@host:8883) makes the server subscribe to OwnTracks' owntracks/+/+.
    mqtt_url: str | None = None
    # The shared-subscription group: Doorstep processes in one group share the messages.
    mqtt_group: str = Field(default="doorstep", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    position_retention_days: int = Field(default=30, ge=1)
    # Writes are batched: flushed every this many milliseconds, or as soon as this many wait.
    position_flush_ms: int = Field(default=250, ge=10, le=10_000)
    position_flush_batch: int = Field(default=500, ge=1, le=10_000)
    # A fix implying a faster move than this since the driver's current position is a teleport.
    position_max_speed_kmh: float = Field(default=250.0, gt=0)
    # How long a process remembers which driver and route a device id belongs to (0: never).
    position_device_cache_s: float = Field(default=5.0, ge=0, le=300)
    # A fix stamped further ahead of the server's clock than this is dropped.
    position_max_future_s: int = Field(default=300, ge=0)

    # Maps on the console and tracking pages (tiles are the only thing fetched from outside).
    tiles_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    tiles_attribution: str = "&copy; OpenStreetMap contributors"

    # Driver app: sign-in links and codes, and proof-of-delivery photos.
    driver_login_ttl_s: int = Field(default=600, ge=60, le=86_400)
    driver_login_max_failures: int = Field(default=5, ge=1, le=100)
    driver_login_lockout_s: int = Field(default=900, ge=1)
    proof_max_bytes: int = Field(default=10_000_000, ge=10_000)
    proof_max_side_px: int = Field(default=1600, ge=100, le=8000)

    # Planning.
    travel_provider: Literal["straight", "osm", "osrm"] = "straight"
    osm_source: str = "monaco"
    osrm_url: str | None = None
    straight_detour_factor: float = Field(default=1.3, ge=1.0, le=5.0)
    default_service_time_s: int = Field(default=180, ge=0)
    plan_time_limit_s: float = Field(default=5.0, gt=0, le=3600)
    plan_seed: int = 42
    # Caps the search too (when the caller gives no cap): with a limit the time limit does not
    # reach, a plan depends only on its seed, however busy the machine.
    plan_max_iterations: int | None = Field(default=None, ge=1)
    # Planning keeps this much slack before each window's end wherever the day allows.
    plan_window_buffer_s: int = Field(default=600, ge=0, le=7200)
    # ... at most this share more route cost and driving time than the plan the search found
    # (0.02: 2 %; ADR 0014).
    plan_window_buffer_max_extra_cost: float = Field(default=0.02, ge=0.0, le=1.0)

    # Geocoding addresses sent without coordinates: "osm" reads the extract of
    # geocoder_source (default: osm_source); nominatim/photon/pelias ask geocoder_url.
    geocoder: Literal["osm", "nominatim", "photon", "pelias", "none"] = "osm"
    geocoder_source: str | None = None
    geocoder_url: str | None = None
    geocoder_user_agent: str = "Doorstep/1.0 (self-hosted last-mile delivery)"
    geocoder_min_delay_s: float = Field(default=1.0, ge=0, le=60)
    geocoder_timeout_s: float = Field(default=10.0, gt=0, le=120)

    @model_validator(mode="before")
    @classmethod
    def _base_url_from_listen_address(cls, data: Any) -> Any:
        """Without ``DOORSTEP_BASE_URL``, links point where the server listens (``--host``,
        ``--port`` or ``DOORSTEP_HOST``/``DOORSTEP_PORT``); a wildcard address becomes
        127.0.0.1, which at least works on the machine itself."""
        if not isinstance(data, dict) or data.get("base_url"):
            return data
        host = str(data.get("host") or "127.0.0.1")
        port = data.get("port") or 8000
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a wildcard is compared, not bound
            host = "127.0.0.1"
        elif ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return {**data, "base_url": f"http://{host}:{port}"}

    # ETA engine (domain/tracking/eta.py): the window's confidence, how far an ETA or a window
    # edge must move before a delivery.eta_updated event, and the error history it learns from.
    eta_confidence: float = Field(default=0.9, ge=0.5, le=0.99)
    eta_material_change_s: int = Field(default=180, ge=0)
    eta_min_history: int = Field(default=50, ge=1)
    # ... made on at least this many routes (errors of one route move together; ADR 0010).
    eta_min_routes: int = Field(default=20, ge=1)
    eta_history_size: int = Field(default=1000, ge=10)

    # Background work (the outbox relay and other jobs). ``doorstep serve --no-worker`` sets
    # DOORSTEP_RUN_WORKER=false for its server processes.
    run_worker: bool = True
    worker_poll_s: float = Field(default=1.0, gt=0, le=60)
    # A few times the concurrency: rows claimed but unsent when a worker dies wait for their
    # lease, so a small batch means less to wait for (while a backlog streams, a worker holds
    # up to two batches: the one being sent and the next, claimed and prepared meanwhile).
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
        if self.geocoder in ("nominatim", "photon", "pelias") and not self.geocoder_url:
            raise ValueError(f"DOORSTEP_GEOCODER={self.geocoder} needs DOORSTEP_GEOCODER_URL")
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
