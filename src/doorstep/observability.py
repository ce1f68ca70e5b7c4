"""Structured logging set-up (structlog), shared by server, worker and CLI, and the domain's
Prometheus counters (served at ``/metrics``)."""

from __future__ import annotations

import logging

import structlog
from prometheus_client import Counter


def configure_logging(level: str = "INFO", json: bool = False) -> None:
    logging.basicConfig(level=level.upper(), format="%(message)s")
    # Alembic narrates its set-up ("Context impl SQLiteImpl.") on every run; commands say
    # themselves what a migration changed.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))
    # httpx logs every request at INFO: a line per webhook delivery from the outbox relay.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
    )


# Positions from GPS apps (domain/tracking/ingest.py), exposed at /metrics.
POSITIONS_ACCEPTED = Counter(
    "doorstep_positions_accepted_total", "Positions accepted for storage", ["source"]
)
POSITIONS_DROPPED = Counter(
    "doorstep_positions_dropped_total",
    "Positions dropped and never stored (invalid_coordinates, future, duplicate, teleport)",
    ["source", "reason"],
)
POSITIONS_REFUSED = Counter(
    "doorstep_positions_refused_total", "Requests refused: the device is unknown", ["source"]
)
POSITIONS_WRITTEN = Counter("doorstep_positions_written_total", "Positions written to the database")
POSITIONS_LOST = Counter(
    "doorstep_positions_lost_total", "Accepted positions lost because the database failed"
)
