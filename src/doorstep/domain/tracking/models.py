"""Positions reported by drivers' GPS apps (OsmAnd/Traccar, OwnTracks, the driver app)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from doorstep.db.base import Base
from doorstep.db.types import UTCDateTime


class Position(Base):
    __tablename__ = "positions"
    __table_args__ = (
        Index("ix_positions_driver_recorded", "driver_id", "recorded_at"),
        # The driven track of a route, in time order; and pruning by age.
        Index("ix_positions_route_recorded", "route_id", "recorded_at"),
        Index("ix_positions_recorded", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    driver_id: Mapped[str] = mapped_column(ForeignKey("drivers.id"))
    route_id: Mapped[str | None] = mapped_column(ForeignKey("routes.id"))
    source: Mapped[str] = mapped_column(String(16))  # osmand|owntracks|driver_app|partner|sim
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    speed_mps: Mapped[float | None] = mapped_column(Float)
    heading_deg: Mapped[float | None] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    altitude_m: Mapped[float | None] = mapped_column(Float)
    battery_pct: Mapped[float | None] = mapped_column(Float)


class CurrentPosition(Base):
    """Each driver's newest position (by the device's time), and the route it belonged to.

    A late, out-of-order point is stored in ``positions`` but never moves this row backwards:
    the writer updates it only with a newer ``recorded_at``. The ETA engine reads it through
    :func:`doorstep.domain.tracking.ingest.latest_position`."""

    __tablename__ = "current_positions"
    __table_args__ = (Index("ix_current_positions_merchant_route", "merchant_id", "route_id"),)

    # A driver's current position goes with them (it outlives their pruned positions).
    driver_id: Mapped[str] = mapped_column(
        ForeignKey("drivers.id", ondelete="CASCADE"), primary_key=True
    )
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    route_id: Mapped[str | None] = mapped_column(ForeignKey("routes.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    speed_mps: Mapped[float | None] = mapped_column(Float)
    heading_deg: Mapped[float | None] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)


class EtaPrediction(Base):
    """One ETA the engine made for a stop, kept to calibrate later windows: the first
    prediction for each stop at each minutes-away mark, and (once the stop is arrived) its error.

    ``eta`` is the engine's raw estimate (before the median-error correction of the shown
    ETA) and ``error_s`` actual minus that: positive when the driver came later."""

    __tablename__ = "eta_predictions"
    __table_args__ = (
        UniqueConstraint("stop_id", "horizon"),
        Index("ix_eta_predictions_merchant_horizon", "merchant_id", "horizon", "arrived_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    route_id: Mapped[str] = mapped_column(ForeignKey("routes.id", ondelete="CASCADE"))
    stop_id: Mapped[str] = mapped_column(ForeignKey("stops.id", ondelete="CASCADE"), index=True)
    horizon: Mapped[str] = mapped_column(
        String(16)
    )  # minutes-away bucket, e.g. "m20-40" ("/cold": before any leg)
    predicted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    eta: Mapped[datetime] = mapped_column(UTCDateTime)
    stops_away: Mapped[int] = mapped_column(Integer)
    minutes_away: Mapped[float] = mapped_column(Float)
    arrived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_s: Mapped[float | None] = mapped_column(Float)
