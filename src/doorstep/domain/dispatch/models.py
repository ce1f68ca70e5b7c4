"""Planning and dispatch: who drives what, from where, when, and the routes they get."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from doorstep.db.base import Base
from doorstep.db.types import JSONType, UTCDateTime


class Depot(Base):
    __tablename__ = "depots"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    address_line1: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    # {"mon": [["08:00", "20:00"]], ...} in the merchant's timezone; missing day = closed, no
    # hours at all = never closed. Planning keeps departures and returns inside them (opening.py).
    opening_hours: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Vehicle(Base):
    __tablename__ = "vehicles"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    profile: Mapped[str] = mapped_column(String(16), default="van")  # van|cargo_bike|walking
    capacity_weight_kg: Mapped[float] = mapped_column(Float)
    capacity_parcels: Mapped[int] = mapped_column(Integer)
    skills: Mapped[list[str]] = mapped_column(JSONType, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Driver(Base):
    __tablename__ = "drivers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20))
    # What the driver's GPS app reports: OsmAnd/Traccar ``id`` or OwnTracks ``tid``/topic.
    # Unique across merchants, because the ingest endpoints learn only the device id.
    device_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    skills: Mapped[list[str]] = mapped_column(JSONType, default=list)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Shift(Base):
    __tablename__ = "shifts"
    __table_args__ = (Index("ix_shifts_merchant_start", "merchant_id", "start_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    driver_id: Mapped[str] = mapped_column(ForeignKey("drivers.id"), index=True)
    vehicle_id: Mapped[str] = mapped_column(ForeignKey("vehicles.id"))
    depot_id: Mapped[str] = mapped_column(ForeignKey("depots.id"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # An optional break: taken somewhere between earliest and latest start, lasting duration.
    break_earliest_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    break_latest_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    break_duration_s: Mapped[int | None] = mapped_column(Integer)
    # The route must end back at the depot by end_at unless this is false.
    return_to_depot: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(
        String(16), default="planned"
    )  # planned|active|ended|dropped
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Plan(Base):
    """One optimisation of one depot's day. Publishing it makes its routes the drivers' own."""

    __tablename__ = "plans"
    __table_args__ = (Index("ix_plans_merchant_depot_date", "merchant_id", "depot_id", "date"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    depot_id: Mapped[str] = mapped_column(ForeignKey("depots.id"))
    date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))  # draft|published|superseded
    parent_plan_id: Mapped[str | None] = mapped_column(ForeignKey("plans.id"))
    seed: Mapped[int] = mapped_column(Integer)
    time_limit_s: Mapped[float] = mapped_column(Float)
    travel_provider: Mapped[str] = mapped_column(String(16))
    # Objective, solve time, matrix time, iterations, ...
    stats: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # [{"order_id": ..., "reason": "over_capacity", "detail": "..."}]
    unassigned: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    routes: Mapped[list[Route]] = relationship(
        back_populates="plan", order_by="Route.position", cascade="all, delete-orphan"
    )


class Route(Base):
    __tablename__ = "routes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), index=True)
    shift_id: Mapped[str] = mapped_column(ForeignKey("shifts.id"), index=True)
    driver_id: Mapped[str] = mapped_column(ForeignKey("drivers.id"))
    vehicle_id: Mapped[str] = mapped_column(ForeignKey("vehicles.id"))
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="planned")  # planned|active|done
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    distance_m: Mapped[float] = mapped_column(Float, default=0.0)
    driving_s: Mapped[float] = mapped_column(Float, default=0.0)
    load_weight_kg: Mapped[float] = mapped_column(Float, default=0.0)
    load_parcels: Mapped[int] = mapped_column(Integer, default=0)
    # Violations found when the route was last recomputed (late arrival, over capacity, ...).
    violations: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    # Road geometry [[lon, lat], ...] when road data was used, else empty.
    geometry: Mapped[list[list[float]]] = mapped_column(JSONType, default=list)
    # When the driver actually started and finished it (planned times are start_at/end_at).
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # When the ETA engine last refreshed this route's stops (run_refresh_etas picks routes
    # with positions received after it).
    eta_refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    plan: Mapped[Plan] = relationship(back_populates="routes")
    stops: Mapped[list[Stop]] = relationship(
        back_populates="route", order_by="Stop.sequence", cascade="all, delete-orphan"
    )


class Stop(Base):
    __tablename__ = "stops"
    __table_args__ = (UniqueConstraint("route_id", "order_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    route_id: Mapped[str] = mapped_column(ForeignKey("routes.id", ondelete="CASCADE"), index=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="planned")
    # planned|en_route|arrived|done|failed|skipped
    planned_arrival: Mapped[datetime | None] = mapped_column(UTCDateTime)
    planned_departure: Mapped[datetime | None] = mapped_column(UTCDateTime)
    service_time_s: Mapped[int] = mapped_column(Integer, default=0)
    load_weight_kg: Mapped[float] = mapped_column(Float, default=0.0)
    load_parcels: Mapped[int] = mapped_column(Integer, default=0)
    distance_from_prev_m: Mapped[float] = mapped_column(Float, default=0.0)
    eta: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The calibrated window around ``eta`` (domain/tracking/calibration.py) and what was last
    # announced in a ``delivery.eta_updated`` event (to publish only material moves).
    eta_earliest: Mapped[datetime | None] = mapped_column(UTCDateTime)
    eta_latest: Mapped[datetime | None] = mapped_column(UTCDateTime)
    eta_confidence: Mapped[float | None] = mapped_column(Float)
    eta_computed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    eta_published: Mapped[datetime | None] = mapped_column(UTCDateTime)
    eta_published_earliest: Mapped[datetime | None] = mapped_column(UTCDateTime)
    eta_published_latest: Mapped[datetime | None] = mapped_column(UTCDateTime)
    actual_arrival: Mapped[datetime | None] = mapped_column(UTCDateTime)
    actual_departure: Mapped[datetime | None] = mapped_column(UTCDateTime)

    route: Mapped[Route] = relationship(back_populates="stops")
