"""Structured logging set-up (structlog), shared by server, worker and CLI."""

from __future__ import annotations

import logging

import structlog


def configure_logging(level: str = "INFO", json: bool = False) -> None:
    logging.basicConfig(level=level.upper(), format="%(message)s")
    # Alembic narrates its set-up ("Context impl SQLiteImpl.") on every run; commands say
    # themselves what a migration changed.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))
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
